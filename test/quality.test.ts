/** The whole tree type-checks (strict) and lints clean: CI fails on either. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`.trim() };
}

describe('code quality', { timeout: 300_000 }, () => {
  it('tsc --noEmit (strict) reports no errors', () => {
    const r = run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json']);
    assert.equal(r.status, 0, r.out.slice(0, 4000));
  });
  it('eslint reports no errors', () => {
    const r = run(process.execPath, ['node_modules/eslint/bin/eslint.js', '.']);
    assert.equal(r.status, 0, r.out.slice(0, 4000));
  });
});
