/**
 * bench/smtp: Postfix's smtp-source against mailfleetd and against Postfix delivering to Maildir, in one
 * run, both durable (mailfleetd fsyncs file and directory before 250; Postfix fsyncs its queue file
 * before 250 and virtual(8) fsyncs the Maildir file before the rename).
 *
 *   npx tsx bench/smtp/run.ts [--messages 4000] [--sessions 20] [--size 2000] [--warmup 2000] [--profile] [--skip-postfix] [--tsx]
 *   npx tsx bench/smtp/run.ts --journal [--rounds 2] [...]
 *
 * msg/s is measured to "every message is in the Maildir": for mailfleetd that is the last 250; Postfix
 * answers 250 once queued and delivers afterwards, so its figure waits for the last file to appear
 * (its ack-only rate is printed too). --profile runs mailfleetd under `node --cpu-prof` and prints the
 * top self-time functions. mailfleetd runs as the bundle the engines ship (dist/mailfleetd.mjs, built into
 * the work folder); --tsx runs the sources instead. Results: bench/results/smtp.json.
 *
 * --journal: the audit journal's cost instead of Postfix: mailfleetd with audit off and on (spool fsync'd
 * before each 250, uploader shipping batches to s3rver on loopback), alternated --rounds times in one
 * run; the median rate of each, and the cost in % of the rate from the median of each round's on/off ratio. Results: bench/results/smtp-journal.json.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { startBenchDaemon } from '../lib/daemon.js';
import { writePlot } from '../lib/plot.js';
import { countFiles, SMTP_SOURCE, startPostfix, waitForCount } from '../lib/postfix.js';
import { cpuSeconds, treeCpuSeconds } from '../lib/proc.js';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { hashPassword } from '../../lib/directory/static.js';
import { startLocalS3 } from '../../lib/journal/local-s3.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg('messages', 4000);
const SESSIONS = arg('sessions', 20);
const SIZE = arg('size', 2000);
const PROFILE = process.argv.includes('--profile');
/** Messages each server gets before the measurement (JIT: the daemon's rate still climbs after 500; Postfix process start; first Maildir creation). */
const WARMUP = arg('warmup', 2000);
/** Run lib/daemon/main.ts under tsx instead of the bundle the engines ship (scripts/bundle-daemon.mjs). */
const TSX = process.argv.includes('--tsx');
/** Development loop: measure mailfleetd only (no ratio, results file untouched). */
const SKIP_POSTFIX = process.argv.includes('--skip-postfix');
const REPO = resolve(import.meta.dirname, '../..');
/** Audit journal on vs off instead of mailfleetd vs Postfix. */
const JOURNAL = process.argv.includes('--journal');
const ROUNDS = arg('rounds', 2);

