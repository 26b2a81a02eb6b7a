import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildAwsDrillPlan } from '../../lib/dr/aws-plan.js';
import { runAwsDrill, type ClientFactory, type ProbeTarget } from '../../lib/dr/aws-run.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { cdkStackOutputs } from '../../lib/dr/check-outputs.js';
import { cleanupApps, synthPlatform } from '../stacks/helpers.js';

interface Sent {
  service: string;
  region: string;
  command: string;
  input: Record<string, unknown>;
}

after(cleanupApps);
/** Output keys per stack of primary-dr.yaml as `cdk synth` writes them: the producer, not the drill's own list. */
let synthesized: Map<string, Set<string>> | undefined;
function stackOutputs(): Map<string, Set<string>> {
  synthesized ??= cdkStackOutputs(synthPlatform(buildPlan(loadSpec('examples/primary-dr.yaml').spec), { validation: false }).assembly.directory);
  return synthesized;
}

/**
 * SDK clients stubbed at the boundary: `send(command)` records the command and answers from a script;
 * DescribeStacks answers with the outputs of the synthesized templates (`<stack>:<key>` as each value).
 */
function stubClients(opts: { failSsmComment?: RegExp; dropOutput?: string } = {}) {
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
          return { experiment: { id: 'EXP123', state: { status: 'initiating' } } };
        case 'GetExperimentCommand':
          return { experiment: { id: 'EXP123', state: { status: 'running' } } };
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
});
