/**
 * bench/imap-contention: IMAP session latency while deliveries stream into the same mailboxes (issue 9
 * follow-up), on local disk, mailfleetd against Dovecot in one run.
 *
 *   npx tsx bench/imap-contention/run.ts [--seconds 15] [--rate 50] [--senders 4] [--clients 4]
 *                                        [--seed 1000] [--label current] [--no-dovecot] [--gluster]
 *
 * --gluster puts mailfleetd's mail root on a real GlusterFS replica-3-arbiter volume (test/harness;
 * run it under `flock /tmp/mailfleet-gluster.lock`, one volume per machine) and skips Dovecot.
 *
 * One in-process daemon (users alice/bob@example.com, carol@example.org); each mailbox seeded with
 * --seed messages. M IMAP clients loop LOGIN / SELECT INBOX / FETCH 1:* (FLAGS) / LOGOUT, each on one
 * of the three mailboxes; a session's time is connect to LOGOUT reply. Phases, --seconds each:
 *   mailfleetd idle        no deliveries (the baseline)
 *   mailfleetd smtp        N SMTP senders at --rate messages/s in total, round-robin over the mailboxes
 *   mailfleetd maildir     the same rate written straight into new/ (tmp/ then rename), no SMTP
 *   mailfleetd x2 smtp     a second daemon (`mailfleet serve` child) on the same mail root; sessions and
 *                          deliveries alternate between the two, so the folder lock is contended
 *   dovecot idle           the same seed in Dovecot's own Maildirs
 *   dovecot maildir        the same Maildir writer (Dovecot has no SMTP; mailfleetd's SMTP ends the same way)
 * Prints p50/p95/max per phase, the delivery rate reached, and ratios under load / idle and
 * mailfleetd / dovecot; merges the run under --label into bench/results/imap-contention.json.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { maildirPath } from '../../lib/store/maildir/paths.js';
import { symlinkSync } from 'node:fs';
import { configFor, startInProcess, startProcess, tempDir } from '../../test/ops/fixture.js';
import { deliver } from '../../test/faults/fleet-client.js';
import { DOVECOT_UID, startDovecot, type RunningDovecot } from '../lib/dovecot.js';
import { writePlot } from '../lib/plot.js';
import { ImapClient } from '../lib/imap-client.js';
import { cheapUsersYaml } from '../lib/users.js';
import { startGlusterVolume, type GlusterVolume } from '../../test/harness/gluster.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rate: { type: 'string', default: '50' },
    senders: { type: 'string', default: '4' },
    clients: { type: 'string', default: '4' },
    seed: { type: 'string', default: '1000' },
    label: { type: 'string', default: 'current' },
    'no-dovecot': { type: 'boolean', default: false },
    gluster: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const SENDERS = Number(values.senders);
const CLIENTS = Number(values.clients);
const SEED = Number(values.seed);
const USERS = ['alice@example.com', 'bob@example.com', 'carol@example.org'];
const PASSWORD = 'password';
const COMMAND_TIMEOUT_MS = 20_000;
const BODY = 'contention bench body line\r\n'.repeat(60);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


const STEPS = ['connect', 'LOGIN', 'SELECT', 'FETCH', 'LOGOUT'] as const;

/** One session; returns the time of each step (connect + greeting, then each command), in ms. */
async function imapSession(port: number, user: string): Promise<number[]> {
  const marks = [performance.now()];
  const c = await ImapClient.open(port, COMMAND_TIMEOUT_MS);
  marks.push(performance.now());
  try {
    for (const [tag, line] of [['a', `LOGIN ${user} ${PASSWORD}`], ['b', 'SELECT INBOX'], ['c', 'FETCH 1:* (FLAGS)'], ['d', 'LOGOUT']] as const) {
      await c.cmd(tag, line);
      marks.push(performance.now());
    }
  } finally {
    c.close();
  }
  return marks.slice(1).map((m, i) => m - marks[i]!);
}

let unique = 0;
function message(to: string, subject: string): string {
  return `From: bench@example.net\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@bench>\r\n\r\n${BODY}`;
}

/** Writes one message the way an MDA does: tmp/, then rename into new/. */
function maildirDeliver(maildir: string, to: string, uid?: number): void {
  const name = `${Math.floor(Date.now() / 1000)}.B${process.pid}Q${++unique}.bench`;
  const tmp = join(maildir, 'tmp', name);
  writeFileSync(tmp, message(to, `md-${unique}`));
  if (uid !== undefined) chownSync(tmp, uid, uid);
  renameSync(tmp, join(maildir, 'new', name));
}

function makeMaildir(maildir: string, uid?: number): void {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, d), { recursive: true, mode: 0o700 });
  if (uid === undefined) return;
  for (const d of [join(maildir, '..', '..'), join(maildir, '..'), maildir, ...['cur', 'new', 'tmp'].map((d) => join(maildir, d))]) chownSync(d, uid, uid);
}

