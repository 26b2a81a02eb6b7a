/**
 * Lifecycle: Terraform and Pulumi honour the spec's regions.<region>.terminationProtection on the storage and
 * LDAP instances, as the CDK stacks do (DisableApiTermination): protected by default, destroyable when asked.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';

const base = () => loadSpec('examples/single-region.yaml').spec;
const protectedPlan = (): Plan => buildPlan(base());
const unprotectedPlan = (): Plan => {
  const spec = base();
  return buildPlan(parseSpec(JSON.stringify({ ...spec, regions: { ...spec.regions, primary: { ...spec.regions!.primary, terminationProtection: false } } }), 'x.yaml'));
};

describe('termination protection: Terraform and Pulumi follow the spec', () => {
  for (const [label, plan, want] of [
    ['default (protected)', protectedPlan, true],
    ['terminationProtection: false', unprotectedPlan, false],
  ] as const) {
    it(`terraform, ${label}: every storage and LDAP instance has disable_api_termination ${want}`, () => {
      const instances = Object.values((terraformJson(plan()).resource as Record<string, Record<string, Record<string, unknown>>>).aws_instance ?? {});
      assert.ok(instances.length >= 5, `${instances.length} instances`);
      for (const i of instances) assert.equal(i.disable_api_termination, want);
    });
    it(`pulumi, ${label}: every storage and LDAP instance has disableApiTermination ${want}`, async () => {
      const instances = (await registrationsOf(plan())).filter((r) => r.type === 'aws:ec2/instance:Instance');
      assert.ok(instances.length >= 5, `${instances.length} instances`);
      for (const i of instances) assert.equal(i.inputs.disableApiTermination, want);
    });
  }
});
