/**
 * bench/limits/redis-cost.ts: what one Redis admission (acquire + release of the connect-time scopes ip and
 * listener) costs in CPU, on this process and on redis-server, without sockets of the mail protocol around
 * it. CPU time per operation is far steadier than a rate on a shared machine, so it is the figure to
 * compare changes to lib/limits/redis.ts by.
 *
 *   npx tsx bench/limits/redis-cost.ts [--ops 40000] [--concurrency 16]
 *
 * Peers in the same run: LocalAdmission (the in-process floor) and a bare ioredis PING per operation
 * (one round trip: what a single Redis call costs at least).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startRedis } from '../../test/limits/redis-server.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { RedisAdmission } from '../../lib/limits/redis.js';
import type { IAdmission, ScopeKey } from '../../lib/limits/types.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const OPS = arg('ops', 40_000);
const CONCURRENCY = arg('concurrency', 16);
const TICK_US = 1e6 / 100; // /proc stat times are in clock ticks of 10 ms

function procCpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

interface Figure {
  readonly opsPerSecond: number;
  readonly clientCpuUsPerOp: number;
  readonly redisCpuUsPerOp: number;
  /** From INFO stats: commands (a script counts with the commands it runs), socket reads and writes. */
  readonly redisCommandsPerOp: number;
  readonly redisReadsPerOp: number;
  readonly redisWritesPerOp: number;
}

type Stats = Record<'total_commands_processed' | 'total_reads_processed' | 'total_writes_processed', number>;

async function stats(admin: Redis): Promise<Stats> {
  const text = await admin.info('stats');
  const get = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    total_commands_processed: get('total_commands_processed'),
    total_reads_processed: get('total_reads_processed'),
    total_writes_processed: get('total_writes_processed'),
  };
}

async function run(n: number, op: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < n) await op(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
}

async function measure(redisPid: number, admin: Redis, op: (i: number) => Promise<void>): Promise<Figure> {
  await run(Math.min(2000, OPS), op); // warm-up: JIT, script cache
  await new Promise((r) => setTimeout(r, 100)); // releases of the warm-up land
  const s0 = await stats(admin);
  const c0 = process.cpuUsage();
  const r0 = procCpuUs(redisPid);
  const t0 = process.hrtime.bigint();
  await run(OPS, op);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const r = procCpuUs(redisPid) - r0;
  await new Promise((res) => setTimeout(res, 100));
  const s1 = await stats(admin);
  // The two INFO calls themselves: one command, one read and one write each.
  const per = (k: keyof Stats) => +((s1[k] - s0[k] - 1) / OPS).toFixed(3);
  return {
    opsPerSecond: Math.round(OPS / s),
    clientCpuUsPerOp: +((c.user + c.system) / OPS).toFixed(2),
    redisCpuUsPerOp: +(r / OPS).toFixed(2),
    redisCommandsPerOp: per('total_commands_processed'),
    redisReadsPerOp: per('total_reads_processed'),
    redisWritesPerOp: per('total_writes_processed'),
  };
}

function scopes(i: number): ScopeKey[] {
  return [
    { kind: 'ip', service: 'smtp', id: `10.0.${(i >> 8) & 255}.${i & 255}` },
    { kind: 'listener', service: 'smtp', id: 'default-smtp' },
  ];
}

async function admissionOp(adm: IAdmission, i: number): Promise<void> {
  const r = await adm.acquire(scopes(i));
  if (!r.ok) throw new Error(`refused: ${r.text}`);
  // A session lives across a few turns of the event loop; release is what the close path calls.
  await new Promise((res) => setImmediate(res));
  r.release();
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const pid = redis.proc.pid!;
  try {
    const limitOf = () => 1_000_000;
    const local = new LocalAdmission(limitOf);
    const fleet = new RedisAdmission({ url: redis.url, limitOf });
    await fleet.ready();
    const ping = new Redis(redis.url);
    const admin = new Redis(redis.url);
    const results: Record<string, Figure> = {};
    // Order rotated against drift is not needed for CPU per op; each peer is measured twice, best kept.
    for (let round = 0; round < 2; round++) {
      const figs: Array<[string, Figure]> = [
        ['local', await measure(pid, admin, (i) => admissionOp(local, i))],
        ['ping', await measure(pid, admin, async () => void (await ping.ping()))],
        ['redis admission', await measure(pid, admin, (i) => admissionOp(fleet, i))],
      ];
      for (const [k, f] of figs)
        if (!results[k] || f.clientCpuUsPerOp + f.redisCpuUsPerOp < results[k].clientCpuUsPerOp + results[k].redisCpuUsPerOp)
          results[k] = f;
    }
    // Releases still in flight must land before the count is checked.
    await new Promise((r) => setTimeout(r, 200));
    const left = await ping.eval("return #redis.call('KEYS', 'mailfleet:*')", 0);
    await fleet.close();
    ping.disconnect();
    admin.disconnect();
    for (const [k, f] of Object.entries(results))
      console.log(
        `${k.padEnd(16)} ${String(f.opsPerSecond).padStart(7)} ops/s  client ${f.clientCpuUsPerOp} µs/op  redis-server ${f.redisCpuUsPerOp} µs/op  per op: ${f.redisCommandsPerOp} commands, ${f.redisReadsPerOp} reads, ${f.redisWritesPerOp} writes`,
      );
    console.log(`keys left after release: ${String(left)} (0 expected: every scope emptied)`);
  } finally {
    await redis.stop();
  }
}

await main();
