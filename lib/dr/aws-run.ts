/**
 * Runs an AWS drill plan (lib/dr/aws-plan.ts) with the AWS SDK. The SDK clients and the probes are
 * injected at the boundary: tests pass objects with a `send(command)` that records, the CLI passes real
 * clients. A failing step stops the run; then, as rollback, the fail-back steps that undo a step that had
 * started run in fail-back order (the same steps a successful drill's fail-back runs).
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateReplicationConfigurationCommand,
  DeleteReplicationConfigurationCommand,
  DescribeReplicationConfigurationsCommand,
  EFSClient,
  UpdateFileSystemProtectionCommand,
} from '@aws-sdk/client-efs';
import {
  FisClient,
  GetExperimentCommand,
  StartExperimentCommand,
  StopExperimentCommand,
} from '@aws-sdk/client-fis';
import { Route53Client, UpdateHealthCheckCommand } from '@aws-sdk/client-route-53';
import {
  GetAutomationExecutionCommand,
  GetCommandInvocationCommand,
  SendCommandCommand,
  SSMClient,
  StartAutomationExecutionCommand,
} from '@aws-sdk/client-ssm';
import { MailfleetError } from '../errors.js';
import {
  failbackFor,
  type AwsCall,
  type AwsDrillPlan,
  type AwsService,
  type DrillStepPart,
  type Probe,
} from './aws-plan.js';
import type { DrillReport, StepRecord } from './report.js';
import { silentProgress, type IProgress } from './progress.js';

/** The one thing the executor needs of an SDK client. */
export interface ISdkClient {
  send(command: object): Promise<unknown>;
}
export type ClientFactory = (service: AwsService, region: string) => ISdkClient;

export interface ProbeTarget {
  readonly kind: Probe['kind'];
  readonly host: string;
  readonly port?: number;
  readonly expect?: string;
}
/** Runs one probe once; resolves with ok=false (never throws) when the check does not pass yet. */
export type ProbeRunner = (probe: ProbeTarget) => Promise<{ ok: boolean; detail: string }>;

type CommandCtor = new (input: never) => object;
const COMMANDS: Readonly<Record<AwsService, Readonly<Record<string, CommandCtor>>>> = {
  cloudformation: { DescribeStacks: DescribeStacksCommand },
  ssm: {
    SendCommand: SendCommandCommand,
    GetCommandInvocation: GetCommandInvocationCommand,
    StartAutomationExecution: StartAutomationExecutionCommand,
    GetAutomationExecution: GetAutomationExecutionCommand,
  },
  fis: {
    StartExperiment: StartExperimentCommand,
    GetExperiment: GetExperimentCommand,
    StopExperiment: StopExperimentCommand,
  },
  route53: { UpdateHealthCheck: UpdateHealthCheckCommand },
  efs: {
    DescribeReplicationConfigurations: DescribeReplicationConfigurationsCommand,
    DeleteReplicationConfiguration: DeleteReplicationConfigurationCommand,
    CreateReplicationConfiguration: CreateReplicationConfigurationCommand,
    UpdateFileSystemProtection: UpdateFileSystemProtectionCommand,
  },
};

export function sdkCommand(service: AwsService, operation: string, input: unknown): object {
  const Ctor = COMMANDS[service][operation];
  if (!Ctor) throw new MailfleetError('INTERNAL', `no SDK command for ${service}:${operation}`);
  return new Ctor(input as never);
}

/** Real SDK clients, one per service and region, with the default credential chain. */
export function defaultClientFactory(): ClientFactory {
  const cache = new Map<string, ISdkClient>();
  return (service, region) => {
    const key = `${service}@${region}`;
    let c = cache.get(key);
    if (!c) {
      const Client = {
        cloudformation: CloudFormationClient,
        ssm: SSMClient,
        fis: FisClient,
        route53: Route53Client,
        efs: EFSClient,
      }[service];
      c = new Client({ region }) as unknown as ISdkClient;
      cache.set(key, c);
    }
    return c;
  };
}

