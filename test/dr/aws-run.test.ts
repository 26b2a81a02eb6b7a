import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildAwsDrillPlan } from '../../lib/dr/aws-plan.js';
import { runAwsDrill, type ClientFactory, type ProbeTarget } from '../../lib/dr/aws-run.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cdkStackOutputs } from '../../lib/dr/check-outputs.js';
import { cleanupApps, synthPlatform } from '../stacks/helpers.js';

interface Sent {
  service: string;
  region: string;
  command: string;
  input: Record<string, unknown>;
}

after(cleanupApps);
type Resource = { Type: string; Properties: Record<string, unknown> };
interface Template { Resources: Record<string, Resource>; Outputs?: Record<string, { Value: unknown }> }
/** `cdk synth` of primary-dr.yaml: the producer the stand-ins answer from, not the drill's own lists. */
let assemblyDir: string | undefined;
const assembly = () => (assemblyDir ??= synthPlatform(buildPlan(loadSpec('examples/primary-dr.yaml').spec), { validation: false }).assembly.directory);
let synthesized: Map<string, Set<string>> | undefined;
/** Output keys per stack. */
function stackOutputs(): Map<string, Set<string>> {
  synthesized ??= cdkStackOutputs(assembly());
  return synthesized;
}
/** Each stack's synthesized template, by stack name. */
function templates(): Map<string, Template> {
  const manifest = JSON.parse(readFileSync(join(assembly(), 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; properties?: { templateFile?: string; stackName?: string } }>;
  };
  const out = new Map<string, Template>();
  for (const [id, a] of Object.entries(manifest.artifacts))
    if (a.type === 'aws:cloudformation:stack' && a.properties?.templateFile)
      out.set(a.properties.stackName ?? id, JSON.parse(readFileSync(join(assembly(), a.properties.templateFile), 'utf8')) as Template);
  return out;
}

/** A deployed value as the stand-ins name it: `<stack>:<logical id>` for a Ref, `<stack>:<logical id>.<attribute>` for a GetAtt. */
function deployed(stack: string, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => deployed(stack, x));
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string') return `${stack}:${o.Ref}`;
    if (Array.isArray(o['Fn::GetAtt'])) return `${stack}:${(o['Fn::GetAtt'] as string[]).join('.')}`;
    if (Array.isArray(o['Fn::Join'])) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((x) => String(deployed(stack, x))).join(sep);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, deployed(stack, x)]));
  }
  return v;
}

/**
 * The experiment FIS starts from a template id (an output value `<stack>:<output key>`): the synthesized
 * template's actions, their parameters resolved as deployed, in FIS's response shape.
 */
function experimentOf(templateId: string): { actions: Record<string, { actionId: string; parameters: Record<string, string>; state: { status: string } }> } {
  const [stack, key] = templateId.split(':') as [string, string];
  const t = templates().get(stack)!;
  const ref = (t.Outputs?.[key]?.Value as { Ref?: string } | undefined)?.Ref;
  const tpl = ref ? t.Resources[ref] : undefined;
  assert.equal(tpl?.Type, 'AWS::FIS::ExperimentTemplate', `${templateId} is a FIS template output`);
  const actions = tpl!.Properties.Actions as Record<string, { ActionId: string; Parameters?: Record<string, unknown> }>;
  return {
    actions: Object.fromEntries(
      Object.entries(actions).map(([name, a]) => [
        name,
        { actionId: a.ActionId, parameters: deployed(stack, a.Parameters ?? {}) as Record<string, string>, state: { status: 'pending' } },
      ]),
    ),
  };
}

/**
 * SDK clients stubbed at the boundary: `send(command)` records the command and answers from a script;
 * DescribeStacks answers with the outputs of the synthesized templates (`<stack>:<key>` as each value).
 */
