/**
 * bench/governor: one heavy tenant floods submission while light tenants send and log in, on storage slowed
 * by an injected delay (bench/governor/slow-disk.ts: every fsync, fdatasync and O_DSYNC write of the daemon
 * waits its turn on one simulated disk, `--fsync-ms` each). The daemon runs as its own process
 * (`mailfleet serve`), so the load generator's work is not on its event loop. Two runs on fresh daemons,
 * same load: governor off, then governor enforce (the Governor class `mailfleet governor run` uses, in this
 * process, talking to the daemon's admin API). Prints the light tenants' delivery and IMAP login p99 and
 * delivery rate against an unloaded baseline, when the cap came and went, and the timeline as a plot.
 *
 *   npx tsx bench/governor/run.ts [--seconds 12] [--heavy 12] [--fsync-ms 4] [--retry-ms 250] [--retry-max-ms 8000]
 *
 * A refused heavy client backs off like a real one: the first retry after --retry-ms, each further refusal
 * in a row doubles the wait up to --retry-max-ms, with jitter (half fixed, half random: "equal jitter"), and
 * a success resets it. (An MTA would wait minutes; a submission client or a bulk script seconds.)
 *
 * Kept out of `npm test`: it measures, it does not assert.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { governorConfig } from '../../lib/governor/config.js';
import { Governor } from '../../lib/governor/loop.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { governorSchema } from '../../lib/spec/schema.js';
import { configFor, RawClient, tempDir, TOKEN } from '../../test/ops/fixture.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 20);
const HEAVY = arg('heavy', 12);
const BASELINE_SECONDS = arg('baseline-seconds', 5);
/** How long the enforce run goes on after the flood (the cap comes back in raiseStepPercent steps, one per cooldown). */
const AFTER_SECONDS = arg('after-seconds', 20);
/** The governor's cooldownSeconds: how long load must stay calm before each raising step. */
const COOLDOWN = arg('cooldown', 4);
const FSYNC_MS = arg('fsync-ms', 4);
/** A refused heavy client's first wait before it tries again; doubled per refusal in a row, up to RETRY_MAX_MS. */
const RETRY_MS = arg('retry-ms', 250);
const RETRY_MAX_MS = arg('retry-max-ms', 8000);
/** Exponential backoff with equal jitter after `refusals` refusals in a row. */
const backoff = (refusals: number) => {
  const base = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** (refusals - 1));
  return base / 2 + Math.random() * (base / 2);
};
const HEAVY_USER = 'alice@example.com';
const LIGHT_USERS = ['bob@example.com', 'carol@example.org'];