export interface AwsRunOptions {
  readonly clients: ClientFactory;
  readonly probe: ProbeRunner;
  /** Tags the FIS experiment and is its client token. */
  readonly drillId: string;
  /** Poll interval for waits and probes. @default 5000 */
  readonly pollMs?: number;
  /** Run the fail-back after a successful failover. @default true */
  readonly failback?: boolean;
  readonly progress?: IProgress;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const PLACEHOLDER = /<from stack output ([^.>]+)\.([^>]+)>|<from result ([^.>]+)\.([^>]+)>|<drill id>/g;

class RunState {
  readonly outputs = new Map<string, Record<string, string>>();
  readonly results = new Map<string, unknown>();
  constructor(readonly drillId: string) {}

  resolve<T>(value: T): T {
    if (typeof value === 'string') {
      return value.replace(PLACEHOLDER, (m, stack?: string, key?: string, name?: string, path?: string) => {
        if (m === '<drill id>') return this.drillId;
        if (stack !== undefined) {
          const v = this.outputs.get(stack)?.[key!];
          if (v === undefined)
            throw new MailfleetError('PLAN_INVALID', `stack ${stack} has no output ${key}`);
          return v;
        }
        const v = dig(this.results.get(name!), path!);
        if (typeof v !== 'string')
          throw new MailfleetError('INTERNAL', `no ${path} in the result of ${name}`);
        return v;
      }) as T;
    }
    if (Array.isArray(value)) return value.map((v) => this.resolve(v)) as T;
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v)])) as T;
    return value;
  }
}

function dig(o: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (a, k) => (a && typeof a === 'object' ? (a as Record<string, unknown>)[k] : undefined),
      o,
    );
}