function stubClients(opts: { failSsmComment?: RegExp; dropOutput?: string; experimentStatus?: string; automationStatus?: string } = {}) {
  const sent: Sent[] = [];
  const polls = new Map<string, number>();
  let cmdN = 0;
  const comments = new Map<string, string>();
  const factory: ClientFactory = (service, region) => ({
    async send(command: object) {
      const name = command.constructor.name;
      const input = (command as { input: Record<string, unknown> }).input;
      sent.push({ service, region, command: name, input });
      switch (name) {
        case 'DescribeStacksCommand': {
          const stack = String(input.StackName);
          const keys = [...(stackOutputs().get(stack) ?? [])].filter((k) => k !== opts.dropOutput);
          return {
            Stacks: [
              {
                StackName: stack,
                StackStatus: 'UPDATE_COMPLETE',
                Outputs: keys.map((k) => ({ OutputKey: k, OutputValue: `${stack}:${k}` })),
              },
            ],
          };
        }
        case 'SendCommandCommand': {
          const id = `cmd-${++cmdN}`;
          comments.set(id, String(input.Comment));
          return { Command: { CommandId: id } };
        }
        case 'GetCommandInvocationCommand': {
          const id = String(input.CommandId);
          const n = (polls.get(id) ?? 0) + 1;
          polls.set(id, n);
          if (n === 1) return { Status: 'InProgress' };
          if (opts.failSsmComment?.test(comments.get(id)!))
            return { Status: 'Failed', StandardErrorContent: 'volume busy' };
          return { Status: 'Success' };
        }
        case 'StartExperimentCommand':
          return { experiment: { id: 'EXP123', state: { status: 'initiating' }, ...experimentOf(String(input.experimentTemplateId)) } };
        case 'GetExperimentCommand':
          return { experiment: { id: 'EXP123', state: { status: opts.experimentStatus ?? 'running' } } };
        case 'StartAutomationExecutionCommand':
          return { AutomationExecutionId: 'auto-1' };
        case 'GetAutomationExecutionCommand': {
          const n = (polls.get('auto-1') ?? 0) + 1;
          polls.set('auto-1', n);
          return { AutomationExecution: { AutomationExecutionStatus: n === 1 ? 'InProgress' : (opts.automationStatus ?? 'Success'), FailureMessage: 'AccessDenied' } };
        }
        default:
          return {};
      }
    },
  });
  return { sent, factory };
}

