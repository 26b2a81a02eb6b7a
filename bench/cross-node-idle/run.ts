/**
 * bench/cross-node-idle: how soon an IDLE session on node B hears of a delivery on node A, with Redis
 * pub/sub against polling (1 s and the 10 s default), and what publishing costs node A's deliveries.
 *
 *   npx tsx bench/cross-node-idle/run.ts [--users 20] [--rounds 5] [--deliveries 300]
 *
 * Two in-process daemons share one temp mail root (as two nodes share a volume); a real redis-server
 * on a free port. B holds one IDLE session per user; each round delivers one message per user through
 * A's delivery (the same path SMTP takes after DATA, so the same publish) and times each `* N EXISTS` on B
 * from the end of that delivery. Throughput: `--deliveries` sequential deliveries on A of a Redis pair
 * with the event publishing on and off (alternated, median of five; also process CPU per delivery), and the
 * CPU of one event alone (two RedisMailboxEvents, 20,000 events). Results: bench/results/cross-node-idle.json and .svg.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { hashPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { RedisMailboxEvents } from '../../lib/store/mailbox/index.js';
import { testCert } from '../../test/daemon/mail-harness.js';
import { imapCmd, imapLogin } from '../../test/faults/fleet-client.js';
import { startRedis } from '../../test/limits/redis-server.js';
import { configFor, type RawClient } from '../../test/ops/fixture.js';
import { writePlot } from '../lib/plot.js';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '5' },
    deliveries: { type: 'string', default: '300' },
  },
});
const USERS = Number(values.users);
const ROUNDS = Number(values.rounds);
const DELIVERIES = Number(values.deliveries);
const PASSWORD = 'bench-password';
const users = Array.from({ length: USERS }, (_, i) => `u${i}@example.com`);

interface Scenario {
  readonly name: string;
  readonly redis: boolean;
  readonly pollSeconds: number;
  readonly rounds: number;
}

interface Pair {
  readonly a: RunningDaemon;
  readonly b: RunningDaemon;
  stop(): Promise<void>;
}

async function startPair(pollSeconds: number, redisUrl?: string): Promise<Pair> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-bench-xidle-'));
  const lines = ['users:'];
  const hash = await hashPassword(PASSWORD);
  for (const u of users) lines.push(`  - address: ${u}`, `    passwordHash: ${hash}`);
  await writeFile(join(dir, 'users.yaml'), `${lines.join('\n')}\n`);
  const config = configFor(
    {
      imap: { allowInsecureAuth: true, authFailureDelayMs: 10, pollIntervalSeconds: pollSeconds },
      limits: { imap: { perUser: 10, perUserIp: 10, perIp: 10_000 } },
    },
    redisUrl,
  );
  const node = async (name: string) => {
    await mkdir(join(dir, name));
    return startDaemon(config, { dataDir: join(dir, name), baseDir: dir, mailRoot: join(dir, 'mail'), logger: silentLogger, tls: testCert(), admin: false });
  };
  const a = await node('a');
  const b = await node('b');
  return {
    a,
    b,
    async stop() {
      await Promise.all([a.stop(500), b.stop(500)]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const imapPort = (d: RunningDaemon) => d.sockets.find((s) => s.protocol === 'imap' && s.listener.startsWith('default-'))!.port;
const message = (to: string, i: number) =>
  Buffer.from(`From: bench@example.org\r\nTo: ${to}\r\nSubject: xidle ${i}\r\nMessage-ID: <xidle-${i}-${to}>\r\n\r\nhello\r\n`);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function latency(s: Scenario, redisUrl: string): Promise<{ samples: number[]; missed: number }> {
  const pair = await startPair(s.pollSeconds, s.redis ? redisUrl : undefined);
  const clients: Array<{ c: RawClient; exists: number; user: string }> = [];
  try {
    // Let Redis connections come up before the first round (a cold start is not what we measure).
    await new Promise((r) => setTimeout(r, 300));
    for (const user of users) {
      const c = await imapLogin(imapPort(pair.b), user, PASSWORD);
      await imapCmd(c, 'SELECT INBOX');
      await c.send('i1 IDLE', /^\+ /);
      clients.push({ c, exists: 0, user });
      // A mailbox's poll timer starts with its first IDLE session: spread the logins over one interval so
      // the timers' phases are spread too (as they are for sessions that came in over time).
      if (!s.redis) await new Promise((res) => setTimeout(res, (s.pollSeconds * 1000) / users.length));
    }
    const samples: number[] = [];
    let missed = 0;
    let seq = 0;
    for (let r = 0; r < s.rounds; r++) {
      await Promise.all(
        clients.map(async (cl) => {
          const from = cl.c.lines.length;
          const want = new RegExp(`^\\* ${cl.exists + 1} EXISTS$`);
          const seen = cl.c.waitFor(want, s.pollSeconds * 1000 + 5000, from).then(
            () => performance.now(),
            () => undefined,
          );
          await pair.a.ctx.delivery.deliver([{ address: cl.user }], message(cl.user, ++seq));
          const done = performance.now();
          const at = await seen;
          cl.exists++;
          if (at === undefined) missed++;
          else samples.push(Math.max(0, at - done));
        }),
      );
    }
    return { samples, missed };
  } finally {
    for (const cl of clients) cl.c.close();
    await pair.stop();
  }
}

interface Throughput {
  readonly perSecond: number;
  readonly cpuUs: number;
}

/**
 * Sequential deliveries on A of one Redis-configured pair, alternating with the events' delivery listener
 * attached and detached (median of five each): the same daemons, so only the publishing differs. Comparing
 * a Redis pair with a Redis-less one mixes in other differences and this machine's fsync noise.
 */
