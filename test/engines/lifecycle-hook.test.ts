/**
 * The mail group's lifecycle hooks in CDK, Terraform and Pulumi, checked against their producer-consumer
 * pairs: the hook names the rendered node files complete (the launch hook in common.sh's signal_launch,
 * the terminate hook in the script the drain timer's service runs), and the node role that must be allowed
 * to complete them. A launch hook the node cannot name or may not complete would ABANDON every mail node
 * after the heartbeat; none would put a node without storage in service. Without the terminate hook a
 * scaled-in or replaced node would die with its sessions and still be in the mail tier's record.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { DRAIN, STORAGE_WAIT } from '../../lib/render/node-layout.js';
import { MAIL_DRAIN_SECONDS } from '../../lib/plan/reload.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { cdkJsonContext } from '../../constructs/shared/cdk-context.js';
import { addPlatformStacks } from '../../stacks/app.js';
import { loadSpec } from '../../lib/spec/index.js';

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);
const mailFiles = nodeFiles(plan, 'mail', 'primary');

/** The script a rendered unit of the mail node files runs (its ExecStart), as a node-files path. */
function scriptOfUnit(unit: string): string {
  const text = mailFiles.find((f) => f.path === `systemd/${unit}`)?.content;
  assert.ok(text, `the mail node files carry ${unit}`);
  const exec = /^ExecStart=\S*\/(bootstrap\/\S+)/m.exec(text)?.[1];
  assert.ok(exec, `${unit} runs a bootstrap script`);
  return exec;
}

/** Hook names a rendered script completes, with the result it gives (a literal, or "$1"). */
function completedIn(path: string): { name: string; result: string }[] {
  const text = mailFiles.find((f) => f.path === path)?.content ?? '';
  return [...text.matchAll(/complete-lifecycle-action --lifecycle-hook-name (\S+)[^\n]*(?:\\\n[^\n]*)*?--lifecycle-action-result ([^\s;]+)/g)].map((m) => ({ name: m[1]!, result: m[2]! }));
}

/** The hook the node completes once it serves: the one common.sh's signal_launch completes (mail.sh calls it). */
function launchHookTheNodeCompletes(): string {
  assert.match(mailFiles.find((f) => f.path === 'bootstrap/mail.sh')!.content, /^signal_launch CONTINUE$/m);
  const names = completedIn('bootstrap/common.sh').map((c) => c.name);
  assert.equal(new Set(names).size, 1, `one launch hook name in the bootstrap, got ${names.join(', ')}`);
  return names[0]!;
}

/** The hook the node completes when it is drained: the one the drain timer's service script completes with CONTINUE. */
function terminateHookTheNodeCompletes(): string {
  assert.match(mailFiles.find((f) => f.path === 'bootstrap/mail.sh')!.content, /^systemctl enable --now mailfleet-drain\.timer$/m, 'the bootstrap starts the drain timer');
  assert.match(mailFiles.find((f) => f.path === 'systemd/mailfleet-drain.timer')?.content ?? '', /^\[Timer\]$/m);
  const done = completedIn(scriptOfUnit('mailfleet-drain.service'));
  assert.equal(done.length, 1, `the drain script completes one hook: ${JSON.stringify(done)}`);
  assert.equal(done[0]!.result, 'CONTINUE');
  return done[0]!.name;
}

interface Hook { name: string; transition: string; heartbeat: number; result: string }

/** Everything drain.sh may take: one poll, each bounded step, the settle wait, every completion try and its pause. */
const DRAIN_BUDGET =
  DRAIN.pollSeconds + DRAIN.completeTimeoutSeconds + DRAIN.withdrawTimeoutSeconds + MAIL_DRAIN_SECONDS + DRAIN.stopTimeoutSeconds +
  DRAIN.completeTries * (2 * DRAIN.completeTimeoutSeconds + 5);

function assertHooks(hooks: Hook[] | undefined, label: string): void {
  assert.equal(hooks?.length, 2, `${label}: a launch and a terminate hook on the mail group: ${JSON.stringify(hooks)}`);
  const launch = hooks!.find((h) => h.transition === 'autoscaling:EC2_INSTANCE_LAUNCHING');
  assert.ok(launch, `${label}: a launch hook`);
  assert.equal(launch.name, launchHookTheNodeCompletes(), `${label}: the launch hook the node completes`);
  assert.equal(launch.result, 'ABANDON', `${label}: a node that never signals is not put in service`);
  assert.ok(launch.heartbeat > STORAGE_WAIT.tries * STORAGE_WAIT.intervalSeconds, `${label}: the hook outlasts the node's wait for storage`);
  const terminate = hooks!.find((h) => h.transition === 'autoscaling:EC2_INSTANCE_TERMINATING');
  assert.ok(terminate, `${label}: a terminate hook`);
  assert.equal(terminate.name, terminateHookTheNodeCompletes(), `${label}: the terminate hook the drain completes`);
  assert.equal(terminate.result, 'CONTINUE', `${label}: a node that never completes (already gone) is terminated anyway`);
  assert.ok(terminate.heartbeat > DRAIN_BUDGET, `${label}: the hook outlasts the whole drain (${DRAIN_BUDGET} s)`);
}