async function smtpSource(port: number, to: string): Promise<number> {
  const t0 = performance.now();
  const r = spawnSync(SMTP_SOURCE, ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(SIZE), '-f', 'bench@remote.test', '-t', to, '-M', 'client.test', `127.0.0.1:${port}`], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (r.status !== 0) throw new Error(`smtp-source failed (${r.status}): ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

async function benchMailfleetd(work: string, opts: { name?: string; audit?: { endpoint: string } } = {}): Promise<{ seconds: number; cpu: { user: number; system: number } }> {
  const dir = join(work, opts.name ?? 'mailfleetd');
  mkdirSync(dir, { recursive: true });
  await writeFile(join(dir, 'users.yaml'), `users:\n  - address: bench@example.com\n    passwordHash: ${await hashPassword('x')}\n  - address: warm@example.com\n    passwordHash: ${await hashPassword('x')}\n`);
  const spec = specSchema.parse({
    platform: { name: 'bench', hostname: 'mx.bench' },
    domains: [{ name: 'example.com' }],
    limits: { smtp: { portConnections: 1000, perIp: 1000, perListener: 1000 } },
    ...(opts.audit ? { audit: { enabled: true } } : {}),
  });
  const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides: Object.fromEntries(PROTOCOLS.map((p) => [p, 0])), adminPort: 0 });
  await writeFile(join(dir, 'mailfleetd.json'), JSON.stringify(config));
  const profDir = join(work, 'cpu-prof');
  const daemon = await startBenchDaemon({
    configFile: join(dir, 'mailfleetd.json'),
    dataDir: dir,
    work,
    tsx: TSX,
    nodeFlags: PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
    env: opts.audit
      ? { MAILFLEET_AUDIT_BUCKET: 'audit', MAILFLEET_AUDIT_S3_ENDPOINT: opts.audit.endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' }
      : {},
  });
  const child = daemon.child;
  try {
    const port = daemon.port('smtp');
    // Warm-up (JIT, first Maildir creation) outside the measurement.
    const warm = spawnSync(SMTP_SOURCE, ['-s', '4', '-m', String(WARMUP), '-l', String(SIZE), '-f', 'bench@remote.test', '-t', 'warm@example.com', `127.0.0.1:${port}`], { encoding: 'utf8' });
    // A refused warm-up (unknown recipient) would leave the JIT cold and the figure low without a word.
    if (warm.status !== 0) throw new Error(`mailfleetd warm-up failed: ${warm.stderr}`);
    const cpu0 = cpuSeconds(child.pid!);
    const seconds = await smtpSource(port, 'bench@example.com');
    const cpu1 = cpuSeconds(child.pid!);
    const cpu = { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system };
    const got = countFiles(join(dir, 'mail/example.com/bench/Maildir/new'));
    if (got !== MESSAGES) throw new Error(`mailfleetd stored ${got} of ${MESSAGES}`);
    return { seconds, cpu };
  } finally {
    await daemon.stop();
  }
}

function topOfProfile(profDir: string): string[] {
  if (!existsSync(profDir)) return [];
  const f = readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
  if (!f) return [];
  const prof = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  for (const s of prof.samples) {
    const n = byId.get(s)!;
    const url = n.callFrame.url.replace(/^.*node_modules\//, '').replace(`file://${REPO}/`, '');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const total = prof.samples.length;
  // Native frames (writeUtf8String, close, fstat…) say nothing alone: print the JS frames that called them.
  const parent = new Map<number, number>();
  for (const n of prof.nodes as Array<{ id: number; children?: number[] }>) for (const c of n.children ?? []) parent.set(c, n.id);
  const frame = (id: number) => {
    const n = byId.get(id)!;
    return `${n.callFrame.functionName || '(anonymous)'}:${n.callFrame.lineNumber + 1}`;
  };
  const callers = new Map<string, Map<string, number>>();
  for (const s of prof.samples) {
    const n = byId.get(s)!;
    if (n.callFrame.url) continue;
    const key = `${n.callFrame.functionName || '(anonymous)'} :0`;
    const chain: string[] = [];
    for (let p = parent.get(s); p !== undefined && chain.length < 4; p = parent.get(p)) if (byId.get(p)!.callFrame.url) chain.push(frame(p));
    const m = callers.get(key) ?? new Map<string, number>();
    m.set(chain.join(' < '), (m.get(chain.join(' < ')) ?? 0) + 1);
    callers.set(key, m);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .flatMap(([k, c]) => [
      `${((100 * c) / total).toFixed(1).padStart(5)}%  ${k}`,
      ...[...(callers.get(k) ?? new Map<string, number>()).entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .filter(([chain]) => chain)
        .map(([chain, n]) => `          ${((100 * n) / total).toFixed(1).padStart(4)}%  < ${chain}`),
    ]);
}

async function benchPostfix(work: string): Promise<{ ackSeconds: number; seconds: number; cpu: { user: number; system: number } }> {
  chmodSync(work, 0o755);
  const pf = await startPostfix({ dir: join(work, 'postfix') });
  try {
    // Ready when the port answers.
    for (let i = 0; i < 100; i++) {
      const r = spawnSync(SMTP_SOURCE, ['-m', '1', '-t', 'warm@example.com', `127.0.0.1:${pf.port}`], { encoding: 'utf8' });
      if (r.status === 0) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }
    await waitForCount(pf.newDir, 1, 20_000);
    spawnSync(SMTP_SOURCE, ['-s', '4', '-m', String(WARMUP - 1), '-l', String(SIZE), '-f', 'bench@remote.test', '-t', 'warm@example.com', `127.0.0.1:${pf.port}`]);
    await waitForCount(pf.newDir, WARMUP, 60_000);
    const before = countFiles(pf.newDir);
    const cpu0 = treeCpuSeconds(pf.masterPid);
    const t0 = performance.now();
    const ackSeconds = await smtpSource(pf.port, 'bench@example.com');
    await waitForCount(pf.newDir, before + MESSAGES, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = treeCpuSeconds(pf.masterPid);
    return { ackSeconds, seconds, cpu: { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system } };
  } finally {
    pf.stop();
  }
}

async function benchJournal(work: string): Promise<void> {
  const s3 = await startLocalS3({ dir: join(work, 's3'), buckets: ['audit'] });
  try {
    const runs: { off: number[]; on: number[]; offCpu: number[]; onCpu: number[] } = { off: [], on: [], offCpu: [], onCpu: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const on of [false, true]) {
        const r = await benchMailfleetd(work, { name: `mf-${on ? 'on' : 'off'}-${i}`, ...(on ? { audit: { endpoint: s3.endpoint } } : {}) });
        const rate = MESSAGES / r.seconds;
        const cpuMs = (1000 * (r.cpu.user + r.cpu.system)) / MESSAGES;
        (on ? runs.on : runs.off).push(rate);
        (on ? runs.onCpu : runs.offCpu).push(cpuMs);
        console.log(`journal ${on ? 'on ' : 'off'} round ${i + 1}: ${rate.toFixed(0)} msg/s, ${cpuMs.toFixed(2)} ms CPU per message`);
      }
    }
    // Each round's on/off pair ran back to back: their ratio is less exposed to load drifting over the run.
    const median = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    };
    const off = median(runs.off);
    const on = median(runs.on);
    const cost = (1 - median(runs.on.map((x, i) => x / runs.off[i]!))) * 100;
    console.log(`journal off ${off.toFixed(0)} msg/s, on ${on.toFixed(0)} msg/s (medians): cost ${cost.toFixed(1)} % of the rate (median of the rounds' on/off ratios; target < 15 %); CPU per message ${median(runs.offCpu).toFixed(2)} → ${median(runs.onCpu).toFixed(2)} ms`);
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(
      join(REPO, 'bench/results/smtp-journal.json'),
      `${JSON.stringify({ bench: 'smtp --journal', date: new Date().toISOString(), cores: cpus().length, load: loadavg()[0], params: { messages: MESSAGES, sessions: SESSIONS, size: SIZE, warmup: WARMUP, rounds: ROUNDS }, runs, offMsgPerSecond: off, onMsgPerSecond: on, costPercent: cost, target: 15 }, null, 2)}\n`,
    );
  } finally {
    await s3.close();
  }
}

async function main(): Promise<void> {
  if (!existsSync(SMTP_SOURCE)) throw new Error(`${SMTP_SOURCE} missing: install postfix (scripts/install-system-deps.sh)`);
  const work = await mkdtemp(join(tmpdir(), 'mf-bench-smtp-'));
  if (JOURNAL) {
    try {
      console.log(`smtp-source -s ${SESSIONS} -m ${MESSAGES} -l ${SIZE}, audit journal off vs on, ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
      await benchJournal(work);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return;
  }
  try {
    console.log(`smtp-source -s ${SESSIONS} -m ${MESSAGES} -l ${SIZE} (one connection per message), ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`);
    const mf = await benchMailfleetd(work);
    const mfRate = MESSAGES / mf.seconds;
    const perMessage = (s: number) => (1000 * s) / MESSAGES;
    const mfCpuMs = perMessage(mf.cpu.user + mf.cpu.system);
    console.log(
      `mailfleetd: ${mf.seconds.toFixed(2)} s, ${mfRate.toFixed(0)} msg/s (durable in Maildir at each 250), ${mfCpuMs.toFixed(2)} ms CPU per message (user ${perMessage(mf.cpu.user).toFixed(2)}, system ${perMessage(mf.cpu.system).toFixed(2)})`,
    );
    const profile = PROFILE ? topOfProfile(join(work, 'cpu-prof')) : [];
    if (SKIP_POSTFIX) {
      if (profile.length) console.log(`\nmailfleetd CPU profile, top self time:\n${profile.join('\n')}`);
      return;
    }
    const pfx = await benchPostfix(work);
    const pfRate = MESSAGES / pfx.seconds;
    const pfCpuMs = perMessage(pfx.cpu.user + pfx.cpu.system);
    console.log(
      `postfix:    ${pfx.seconds.toFixed(2)} s, ${pfRate.toFixed(0)} msg/s to Maildir (acks done after ${pfx.ackSeconds.toFixed(2)} s = ${(MESSAGES / pfx.ackSeconds).toFixed(0)} msg/s queued), ${pfCpuMs.toFixed(2)} ms CPU per message in all its processes (user ${perMessage(pfx.cpu.user).toFixed(2)}, system ${perMessage(pfx.cpu.system).toFixed(2)})`,
    );
    const ratio = mfRate / pfRate;
    console.log(`ratio mailfleetd / postfix: ${ratio.toFixed(2)}x (target >= 2.5x); CPU per message postfix / mailfleetd: ${(pfCpuMs / mfCpuMs).toFixed(2)}x`);
    if (profile.length) console.log(`\nmailfleetd CPU profile, top self time:\n${profile.join('\n')}`);
    const results = {
      bench: 'smtp',
      date: new Date().toISOString(),
      cores: cpus().length,
      // 1-minute load average at the end: other work on the machine moves both rates.
      load: loadavg()[0],
      params: { messages: MESSAGES, sessions: SESSIONS, size: SIZE, warmup: WARMUP, daemon: TSX ? 'tsx lib/daemon/main.ts' : 'bundle' },
      mailfleetd: { seconds: mf.seconds, msgPerSecond: mfRate, cpuMsPerMessage: mfCpuMs, userCpuMsPerMessage: perMessage(mf.cpu.user), systemCpuMsPerMessage: perMessage(mf.cpu.system) },
      postfix: {
        seconds: pfx.seconds,
        msgPerSecond: pfRate,
        ackSeconds: pfx.ackSeconds,
        ackMsgPerSecond: MESSAGES / pfx.ackSeconds,
        cpuMsPerMessage: pfCpuMs,
        userCpuMsPerMessage: perMessage(pfx.cpu.user),
        systemCpuMsPerMessage: perMessage(pfx.cpu.system),
      },
      // Less sensitive to other work on the machine than the rates: CPU each server spent per message.
      cpuRatio: pfCpuMs / mfCpuMs,
      ratio,
      target: 2.5,
      profile,
    };
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(join(REPO, 'bench/results/smtp.json'), `${JSON.stringify(results, null, 2)}\n`);
    writePlot('smtp', { title: 'SMTP to Maildir, same run', unit: 'msg/s', bars: [{ label: 'mailfleetd', value: mfRate }, { label: 'postfix', value: pfRate }] });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