export async function runAwsDrill(drill: AwsDrillPlan, opts: AwsRunOptions): Promise<DrillReport> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  const pollMs = opts.pollMs ?? 5000;
  const progress = opts.progress ?? silentProgress;
  const state = new RunState(opts.drillId);
  const started = now();
  const records: StepRecord[] = [];
  let rtoStart: number | undefined;
  let rtoSeconds: number | null = null;
  // Set inside wait callbacks; an object so TypeScript does not narrow it to null.
  const measured: { rpoSeconds: number | null } = { rpoSeconds: null };

  const waitUntil = async (what: string, timeoutSeconds: number, check: () => Promise<string | true>) => {
    const deadline = now() + timeoutSeconds * 1000;
    let last = '';
    for (;;) {
      const r = await check();
      if (r === true) return;
      last = r;
      if (now() >= deadline)
        throw new MailfleetError('INTERNAL', `${what}: not done after ${timeoutSeconds} s (${last})`);
      progress.update(`${what}: ${last}`);
      await sleep(pollMs);
    }
  };

  const call = async (c: AwsCall): Promise<void> => {
    let input = state.resolve(c.input);
    if (c.automationOf) {
      const experiment = state.results.get(c.automationOf.experiment);
      if (experiment === undefined) return; // never started: it suspended nothing
      input = { ...automationInput(experiment, c.automationOf.action, c.automationOf.set), ...input };
    }
    const client = opts.clients(c.service, c.region);
    const started = now();
    const out = await client.send(sdkCommand(c.service, c.operation, input));
    if (c.saveAs) state.results.set(c.saveAs, out);
    if (c.operation === 'DescribeStacks') readStack(drill, state, String(input.StackName), out);
    const w = c.wait;
    if (!w) return;
    if (w.kind === 'ssm-command') {
      const commandId = dig(out, 'Command.CommandId') as string;
      const instance = (input.InstanceIds as string[])[0]!;
      await waitUntil(`${c.service}:${c.operation} on ${instance}`, w.timeoutSeconds, async () => {
        let inv: unknown;
        try {
          inv = await client.send(
            sdkCommand('ssm', 'GetCommandInvocation', { CommandId: commandId, InstanceId: instance }),
          );
        } catch (e) {
          if ((e as { name?: string }).name === 'InvocationDoesNotExist') return 'pending';
          throw e;
        }
        const status = String(dig(inv, 'Status'));
        if (status === 'Success') return true;
        if (['Failed', 'Cancelled', 'TimedOut', 'Cancelling'].includes(status))
          throw new MailfleetError(
            'INTERNAL',
            `SSM command on ${instance} ${status}: ${String(dig(inv, 'StandardErrorContent') ?? '').trim()}`,
          );
        return status;
      });
      // The checkpoint's duration is the replication lag at drill time: the RPO measured.
      if (c.measuresRpo) measured.rpoSeconds = (now() - started) / 1000;
    } else if (w.kind === 'fis-experiment') {
      const id = dig(out, 'experiment.id') as string;
      await waitUntil(`FIS experiment ${id}`, w.timeoutSeconds, async () => {
        const st = String(
          dig(await client.send(sdkCommand('fis', 'GetExperiment', { id })), 'experiment.state.status'),
        );
        if (w.states.includes(st)) return true;
        if (st === 'failed' || st === 'stopped')
          throw new MailfleetError('INTERNAL', `FIS experiment ${id} ${st}`);
        return st;
      });
    } else if (w.kind === 'ssm-automation') {
      const id = dig(out, 'AutomationExecutionId') as string;
      await waitUntil(`SSM automation ${String(input.DocumentName)} (${id})`, w.timeoutSeconds, async () => {
        const ex = await client.send(sdkCommand('ssm', 'GetAutomationExecution', { AutomationExecutionId: id }));
        const status = String(dig(ex, 'AutomationExecution.AutomationExecutionStatus'));
        if (status === 'Success') return true;
        if (['Failed', 'Cancelled', 'TimedOut', 'CompletedWithFailure'].includes(status))
          throw new MailfleetError('INTERNAL', `SSM automation ${id} ${status}: ${String(dig(ex, 'AutomationExecution.FailureMessage') ?? '')}`);
        return status;
      });
    } else if (w.kind === 'efs-replicated') {
      let response = out;
      await waitUntil(`EFS replication of ${String(input.FileSystemId)}`, w.timeoutSeconds, async () => {
        const d = dig(response, 'Replications.0.Destinations.0') as
          { Status?: string; LastReplicatedTimestamp?: Date } | undefined;
        const lag = d?.LastReplicatedTimestamp
          ? (now() - new Date(d.LastReplicatedTimestamp).getTime()) / 1000
          : Infinity;
        if (d?.Status === 'ENABLED' && lag <= w.maxLagSeconds) {
          if (c.measuresRpo) measured.rpoSeconds ??= lag;
          return true;
        }
        response = await client.send(sdkCommand(c.service, c.operation, input));
        return `status ${d?.Status ?? 'none'}, lag ${Number.isFinite(lag) ? lag.toFixed(0) + ' s' : 'unknown'}`;
      });
    }
  };

  const probeAll = async (probes: readonly Probe[], timeoutSeconds: number) => {
    for (const p of probes) {
      const target = state.resolve({ kind: p.kind, host: p.host, port: p.port, expect: p.expect });
      await waitUntil(`probe ${p.kind} ${p.host}${p.port ? ':' + p.port : ''}`, timeoutSeconds, async () => {
        const r = await opts.probe(target);
        return r.ok ? true : r.detail;
      });
    }
  };

  const runPart = async (
    id: string,
    title: string,
    part: DrillStepPart,
    probeTimeout: number,
  ): Promise<StepRecord> => {
    const t0 = now();
    progress.start(title);
    try {
      for (const c of part.calls) {
        try {
          await call(c);
        } catch (e) {
          if (!c.optional) throw e;
        }
      }
      await probeAll(part.probes, probeTimeout);
      const rec: StepRecord = { id, title, status: 'ok', seconds: (now() - t0) / 1000 };
      progress.done(title, true);
      return rec;
    } catch (e) {
      progress.done(title, false);
      return { id, title, status: 'failed', seconds: (now() - t0) / 1000, detail: (e as Error).message };
    }
  };

  let failedAt: string | undefined;
  const begun: string[] = [];
  for (const step of drill.steps) {
    if (step.startsRto) rtoStart = now();
    begun.push(step.id);
    const rec = await runPart(step.id, step.title, step, drill.targets.rtoSeconds);
    records.push(rec);
    if (rec.status === 'failed') {
      failedAt = step.id;
      break;
    }
  }
  if (!failedAt && rtoStart !== undefined) rtoSeconds = (now() - rtoStart) / 1000;

  // Fail-back after success; rollback (the same parts) after a failure.
  const failback: StepRecord[] = [];
  if (failedAt || opts.failback !== false) {
    for (const fb of failbackFor(drill, begun)) {
      const rec = await runPart(fb.id, fb.title, fb, drill.targets.rtoSeconds);
      failback.push(rec);
      if (rec.status === 'failed') break;
    }
  }

  const rpoSeconds = measured.rpoSeconds;
  const reasons: string[] = [];
  if (failedAt) reasons.push(`step ${failedAt} failed: ${records.at(-1)!.detail}`);
  if (rtoSeconds !== null && rtoSeconds > drill.targets.rtoSeconds)
    reasons.push(`RTO ${rtoSeconds.toFixed(1)} s above target ${drill.targets.rtoSeconds} s`);
  if (rpoSeconds !== null && rpoSeconds > drill.targets.rpoSeconds)
    reasons.push(`RPO ${rpoSeconds.toFixed(1)} s above target ${drill.targets.rpoSeconds} s`);
  if (failback.some((r) => r.status === 'failed')) reasons.push('fail-back did not complete');
  return {
    kind: 'aws',
    drillId: opts.drillId,
    platform: drill.platform,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(now()).toISOString(),
    targets: drill.targets,
    rpo: { seconds: rpoSeconds, messages: null },
    rto: { seconds: rtoSeconds },
    lost: null,
    steps: records,
    failback: {
      ran: failback.length > 0,
      ok: failback.length > 0 && failback.every((r) => r.status === 'ok'),
      steps: failback,
    },
    notes: [
      `failover by Route 53 health-check inversion (${drill.primaryRegion} → ${drill.drRegion})`,
      rollbackNote(failedAt),
    ].filter((x): x is string => x !== undefined),
    pass: reasons.length === 0,
    reasons,
  };
}

