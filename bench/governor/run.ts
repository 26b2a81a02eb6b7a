/**
 * bench/governor: one heavy tenant floods submission while light tenants send and log in, on storage slowed
 * by an injected fsync delay (every FileHandle.sync of the process waits its turn on one simulated disk,
 * `--fsync-ms` each). Two runs on fresh daemons, same load: governor off, then governor enforce (in-process
 * Governor, the same class `mailfleet governor run` uses, target storageLatencyMs). Prints the light
 * tenants' delivery and IMAP login p99 against an unloaded baseline, and a per-second timeline.
 *
 *   npx tsx bench/governor/run.ts [--seconds 12] [--heavy 12] [--fsync-ms 4] [--retry-ms 1000]
 *
 * Kept out of `npm test`: it measures, it does not assert.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { governorConfig } from '../../lib/governor/config.js';
import { Governor } from '../../lib/governor/loop.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { governorSchema } from '../../lib/spec/schema.js';
import { configFor, RawClient, startInProcess, tempDir, TOKEN } from '../../test/ops/fixture.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 12);
const HEAVY = arg('heavy', 12);
const FSYNC_MS = arg('fsync-ms', 4);
/** A refused heavy client waits this long before it tries again (an SMTP client retries a 4xx later). */
const RETRY_MS = arg('retry-ms', 1000);
const HEAVY_USER = 'alice@example.com';
const LIGHT_USERS = ['bob@example.com', 'carol@example.org'];

/** One simulated disk: fsyncs queue behind each other, each costs FSYNC_MS on top of the real one. */
async function slowFsync(dir: string): Promise<void> {
  const fh = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(fh) as { sync: (this: unknown) => Promise<void> };
  await fh.close();
  const real = proto.sync;
  let disk: Promise<unknown> = Promise.resolve();
  proto.sync = function (this: unknown) {
    const mine = disk.then(() => new Promise((r) => setTimeout(r, FSYNC_MS))).then(() => real.call(this));
    disk = mine.catch(() => undefined);
    return mine;
  };
}

type Daemon = Awaited<ReturnType<typeof startInProcess>>;

/** One message through submission; ms from end of DATA to the reply, or refused at AUTH. */
async function sendOne(d: Daemon, user: string): Promise<{ refused: boolean; ms?: number }> {
  const c = await RawClient.open(d.port('submission'));
  try {
    await c.waitFor(/^220 /, 30_000);
    await c.send('EHLO bench.test', /^250 /, 30_000);
    const auth = await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`, /^\d{3} /, 30_000);
    if (!auth.startsWith('235')) return { refused: true };
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
        while (performance.now() < end) {
          const r = await sendOne(d, HEAVY_USER).catch(() => ({ refused: true }));
          if (r.refused) {
            bucket().heavyRefused++;
            await new Promise((x) => setTimeout(x, RETRY_MS));
          } else bucket().heavyDelivered++;
        }
      })(),
    );
  for (const u of LIGHT_USERS)
    loops.push(
      (async () => {
        while (performance.now() < end) {
          const r = await sendOne(d, u).catch(() => ({ refused: true, ms: undefined }));
          if (r.ms !== undefined) bucket().lightDelivery.push(r.ms);
          bucket().lightLogin.push(await imapLogin(d, u));
          await new Promise((x) => setTimeout(x, 100));
        }
      })(),
    );
  await Promise.all(loops);
}

async function run(mode: 'off' | 'enforce'): Promise<{ baseline: Second[]; flood: Second[]; after: Second[]; governor?: Governor }> {
  const tmp = await tempDir('mf-bench-gov-');
  const d = await startInProcess(tmp.dir, configFor({ limits: { submission: { perUser: 100 } } }));
  let governor: Governor | undefined;
  const ac = new AbortController();
  const scope = `user:${HEAVY_USER}:submission`;
  const cap = () => (governor ? (governor.current.managed[scope]?.value ?? 'plan') : 'off');
  const t0 = performance.now();
  const baseline: Second[] = [];
  const flood: Second[] = [];
  await phase(d, 3, 0, baseline, t0, cap);
  if (mode === 'enforce') {
    // Target: twice the unloaded p99 this machine shows now (a fixed number is wrong on a shared box).
    const target = Math.max(50, Math.round(2 * p99(baseline.flatMap((s) => s.lightDelivery))));
    const config = governorConfig(
      governorSchema.parse({ mode: 'enforce', targets: { storageLatencyMs: target }, intervalSeconds: 0.5, settleSeconds: 1, cooldownSeconds: 2, scopes: ['user'] }),
    );
    console.log(`enforce: target storageLatencyMs ${target}`);
    governor = new Governor({ fleet: resolveFleet({ admin: [d.adminUrl], token: TOKEN }), config, stateDir: join(tmp.dir, 'governor') });
    void governor.run(ac.signal);
  }
  const after: Second[] = [];
  await phase(d, SECONDS, HEAVY, flood, t0, cap);
  await phase(d, mode === 'enforce' ? 10 : 3, 0, after, t0, cap);
  ac.abort();
  await d.stop();
  await tmp.cleanup();
  return { baseline, flood, after, governor };
}

await slowFsync(process.env.TMPDIR ?? '/tmp');
const results: Record<string, Awaited<ReturnType<typeof run>>> = {};
for (const mode of ['off', 'enforce'] as const) results[mode] = await run(mode);

const all = (xs: Second[], k: 'lightDelivery' | 'lightLogin') => xs.flatMap((s) => s[k]);
console.log(`bench/governor: heavy ${HEAVY} submission loops of ${HEAVY_USER} (retry ${RETRY_MS} ms after a refusal), light ${LIGHT_USERS.join(', ')}; +${FSYNC_MS} ms per fsync, one disk`);
for (const mode of ['off', 'enforce'] as const) {
  const r = results[mode]!;
  const base = { d: p99(all(r.baseline, 'lightDelivery')), l: p99(all(r.baseline, 'lightLogin')) };
  // The flood's second half: after the governor had time to act.
  const late = r.flood.slice(Math.floor(r.flood.length / 2));
  const fl = { d: p99(all(late, 'lightDelivery')), l: p99(all(late, 'lightLogin')) };
  console.log(
    `\n${mode}: light delivery p99 ${base.d.toFixed(0)} ms unloaded → ${fl.d.toFixed(0)} ms in flood (×${(fl.d / base.d).toFixed(2)}); light IMAP login p99 ${base.l.toFixed(0)} → ${fl.l.toFixed(0)} ms (×${(fl.l / base.l).toFixed(2)})`,
  );
  console.log('  t(s)  heavy ok/s  heavy refused/s  light delivery p99  cap of heavy');
  for (const s of [...r.baseline, ...r.flood, ...r.after].sort((a, b) => a.t - b.t))
    console.log(
      `  ${String(s.t).padStart(4)}  ${String(s.heavyDelivered).padStart(10)}  ${String(s.heavyRefused).padStart(15)}  ${(Number.isNaN(p99(s.lightDelivery)) ? '-' : `${p99(s.lightDelivery).toFixed(0)} ms`).padStart(18)}  ${'#'.repeat(Math.min(40, Math.round((p99(s.lightDelivery) || 0) / 10)))} ${s.cap}`,
    );
}
process.exit(0);