function actionsOf(policyJson: string): string[] {
  return (JSON.parse(policyJson) as { Statement: { Action: string | string[] }[] }).Statement.flatMap((s) => s.Action);
}

const NODE_ACTIONS = ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth', 'autoscaling:DescribeAutoScalingInstances'];

describe('mail lifecycle hooks (launch and terminate): CDK, Terraform and Pulumi against the rendered node files', () => {
  it('terraform: the mail group has the hooks the node completes, no other group has one, and the mail role may complete it', () => {
    const r = terraformJson(plan).resource as Record<string, Record<string, Record<string, unknown>>>;
    const groups = r.aws_autoscaling_group!;
    const mail = Object.entries(groups).filter(([k]) => k.endsWith('-mail'));
    assert.equal(mail.length, 1);
    const hooks = (mail[0]![1].initial_lifecycle_hook as Record<string, unknown>[] | undefined)?.map((h) => ({
      name: h.name as string, transition: h.lifecycle_transition as string, heartbeat: Number(h.heartbeat_timeout), result: h.default_result as string,
    }));
    assertHooks(hooks, 'terraform');
    for (const [k, g] of Object.entries(groups)) if (!k.endsWith('-mail')) assert.equal(g.initial_lifecycle_hook, undefined, k);
    const policy = Object.entries(r.aws_iam_role_policy!).find(([k]) => k.endsWith('role-mail-policy'))![1].policy as string;
    for (const a of NODE_ACTIONS) assert.ok(actionsOf(policy).includes(a), `terraform mail role: ${a}`);
  });

  it('pulumi: the mail group has the hooks the node completes, no other group has one, and the mail role may complete it', async () => {
    const regs = await registrationsOf(plan);
    const groups = regs.filter((x) => x.type === 'aws:autoscaling/group:Group');
    const mail = groups.filter((g) => g.name.endsWith('-mail'));
    assert.equal(mail.length, 1);
    const hooks = (mail[0]!.inputs.initialLifecycleHooks as Record<string, unknown>[] | undefined)?.map((h) => ({
      name: h.name as string, transition: h.lifecycleTransition as string, heartbeat: Number(h.heartbeatTimeout), result: h.defaultResult as string,
    }));
    assertHooks(hooks, 'pulumi');
    for (const g of groups) if (!g.name.endsWith('-mail')) assert.equal(g.inputs.initialLifecycleHooks, undefined, g.name);
    const policy = regs.find((x) => x.type === 'aws:iam/rolePolicy:RolePolicy' && x.name.endsWith('-mail-node'))!.inputs.policy as string;
    for (const a of NODE_ACTIONS) assert.ok(actionsOf(policy).includes(a), `pulumi mail role: ${a}`);
  });

  it('cdk: the mail group has the hooks the node completes, no other group has one, and the mail role may complete them', () => {
    const out = mkdtempSync(join(tmpdir(), 'mf-hooks-cdk-'));
    try {
      const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true }, outdir: out });
      addPlatformStacks(app, plan);
      type Res = { Type: string; Properties: Record<string, unknown> };
      const resources = app.synth().stacks.flatMap((st) => Object.entries((st.template as { Resources: Record<string, Res> }).Resources));
      const hooks = resources.filter(([, r]) => r.Type === 'AWS::AutoScaling::LifecycleHook');
      const groupsHooked = new Set(hooks.map(([, r]) => JSON.stringify(r.Properties.AutoScalingGroupName)));
      assert.equal(groupsHooked.size, 1, `hooks on one group only: ${[...groupsHooked].join(', ')}`);
      const [groupRef] = [...groupsHooked];
      const group = resources.find(([id]) => JSON.stringify({ Ref: id }) === groupRef)?.[1];
      const tags = (group?.Properties.Tags as { Key: string; Value: string }[] | undefined) ?? [];
      assert.ok(tags.some((t) => t.Key === 'mailfleet:role' && t.Value === 'mail'), `the hooked group is the mail group: ${groupRef}`);
      assertHooks(
        hooks.map(([, r]) => ({
          name: r.Properties.LifecycleHookName as string, transition: r.Properties.LifecycleTransition as string,
          heartbeat: Number(r.Properties.HeartbeatTimeout), result: r.Properties.DefaultResult as string,
        })),
        'cdk',
      );
      const actions = resources
        .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
        .flatMap(([, r]) => ((r.Properties.PolicyDocument as { Statement: { Action: string | string[] }[] }).Statement).flatMap((st) => st.Action));
      for (const a of NODE_ACTIONS) assert.ok(actions.includes(a), `cdk: ${a}`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
