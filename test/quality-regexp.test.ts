/**
 * No client-supplied string may reach a RegExp in the daemon or the mail store: one backtracking
 * expression built from a LIST pattern (`%*%*%*x`) froze every protocol of a node for minutes. Regular
 * expressions written as literals are fine (their shape is fixed); `RegExp(...)` built at run time is
 * refused here unless its file is on the allow-list below with the reason its input is a constant.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOTS = ['lib/daemon', 'lib/store'];

/** file → why its RegExp constructor never sees client input. Empty today: keep it that way if you can. */
const ALLOWED: Readonly<Record<string, string>> = {};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('no client input reaches a RegExp', () => {
  it('lib/daemon and lib/store construct no RegExp at run time outside the allow-list', () => {
    const found: string[] = [];
    for (const file of ROOTS.flatMap(walk)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        if (/(^|[^\w.])(new\s+)?RegExp\s*\(/.test(code) && !ALLOWED[file]) found.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(found, [], 'build no RegExp from strings in the daemon: match with string operations or a linear matcher (lib/daemon/imap/wildcard.ts)');
  });

  it('every allow-listed file still exists and still needs its entry', () => {
    for (const [file, why] of Object.entries(ALLOWED)) {
      assert.ok(why.length > 10, `${file}: give the reason`);
      assert.match(readFileSync(file, 'utf8'), /RegExp\s*\(/, `${file} no longer builds a RegExp: drop it from ALLOWED`);
    }
  });
});
