import assert from 'node:assert/strict';
import { cdkInventory, resourceCounts, templatesOf, type NamedTemplate } from '../../constructs/inventory.js';
import type { Plan } from '../../lib/plan/index.js';

/** CloudFormation's resource quota per template. */
export const MAX_RESOURCES_PER_TEMPLATE = 500;

/** The synthesized kinds and listener ports match what the plan says, and no template is over quota. */
export function assertMatchesPlan(plan: Plan, templates: readonly NamedTemplate[]): void {
  const inv = new Map(cdkInventory(templates).map((l) => [l.kind, l.count]));
  for (const line of plan.inventory) assert.equal(inv.get(line.kind) ?? 0, line.count, `${line.kind}: plan says ${line.count} (${line.why})`);
  const ports = templates
    .flatMap((t) => Object.values(t.template.Resources ?? {}))
    .filter((r) => r.Type === 'AWS::ElasticLoadBalancingV2::Listener')
    .map((r) => r.Properties!['Port'] as number)
    .sort((a, b) => a - b);
  const regions = plan.regions?.dr ? 2 : 1;
  assert.deepEqual(ports, plan.listeners.flatMap((l) => Array(regions).fill(l.publicPort) as number[]).sort((a, b) => a - b));
  const [largest] = resourceCounts(templates);
  assert.ok(largest!.resources <= MAX_RESOURCES_PER_TEMPLATE, `${largest!.name} has ${largest!.resources} resources`);
}

export { templatesOf };
