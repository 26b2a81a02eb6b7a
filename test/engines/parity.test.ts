/**
 * Parity: the same spec through AWS CDK, Terraform (cdktf) and Pulumi gives the same inventory — kinds and
 * counts, listener ports, security-group rules, record names, bootstrap hashes — the rules and names are the
 * platform model's, and the kinds the plan lists match it.
 * Each engine synthesizes each spec once.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapText } from '../../engines/bootstrap.js';
import { synthCdk } from '../../engines/cdk.js';
import { cloudFormationInventory } from '../../engines/extract/cloudformation.js';
import { pulumiInventory } from '../../engines/extract/pulumi.js';
import { terraformInventory } from '../../engines/extract/terraform.js';
import { diffFromPlan, diffInventories, modelNetwork, sha256, type EngineInventory } from '../../engines/inventory.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../lib/plan/types.js';
import { EXAMPLES, examplePlan } from './helpers.js';

const TARGETS = {
  cdk: async (plan: Plan) => {
    const dir = mkdtempSync(join(tmpdir(), 'mailfleet-cdk-'));
    try {
      return cloudFormationInventory(synthCdk(plan, dir).templates);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  terraform: async (plan: Plan) => terraformInventory(terraformJson(plan)),
  pulumi: async (plan: Plan) => pulumiInventory(await registrationsOf(plan)),
} as const;
type Target = keyof typeof TARGETS;
const NAMES = Object.keys(TARGETS) as Target[];

for (const example of EXAMPLES) {
  describe(`parity: ${example}`, () => {
    const plan = examplePlan(example);
    const inv = new Map<Target, EngineInventory | Error>();
    before(async () => {
      for (const t of NAMES) {
        try {
          inv.set(t, await TARGETS[t](plan));
        } catch (e) {
          inv.set(t, e as Error);
        }
      }
    });
    const get = (t: Target): EngineInventory => {
      const v = inv.get(t);
      if (v instanceof Error) assert.fail(`${t} engine could not synthesize ${example}: ${v.message}`);
      return v!;
    };

    for (const t of NAMES) {
      it(`${t}: kinds, counts and listener ports match the plan`, () => {
        assert.deepEqual(diffFromPlan(plan, get(t), t), []);
      });
    }
    // Read back from each producer's real output: the rules and names the platform model declares, no more, no fewer.
    for (const t of NAMES) {
      it(`${t}: security-group rules and record names are the platform model's (lib/plan/network.ts)`, () => {
        const model = modelNetwork(plan);
        assert.deepEqual(get(t).securityGroupRules, model.securityGroupRules);
        assert.deepEqual(get(t).recordNames, model.recordNames);
      });
    }
    for (const [i, a] of NAMES.entries()) {
      for (const b of NAMES.slice(i + 1)) {
        it(`${a} ≡ ${b}: same kinds, listener ports, security-group rules, record names and bootstrap hashes`, () => {
          assert.deepEqual(diffInventories(get(a), get(b), [a, b]), []);
        });
      }
    }
    for (const t of NAMES) {
      it(`${t}: every node boots with the rendered bootstrap text`, () => {
        const hashes = get(t).bootstrapHashes;
        const regions = plan.regions?.dr ? (['primary', 'dr'] as const) : (['primary'] as const);
        for (const region of regions) {
          for (const role of ['proxy', 'mail'] as const)
            assert.equal(hashes[`${region}/${role}`], sha256(bootstrapText(plan, role, region)), `${t} ${region}/${role}`);
        }
      });
    }
  });
}