interface PhaseResult {
  readonly phase: string;
  readonly sessions: number;
  readonly errors: number;
  readonly errorSamples: string[];
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  /** p50 of each step (connect, LOGIN, SELECT, FETCH, LOGOUT), ms. */
  readonly stepP50Ms: Record<string, number>;
  readonly deliveriesPerSecond: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** Runs the IMAP loop for SECONDS with an optional delivery stream (`deliverOne(i)` at RATE/s). */
async function phase(name: string, ports: number | number[], deliverOne?: (i: number) => Promise<boolean>): Promise<PhaseResult> {
  const t0 = Date.now();
  const end = t0 + SECONDS * 1000;
  const times: number[] = [];
  const steps: number[][] = STEPS.map(() => []);
  const errors: string[] = [];
  let delivered = 0;
  let slot = 0;
  const client = async (w: number) => {
    for (; Date.now() < end; w += CLIENTS) {
      const started = Date.now();
      try {
        const st = await imapSession(typeof ports === 'number' ? ports : ports[w % ports.length]!, USERS[w % USERS.length]!);
        times.push(Date.now() - started);
        st.forEach((ms, i) => steps[i]!.push(ms));
      } catch (e) {
        errors.push((e as Error).message.slice(0, 80));
      }
    }
  };
  const sender = async () => {
    while (deliverOne) {
      const k = slot++;
      const at = t0 + (k * 1000) / RATE;
      if (at >= end) return;
      if (at > Date.now()) await sleep(at - Date.now());
      try {
        if (await deliverOne(k)) delivered++;
        else errors.push('delivery refused');
      } catch (e) {
        errors.push(`delivery ${(e as Error).message.slice(0, 60)}`);
      }
    }
  };
  await Promise.all([...Array.from({ length: CLIENTS }, (_, i) => client(i)), ...Array.from({ length: deliverOne ? SENDERS : 0 }, sender)]);
  const elapsed = (Date.now() - t0) / 1000;
  const sorted = times.sort((a, b) => a - b);
  const r: PhaseResult = {
    phase: name,
    sessions: times.length,
    errors: errors.length,
    errorSamples: [...new Set(errors)].slice(0, 5),
    p50Ms: pct(sorted, 0.5),
    p95Ms: pct(sorted, 0.95),
    maxMs: sorted.at(-1) ?? 0,
    stepP50Ms: Object.fromEntries(STEPS.map((n, i) => [n, Math.round(pct(steps[i]!.sort((a, b) => a - b), 0.5) * 10) / 10])),
    deliveriesPerSecond: Math.round((delivered / elapsed) * 10) / 10,
  };
  console.log(
    `${name.padEnd(20)} ${String(r.sessions).padStart(5)} sessions  p50 ${String(r.p50Ms).padStart(6)} ms  p95 ${String(r.p95Ms).padStart(6)} ms  max ${String(r.maxMs).padStart(6)} ms  ` +
      `${r.deliveriesPerSecond} deliveries/s  ${r.errors} errors${r.errors ? ` ${JSON.stringify(r.errorSamples)}` : ''}`,
  );
  console.log(`${''.padEnd(20)} step p50: ${STEPS.map((n) => `${n} ${r.stepP50Ms[n]}`).join(', ')} ms`);
  return r;
}

/** One unmeasured session per mailbox so every phase starts with built indexes. */
async function warm(port: number): Promise<void> {
  for (const u of USERS) await imapSession(port, u);
}


async function main(): Promise<void> {
  const t = await tempDir('mf-bench-contention-');
  const t2 = await tempDir('mf-bench-contention-node2-');
  writeFileSync(join(t.dir, 'users.yaml'), cheapUsersYaml(USERS, PASSWORD));
  writeFileSync(join(t2.dir, 'users.yaml'), cheapUsersYaml(USERS, PASSWORD));
  const results: PhaseResult[] = [];
  let dovecot: RunningDovecot | undefined;
  let daemon: Awaited<ReturnType<typeof startInProcess>> | undefined;
  let node2: Awaited<ReturnType<typeof startProcess>> | undefined;
  let vol: GlusterVolume | undefined;
  try {
    const unlimited = { perIp: 100_000, perUser: 100_000, perUserIp: 100_000, listenerConnections: 100_000, sourceConnections: 100_000 };
    const config = configFor({
      limits: { imap: unlimited, smtp: unlimited },
      rates: { messagesPerMinutePerIp: 1_000_000, messagesPerMinutePerSender: 1_000_000, messagesPerMinutePerDomain: 1_000_000, recipientsPerHourPerSender: 1_000_000 },
    });
    let mailRoot = join(t.dir, 'mail');
    if (values.gluster) {
      vol = await startGlusterVolume('mfcontention');
      mailRoot = join(vol.mountPoint, 'mail');
      mkdirSync(mailRoot);
      symlinkSync(mailRoot, join(t.dir, 'mail'));
    }
    for (const u of USERS) {
      const md = maildirPath(mailRoot, u);
      makeMaildir(md);
      for (let i = 0; i < SEED; i++) maildirDeliver(md, u);
    }
    daemon = await startInProcess(t.dir, config);
    const imapPort = daemon.port('imap');
    const smtpPort = daemon.port('smtp');
    await warm(imapPort);
    results.push(await phase('mailfleetd idle', imapPort));
    results.push(
      await phase('mailfleetd smtp', imapPort, async (i) => {
        const to = USERS[i % USERS.length]!;
        const r = await deliver(smtpPort, to, `smtp-${i}`, BODY);
        return r.startsWith('250');
      }),
    );
    results.push(
      await phase('mailfleetd maildir', imapPort, async (i) => {
        const to = USERS[i % USERS.length]!;
        maildirDeliver(maildirPath(mailRoot, to), to);
        return true;
      }),
    );
    // Two daemons on one mail root (a second `mailfleet serve` process), as in bench/soak but on local
    // disk: sessions and deliveries alternate between them, so the folder lock is contended across processes.
    symlinkSync(mailRoot, join(t2.dir, 'mail'));
    node2 = await startProcess(t2.dir, config);
    const imapPorts = [imapPort, node2.port('imap')];
    const smtpPorts = [smtpPort, node2.port('smtp')];
    await warm(imapPorts[1]!);
    results.push(
      await phase('mailfleetd x2 smtp', imapPorts, async (i) => {
        const to = USERS[i % USERS.length]!;
        const r = await deliver(smtpPorts[i % 2]!, to, `smtp2-${i}`, BODY);
        return r.startsWith('250');
      }),
    );
    await node2.stop();
    node2 = undefined;
    await daemon.stop();
    daemon = undefined;

    if (!values['no-dovecot'] && !values.gluster) {
      const dir = join(t.dir, 'dovecot');
      mkdirSync(dir);
      chmodSync(t.dir, 0o755); // Dovecot's auth and mail processes (other users) walk through it
      dovecot = await startDovecot({ dir, users: USERS.map((address) => ({ address, password: PASSWORD })) });
      const dv = dovecot;
      for (const u of USERS) {
        makeMaildir(dv.maildirOf(u), DOVECOT_UID);
        for (let i = 0; i < SEED; i++) maildirDeliver(dv.maildirOf(u), u, DOVECOT_UID);
      }
      await warm(dv.port);
      results.push(await phase('dovecot idle', dv.port));
      results.push(
        await phase('dovecot maildir', dv.port, async (i) => {
          const to = USERS[i % USERS.length]!;
          maildirDeliver(dv.maildirOf(to), to, DOVECOT_UID);
          return true;
        }),
      );
    }
  } finally {
    await node2?.stop().catch(() => undefined);
    await daemon?.stop().catch(() => undefined);
    await dovecot?.stop().catch(() => undefined);
    await vol?.stop().catch(() => undefined);
    await t.cleanup();
    await t2.cleanup();
  }

  const by = (n: string) => results.find((r) => r.phase === n);
  const ratio = (a?: PhaseResult, b?: PhaseResult) => (a && b && b.p50Ms > 0 ? Math.round((a.p50Ms / b.p50Ms) * 100) / 100 : undefined);
  const ratios = {
    mailfleetdSmtpOverIdleP50: ratio(by('mailfleetd smtp'), by('mailfleetd idle')),
    mailfleetdTwoNodesSmtpOverIdleP50: ratio(by('mailfleetd x2 smtp'), by('mailfleetd idle')),
    mailfleetdMaildirOverIdleP50: ratio(by('mailfleetd maildir'), by('mailfleetd idle')),
    dovecotMaildirOverIdleP50: ratio(by('dovecot maildir'), by('dovecot idle')),
    mailfleetdOverDovecotIdleP50: ratio(by('mailfleetd idle'), by('dovecot idle')),
    mailfleetdOverDovecotUnderLoadP50: ratio(by('mailfleetd maildir'), by('dovecot maildir')),
  };
  for (const [k, v] of Object.entries(ratios)) if (v !== undefined) console.log(`${k.padEnd(36)} ${v}`);

  const file = join(import.meta.dirname, '..', 'results', 'imap-contention.json');
  mkdirSync(join(file, '..'), { recursive: true });
  const prior = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { runs?: Record<string, unknown> }) : {};
  const run = { measuredAt: new Date().toISOString(), storage: values.gluster ? 'glusterfs replica 3 arbiter 1 (FUSE)' : 'local disk', seconds: SECONDS, rate: RATE, senders: SENDERS, clients: CLIENTS, seedPerMailbox: SEED, phases: results, ratios };
  writeFileSync(file, `${JSON.stringify({ bench: 'imap-contention', runs: { ...prior.runs, [values.label!]: run } }, null, 2)}\n`);
  writePlot('imap-contention', {
    title: `IMAP session p50 (LOGIN/SELECT/FETCH 1:* FLAGS/LOGOUT), ${CLIENTS} clients, ${RATE} deliveries/s, run "${values.label}"`,
    unit: 'ms',
    bars: results.map((r) => ({ label: r.phase, value: r.p50Ms })),
  });
}

await main();
process.exit(0);
