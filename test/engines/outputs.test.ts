/** Every engine exports exactly the outputs the platform model declares (lib/plan/outputs.ts), under the same names. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import { buildPlatform } from '../../engines/pulumi/platform.js';
import { recordingMocks } from '../../engines/pulumi/mocks.js';
import { platformModel } from '../../engines/platform.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { qualifiedOutputName } from '../../lib/plan/outputs.js';
import { EXAMPLES, examplePlan } from './helpers.js';

describe('outputs: one list for every engine', () => {
  for (const name of EXAMPLES) {
    const plan = examplePlan(name);
    const declared = platformModel(plan).regions.flatMap((r) => r.outputs.map((o) => qualifiedOutputName(r.role, o.name)));

    it(`${name}: terraform outputs are the model's, region-qualified`, () => {
      const tf = terraformJson(plan) as { output?: Record<string, unknown> };
      assert.deepEqual(Object.keys(tf.output ?? {}).sort(), [...declared].sort());
    });

    it(`${name}: the pulumi component exports the model's outputs, each resolved`, async () => {
      const { mocks } = recordingMocks();
      await pulumi.runtime.setMocks(mocks, 'mailfleet', plan.platform, false);
      const platform = buildPlatform(plan, { managedAdPassword: 'mock-password-only-for-tests' });
      assert.deepEqual(Object.keys(platform.outputs).sort(), [...declared].sort());
      const values = await Promise.all(Object.values(platform.outputs).map((o) => new Promise((resolve) => o.apply(resolve))));
      assert.ok(values.every((v) => typeof v === 'string' && v !== ''), JSON.stringify(values));
      // Every registration done before the next test swaps the mocks.
      await Promise.all([platform, ...platform.resources].map((r) => new Promise((resolve) => r.urn.apply(resolve))));
    });
  }

  it('primary-dr: the drill outputs exist in the model (health checks, FIS region outage, storage node 1)', () => {
    const model = platformModel(examplePlan('primary-dr'));
    const primary = model.regions.find((r) => r.role === 'primary')!.outputs.map((o) => o.name);
    for (const n of ['VpcId', 'Nlb0Dns', 'HealthCheckId0', 'Drill2', 'StorageNode1', 'StorageHost']) assert.ok(primary.includes(n), n);
  });
});