interface Daemon {
  port(protocol: string): number;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** `mailfleet serve` as a child process on the slowed disk; resolves once it printed its ready line. */
async function startDaemon(dir: string, config: ReturnType<typeof configFor>): Promise<Daemon> {
  const file = join(dir, 'daemon-config.json');
  await writeFile(file, JSON.stringify(config));
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', new URL('./slow-disk.ts', import.meta.url).href, 'bin/mailfleet.ts', 'serve', '--daemon-config', file, '--data-dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent', BENCH_FSYNC_MS: String(FSYNC_MS) } },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<{ sockets: Array<{ protocol: string; port: number; listener: string }>; admin: { port: number } }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon did not start within 120 s: ${stderr}`)), 120_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(t);
      resolve(JSON.parse(line));
    });
    proc.once('exit', (code) => reject(new Error(`daemon exited with ${code}: ${stderr}`)));
  });
  return {
    port: (p) => ready.sockets.find((s) => s.protocol === p && s.listener.startsWith('default-'))!.port,
    adminUrl: `http://127.0.0.1:${ready.admin.port}`,
    async stop() {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Refusal replies by their first words, for the report. */
const replies = new Map<string, number>();
const note = (reply: string) => {
  const k = reply.split(' ').slice(0, 4).join(' ');
  replies.set(k, (replies.get(k) ?? 0) + 1);
};

/** One message through submission; ms from end of DATA to the reply, or refused at AUTH. */
async function sendOne(d: Daemon, user: string): Promise<{ refused: boolean; ms?: number }> {
  const c = await RawClient.open(d.port('submission'));
  try {
    await c.waitFor(/^220 /, 30_000);
    await c.send('EHLO bench.test', /^250 /, 30_000);
    const auth = await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`, /^\d{3} /, 30_000);
    if (!auth.startsWith('235')) {
      note(auth);
      return { refused: true };
    }
    await c.send(`MAIL FROM:<${user}>`, /^250 /, 30_000);
    await c.send(`RCPT TO:<${user}>`, /^250 /, 30_000);
    await c.send('DATA', /^354 /, 30_000);
    const t0 = performance.now();
    const r = await c.send(`Subject: bench\r\n\r\n${'x'.repeat(2000)}\r\n.`, /^\d{3} /, 30_000);
    const ms = performance.now() - t0;
    c.socket.write('QUIT\r\n');
    return { refused: !r.startsWith('250'), ms };
  } finally {
    c.close();
  }
}

async function imapLogin(d: Daemon, user: string): Promise<number> {
  const t0 = performance.now();
  const c = await RawClient.open(d.port('imap'));
  try {
    await c.waitFor(/^\* OK/, 30_000);
    await c.send(`a1 LOGIN ${user} password`, /^a1 /, 30_000);
    return performance.now() - t0;
  } finally {
    c.close();
  }
}

const p99 = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!);

interface Second {
  t: number;
  heavyDelivered: number;
  heavyRefused: number;
  lightDelivery: number[];
  lightLogin: number[];
  cap?: number | string;
}

async function phase(d: Daemon, seconds: number, heavy: number, sink: Second[], t0: number, cap: () => number | string | undefined): Promise<void> {
  const end = performance.now() + seconds * 1000;
  const bucket = (): Second => {
    const t = Math.floor((performance.now() - t0) / 1000);
    let s = sink.find((x) => x.t === t);
    if (!s) sink.push((s = { t, heavyDelivered: 0, heavyRefused: 0, lightDelivery: [], lightLogin: [], cap: cap() }));
    return s;
  };
  const loops: Promise<void>[] = [];
  for (let i = 0; i < heavy; i++)
    loops.push(
      (async () => {
        let refusals = 0;
        while (performance.now() < end) {
          const r = await sendOne(d, HEAVY_USER).catch((e: Error) => (note(`error: ${e.message.slice(0, 40)}`), { refused: true }));
          if (r.refused) {
            bucket().heavyRefused++;
            await new Promise((x) => setTimeout(x, Math.min(backoff(++refusals), end - performance.now())));
          } else {
            refusals = 0;
            bucket().heavyDelivered++;
          }
        }
      })(),
    );
  // Each light user sends (a session per message) and, on its own, logs in over IMAP; 100 ms pause after each.
  for (const u of LIGHT_USERS)
    loops.push(
      (async () => {
        while (performance.now() < end) {
          const r = await sendOne(d, u).catch(() => ({ refused: true, ms: undefined }));
          if (r.ms !== undefined) bucket().lightDelivery.push(r.ms);
          await new Promise((x) => setTimeout(x, 100));
        }
      })(),
      (async () => {
        while (performance.now() < end) {
          bucket().lightLogin.push(await imapLogin(d, u));
          await new Promise((x) => setTimeout(x, 100));
        }
      })(),
    );
  await Promise.all(loops);
}

interface Run {
  baseline: Second[];
  flood: Second[];
  after: Second[];
  floodStart: number;
  floodEnd: number;
  /** Seconds from the flood's start to the first applied cap, and from its end to the cap's release. */
  cappedAfter?: number;
  releasedAfter?: number;
  target?: number;
}

async function run(mode: 'off' | 'enforce'): Promise<Run> {
  const tmp = await tempDir('mf-bench-gov-');
  const d = await startDaemon(tmp.dir, configFor({ limits: { submission: { perUser: 100, perUserIp: 100 } } }));
  let governor: Governor | undefined;
  const ac = new AbortController();
  const scope = `user:${HEAVY_USER}:submission`;
  const cap = () => (governor ? (governor.current.managed[scope]?.value ?? 'plan') : 'off');
  const t0 = performance.now();
  const baseline: Second[] = [];
  const flood: Second[] = [];
  await phase(d, BASELINE_SECONDS, 0, baseline, t0, cap);
  let target: number | undefined;
  let stopped: Promise<void> | undefined;
  if (mode === 'enforce') {
    // Target: the p99 the light users may reach (1.5 × this run's unloaded p99): a fixed number is wrong on a shared box.
    target = Math.max(20, Math.round(1.5 * p99(baseline.flatMap((s) => s.lightDelivery))));
    const config = governorConfig(
      governorSchema.parse({ mode: 'enforce', targets: { storageLatencyMs: target }, intervalSeconds: 0.5, settleSeconds: 1, cooldownSeconds: COOLDOWN, raiseStepPercent: 50, scopes: ['user'] }),
    );
    governor = new Governor({ fleet: resolveFleet({ admin: [d.adminUrl], token: TOKEN }), config, stateDir: join(tmp.dir, 'governor') });
    stopped = governor.run(ac.signal);
  }
  const after: Second[] = [];
  const floodStart = performance.now();
  await phase(d, SECONDS, HEAVY, flood, t0, cap);
  const floodEnd = performance.now();
  await phase(d, mode === 'enforce' ? AFTER_SECONDS : 3, 0, after, t0, cap);
  ac.abort();
  await stopped;
  let cappedAfter: number | undefined;
  let releasedAfter: number | undefined;
  if (governor) {
    const log = governor.store.readLog().filter((e) => e.status === 'applied' && e.decision?.scope === scope);
    const at = (e: (typeof log)[number]) => Date.parse(e.at) - (Date.now() - performance.now());
    const first = log.find((e) => e.decision!.action === 'lower');
    const release = log.find((e) => e.decision!.action === 'release');
    if (first) cappedAfter = (at(first) - floodStart) / 1000;
    if (release) releasedAfter = (at(release) - floodEnd) / 1000;
  }
  await d.stop();
  await tmp.cleanup();
  return { baseline, flood, after, floodStart: (floodStart - t0) / 1000, floodEnd: (floodEnd - t0) / 1000, cappedAfter, releasedAfter, target };
}

/** The timeline as a plot: one column per second, light delivery p99 as bars (the dotted line is 1.5 × unloaded), then heavy deliveries, refusals and cap. */
function plot(r: Run, base: number): string[] {
  // A second split between two phases is one column.
  const byT = new Map<number, Second>();
  for (const s of [...r.baseline, ...r.flood, ...r.after].sort((a, b) => a.t - b.t)) {
    const m = byT.get(s.t);
    if (!m) byT.set(s.t, { ...s, lightDelivery: [...s.lightDelivery], lightLogin: [...s.lightLogin] });
    else {
      m.heavyDelivered += s.heavyDelivered;
      m.heavyRefused += s.heavyRefused;
      m.lightDelivery.push(...s.lightDelivery);
      m.lightLogin.push(...s.lightLogin);
      m.cap = s.cap;
    }
  }
  const secs = [...byT.values()];
  const W = 3;
  const vals = secs.map((s) => p99(s.lightDelivery));
  const top = Math.max(1.5 * base * 2, ...vals.filter((v) => !Number.isNaN(v)));
  const H = 10;
  const lines: string[] = [];
  const line15 = Math.round(((1.5 * base) / top) * H);
  for (let row = H; row >= 1; row--) {
    const label = row === H ? `${top.toFixed(0)} ms` : row === line15 ? `1.5×${base.toFixed(0)}` : '';
    const cells = vals.map((v) => {
      const h = Number.isNaN(v) ? 0 : Math.max(1, Math.round((v / top) * H));
      return (h >= row ? '█'.repeat(W - 1) : row === line15 ? '··' : '  ') + (row === line15 ? '·' : ' ');
    });
    lines.push(`${label.padStart(12)} │${cells.join('')}`);
  }
  const row = (name: string, f: (s: Second) => string) => `${name.padStart(12)} │${secs.map((s) => f(s).slice(0, W - 1).padStart(W - 1) + ' ').join('')}`;
  lines.push(`${''.padStart(12)} └${'─'.repeat(secs.length * W)}`);
  lines.push(row('t (s)', (s) => String(s.t)));
  lines.push(row('phase', (s) => (s.t < r.floodStart ? '' : s.t < r.floodEnd ? '▓▓' : '')));
  lines.push(row('light msg/s', (s) => String(s.lightDelivery.length)));
  lines.push(row('heavy msg/s', (s) => String(s.heavyDelivered)));
  lines.push(row('heavy refus.', (s) => String(s.heavyRefused)));
  lines.push(row('heavy cap', (s) => String(s.cap === 'off' ? '-' : s.cap === 'plan' ? 'P' : s.cap)));
  return lines;
}

const results: Record<string, Run> = {};
for (const mode of ['off', 'enforce'] as const) results[mode] = await run(mode);

const all = (xs: Second[], k: 'lightDelivery' | 'lightLogin') => xs.flatMap((s) => s[k]);
const rate = (xs: Second[]) => all(xs, 'lightDelivery').length / Math.max(1, xs.length);
console.log(
  `bench/governor: heavy ${HEAVY} submission loops of ${HEAVY_USER} (backoff after a refusal: ${RETRY_MS} ms doubling to ${RETRY_MAX_MS} ms, jittered), light ${LIGHT_USERS.join(', ')} (send, IMAP login, 100 ms pause); +${FSYNC_MS} ms per durable write, one disk; daemon in its own process`,
);
for (const mode of ['off', 'enforce'] as const) {
  const r = results[mode]!;
  const base = { d: p99(all(r.baseline, 'lightDelivery')), l: p99(all(r.baseline, 'lightLogin')), rate: rate(r.baseline) };
  // The flood's second half (off), or from 2 s after the first cap to the flood's end (enforce): what the
  // light users see once the governor has acted.
  const from = r.cappedAfter !== undefined ? r.floodStart + r.cappedAfter + 2 : (r.floodStart + r.floodEnd) / 2;
  const late = r.flood.filter((s) => s.t >= from);
  const fl = { d: p99(all(late, 'lightDelivery')), l: p99(all(late, 'lightLogin')), rate: rate(late) };
  console.log(
    `\n${mode}${r.target ? ` (target storageLatencyMs ${r.target})` : ''}: flood from t=${from.toFixed(0)} s to its end (${late.length} s) against unloaded (${r.baseline.length} s)`,
  );
  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  console.log(
    `  light delivery p99 ${base.d.toFixed(0)} → ${fl.d.toFixed(0)} ms (×${(fl.d / base.d).toFixed(2)}); p50 ${p50(all(r.baseline, 'lightDelivery')).toFixed(0)} → ${p50(all(late, 'lightDelivery')).toFixed(0)} ms; samples ${all(r.baseline, 'lightDelivery').length} / ${all(late, 'lightDelivery').length}`,
  );
  console.log(`  light IMAP login p99 ${base.l.toFixed(0)} → ${fl.l.toFixed(0)} ms (×${(fl.l / base.l).toFixed(2)})`);
  console.log(`  light deliveries ${base.rate.toFixed(1)} → ${fl.rate.toFixed(1)} /s (×${(fl.rate / base.rate).toFixed(2)})`);
  console.log(`  heavy deliveries ${(r.flood.reduce((n, s) => n + s.heavyDelivered, 0) / r.flood.length).toFixed(1)} /s over the flood`);
  if (mode === 'enforce')
    console.log(
      `  heavy user capped ${r.cappedAfter === undefined ? 'never' : `${r.cappedAfter.toFixed(1)} s after the flood began`}; cap released ${r.releasedAfter === undefined ? 'not within the run' : `${r.releasedAfter.toFixed(1)} s after it ended`}`,
    );
  for (const l of plot(r, base.d)) console.log(l);
}
console.log(`\nheavy refusals by reply (both runs): ${[...replies].map(([k, n]) => `${n}× ${k}`).join('; ')}`);
process.exit(0);
