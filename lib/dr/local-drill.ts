/**
 * `mailfleet dr drill --local`: two local platforms (primary and DR: own folders, data and ports), rsync
 * replication between them, a steady SMTP stream, SIGKILL of the primary, promotion of DR, a check
 * through DR IMAP that every acknowledged message is there, RPO/RTO measured, and fail-back.
 *
 * The "DNS" of the local drill is endpoints.json in the work folder: the stream client re-reads it for
 * every connection, the way MTAs re-resolve MX names, and promotion rewrites it (write + rename).
 *
 * Modes (docs/dr.md):
 * - checkpoint (default): the stream pauses, one replication cycle completes, then SIGKILL: zero
 *   acknowledged messages may be lost, as after the AWS drill's geo-replication checkpoint. The RPO the
 *   replication would have had under load is measured at the pause and reported beside it.
 * - hard: SIGKILL with the stream running and replication cut at the same instant: losses are possible
 *   (at most the messages acknowledged after the last whole replication cycle) and are reported.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yaml from 'js-yaml';
import nodemailer from 'nodemailer';
import { MailfleetError } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { loadSpec } from '../spec/index.js';
import { MiniImapClient } from './mini-imap.js';
import { readSmtpBanner } from './mini-smtp.js';
import { silentProgress, type IProgress } from './progress.js';
import { Replicator } from './replicate.js';
import type { DrillReport, StepRecord } from './report.js';

export type LocalDrillMode = 'checkpoint' | 'hard';

export interface LocalDrillOptions {
  /** Base spec (examples/dr-local.yaml): domains, limits and dr targets; ports and folders are the drill's. */
  readonly config: string;
  readonly drillId: string;
  /** @default 'checkpoint' */
  readonly mode?: LocalDrillMode;
  /** @default true */
  readonly failback?: boolean;
  /** How long mail streams to the primary before the failure. @default 3 */
  readonly streamSeconds?: number;
  /** How long mail keeps streaming to DR after it serves. @default 1 */
  readonly afterSeconds?: number;
  /** Replication cycle pause. @default 250 */
  readonly replicationIntervalMs?: number;
  /** Work folder (kept); default a temp folder removed at the end. */
  readonly workDir?: string;
  readonly progress?: IProgress;
  /** Command that runs `mailfleet` (the daemon is `<cmd> serve -c <spec>`). @default node --import tsx bin/mailfleet.ts */
  readonly mailfleetCommand?: readonly string[];
}

/** Password of the drill mailbox (drill@<first domain>), created in the primary's users file. */
export const DRILL_PASSWORD = 'drill-password';
const PASSWORD = DRILL_PASSWORD;
const SENDER = 'stream@sender.example';

interface Ack {
  readonly n: number;
  readonly messageId: string;
  readonly at: number;
  readonly via: 'primary' | 'dr';
}

interface Endpoints {
  readonly active: 'primary' | 'dr';
  readonly smtp: { host: string; port: number };
  readonly imap: { host: string; port: number };
}

interface Site {
  readonly name: 'primary' | 'dr';
  readonly dir: string;
  readonly spec: string;
  readonly endpoints: Endpoints;
  child?: ChildProcess;
  stderr: string;
}