function fakeTime() {
  let t = Date.parse('2026-01-01T00:00:00Z');
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

const drillOf = (file: string) => buildAwsDrillPlan(buildPlan(loadSpec(file).spec));

describe('AWS drill executor (stubbed SDK clients)', () => {
  it('GIVEN primary-dr.yaml WHEN run THEN it sends the SDK commands in runbook order with resolved ids, then fails back', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { sent, factory } = stubClients();
    const probed: ProbeTarget[] = [];
    const report = await runAwsDrill(drill, {
      clients: factory,
      drillId: 'drill-test',
      pollMs: 1000,
      ...fakeTime(),
      probe: async (p) => {
        probed.push(p);
        return { ok: true, detail: 'ok' };
      },
    });
    assert.equal(report.pass, true, report.reasons.join('; '));
    const seq = sent.map((s) => `${s.region} ${s.command}`);
    assert.deepEqual(seq, [
      'eu-west-1 DescribeStacksCommand',
      'eu-central-1 DescribeStacksCommand',
      'eu-west-1 SendCommandCommand', // checkpoint
      'eu-west-1 GetCommandInvocationCommand',
      'eu-west-1 GetCommandInvocationCommand',
      'eu-west-1 StartExperimentCommand',
      'eu-west-1 GetExperimentCommand',
      'eu-central-1 SendCommandCommand', // promote DR volume
      'eu-central-1 GetCommandInvocationCommand',
      'eu-central-1 GetCommandInvocationCommand',
      'us-east-1 UpdateHealthCheckCommand',
      // fail-back
      'eu-west-1 StopExperimentCommand',
      'eu-west-1 StartAutomationExecutionCommand', // resume the proxy groups' processes
      'eu-west-1 GetAutomationExecutionCommand',
      'eu-west-1 GetAutomationExecutionCommand',
      'eu-central-1 SendCommandCommand',
      'eu-central-1 GetCommandInvocationCommand',
      'eu-central-1 GetCommandInvocationCommand',
      'us-east-1 UpdateHealthCheckCommand',
      'eu-central-1 SendCommandCommand',
      'eu-central-1 GetCommandInvocationCommand',
      'eu-central-1 GetCommandInvocationCommand',
      'eu-west-1 SendCommandCommand',
      'eu-west-1 GetCommandInvocationCommand',
      'eu-west-1 GetCommandInvocationCommand',
    ]);
    // Placeholders resolved from stack outputs and earlier results.
    const inverts = sent.filter((s) => s.command === 'UpdateHealthCheckCommand');
    assert.deepEqual(inverts[0]!.input, {
      HealthCheckId: 'globex-mail-primary:HealthCheckId0',
      Inverted: true,
    });
    assert.deepEqual(inverts[1]!.input, {
      HealthCheckId: 'globex-mail-primary:HealthCheckId0',
      Inverted: false,
    });
    const start = sent.find((s) => s.command === 'StartExperimentCommand')!;
    assert.deepEqual(start.input, {
      experimentTemplateId: 'globex-mail-primary:Drill2',
      clientToken: 'drill-test',
      tags: { 'mailfleet:drill': 'drill-test' },
    });
    assert.deepEqual(sent.find((s) => s.command === 'StopExperimentCommand')!.input, { id: 'EXP123' });
    const cp = sent.find((s) => s.command === 'SendCommandCommand')!;
    assert.deepEqual(cp.input.InstanceIds, ['globex-mail-primary:StorageNode1']);
    assert.match(
      JSON.stringify(cp.input.Parameters),
      /globex-mail-dr:StorageHost::mail config checkpoint now/,
    );
    // Probes ran against resolved names: DNS to the DR NLB, then SMTP + IMAP; after fail-back, the primary NLB.
    assert.deepEqual(probed.map((p) => `${p.kind} ${p.expect ?? p.port}`).slice(0, 3), [
      'dns-switch globex-mail-dr:Nlb0Dns',
      'smtp-banner 25',
      'imap-login 143',
    ]);
    assert.equal(probed[3]!.expect, 'globex-mail-primary:Nlb0Dns');
    // RPO = checkpoint duration (one 1 s poll), RTO from the fault to the last DR probe.
    assert.equal(report.rpo.seconds, 1);
    assert.equal(report.rto.seconds, 1); // the DR volume promotion's one poll; probes passed at once
    assert.equal(report.failback.ok, true);
    assert.deepEqual(
      report.steps.map((s) => s.status),
      Array(7).fill('ok'),
    );
  });

  it('fails when a step fails: the run stops and the fail-back of the begun steps runs as rollback', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { sent, factory } = stubClients({ failSsmComment: /promote DR volume/ });
    const report = await runAwsDrill(drill, {
      clients: factory,
      drillId: 'drill-fail',
      pollMs: 1000,
      ...fakeTime(),
      probe: async () => ({ ok: true, detail: 'ok' }),
    });
    assert.equal(report.pass, false);
    assert.match(report.reasons[0]!, /step storage-promote failed: .*Failed: volume busy/);
    assert.deepEqual(
      report.steps.map((s) => `${s.id}:${s.status}`),
      ['preflight:ok', 'storage-checkpoint:ok', 'fault:ok', 'storage-promote:failed'],
    );
    // Never switched DNS, so never switched it back.
    assert.equal(sent.filter((s) => s.command === 'UpdateHealthCheckCommand').length, 0);
    assert.deepEqual(
      report.failback.steps.map((s) => s.id),
      ['failback-primary', 'failback-storage-copy', 'failback-storage-tail'],
    );
    const promoteIdx = sent.findIndex(
      (s) => s.command === 'SendCommandCommand' && /promote/.test(String(s.input.Comment)),
    );
    assert.equal(sent[promoteIdx + 3]!.command, 'StopExperimentCommand');
    assert.equal(report.rto.seconds, null);
  });

  it('fails in preflight when a stack lacks an output the drill needs, before any change', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { sent, factory } = stubClients({ dropOutput: 'HealthCheckId0' });
    const report = await runAwsDrill(drill, {
      clients: factory,
      drillId: 'x',
      ...fakeTime(),
      probe: async () => ({ ok: true, detail: '' }),
    });
    assert.equal(report.pass, false);
    assert.match(report.reasons[0]!, /globex-mail-primary lacks outputs the drill needs: .*HealthCheckId0/);
    assert.deepEqual(
      sent.map((s) => s.command),
      ['DescribeStacksCommand'],
    );
    assert.equal(report.failback.ran, false);
  });

  it('fails when a DR probe never passes within the RTO target', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { factory } = stubClients();
    const report = await runAwsDrill(drill, {
      clients: factory,
      drillId: 'x',
      pollMs: 30_000,
      failback: false,
      ...fakeTime(),
      probe: async (p) =>
        p.kind === 'imap-login' ? { ok: false, detail: 'NO [UNAVAILABLE]' } : { ok: true, detail: '' },
    });
    assert.equal(report.pass, false);
    assert.match(
      report.reasons[0]!,
      /step verify failed: probe imap-login mail\.globex\.example:143: not done after 300 s \(NO \[UNAVAILABLE\]\)/,
    );
    // A failed run rolls back even with failback: false.
    assert.ok(report.failback.steps.some((s) => s.id === 'failback-dns'));
  });

  /** The proxy groups of the primary template, as deployed (`<stack>:<logical id>`), and the processes role's ARN. */
  function heldByTemplate(): { groups: string[]; role: string } {
    const stack = 'globex-mail-primary';
    const t = templates().get(stack)!;
    const groups = Object.entries(t.Resources)
      .filter(([, r]) => r.Type === 'AWS::AutoScaling::AutoScalingGroup')
      .filter(([, r]) => (r.Properties.Tags as { Key: string; Value: string }[]).some((x) => x.Key === 'mailfleet:role' && x.Value === 'proxy'))
      .map(([id]) => `${stack}:${id}`);
    const role = Object.entries(t.Resources).find(([, r]) => r.Type === 'AWS::IAM::Role' && JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('ssm.amazonaws.com'))!;
    return { groups, role: `${stack}:${role[0]}.Arn` };
  }

  it('GIVEN the fail-back stops the experiment early (its resume action cancelled) WHEN the drill fails back THEN it resumes the held processes itself, on the groups and with the role the deployed template names, and waits for it', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { sent, factory } = stubClients();
    const report = await runAwsDrill(drill, { clients: factory, drillId: 'drill-resume', pollMs: 1000, ...fakeTime(), probe: async () => ({ ok: true, detail: '' }) });
    assert.equal(report.failback.ok, true, JSON.stringify(report.failback.steps));
    const stop = sent.findIndex((s) => s.command === 'StopExperimentCommand');
    const resume = sent.findIndex((s) => s.command === 'StartAutomationExecutionCommand');
    assert.ok(stop >= 0 && resume === stop + 1, 'resumed right after the stop, before the data is copied back');
    const held = heldByTemplate();
    assert.ok(held.groups.length >= 1);
    assert.deepEqual(sent[resume]!.input, {
      DocumentName: 'globex-mail-drill-asg-processes',
      DocumentVersion: '$DEFAULT',
      Parameters: { AutomationAssumeRole: [held.role], AutoScalingGroupNames: held.groups, Action: ['Resume'] },
    });
    assert.equal(sent[resume]!.region, 'eu-west-1');
  });

  it('GIVEN the experiment fails WHEN the fault step stops the run THEN the rollback stops it and resumes the processes', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { sent, factory } = stubClients({ experimentStatus: 'failed' });
    const report = await runAwsDrill(drill, { clients: factory, drillId: 'drill-exp-failed', pollMs: 1000, ...fakeTime(), probe: async () => ({ ok: true, detail: '' }) });
    assert.equal(report.pass, false);
    assert.match(report.reasons[0]!, /step fault failed: FIS experiment EXP123 failed/);
    assert.equal(report.failback.steps[0]?.id, 'failback-primary');
    assert.equal(report.failback.steps[0]?.status, 'ok');
    const resume = sent.find((s) => s.command === 'StartAutomationExecutionCommand');
    assert.deepEqual((resume?.input.Parameters as Record<string, string[]>).Action, ['Resume']);
  });

  it('fails the fail-back when the resume automation fails (the groups would stay suspended)', async () => {
    const drill = drillOf('examples/primary-dr.yaml');
    const { factory } = stubClients({ automationStatus: 'Failed' });
    const report = await runAwsDrill(drill, { clients: factory, drillId: 'drill-resume-failed', pollMs: 1000, ...fakeTime(), probe: async () => ({ ok: true, detail: '' }) });
    assert.equal(report.pass, false);
    assert.equal(report.failback.ok, false);
    assert.match(report.failback.steps[0]!.detail ?? '', /SSM automation auto-1 Failed: AccessDenied/);
    assert.ok(report.reasons.includes('fail-back did not complete'));
  });
});