async function throughput(redisUrl: string): Promise<{ on: Throughput[]; off: Throughput[] }> {
  const pair = await startPair(60, redisUrl);
  const listeners = [...pair.a.ctx.deliveryListeners];
  const out = { on: [] as Throughput[], off: [] as Throughput[] };
  let seq = 0;
  const run = async (): Promise<Throughput> => {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < DELIVERIES; i++) {
      const to = users[i % users.length]!;
      await pair.a.ctx.delivery.deliver([{ address: to }], message(to, ++seq));
    }
    const cpu = process.cpuUsage(cpu0);
    return { perSecond: DELIVERIES / ((performance.now() - t0) / 1000), cpuUs: (cpu.user + cpu.system) / DELIVERIES };
  };
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (let k = 0; k < 5; k++) {
      for (const l of listeners) pair.a.ctx.deliveryListeners.add(l);
      out.on.push(await run());
      for (const l of listeners) pair.a.ctx.deliveryListeners.delete(l);
      out.off.push(await run());
    }
    return out;
  } finally {
    await pair.stop();
  }
}

/** CPU of one event alone: publish on one instance, receive on another and echo-drop on the first. */
async function eventCpuMicros(redisUrl: string, n = 20_000): Promise<number> {
  const a = new RedisMailboxEvents({ url: redisUrl });
  let got = 0;
  const b = new RedisMailboxEvents({ url: redisUrl, onRemote: () => got++ });
  try {
    while (!(a.usingRedis && b.usingRedis)) await new Promise((r) => setTimeout(r, 20));
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      a.publish(users[i % users.length]!);
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    while (got < n) await new Promise((r) => setTimeout(r, 5));
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  } finally {
    await a.close();
    await b.close();
  }
}

const redis = await startRedis();
try {
  const scenarios: Scenario[] = [
    { name: 'redis pub/sub (poll 60 s)', redis: true, pollSeconds: 60, rounds: ROUNDS },
    { name: 'poll 1 s, no redis', redis: false, pollSeconds: 1, rounds: ROUNDS },
    { name: 'poll 10 s (default), no redis', redis: false, pollSeconds: 10, rounds: 1 },
  ];
  const latencies = [];
  for (const s of scenarios) {
    const { samples, missed } = await latency(s, redis.url);
    const row = {
      scenario: s.name,
      samples: samples.length,
      missed,
      p50Ms: Number(pct(samples, 50).toFixed(1)),
      p99Ms: Number(pct(samples, 99).toFixed(1)),
      maxMs: Number(Math.max(...samples).toFixed(1)),
    };
    latencies.push(row);
    console.log(`${s.name.padEnd(32)} p50 ${String(row.p50Ms).padStart(8)} ms  p99 ${String(row.p99Ms).padStart(8)} ms  max ${String(row.maxMs).padStart(8)} ms  (${row.samples} samples, ${missed} missed)`);
  }
  const tp = await throughput(redis.url);
  const withRedis = pct(tp.on.map((x) => x.perSecond), 50);
  const without = pct(tp.off.map((x) => x.perSecond), 50);
  const cpuWith = pct(tp.on.map((x) => x.cpuUs), 50);
  const cpuWithout = pct(tp.off.map((x) => x.cpuUs), 50);
  console.log(`deliveries on A: ${withRedis.toFixed(0)}/s publishing events, ${without.toFixed(0)}/s not (ratio ${(withRedis / without).toFixed(2)})`);
  console.log(`CPU per delivery: ${cpuWith.toFixed(0)} µs publishing events, ${cpuWithout.toFixed(0)} µs not (ratio ${(cpuWith / cpuWithout).toFixed(2)})`);
  await eventCpuMicros(redis.url, 2000); // warm-up
  const eventUs = await eventCpuMicros(redis.url);
  console.log(`one event alone: ${eventUs.toFixed(1)} µs CPU (publish + receive + own echo dropped), ${((100 * eventUs) / cpuWithout).toFixed(1)} % of a delivery's CPU`);
  const [r, p1, p10] = latencies;
  const result = {
    bench: 'cross-node-idle',
    date: new Date().toISOString(),
    users: USERS,
    rounds: ROUNDS,
    latencies,
    ratios: { poll1sP50OverRedisP50: Number((p1!.p50Ms / r!.p50Ms).toFixed(1)), poll10sP50OverRedisP50: Number((p10!.p50Ms / r!.p50Ms).toFixed(1)) },
    // One Redis pair, the events' delivery listener attached (publishing) or detached (notPublishing).
    deliveriesPerSecond: {
      publishing: Math.round(withRedis),
      notPublishing: Math.round(without),
      ratio: Number((withRedis / without).toFixed(2)),
      runs: { publishing: tp.on.map((x) => Math.round(x.perSecond)), notPublishing: tp.off.map((x) => Math.round(x.perSecond)) },
    },
    cpuMicrosPerDelivery: { publishing: Math.round(cpuWith), notPublishing: Math.round(cpuWithout), ratio: Number((cpuWith / cpuWithout).toFixed(2)) },
    eventAlone: { cpuMicros: Number(eventUs.toFixed(1)), percentOfDeliveryCpu: Number(((100 * eventUs) / cpuWithout).toFixed(1)) },
  };
  const out = join(import.meta.dirname, '..', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'cross-node-idle.json'), `${JSON.stringify(result, null, 2)}\n`);
  writePlot('cross-node-idle', {
    title: 'Delivery on node A to * EXISTS on node B (p50)',
    unit: 'ms',
    bars: latencies.map((l) => ({ label: l.scenario, value: l.p50Ms })),
  });
  console.log('wrote bench/results/cross-node-idle.json and .svg');
} finally {
  await redis.stop();
}
process.exit(0);
