/**
 * bench/imap-stress: a mixed IMAP load (issue 20) against mailfleetd and Dovecot in one run, local disk.
 *
 *   npx tsx bench/imap-stress/run.ts [--clients 20] [--seconds 20] [--slices 5] [--users 10] [--seed 500]
 *                                    [--rounds 2] [--label current] [--no-dovecot] [--no-mailfleetd]
 *                                    [--baseline <mailfleetd bundle>] [--gluster] [--cpu-prof <dir>] [--tsx]
 *                                    [--strace]
 *
 * Every server is started (and warmed) first, then measured in --slices interleaved rounds: each round
 * gives every server --seconds/--slices seconds of the same client mix, back to back, in an order that
 * rotates per round. On a shared machine the load of other work then falls on every server alike, and
 * the per-round ratio mailfleetd / peer (min/median/max) shows how much of a difference is noise.
 * --baseline adds a second mailfleetd built elsewhere (`node scripts/bundle-daemon.mjs --outfile x.mjs`
 * in another checkout) to the rounds: a before/after comparison under the same conditions.
 *
 * Each of --users users gets an INBOX of --seed messages, written straight into new/ (tmp/, rename) the
 * same way for both servers. --clients clients share the users round-robin (two sessions per mailbox by
 * default, so sessions see each other's flag changes, appends and expunges) and loop, for --seconds:
 *   connect, LOGIN, LIST "" "*", STATUS INBOX (MESSAGES UIDNEXT UNSEEN), SELECT INBOX, then --rounds times
 *   { FETCH <20 messages> (FLAGS ENVELOPE), FETCH <1> (BODY.PEEK[]), STORE <1> ±FLAGS (\Seen) },
 *   APPEND INBOX (a 2 KB message), UID STORE <its APPENDUID> +FLAGS.SILENT (\Deleted), EXPUNGE, LOGOUT
 * so each mailbox stays near --seed messages. Before measuring, one session per user reads every
 * envelope (FETCH 1:* (FLAGS ENVELOPE)) on each server: both run in steady state, caches built. The client is a lean line reader on raw sockets (one node
 * process, one command in flight per session) so it takes little of the machine's CPU from the servers.
 *
 * mailfleetd runs as its own process (`mailfleetd serve`, bench/lib/daemon.ts) so its
 * CPU is readable; users carry cheap scrypt parameters (the hash format records them) and Dovecot uses
 * {PLAIN}, so LOGIN measures the servers, not the KDF. Server CPU is utime+stime (+ reaped children)
 * from /proc: the mailfleetd process, or Dovecot's master with everything under it (imap processes are
 * reaped by the master and land in its cutime/cstime).
 *
 * Prints commands/s, CPU ms per 1,000 commands and p50/p99 per command for each server (totals over its
 * slices), then the ratios mailfleetd / each other server, over the totals and per round; merges the run under --label into bench/results/imap-stress.json.
 * --gluster puts mailfleetd's mail root on a GlusterFS replica-3-arbiter volume (test/harness; run under
 * `flock /tmp/mailfleet-gluster.lock`) and skips Dovecot. --cpu-prof <dir> runs the daemon under
 * `node --cpu-prof` (after a warm-up in an unprofiled daemon) and leaves the .cpuprofile there (summarise
 * with bench/imap-stress/profile.ts). mailfleetd runs from the esbuild bundle (what a node runs; bench/lib/
 * daemon.ts); --tsx runs the sources.
 * --strace attaches `strace -f -c` to each mailfleetd for the measured rounds and prints its system calls
 * per command (file operations, socket writes): a count that does not move with the machine's load, where
 * commands/s and CPU per command do. Attached, every call stops the daemon, so its other figures mean
 * nothing in such a run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { maildirPath } from '../../lib/store/maildir/paths.js';
import { configFor, tempDir } from '../../test/ops/fixture.js';
import { startGlusterVolume, type GlusterVolume } from '../../test/harness/gluster.js';
import { startBenchDaemon, type BenchDaemon } from '../lib/daemon.js';
import { DOVECOT_UID, startDovecot, type RunningDovecot } from '../lib/dovecot.js';
import { writePlot } from '../lib/plot.js';
import { ImapClient } from '../lib/imap-client.js';
import { cheapUsersYaml } from '../lib/users.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '20' },
    users: { type: 'string', default: '10' },
    seed: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '2' },
    slices: { type: 'string', default: '5' },
    baseline: { type: 'string' },
    label: { type: 'string', default: 'current' },
    'no-dovecot': { type: 'boolean', default: false },
    'no-mailfleetd': { type: 'boolean', default: false },
    gluster: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    tsx: { type: 'boolean', default: false },
    strace: { type: 'boolean', default: false },
  },
});
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const SEED = Number(values.seed);
const ROUNDS = Number(values.rounds);
const SLICES = Math.max(1, Number(values.slices));
const USERS = Array.from({ length: Number(values.users) }, (_, i) => `user${i}@example.com`);
const PASSWORD = 'password';
const COMMAND_TIMEOUT_MS = 30_000;
const CLK_TCK = 100; // USER_HZ on Linux
const COMMANDS = ['connect', 'LOGIN', 'LIST', 'STATUS', 'SELECT', 'FETCH', 'FETCH BODY', 'STORE', 'APPEND', 'STORE Deleted', 'EXPUNGE', 'LOGOUT'] as const;
type Command = (typeof COMMANDS)[number];

const BODY = Array.from({ length: 30 }, (_, i) => `stress body line ${i} ${'x'.repeat(40)}`).join('\r\n') + '\r\n';
let unique = 0;
function message(to: string): string {
  const n = ++unique;
  return (
    `From: Bench Sender <bench${n % 7}@example.net>\r\nTo: ${to}\r\nSubject: stress message ${n}\r\n` +
    `Date: Fri, 04 Dec 2026 07:00:00 +0000\r\nMessage-ID: <stress-${n}-${process.pid}@bench>\r\n\r\n${BODY}`
  );
}


interface Tally {
  readonly times: Record<Command, number[]>;
  readonly errors: string[];
  commands: number;
  sessions: number;
}

const rnd = (n: number) => Math.floor(Math.random() * n);

/** One session of the mix; every command's latency goes into the tally as it completes. */
async function session(port: number, user: string, t: Tally): Promise<void> {
  let tagN = 0;
  let mark = performance.now();
  const time = (c: Command) => {
    const now = performance.now();
    t.times[c].push(now - mark);
    t.commands++;
    mark = now;
  };
  const c = await ImapClient.open(port, COMMAND_TIMEOUT_MS);
  time('connect');
  const run = async (name: Command, line: string, literal?: string) => {
    const r = await c.cmd(`a${++tagN}`, line, literal);
    time(name);
    return r;
  };
  try {
    await run('LOGIN', `LOGIN ${user} ${PASSWORD}`);
    await run('LIST', 'LIST "" "*"');
    await run('STATUS', 'STATUS INBOX (MESSAGES UIDNEXT UNSEEN)');
    const sel = await run('SELECT', 'SELECT INBOX');
    const exists = Number(/\* (\d+) EXISTS/.exec(sel)?.[1] ?? '0');
    for (let r = 0; r < ROUNDS && exists > 0; r++) {
      const from = 1 + rnd(Math.max(1, exists - 19));
      await run('FETCH', `FETCH ${from}:${Math.min(exists, from + 19)} (FLAGS ENVELOPE)`);
      await run('FETCH BODY', `FETCH ${1 + rnd(exists)} (BODY.PEEK[])`);
      await run('STORE', `STORE ${1 + rnd(exists)} ${Math.random() < 0.5 ? '+' : '-'}FLAGS (\\Seen)`);
    }
    const app = await run('APPEND', 'APPEND INBOX (\\Seen)', message(user));
    const uid = /APPENDUID \d+ (\d+)/.exec(app)?.[1];
    if (uid) await run('STORE Deleted', `UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
    await run('EXPUNGE', 'EXPUNGE');
    await run('LOGOUT', 'LOGOUT');
    t.sessions++;
  } finally {
    c.close();
  }
}

/**
 * One unmeasured session per user that reads every envelope, so both servers start from built indexes
 * and envelope caches: the measurement is a server in steady state, not its first sync of each mailbox.
 */
async function warm(port: number): Promise<void> {
  await Promise.all(
    USERS.map(async (u) => {
      const c = await ImapClient.open(port, COMMAND_TIMEOUT_MS);
      try {
        for (const [tag, line] of [['w1', `LOGIN ${u} ${PASSWORD}`], ['w2', 'SELECT INBOX'], ['w3', 'FETCH 1:* (FLAGS ENVELOPE)'], ['w4', 'LOGOUT']] as const) await c.cmd(tag, line);
      } finally {
        c.close();
      }
    }),
  );
}

/** Server CPU in ms: utime+stime+cutime+cstime of a process and every live process under it. */
function cpuMs(rootPid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      // After "pid (comm) ": state ppid ... utime(11) stime(12) cutime(13) cstime(14), 0-based from state.
      stats.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      // exited while we read
    }
  }
  let ticks = 0;
  const walk = (pid: number) => {
    const me = stats.get(pid);
    if (!me) return;
    ticks += me.ticks;
    for (const [child, s] of stats) if (s.ppid === pid) walk(child);
  };
  walk(rootPid);
  return (ticks * 1000) / CLK_TCK;
}

interface Result {
  readonly server: string;
  readonly seconds: number;
  readonly sessions: number;
  readonly commands: number;
  readonly commandsPerSecond: number;
  readonly cpuMsPer1000Commands: number;
  readonly serverCpuPercent: number;
  readonly errors: number;
  readonly errorSamples: string[];
  /** p50 / p99 / mean per command, ms. */
  readonly latencyMs: Record<string, { count: number; p50: number; p99: number; mean: number }>;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** A server under test: its totals over every slice it ran. */
interface Server {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  readonly tally: Tally;
  cpuMs: number;
  elapsed: number;
}

/** One slice of one server in one round. */
interface Slice {
  readonly commands: number;
  readonly commandsPerSecond: number;
  readonly cpuMsPer1000Commands: number;
}

const newTally = (): Tally => ({ times: Object.fromEntries(COMMANDS.map((c) => [c, []])) as unknown as Record<Command, number[]>, errors: [], commands: 0, sessions: 0 });

/** Runs the client mix against one server for `seconds` (sessions started before the end finish). */
async function slice(s: Server, seconds: number): Promise<Slice> {
  const before = s.tally.commands;
  const cpu0 = cpuMs(s.pid);
  const t0 = performance.now();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      while (Date.now() < end) {
        try {
          await session(s.port, USERS[i % USERS.length]!, s.tally);
        } catch (e) {
          s.tally.errors.push((e as Error).message.slice(0, 100));
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuMs(s.pid) - cpu0;
  s.cpuMs += cpu;
  s.elapsed += elapsed;
  const commands = s.tally.commands - before;
  return { commands, commandsPerSecond: r1(commands / elapsed), cpuMsPer1000Commands: r1((cpu / Math.max(1, commands)) * 1000) };
}

function totals(s: Server): Result {
  const t = s.tally;
  const latencyMs: Result['latencyMs'] = {};
  for (const c of COMMANDS) {
    const x = t.times[c].sort((a, b) => a - b);
    latencyMs[c] = { count: x.length, p50: r1(pct(x, 0.5)), p99: r1(pct(x, 0.99)), mean: r1(x.reduce((a, b) => a + b, 0) / (x.length || 1)) };
  }
  const r: Result = {
    server: s.name,
    seconds: r1(s.elapsed),
    sessions: t.sessions,
    commands: t.commands,
    commandsPerSecond: r1(t.commands / s.elapsed),
    cpuMsPer1000Commands: r1((s.cpuMs / Math.max(1, t.commands)) * 1000),
    serverCpuPercent: r1((s.cpuMs / (s.elapsed * 1000)) * 100),
    errors: t.errors.length,
    errorSamples: [...new Set(t.errors)].slice(0, 5),
    latencyMs,
  };
  console.log(
    `${s.name.padEnd(22)} ${String(r.commandsPerSecond).padStart(7)} commands/s  ${String(r.cpuMsPer1000Commands).padStart(6)} CPU ms/1000 commands` +
      `  (server ${r.serverCpuPercent}% CPU, ${r.sessions} sessions, ${r.errors} errors${r.errors ? ` ${JSON.stringify(r.errorSamples)}` : ''})`,
  );
  console.log(`${''.padEnd(22)} p50/p99 ms: ${COMMANDS.map((c) => `${c} ${latencyMs[c]!.p50}/${latencyMs[c]!.p99}`).join(', ')}`);
  return r;
}

/**
 * Every server gets SLICES slices of SECONDS/SLICES seconds, in rounds: each round runs one slice of every
 * server back to back, the order rotating from round to round. Load from other work on the machine then
 * lands on all servers alike (it used to land on whichever ran in the minute it came), and the ratio of
 * two servers within one round shows how much of a difference is noise.
 */
async function interleave(servers: Server[]): Promise<Array<Record<string, Slice>>> {
  const rounds: Array<Record<string, Slice>> = [];
  const each = SECONDS / SLICES;
  console.log(`${servers.map((s) => `${s.name} (pid ${s.pid})`).join(', ')}: ${SLICES} rounds of ${each} s each`);
  for (let r = 0; r < SLICES; r++) {
    const round: Record<string, Slice> = {};
    for (let k = 0; k < servers.length; k++) {
      const s = servers[(r + k) % servers.length]!;
      round[s.name] = await slice(s, each);
    }
    console.log(`round ${r + 1}: ${servers.map((s) => `${s.name} ${round[s.name]!.commandsPerSecond}/s ${round[s.name]!.cpuMsPer1000Commands} ms`).join(', ')}`);
    rounds.push(round);
  }
  return rounds;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const spread = (xs: number[]) => ({ min: r2(Math.min(...xs)), median: r2(median(xs)), max: r2(Math.max(...xs)) });

/**
 * `strace -f -c` attached to a server for the measured rounds; report() detaches and prints its system
 * calls per command, the most frequent first.
 */
function attachStrace(s: Server): { report: () => Promise<void> } {
  const out = join(t0Dir, `strace-${s.pid}.txt`);
  const before = s.tally.commands;
  const child: ChildProcess = spawn('strace', ['-f', '-c', '-U', 'name,calls', '-o', out, '-p', String(s.pid)], { stdio: 'ignore' });
  return {
    async report() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
      const commands = Math.max(1, s.tally.commands - before);
      const calls: Array<[string, number]> = [];
      for (const line of readFileSync(out, 'utf8').split('\n')) {
        const m = /^\s*(\w+)\s+(\d+)\s*$/.exec(line);
        if (m && m[1] !== 'total') calls.push([m[1]!, Number(m[2])]);
      }
      calls.sort((a, b) => b[1] - a[1]);
      const total = calls.reduce((n, [, c]) => n + c, 0);
      console.log(`${s.name}: ${r2(total / commands)} system calls per command (${commands} commands): ${calls.slice(0, 16).map(([n, c]) => `${n} ${r2(c / commands)}`).join(', ')}`);
    },
  };
}

/** Writes one message the way an MDA does: tmp/, then rename into new/. */
function seed(maildir: string, to: string, uid?: number): void {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, d), { recursive: true, mode: 0o700 });
  if (uid !== undefined) for (const d of [join(maildir, '..', '..'), join(maildir, '..'), maildir, ...['cur', 'new', 'tmp'].map((d) => join(maildir, d))]) chownSync(d, uid, uid);
  for (let i = 0; i < SEED; i++) {
    const name = `${Math.floor(Date.now() / 1000)}.B${process.pid}Q${++unique}.bench`;
    const tmp = join(maildir, 'tmp', name);
    writeFileSync(tmp, message(to));
    if (uid !== undefined) chownSync(tmp, uid, uid);
    renameSync(tmp, join(maildir, 'new', name));
  }
}


let t0Dir = '';

async function main(): Promise<void> {
  const t = await tempDir('mf-bench-stress-');
  t0Dir = t.dir;
  const servers: Server[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  const add = async (name: string, port: number, pid: number) => {
    await warm(port);
    servers.push({ name, port, pid, tally: newTally(), cpuMs: 0, elapsed: 0 });
  };
  let vol: GlusterVolume | undefined;
  let results: Result[] = [];
  let rounds: Array<Record<string, Slice>> = [];
  try {
    if (!values['no-mailfleetd']) {
      const big = { perIp: 100_000, perUser: 100_000, perUserIp: 100_000, listenerConnections: 100_000, sourceConnections: 100_000 };
      const config = configFor({ limits: { imap: big } });
      const builds: Array<{ name: string; bundle?: string }> = [{ name: values.gluster ? 'mailfleetd (gluster)' : 'mailfleetd' }];
      if (values.baseline) builds.push({ name: 'mailfleetd (baseline)', bundle: resolve(values.baseline) });
      for (const b of builds) {
        // Each build its own data dir and mail root: the same seed, no shared state between them.
        const dataDir = join(t.dir, b.bundle ? 'baseline' : 'current');
        mkdirSync(dataDir);
        writeFileSync(join(dataDir, 'users.yaml'), cheapUsersYaml(USERS, PASSWORD));
        let mailRoot = join(dataDir, 'mail');
        if (values.gluster && !b.bundle) {
          vol = await startGlusterVolume('mfstress');
          mailRoot = join(vol.mountPoint, 'mail');
          mkdirSync(mailRoot);
          symlinkSync(mailRoot, join(dataDir, 'mail'));
        }
        for (const u of USERS) seed(maildirPath(mailRoot, u), u);
        const configFile = join(dataDir, 'daemon-config.json');
        writeFileSync(configFile, JSON.stringify(config));
        const start = (nodeFlags: string[] = []) => startBenchDaemon({ configFile, dataDir, work: t.dir, bundle: b.bundle, tsx: values.tsx && !b.bundle, nodeFlags, logLevel: 'silent' });
        let daemon: BenchDaemon;
        if (values['cpu-prof'] && !b.bundle) {
          // The first sync of every mailbox (moving 5,000 deliveries, parsing each) happens in an unprofiled
          // daemon: the profile is of the steady state the figures are about.
          daemon = await start();
          await warm(daemon.port('imap'));
          await daemon.stop();
          daemon = await start(['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`]);
        } else daemon = await start();
        stops.push(() => daemon.stop());
        await add(b.name, daemon.port('imap'), daemon.pid);
      }
    }
    if (!values['no-dovecot'] && !values.gluster) {
      chmodSync(t.dir, 0o755); // Dovecot's auth and mail processes (other users) walk through it
      const users = USERS.map((address) => ({ address, password: PASSWORD }));
      // Two instances side by side, each on its own copy of the mailboxes: Debian's defaults, and imap
      // processes reused across sessions (the stronger peer).
      for (const [name, imapProcesses] of [
        ['dovecot', undefined],
        ['dovecot (reuse)', { reuse: 1000, prestart: CLIENTS }],
      ] as const) {
        const dir = join(t.dir, name === 'dovecot' ? 'dovecot' : 'dovecot-reuse');
        mkdirSync(dir);
        const dovecot: RunningDovecot = await startDovecot({ dir, users, imapProcesses });
        stops.push(() => dovecot.stop());
        for (const u of USERS) seed(dovecot.maildirOf(u), u, DOVECOT_UID);
        await add(name, dovecot.port, dovecot.masterPid);
      }
    }
    const traces = values.strace ? servers.filter((s) => s.name.startsWith('mailfleetd')).map(attachStrace) : [];
    if (traces.length > 0) await new Promise((r) => setTimeout(r, 1000)); // attached to every thread
    rounds = await interleave(servers);
    results = servers.map(totals);
    for (const tr of traces) await tr.report();
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await vol?.stop().catch(() => undefined);
    await t.cleanup();
  }

  // mailfleetd over every other server measured in this run: over the totals, and round by round.
  const mf = results.find((r) => r.server.startsWith('mailfleetd') && !r.server.includes('baseline'));
  type Ratio = { commandsPerSecond: number; cpuPerCommand: number; p50: Record<string, number | null>; perRound: { commandsPerSecond: ReturnType<typeof spread>; cpuPerCommand: ReturnType<typeof spread> } };
  const ratios: Record<string, Ratio> = {};
  for (const dv of results.filter((r) => r !== mf)) {
    if (!mf) break;
    const x = (ratios[`mailfleetd/${dv.server}`] = {
      commandsPerSecond: r2(mf.commandsPerSecond / dv.commandsPerSecond),
      cpuPerCommand: r2(mf.cpuMsPer1000Commands / dv.cpuMsPer1000Commands),
      p50: Object.fromEntries(COMMANDS.map((c) => [c, dv.latencyMs[c]!.p50 > 0 ? r2(mf.latencyMs[c]!.p50 / dv.latencyMs[c]!.p50) : null])),
      perRound: {
        commandsPerSecond: spread(rounds.map((r) => r[mf.server]!.commandsPerSecond / r[dv.server]!.commandsPerSecond)),
        cpuPerCommand: spread(rounds.map((r) => r[mf.server]!.cpuMsPer1000Commands / r[dv.server]!.cpuMsPer1000Commands)),
      },
    });
    const sp = (v: ReturnType<typeof spread>) => `${v.min}/${v.median}/${v.max}`;
    console.log(
      `mailfleetd/${dv.server}`.padEnd(22) +
        ` commands/s ${x.commandsPerSecond}x, CPU per command ${x.cpuPerCommand}x; per round (min/median/max) commands/s ${sp(x.perRound.commandsPerSecond)}, CPU ${sp(x.perRound.cpuPerCommand)}`,
    );
    console.log(`${''.padEnd(22)} p50 ratio: ${COMMANDS.map((c) => `${c} ${x.p50[c]}`).join(', ')}`);
  }

  const file = join(import.meta.dirname, '..', 'results', 'imap-stress.json');
  mkdirSync(join(file, '..'), { recursive: true });
  const prior = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { runs?: Record<string, unknown> }) : {};
  const run = {
    measuredAt: new Date().toISOString(),
    storage: values.gluster ? 'glusterfs replica 3 arbiter 1 (FUSE)' : 'local disk',
    daemon: values.tsx ? 'tsx (sources)' : 'bundle',
    clients: CLIENTS,
    seconds: SECONDS,
    interleaved: { rounds: SLICES, secondsPerSlice: SECONDS / SLICES },
    users: USERS.length,
    seedPerMailbox: SEED,
    roundsPerSession: ROUNDS,
    loadAverage: loadavg().map(r2),
    results,
    ratios,
    rounds,
  };
  writeFileSync(file, `${JSON.stringify({ bench: 'imap-stress', runs: { ...prior.runs, [values.label!]: run } }, null, 2)}\n`);
  writePlot('imap-stress', {
    title: `IMAP mixed load, ${CLIENTS} clients, ${SECONDS} s: commands/s, run "${values.label}"`,
    unit: 'commands/s',
    bars: results.map((r) => ({ label: r.server, value: r.commandsPerSecond })),
  });
}

await main();
process.exit(0);
