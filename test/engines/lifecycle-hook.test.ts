/**
 * The mail group's launch lifecycle hook in Terraform and Pulumi, checked against its producer-consumer
 * pair: the hook name the rendered node bootstrap completes (common.sh's complete-lifecycle-action), and
 * the node role that must be allowed to complete it. A hook the node cannot name or may not complete
 * would ABANDON every mail node after the heartbeat; no hook at all would put a node without storage in
 * service. (The CDK side is guarded in test/constructs/mail-server-fleet.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { STORAGE_WAIT } from '../../lib/render/node-layout.js';
import { loadSpec } from '../../lib/spec/index.js';

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);

/** The hook name as the mail node's bootstrap completes it: read from the rendered scripts. */
function hookNameTheNodeCompletes(): string {
  const names = nodeFiles(plan, 'mail', 'primary')
    .flatMap((f) => [...f.content.matchAll(/complete-lifecycle-action --lifecycle-hook-name (\S+)/g)].map((m) => m[1]!));
  assert.equal(new Set(names).size, 1, `one hook name in the bootstrap, got ${names.join(', ')}`);
  return names[0]!;
}

interface Hook { name: string; transition: string; heartbeat: number; result: string }

function assertHook(hooks: Hook[] | undefined, label: string): void {
  assert.equal(hooks?.length, 1, `${label}: one launch hook on the mail group`);
  const h = hooks![0]!;
  assert.equal(h.name, hookNameTheNodeCompletes(), `${label}: the hook the node completes`);
  assert.equal(h.transition, 'autoscaling:EC2_INSTANCE_LAUNCHING');
  assert.equal(h.result, 'ABANDON', `${label}: a node that never signals is not put in service`);
  assert.ok(h.heartbeat > STORAGE_WAIT.tries * STORAGE_WAIT.intervalSeconds, `${label}: the hook outlasts the node's wait for storage`);
}

function actionsOf(policyJson: string): string[] {
  return (JSON.parse(policyJson) as { Statement: { Action: string | string[] }[] }).Statement.flatMap((s) => s.Action);
}

const NODE_ACTIONS = ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth'];

describe('mail launch lifecycle hook: Terraform and Pulumi against the rendered bootstrap', () => {
  it('terraform: the mail group has the hook the node completes, no other group has one, and the mail role may complete it', () => {
    const r = terraformJson(plan).resource as Record<string, Record<string, Record<string, unknown>>>;
    const groups = r.aws_autoscaling_group!;
    const mail = Object.entries(groups).filter(([k]) => k.endsWith('-mail'));
    assert.equal(mail.length, 1);
    const hooks = (mail[0]![1].initial_lifecycle_hook as Record<string, unknown>[] | undefined)?.map((h) => ({
      name: h.name as string, transition: h.lifecycle_transition as string, heartbeat: Number(h.heartbeat_timeout), result: h.default_result as string,
    }));
    assertHook(hooks, 'terraform');
    for (const [k, g] of Object.entries(groups)) if (!k.endsWith('-mail')) assert.equal(g.initial_lifecycle_hook, undefined, k);
    const policy = Object.entries(r.aws_iam_role_policy!).find(([k]) => k.endsWith('role-mail-policy'))![1].policy as string;
    for (const a of NODE_ACTIONS) assert.ok(actionsOf(policy).includes(a), `terraform mail role: ${a}`);
  });

  it('pulumi: the mail group has the hook the node completes, no other group has one, and the mail role may complete it', async () => {
    const regs = await registrationsOf(plan);
    const groups = regs.filter((x) => x.type === 'aws:autoscaling/group:Group');
    const mail = groups.filter((g) => g.name.endsWith('-mail'));
    assert.equal(mail.length, 1);
    const hooks = (mail[0]!.inputs.initialLifecycleHooks as Record<string, unknown>[] | undefined)?.map((h) => ({
      name: h.name as string, transition: h.lifecycleTransition as string, heartbeat: Number(h.heartbeatTimeout), result: h.defaultResult as string,
    }));
    assertHook(hooks, 'pulumi');
    for (const g of groups) if (!g.name.endsWith('-mail')) assert.equal(g.inputs.initialLifecycleHooks, undefined, g.name);
    const policy = regs.find((x) => x.type === 'aws:iam/rolePolicy:RolePolicy' && x.name.endsWith('-mail-node'))!.inputs.policy as string;
    for (const a of NODE_ACTIONS) assert.ok(actionsOf(policy).includes(a), `pulumi mail role: ${a}`);
  });
});
