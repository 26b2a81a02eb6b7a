/**
 * `mailfleet dr drill --aws --dry-run` against every example: each `<from stack output STACK.KEY>` the
 * printed plan reads is an output of that stack in the CDK assembly the same spec synthesizes (the real
 * producer, not the drill's own list).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { cdkStackOutputs } from '../../lib/dr/check-outputs.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { cleanupApps, synthPlatform } from '../stacks/helpers.js';

after(cleanupApps);

const dryRun = (file: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'dr', 'drill', '--aws', '--dry-run', '-c', file], {
    encoding: 'utf8',
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
  });

/** The example specs the CDK app can synthesize (a regions block); the local ones have nothing to drill on AWS. */
const awsExamples = readdirSync('examples')
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `examples/${f}`)
  .filter((f) => (yaml.load(readFileSync(f, 'utf8')) as { regions?: unknown } | null)?.regions !== undefined);

describe('mailfleet dr drill --aws --dry-run prints only steps whose outputs exist', () => {
  it('covers the examples with AWS regions', () => {
    assert.ok(awsExamples.length >= 3, awsExamples.join(', '));
  });

  for (const file of awsExamples) {
    it(`GIVEN ${file} THEN every stack output the dry-run reads is exported by cdk synth of the same spec (or it refuses with no steps)`, () => {
      const plan = buildPlan(loadSpec(file).spec);
      const r = dryRun(file);
      if (!plan.regions?.dr) {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /has no DR region/);
        assert.doesNotMatch(r.stdout, /from stack output/);
        return;
      }
      assert.equal(r.status, 0, r.stderr);
      const read = [...r.stdout.matchAll(/<from stack output ([^.>\s]+)\.([A-Za-z0-9]+)>/g)].map((m) => ({ stack: m[1]!, key: m[2]! }));
      assert.ok(read.length >= 6, `the plan reads ${read.length} outputs`);
      const exported = cdkStackOutputs(synthPlatform(plan, { validation: false }).assembly.directory);
      const missing = [...new Set(read.filter((o) => !exported.get(o.stack)?.has(o.key)).map((o) => `${o.stack}.${o.key}`))];
      assert.deepEqual(missing, [], `${file}: the dry-run prints steps reading outputs no stack exports`);
    });
  }
});
