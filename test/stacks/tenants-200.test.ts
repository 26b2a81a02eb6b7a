import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { resourceCounts } from '../../constructs/inventory.js';
import { cleanupApps, examplePlan, synthPlatform } from './helpers.js';
import { assertMatchesPlan, templatesOf } from './inventory-check.js';

after(cleanupApps);

describe('synth of examples/tenants-200.yaml', () => {
  // Resource counting only: CDK's built-in CloudFormation rule check runs in the examples and nag tests.
  const s = synthPlatform(examplePlan('examples/tenants-200.yaml'), { validation: false });
  const templates = templatesOf(s.assembly);

  test('GIVEN 200 dedicated tenants WHEN synthesized THEN every NLB shard is its own nested template and all match the plan', () => {
    // 7 shared + 1200 dedicated listeners; 8 tenants (48 listeners) per NLB, the shared ones on the first.
    assert.equal(s.plan.nlbShards.length, 26);
    assert.equal(templates.length, 2 + 2 * s.plan.nlbShards.length);
    assertMatchesPlan(s.plan, templates);
  });

  test('THEN no template nears the 500-resource quota', () => {
    for (const t of resourceCounts(templates)) assert.ok(t.resources < 400, `${t.name}: ${t.resources}`);
  });
});