/**
 * StartAutomationExecution's input for the automation a FIS experiment's action runs
 * (aws:ssm:start-automation-execution): the document from its documentArn
 * (`…:automation-definition/<name>:<version>`), the parameters from its documentParameters (JSON), each
 * value a list as SSM takes them, `set` overriding some.
 */
export function automationInput(experiment: unknown, action: string, set: Readonly<Record<string, string>>): Record<string, unknown> {
  const params = dig(experiment, 'experiment.actions') as Record<string, { parameters?: Record<string, string> }> | undefined;
  const p = params?.[action]?.parameters;
  const doc = /:automation-definition\/([^:]+)(?::(.+))?$/.exec(p?.documentArn ?? '');
  if (!p || !doc)
    throw new MailfleetError('PLAN_INVALID', `the experiment has no automation action ${action} (its template is not the one this drill expects)`);
  const given = JSON.parse(p.documentParameters ?? '{}') as Record<string, string | string[]>;
  const parameters = Object.fromEntries(
    Object.entries({ ...given, ...set }).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : [String(v)]]),
  );
  return { DocumentName: doc[1], ...(doc[2] ? { DocumentVersion: doc[2] } : {}), Parameters: parameters };
}

function rollbackNote(failedAt: string | undefined): string | undefined {
  return failedAt
    ? `run stopped at ${failedAt}; the fail-back steps undoing the steps begun so far ran as rollback`
    : undefined;
}

function readStack(drill: AwsDrillPlan, state: RunState, name: string, response: unknown): void {
  const stack = dig(response, 'Stacks.0') as
    { StackStatus?: string; Outputs?: Array<{ OutputKey?: string; OutputValue?: string }> } | undefined;
  if (!stack) throw new MailfleetError('PLAN_INVALID', `stack ${name} not found`);
  if (!/_COMPLETE$/.test(stack.StackStatus ?? '') || /ROLLBACK|DELETE/.test(stack.StackStatus ?? ''))
    throw new MailfleetError('PLAN_INVALID', `stack ${name} is ${stack.StackStatus}, not deployed`);
  const outputs = Object.fromEntries(
    (stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
  );
  const missing = (drill.requiredOutputs[name] ?? []).filter((k) => !(k in outputs));
  if (missing.length)
    throw new MailfleetError(
      'PLAN_INVALID',
      `stack ${name} lacks outputs the drill needs: ${missing.join(', ')}`,
    );
  state.outputs.set(name, outputs);
}
