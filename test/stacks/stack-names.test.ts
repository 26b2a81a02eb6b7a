import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { addPlatformStacks } from '../../stacks/app.js';
import { cleanupApps, examplePlan, testApp } from './helpers.js';

after(cleanupApps);

/** Stack names the CI commands of a document select (`cdk deploy <name>`). */
function deployedNames(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/cdk deploy ([a-z0-9-]+)/g)].map((m) => m[1]!).filter((n) => n !== 'globex-mail-' && !n.startsWith('-'));
}

describe('stack ids (what `cdk deploy <name>` selects)', () => {
  it('GIVEN primary-dr.yaml THEN the stack ids (the hierarchical ids the CDK CLI matches) are the names the README and docs/cdk.md deploy', () => {
    const app = testApp();
    const stacks = addPlatformStacks(app, examplePlan('examples/primary-dr.yaml'));
    // `cdk list` prints and `cdk deploy X` matches a stack's hierarchical id: for a top-level stack, its construct path.
    const ids = [stacks.primary, stacks.dr!].map((s) => s.node.path);
    assert.deepEqual(ids, ['globex-mail-primary', 'globex-mail-dr']);
    for (const file of ['README.md', 'docs/cdk.md']) {
      const names = deployedNames(file);
      assert.ok(names.length >= 2, `${file} shows cdk deploy commands`);
      for (const n of names) assert.ok(ids.includes(n), `${file}: cdk deploy ${n} selects no stack (ids: ${ids.join(', ')})`);
    }
    // The stack names CloudFormation sees stay as they were.
    assert.deepEqual([stacks.primary.stackName, stacks.dr!.stackName], ids);
  });
});

describe('`npx cdk list` (the real CLI and bin/cdk.ts, offline)', () => {
  it('GIVEN -c spec=examples/primary-dr.yaml THEN every stack the README and docs/cdk.md `cdk deploy` is listed', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mailfleet-cdk-list-'));
    try {
      // nag=false: cdk-nag only adds findings, never stacks; it would double the time of this check.
      const { stdout } = await promisify(execFile)('npx', ['cdk', 'list', '-c', 'spec=examples/primary-dr.yaml', '-c', 'nag=false', '-o', out], {
        env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
        timeout: 240_000,
      });
      const listed = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      for (const file of ['README.md', 'docs/cdk.md']) {
        const names = deployedNames(file);
        assert.ok(names.length >= 2, `${file} shows cdk deploy commands`);
        for (const n of names) assert.ok(listed.includes(n), `${file}: cdk deploy ${n} — cdk list prints only ${listed.join(', ')}`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
