/**
 * Parity of what nodes boot with: the CDK template, the Terraform JSON and the Pulumi registrations give
 * the node roles the same IAM statements and managed policies, an instance profile each, the same SSM
 * parameter names and secrets, and the same FIS drill templates, all translated from one model
 * (lib/plan/node-access.ts, engines/platform.ts). Each engine synthesizes each example once.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthCdk } from '../../engines/cdk.js';
import { cloudFormationBoot, pulumiBoot, terraformBoot, type BootInventory } from '../../engines/extract/boot.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { nodeBoot } from '../../lib/plan/node-access.js';
import type { Plan } from '../../lib/plan/types.js';
import { auditBucketParameter } from '../../lib/render/node-layout.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { EXAMPLES, examplePlan } from './helpers.js';

const TARGETS = {
  cdk: (plan: Plan) => {
    const dir = mkdtempSync(join(tmpdir(), 'mailfleet-cdk-boot-'));
    try {
      return cloudFormationBoot(synthCdk(plan, dir, { validation: false }).templates, { primary: plan.regions?.primary.name, dr: plan.regions?.dr?.name });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  terraform: (plan: Plan) => terraformBoot(terraformJson(plan)),
  pulumi: async (plan: Plan) => pulumiBoot(await registrationsOf(plan)),
} as const;
type Target = keyof typeof TARGETS;
const NAMES = Object.keys(TARGETS) as Target[];
const SECTIONS = ['statements', 'managedPolicies', 'instanceProfiles', 'parameters', 'secrets', 'drills', 'archiveParameters'] as const;

/** primary-dr with the audit journal on: each region gets its own archive (issue 22). */
const AUDIT = 'primary-dr + audit' as const;
const planOf = (example: (typeof EXAMPLES)[number] | typeof AUDIT): Plan =>
  example === AUDIT
    ? buildPlan(parseSpec(JSON.stringify({ ...loadSpec('examples/primary-dr.yaml').spec, audit: { enabled: true } }), 'primary-dr-audit.yaml'))
    : examplePlan(example);

for (const example of [...EXAMPLES, AUDIT]) {
  describe(`boot parity: ${example}`, () => {
    const plan = planOf(example);
    const got = new Map<Target, BootInventory>();
    before(async () => {
      for (const t of NAMES) got.set(t, await TARGETS[t](plan));
    });

    it('every engine gives each node role of the model an instance profile, its statements and its parameters', () => {
      const regions = plan.regions?.dr ? (['primary', 'dr'] as const) : (['primary'] as const);
      for (const t of NAMES) {
        const inv = got.get(t)!;
        for (const region of regions) {
          const boot = nodeBoot(plan, region);
          for (const a of boot.roles) {
            assert.ok(inv.instanceProfiles.includes(`${region} ${a.role}`), `${t}: ${region} ${a.role} has an instance profile`);
            for (const s of a.statements)
              for (const action of s.actions) assert.ok(inv.statements.some((l) => l.startsWith(`${region} ${a.role} ${action} on `)), `${t}: ${region} ${a.role} may ${action}`);
          }
          for (const p of boot.parameters) assert.ok(inv.parameters.includes(`${region} ${p.name}`), `${t}: parameter ${region} ${p.name}`);
        }
        assert.ok(inv.secrets.length > 0, `${t}: secrets`);
        assert.equal(inv.drills.length, plan.regions?.dr ? 3 : 0, `${t}: FIS drill templates`);
      }
    });

    if (plan.spec.audit.enabled)
      it('every engine tells each region\'s mail nodes their own region\'s archive bucket and lets them add journal objects (and nothing else) to it', () => {
        const name = auditBucketParameter(plan);
        for (const t of NAMES) {
          const inv = got.get(t)!;
          // One Object Lock bucket per region, named in that region's parameter.
          assert.deepEqual(inv.archiveParameters, [`dr ${name} -> object-lock bucket in dr`, `primary ${name} -> object-lock bucket in primary`], t);
          for (const region of ['primary', 'dr'])
            assert.deepEqual(
              inv.statements.filter((l) => l.startsWith(`${region} mail s3:PutObject`) || l.startsWith(`${region} mail kms:`)),
              [`${region} mail kms:GenerateDataKey on kms-key`, `${region} mail s3:PutObject on s3-object journal/*`],
              `${t}: ${region}`,
            );
          // Only the mail nodes write the journal.
          assert.deepEqual(inv.statements.filter((l) => / (proxy|storage|ldap) (s3:PutObject|kms:)/.test(l)), [], t);
        }
      });

    for (const section of SECTIONS)
      for (const [i, a] of NAMES.entries())
        for (const b of NAMES.slice(i + 1))
          it(`${a} ≡ ${b}: ${section}`, () => {
            assert.deepEqual(got.get(b)![section], got.get(a)![section]);
          });
  });
}
