import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { resourceCounts } from '../../constructs/inventory.js';
import { NLB_MAX_LISTENERS } from '../../lib/plan/index.js';
import { cleanupApps, synthPlatform, tenantsPlan } from './helpers.js';
import { MAX_RESOURCES_PER_TEMPLATE, templatesOf } from './inventory-check.js';
import { App } from 'aws-cdk-lib';
import { MailPlatformStack } from '../../stacks/mail-platform-stack.js';
import { cdkJsonContext } from '../../constructs/shared/cdk-context.js';

after(cleanupApps);

describe('quotas at 500 tenants (the dedicated port space is full)', () => {
  const plan = tenantsPlan(500);

  test('GIVEN 500 tenants WHEN the primary is synthesized THEN no template exceeds 500 resources and no NLB 50 listeners', () => {
    // The primary is the larger region (health checks, drills, provider); DR uses the same constructs.
    const s = synthPlatform({ ...plan, regions: { primary: plan.regions!.primary } }, { validation: false });
    const counts = resourceCounts(templatesOf(s.assembly));
    assert.ok(counts[0]!.resources <= MAX_RESOURCES_PER_TEMPLATE, `${counts[0]!.name}: ${counts[0]!.resources}`);
    assert.equal(counts.length, 1 + plan.nlbShards.length);
    for (const shard of plan.nlbShards) assert.ok(shard.listeners.length <= NLB_MAX_LISTENERS);
    console.log(`# 500 tenants: largest template ${counts[0]!.name} ${counts[0]!.resources} resources, ${counts.length} templates, ${s.seconds.toFixed(1)} s`);
  });

  test('fails when a plan claims more listeners on one NLB than AWS allows', () => {
    const broken = { ...plan, nlbShards: [{ ...plan.nlbShards[0]!, listeners: plan.listeners.slice(0, 51).map((l) => l.name) }] };
    const app = new App({ context: cdkJsonContext(), builtinCloudFormationValidation: false });
    assert.throws(() => new MailPlatformStack(app, 'X', { plan: broken, regionRole: 'primary' }), /NLB shard 0 has 51 listeners, over 50/);
  });
});