/** bin/mailfleet.ts runs under tsx: the local drill needs the sources, i.e. a checkout (docs/dr.md). */
const repoRoot = packageRoot();

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** Ports for one platform: distinct, and far enough below 65535 that port + internalOffset stays valid. */
async function pickPorts(taken: Set<number>, offset: number): Promise<Record<string, number>> {
  const names = [
    'smtp',
    'submission',
    'submissions',
    'imap',
    'imaps',
    'pop3',
    'pop3s',
    'admin',
    'haproxyStats',
  ];
  const out: Record<string, number> = {};
  for (const n of names) {
    for (let i = 0; ; i++) {
      if (i > 200) throw new MailfleetError('INTERNAL', 'could not find free local ports for the drill');
      const p = await freePort();
      if (p + offset > 65535 || taken.has(p) || taken.has(p + offset) || taken.has(p - offset)) continue;
      taken.add(p);
      out[n] = p;
      break;
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function runLocalDrill(opts: LocalDrillOptions): Promise<DrillReport> {
  const mode = opts.mode ?? 'checkpoint';
  const progress = opts.progress ?? silentProgress;
  const cmd = opts.mailfleetCommand ?? [
    process.execPath,
    '--import',
    'tsx',
    join(repoRoot, 'bin/mailfleet.ts'),
  ];
  const { spec: base, file: specFile } = loadSpecWithPath(opts.config);
  const targets = { rpoSeconds: base.dr?.rpoSeconds ?? 60, rtoSeconds: base.dr?.rtoSeconds ?? 300 };
  const pilotLight = (base.dr?.mode ?? 'pilot-light') === 'pilot-light';
  const domain = base.domains[0]!.name;
  const user = `drill@${domain}`;
  const work = opts.workDir ?? mkdtempSync(join(tmpdir(), 'mf-drill-'));
  const endpointsFile = join(work, 'endpoints.json');
  const started = Date.now();
  const steps: StepRecord[] = [];
  const failbackSteps: StepRecord[] = [];
  const notes: string[] = [];
  const reasons: string[] = [];
  const sites: Site[] = [];
  let stream: Stream | undefined;
  let replicator: Replicator | undefined;

  const step = async <T>(id: string, title: string, fn: () => Promise<T>, into = steps): Promise<T> => {
    const t0 = Date.now();
    progress.start(title);
    try {
      const r = await fn();
      into.push({ id, title, status: 'ok', seconds: (Date.now() - t0) / 1000 });
      progress.done(title, true);
      return r;
    } catch (e) {
      into.push({
        id,
        title,
        status: 'failed',
        seconds: (Date.now() - t0) / 1000,
        detail: (e as Error).message,
      });
      progress.done(title, false, (e as Error).message);
      throw e;
    }
  };

  const startSite = async (s: Site) => {
    s.stderr = '';
    const child = spawn(cmd[0]!, [...cmd.slice(1), 'serve', '-c', s.spec], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, MAILFLEET_LOG_LEVEL: process.env.MAILFLEET_LOG_LEVEL ?? 'warn' },
    });
    child.stderr!.on('data', (d: Buffer) => (s.stderr = (s.stderr + d.toString()).slice(-4000)));
    s.child = child;
  };
  const waitServing = async (s: Site, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (s.child?.exitCode !== null && s.child?.exitCode !== undefined)
        throw new MailfleetError(
          'INTERNAL',
          `${s.name} daemon exited (${s.child.exitCode}): ${s.stderr.trim().slice(-600)}`,
        );
      try {
        const banner = await readSmtpBanner(s.endpoints.smtp.host, s.endpoints.smtp.port, 2000);
        if (!banner.startsWith('220')) throw new Error(banner);
        const n = await imapMessageIds(s.endpoints.imap, user);
        return n;
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline)
        throw new MailfleetError(
          'INTERNAL',
          `${s.name} did not serve SMTP and IMAP in ${timeoutMs} ms: ${last}`,
        );
      progress.update(`waiting for ${s.name} to serve SMTP and IMAP (last: ${last})`);
      await sleep(50);
    }
  };
  const kill = async (s: Site, signal: NodeJS.Signals) => {
    const c = s.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await Promise.race([exited, sleep(5000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  const switchTo = (s: Site) => {
    writeFileSync(`${endpointsFile}.tmp`, JSON.stringify(s.endpoints, null, 2));
    renameSync(`${endpointsFile}.tmp`, endpointsFile);
  };

  let report: DrillReport | undefined;
  try {
    // 1. Two platforms: own folder, spec, users file, data folder and ports.
    await step('prepare', 'Prepare primary and DR platforms (own folders, data and free ports)', async () => {
      checkCommands(cmd);
      const taken = new Set<number>();
      const raw = yaml.load(readFileSync(specFile, 'utf8')) as Record<string, unknown>;
      for (const name of ['primary', 'dr'] as const) {
        const dir = join(work, name);
        mkdirSync(join(dir, 'data'), { recursive: true });
        const ports = await pickPorts(taken, 10000);
        const local = {
          ...((raw.local as object) ?? {}),
          dataDir: join(dir, 'data'),
          haproxy: 'off',
          ports: { ...ports, internalOffset: 10000 },
        };
        const spec = {
          ...raw,
          platform: { ...(raw.platform as object), name: `${base.platform.name}-${name}`.slice(0, 31) },
          directory: { kind: 'static', file: 'users.yaml' },
          local,
        };
        delete (spec as Record<string, unknown>).$schema;
        writeFileSync(join(dir, 'mailfleet.yaml'), yaml.dump(spec));
        sites.push({
          name,
          dir,
          spec: join(dir, 'mailfleet.yaml'),
          endpoints: {
            active: name,
            smtp: { host: '127.0.0.1', port: ports.smtp! },
            imap: { host: '127.0.0.1', port: ports.imap! },
          },
          stderr: '',
        });
      }
      // The directory lives on the primary; DR gets replicated copies (read-only until promotion).
      const users = join(sites[0]!.dir, 'users.yaml');
      writeFileSync(users, 'users: []\naliases: {}\n');
      const add = spawnSync(
        cmd[0]!,
        [...cmd.slice(1), 'users', 'add', user, '--password-stdin', '--file', users],
        {
          cwd: repoRoot,
          input: `${PASSWORD}\n`,
          encoding: 'utf8',
        },
      );
      if (add.status !== 0)
        throw new MailfleetError('INTERNAL', `mailfleet users add failed: ${add.stderr.trim()}`);
      copyFileSync(users, join(sites[1]!.dir, 'users.yaml'));
      chmodSync(join(sites[1]!.dir, 'users.yaml'), 0o444);
      switchTo(sites[0]!);
    });
    const [primary, dr] = sites as [Site, Site];

    await step('start-primary', 'Start the primary daemon', async () => {
      await startSite(primary);
      await waitServing(primary, 30_000);
    });
    if (!pilotLight)
      await step('start-dr', 'Start the DR daemon (warm standby)', async () => void (await startSite(dr)));

    replicator = new Replicator({
      source: primary.dir,
      target: dr.dir,
      trees: ['data'],
      files: ['users.yaml'],
      exclude: ['/run/', '*.pid', '*.sock'],
      intervalMs: opts.replicationIntervalMs ?? 250,
    });
    const repl = replicator;
    repl.start();
    stream = new Stream(endpointsFile, user, opts.drillId);
    const s = stream;
    s.start();

    await step('stream', `Stream mail to the primary for ${opts.streamSeconds ?? 3} s`, async () => {
      await sleep((opts.streamSeconds ?? 3) * 1000);
      if (s.acks.length === 0)
        throw new MailfleetError('INTERNAL', `the primary acknowledged no message: ${s.lastError}`);
    });

    // RPO under load: what a failure right now would put at risk.
    const wmLoad = repl.watermark ?? started;
    const atLoad = Date.now();
    const underLoad = {
      seconds: (atLoad - wmLoad) / 1000,
      messages: s.acks.filter((a) => a.at > wmLoad).length,
    };
    notes.push(
      `RPO under load (stream running, replication every ${repl.intervalMs} ms): ${underLoad.messages} messages / ${underLoad.seconds.toFixed(2)} s not yet on DR at ${new Date(atLoad).toISOString()}`,
    );

    let killAt = 0;
    if (mode === 'checkpoint') {
      await step(
        'checkpoint',
        'Checkpoint: pause the stream, wait for one whole replication cycle',
        async () => {
          await s.pause();
          await repl.stop();
          await repl.checkpoint();
        },
      );
    }
    await step('fail', 'Fail the primary: SIGKILL (its storage is gone with it)', async () => {
      killAt = Date.now();
      primary.child!.kill('SIGKILL');
      await repl.cut(); // the region's disks are unreachable from now on
      s.resume();
    });
    const watermark = repl.watermark ?? started;
    const ackedBefore = s.acks.filter((a) => a.at <= killAt);
    const atRisk = ackedBefore.filter((a) => a.at > watermark);

    let rtoAt = 0;
    await step(
      'promote',
      `Promote DR: directory writable, limits carried over, ${pilotLight ? 'start daemon, ' : ''}switch endpoints`,
      async () => {
        chmodSync(join(dr.dir, 'users.yaml'), 0o644);
        if (pilotLight) await startSite(dr);
        switchTo(dr);
        await waitServing(dr, targets.rtoSeconds * 3 * 1000);
        rtoAt = Date.now();
      },
    );
    const rto = (rtoAt - killAt) / 1000;

    await step('stream-dr', `Stream keeps going to DR for ${opts.afterSeconds ?? 1} s`, async () => {
      await sleep((opts.afterSeconds ?? 1) * 1000);
      await s.stop();
    });
    const toDr = s.acks.filter((a) => a.via === 'dr');

    const inDr = await step('verify', 'Verify every acknowledged message through DR IMAP', async () =>
      imapMessageIds(dr.endpoints.imap, user),
    );
    const drIds = new Set(inDr.map((m) => m.messageId));
    const lost = ackedBefore.filter((a) => !drIds.has(a.messageId));
    const missingDr = toDr.filter((a) => !drIds.has(a.messageId));
    if (missingDr.length) reasons.push(`${missingDr.length} messages accepted by DR are not readable on DR`);

    // Fail-back: DR → primary, primary back, endpoints back, primary checked.
    let fb: { primaryMessages: number; duplicates: number; missing: number } | undefined;
    if (opts.failback !== false) {
      fb = await step(
        'failback',
        'Fail back: stop DR, copy DR → primary, start primary, switch endpoints back, check the primary',
        async () => {
          await kill(dr, 'SIGTERM');
          const back = new Replicator({
            source: dr.dir,
            target: primary.dir,
            trees: ['data'],
            files: ['users.yaml'],
            exclude: ['/run/', '*.pid', '*.sock'],
          });
          await back.checkpoint();
          await startSite(primary);
          switchTo(primary);
          await waitServing(primary, 30_000);
          const onPrimary = await imapMessageIds(primary.endpoints.imap, user);
          const ids = onPrimary.map((m) => m.messageId);
          const expected = new Set([...drIds]);
          const uids = onPrimary.map((m) => m.uid);
          const saneUids = uids.every((u, i) => i === 0 || u > uids[i - 1]!);
          if (!saneUids)
            throw new MailfleetError('INTERNAL', 'primary UIDs are not strictly ascending after fail-back');
          return {
            primaryMessages: onPrimary.length,
            duplicates: ids.length - new Set(ids).size,
            missing: [...expected].filter((x) => !ids.includes(x)).length,
          };
        },
        failbackSteps,
      );
      // Hard mode: the message in flight at the kill may have been stored without its 250 reaching the
      // sender, which then sends it again to DR (SMTP is at-least-once): one duplicate is correct there.
      const allowedDuplicates = mode === 'hard' ? 1 : 0;
      if (fb.missing || fb.duplicates > allowedDuplicates)
        reasons.push(`fail-back: primary has ${fb.missing} missing and ${fb.duplicates} duplicated messages`);
    }

    const rpoSeconds = (killAt - watermark) / 1000;
    if (rpoSeconds > targets.rpoSeconds)
      reasons.push(`RPO ${rpoSeconds.toFixed(2)} s above target ${targets.rpoSeconds} s`);
    if (rto > targets.rtoSeconds)
      reasons.push(`RTO ${rto.toFixed(2)} s above target ${targets.rtoSeconds} s`);
    if (lost.length > atRisk.length)
      reasons.push(
        `${lost.length} messages lost but only ${atRisk.length} were at risk: replication lost data it had copied`,
      );
    if (mode === 'checkpoint' && lost.length > 0)
      reasons.push(`${lost.length} acknowledged messages lost after a checkpoint`);
    if (lost.length > 0)
      notes.push(
        `lost: ${lost
          .map((a) => a.messageId)
          .slice(0, 10)
          .join(' ')}${lost.length > 10 ? ' …' : ''}`,
      );
    notes.push(
      `mode ${mode}: ${mode === 'checkpoint' ? 'stream paused and one replication cycle completed before the SIGKILL (zero loss expected)' : 'SIGKILL with the stream running; replication cut at the same instant (losses up to the RPO count possible)'}`,
      'RPO seconds = failure time − start of the last whole replication cycle (DR holds everything acknowledged before it); RTO = failure until DR answers SMTP and IMAP LOGIN + FETCH through the switched endpoints',
      `"DNS" = ${'endpoints.json'}, re-read by the stream client for every connection`,
    );
    report = {
      kind: 'local',
      drillId: opts.drillId,
      platform: base.platform.name,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date().toISOString(),
      targets,
      rpo: { seconds: rpoSeconds, messages: atRisk.length },
      rto: { seconds: rto },
      lost: lost.length,
      messages: {
        sent: s.attempts,
        acknowledged: ackedBefore.length,
        atRisk: atRisk.length,
        readableInDr: ackedBefore.length - lost.length,
        lost: lost.length,
        acceptedByDr: toDr.length,
      },
      replication: {
        mechanism: 'rsync (messages, then mailbox index; never tmp/)',
        intervalMs: repl.intervalMs,
        cycles: repl.completedCycles.length,
        mode,
      },
      steps,
      failback: {
        ran: fb !== undefined,
        ok: fb !== undefined && !reasons.some((r) => r.startsWith('fail-back')),
        steps: failbackSteps,
        ...fb,
      },
      notes,
      pass: reasons.length === 0,
      reasons,
    };
    return report;
  } catch (e) {
    const failed = [...steps, ...failbackSteps].find((x) => x.status === 'failed');
    return {
      kind: 'local',
      drillId: opts.drillId,
      platform: base.platform.name,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date().toISOString(),
      targets,
      rpo: { seconds: null, messages: null },
      rto: { seconds: null },
      lost: null,
      steps,
      failback: { ran: failbackSteps.length > 0, ok: false, steps: failbackSteps },
      notes: [
        ...notes,
        ...sites
          .filter((x) => x.stderr.trim())
          .map((x) => `${x.name} stderr: ${x.stderr.trim().slice(-500)}`),
      ],
      pass: false,
      reasons: [`step ${failed?.id ?? '?'} failed: ${(e as Error).message}`],
    };
  } finally {
    await stream?.stop();
    await replicator?.cut();
    for (const x of sites) await kill(x, 'SIGTERM');
    if (!opts.workDir) rmSync(work, { recursive: true, force: true });
  }
}

function loadSpecWithPath(config: string) {
  const { spec } = loadSpec(config);
  return { spec, file: resolve(config) };
}

/** The drill drives the daemon and the users file through the CLI: say clearly when a command is missing. */
function checkCommands(cmd: readonly string[]): void {
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), '--help'], { cwd: repoRoot, encoding: 'utf8' });
  const missing = ['serve', 'users'].filter((c) => !new RegExp(`^\\s+${c}\\b`, 'm').test(r.stdout ?? ''));
  if (missing.length)
    throw new MailfleetError(
      'INTERNAL',
      `the local drill needs the CLI commands ${missing.map((m) => `'mailfleet ${m}'`).join(' and ')} (the local platform), which this build lacks`,
    );
}

async function imapMessageIds(ep: { host: string; port: number }, user: string) {
  const c = await MiniImapClient.connect({ host: ep.host, port: ep.port, timeoutMs: 5000 });
  try {
    await c.login(user, PASSWORD);
    const exists = await c.select('INBOX');
    return exists > 0 ? await c.messageIds() : [];
  } finally {
    await c.logout();
  }
}

/**
 * The steady mail stream: one sender, one message at a time, a new connection per message to whatever
 * endpoints.json names. A message counts as acknowledged on the 250 reply to its DATA; a refused or
 * broken attempt is retried (the sender keeps it queued, as an MTA does).
 */
class Stream {
  readonly acks: Ack[] = [];
  attempts = 0;
  lastError = '';
  private running = false;
  private paused = false;
  private loop: Promise<void> | undefined;
  private n = 0;

  constructor(
    private readonly endpointsFile: string,
    private readonly to: string,
    private readonly drillId: string,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops sending new messages; resolves when the one in flight is answered. */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.inFlight) await sleep(5);
  }

  resume(): void {
    this.paused = false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private inFlight = false;

  private async run(): Promise<void> {
    let current = ++this.n;
    while (this.running) {
      if (this.paused) {
        await sleep(10);
        continue;
      }
      const ep = JSON.parse(readFileSync(this.endpointsFile, 'utf8')) as Endpoints;
      const messageId = `<${current}.${this.drillId}@drill.mailfleet>`;
      this.inFlight = true;
      this.attempts++;
      try {
        const transport = nodemailer.createTransport({
          host: ep.smtp.host,
          port: ep.smtp.port,
          secure: false,
          ignoreTLS: true,
          connectionTimeout: 1000,
          greetingTimeout: 1000,
          socketTimeout: 3000,
        });
        await transport.sendMail({
          from: SENDER,
          to: this.to,
          subject: `drill ${this.drillId} #${current}`,
          messageId,
          text: `DR drill message ${current}\n`,
        });
        this.acks.push({ n: current, messageId, at: Date.now(), via: ep.active });
        current = ++this.n;
      } catch (e) {
        this.lastError = (e as Error).message;
        this.inFlight = false;
        await sleep(20);
      } finally {
        this.inFlight = false;
      }
    }
  }
}
