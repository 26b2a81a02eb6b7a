/**
 * bench/durable-gate: what the fair gate on durable writes (lib/store/fair-gate.ts, maildir.durableWrites)
 * costs and buys on this machine's real disks, the gate off (maxInFlight 0, the default) against on
 * (maxInFlight 64) in the same run, alternating, on fresh directories:
 *
 *   - throughput: C concurrent delivery loops (8 owners), 2 KiB messages through MaildirDelivery with
 *     fsync, for --seconds each; messages/s and delivery p99, on ext4 (the tmpdir) and tmpfs (/dev/shm).
 *     A limit on concurrent fsyncs costs throughput on a disk that batches them; this is that cost.
 *   - fairness: one owner with C-1 loops against one light owner with one loop, on ext4: the light
 *     owner's delivery p99 and rate.
 *
 *   npx tsx bench/durable-gate/run.ts [--seconds 4] [--rounds 3] [--tolerance 1.5] [--slack 2] [--only ext4-64,fairness]
 *
 * Writes bench/results/durable-gate.json. Kept out of `npm test`: it measures, it does not assert.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FairGate } from '../../lib/store/fair-gate.js';
import { MaildirDelivery } from '../../lib/store/maildir/deliver.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 4);
const ROUNDS = arg('rounds', 3);
/** The gate's settings when on (maildir.durableWrites); the defaults unless given. */
const GATE = {
  maxInFlight: 64,
  ...(process.argv.includes('--tolerance') ? { latencyTolerance: arg('tolerance', 1.5) } : {}),
  ...(process.argv.includes('--slack') ? { latencySlackMs: arg('slack', 2) } : {}),
};
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : undefined;
const MESSAGE = Buffer.from(`Subject: bench\r\n\r\n${'x'.repeat(2048)}\r\n`);

interface Result {
  perSecond: number;
  p99: number;
  light?: { perSecond: number; p99: number };
  limitAtEnd?: number;
}

const p99 = (xs: number[]) => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!);
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

async function once(root: string, gateOn: boolean, loops: number, fairness: boolean): Promise<Result> {
  const dir = mkdtempSync(join(root, 'mf-bench-gate-'));
  const gate = gateOn ? new FairGate(GATE) : undefined;
  const delivery = new MaildirDelivery({ root: dir, hostname: 'bench', ...(gate ? { gate } : {}) });
  const heavyMs: number[] = [];
  const lightMs: number[] = [];
  // Maildirs exist before the clock starts (their creation is not the steady state).
  for (let u = 0; u < 8; u++) await delivery.deliver([{ address: `u${u}@bench.test` }], MESSAGE);
  const end = performance.now() + SECONDS * 1000;
  const loop = async (owner: string, into: number[]) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await delivery.deliver([{ address: `${owner}@bench.test` }], MESSAGE, { owner });
      into.push(performance.now() - t0);
    }
  };
  const all: Promise<void>[] = [];
  if (fairness) {
    for (let i = 0; i < loops - 1; i++) all.push(loop('u0', heavyMs));
    all.push(loop('u1', lightMs));
  } else for (let i = 0; i < loops; i++) all.push(loop(`u${i % 8}`, heavyMs));
  await Promise.all(all);
  rmSync(dir, { recursive: true, force: true });
  const n = heavyMs.length + lightMs.length;
  return {
    perSecond: n / SECONDS,
    p99: p99([...heavyMs, ...lightMs]),
    ...(fairness ? { light: { perSecond: lightMs.length / SECONDS, p99: p99(lightMs) } } : {}),
    ...(gate ? { limitAtEnd: gate.stats().limit } : {}),
  };
}

const disks = [
  { name: 'ext4', root: tmpdir() },
  { name: 'tmpfs', root: '/dev/shm' },
];
console.log(`bench/durable-gate: ${ROUNDS} rounds, gate off (maxInFlight 0) vs on (maxInFlight 64, other settings default), alternating; ${SECONDS} s per run; ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}`);
const out: Record<string, unknown> = {};
for (const disk of disks) {
  mkdirSync(disk.root, { recursive: true });
  for (const loops of [1, 16, 64]) {
    if (ONLY && !ONLY.includes(`${disk.name}-${loops}`)) continue;
    const off: Result[] = [];
    const on: Result[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? [false, true] : [true, false];
      for (const g of order) (g ? on : off).push(await once(disk.root, g, loops, false));
    }
    const row = {
      offPerSecond: Math.round(median(off.map((x) => x.perSecond))),
      onPerSecond: Math.round(median(on.map((x) => x.perSecond))),
      ratio: +(median(on.map((x) => x.perSecond)) / median(off.map((x) => x.perSecond))).toFixed(2),
      offP99Ms: +median(off.map((x) => x.p99)).toFixed(1),
      onP99Ms: +median(on.map((x) => x.p99)).toFixed(1),
      limitAtEnd: on.map((x) => x.limitAtEnd),
    };
    out[`${disk.name}-${loops}`] = row;
    console.log(`${disk.name}, ${loops} loop(s): off ${row.offPerSecond}/s p99 ${row.offP99Ms} ms; on ${row.onPerSecond}/s p99 ${row.onP99Ms} ms (×${row.ratio}); gate limit at end ${row.limitAtEnd.join(', ')}`);
  }
}
if (!ONLY || ONLY.includes('fairness')) {
  const loops = 64;
  const off: Result[] = [];
  const on: Result[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [false, true] : [true, false];
    for (const g of order) (g ? on : off).push(await once(tmpdir(), g, loops, true));
  }
  const row = {
    heavyLoops: loops - 1,
    offLightP99Ms: +median(off.map((x) => x.light!.p99)).toFixed(1),
    onLightP99Ms: +median(on.map((x) => x.light!.p99)).toFixed(1),
    offLightPerSecond: +median(off.map((x) => x.light!.perSecond)).toFixed(1),
    onLightPerSecond: +median(on.map((x) => x.light!.perSecond)).toFixed(1),
    offTotalPerSecond: Math.round(median(off.map((x) => x.perSecond))),
    onTotalPerSecond: Math.round(median(on.map((x) => x.perSecond))),
  };
  out.fairness = row;
  console.log(
    `fairness on ext4 (${loops - 1} loops of one owner, 1 of another): light p99 off ${row.offLightP99Ms} ms, on ${row.onLightP99Ms} ms; light rate off ${row.offLightPerSecond}/s, on ${row.onLightPerSecond}/s; total off ${row.offTotalPerSecond}/s, on ${row.onTotalPerSecond}/s`,
  );
}
writeFileSync(join('bench', 'results', 'durable-gate.json'), JSON.stringify({ at: new Date().toISOString(), seconds: SECONDS, rounds: ROUNDS, load: loadavg()[0], results: out }, null, 2) + '\n');
