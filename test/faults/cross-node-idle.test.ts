/**
 * Cross-node IDLE: two in-process daemons share one mail root (as two nodes share a volume) and poll
 * only every 60 s. With Redis in the spec, a delivery over SMTP on node A reaches an IDLE session on
 * node B in < 1 s; without it, B sees nothing until a command or the poll (the control that proves the
 * first case would fail without the feature). Redis killed: deliveries still get 250, nothing crashes
 * or hangs, B finds the message on NOOP; Redis back on the same port: cross-node IDLE works again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mailEventsOf } from '../../lib/daemon/imap/mail-store.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { silentLogger } from '../../lib/log.js';
import { RedisMailboxEvents } from '../../lib/store/mailbox/index.js';
import { testCert } from '../daemon/mail-harness.js';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import { configFor, tempDir, type RawClient } from '../ops/fixture.js';
import { deliver, imapCmd, imapLogin } from './fleet-client.js';

const USER = 'alice@example.com';

interface Pair {
  readonly a: RunningDaemon;
  readonly b: RunningDaemon;
  stop(): Promise<void>;
}

/** Nodes A and B: own data dirs, one shared mail root, IMAP poll every 60 s. */
async function startPair(redisUrl?: string): Promise<Pair> {
  const t = await tempDir('mf-xidle-');
  const config = configFor(
    { imap: { allowInsecureAuth: true, authFailureDelayMs: 10, pollIntervalSeconds: 60 } },
    redisUrl,
  );
  const node = async (name: string) => {
    const dataDir = join(t.dir, name);
    await mkdir(dataDir);
    return startDaemon(config, {
      dataDir,
      baseDir: t.dir,
      mailRoot: join(t.dir, 'mail'),
      logger: silentLogger,
      tls: testCert(),
      admin: false,
    });
  };
  const a = await node('a');
  const b = await node('b').catch(async (e: unknown) => {
    await a.stop(500);
    throw e;
  });
  return {
    a,
    b,
    async stop() {
      await Promise.all([a.stop(500), b.stop(500)]);
      await t.cleanup();
    },
  };
}

interface Idle {
  readonly c: RawClient;
  exists: number;
}

const portOf = (d: RunningDaemon, protocol: string) =>
  d.sockets.find((s) => s.protocol === protocol && s.listener.startsWith('default-'))!.port;

/** Logs in on `d`, selects INBOX and enters IDLE; resolves with the client and the EXISTS count so far (kept current by the callers). */
async function idleOn(d: RunningDaemon): Promise<Idle> {
  const c = await imapLogin(portOf(d, 'imap'), USER);
  const sel = await imapCmd(c, 'SELECT INBOX');
  assert.match(sel.status, /^OK/);
  const exists = Number(/^\* (\d+) EXISTS/.exec(sel.lines.find((l) => / EXISTS$/.test(l)) ?? '* 0 EXISTS')![1]);
  await c.send('i1 IDLE', /^\+ /);
  return { c, exists };
}

/** Delivers on A over SMTP; resolves with the final SMTP reply and ms until B's `* n EXISTS` (or undefined within waitMs). */
async function deliverAndWatch(
  pair: Pair,
  b: Idle,
  subject: string,
  waitMs: number,
): Promise<{ reply: string; ms?: number }> {
  const want = new RegExp(`^\\* ${b.exists + 1} EXISTS$`);
  const from = b.c.lines.length;
  const t0 = performance.now();
  const seen = b.c.waitFor(want, waitMs, from).then(
    () => {
      b.exists++;
      return performance.now() - t0;
    },
    () => undefined,
  );
  const reply = await deliver(portOf(pair.a, 'smtp'), USER, subject);
  return { reply, ms: await seen };
}

/** Ends IDLE, then a NOOP; resolves with the last EXISTS count the session reported. */
async function noopExists(c: RawClient): Promise<number> {
  await c.send('DONE', /^i1 /);
  const r = await imapCmd(c, 'NOOP');
  assert.match(r.status, /^OK/);
  const last = c.lines.map((l) => /^\* (\d+) EXISTS$/.exec(l)).findLast((m) => m !== null);
  return Number(last?.[1] ?? 0);
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what} not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('cross-node IDLE through Redis pub/sub', { timeout: 30_000 }, () => {
  let redis: RedisServer;
  let pair: Pair;
  const clients: RawClient[] = [];

  before(async () => {
    redis = await startRedis();
    pair = await startPair(redis.url);
    const evB = mailEventsOf(pair.b.ctx);
    assert.ok(evB instanceof RedisMailboxEvents, 'redis in the spec gives RedisMailboxEvents');
    const evA = mailEventsOf(pair.a.ctx) as RedisMailboxEvents;
    await waitUntil(() => evA.usingRedis && evB.usingRedis, 5000, 'both nodes subscribed');
  });
  after(async () => {
    for (const c of clients) c.close();
    await pair?.stop();
    await redis?.stop();
  });

  it('GIVEN B in IDLE WHEN a message is delivered over SMTP on A THEN B gets * N EXISTS in < 1 s', async (t) => {
    const b = await idleOn(pair.b);
    clients.push(b.c);
    const r = await deliverAndWatch(pair, b, 'xidle-1', 3000);
    assert.match(r.reply, /^250 /);
    assert.ok(r.ms !== undefined, 'B never saw the delivery while in IDLE');
    assert.ok(r.ms < 1000, `B saw it after ${Math.round(r.ms)} ms`);
    t.diagnostic(`SMTP on A to * EXISTS on B: ${r.ms.toFixed(1)} ms`);
    const metrics = await pair.b.ctx.metrics.registry.getSingleMetricAsString('mailfleetd_mailbox_events_total');
    assert.match(metrics, /mailfleetd_mailbox_events_total\{origin="remote"\} [1-9]/);
    b.c.close();
  });

  it('GIVEN redis-server killed THEN delivery on A still gets 250, both nodes stay up, B finds the message on NOOP; back on the same port THEN cross-node IDLE works again', async () => {
    const b = await idleOn(pair.b);
    clients.push(b.c);
    await redis.stop();
    const down = await deliverAndWatch(pair, b, 'xidle-down', 1500);
    assert.match(down.reply, /^250 /, 'delivery must not depend on Redis');
    assert.equal(down.ms, undefined, `no cross-node event while Redis is down (so NOOP below is what finds it): ${b.c.lines.slice(-6).join(' | ')}`);
    assert.equal(await noopExists(b.c), b.exists + 1, `B finds the message on its next command: ${b.c.lines.slice(-6).join(' | ')}`);

    // Delivered while Redis is still down, and B is back in IDLE: the resubscribe poke must surface it.
    const again = await idleOn(pair.b);
    clients.push(again.c);
    const missed = await deliverAndWatch(pair, again, 'xidle-missed', 200);
    assert.match(missed.reply, /^250 /);
    assert.equal(missed.ms, undefined, `seen while Redis was down: ${again.c.lines.slice(-6).join(' | ')}`);
    const from = again.c.lines.length;
    redis = await startRedis(redis.port);
    const t0 = Date.now();
    await again.c.waitFor(new RegExp(`^\\* ${again.exists + 1} EXISTS$`), 6000, from);
    const catchUpMs = Date.now() - t0;
    again.exists++;
    const evA = mailEventsOf(pair.a.ctx) as RedisMailboxEvents;
    const evB = mailEventsOf(pair.b.ctx) as RedisMailboxEvents;
    await waitUntil(() => evA.usingRedis && evB.usingRedis, 6000, 'both nodes resubscribed');

    const back = await deliverAndWatch(pair, again, 'xidle-back', 3000);
    assert.match(back.reply, /^250 /);
    assert.ok(back.ms !== undefined && back.ms < 1000, `after reconnect B saw it after ${back.ms} ms (catch-up took ${catchUpMs} ms)`);
    const errors = await pair.a.ctx.metrics.registry.getSingleMetricAsString('mailfleetd_mailbox_events_errors_total');
    assert.match(errors, /mailfleetd_mailbox_events_errors_total [1-9]/);
  });
});

describe('cross-node IDLE without Redis (control)', { timeout: 20_000 }, () => {
  let pair: Pair;
  const clients: RawClient[] = [];

  before(async () => {
    pair = await startPair();
  });
  after(async () => {
    for (const c of clients) c.close();
    await pair?.stop();
  });

  it('GIVEN no redis in the spec THEN B does not see a delivery on A within 1.5 s, but does on NOOP', async () => {
    assert.ok(!(mailEventsOf(pair.b.ctx) instanceof RedisMailboxEvents));
    const b = await idleOn(pair.b);
    clients.push(b.c);
    const r = await deliverAndWatch(pair, b, 'xidle-control', 1500);
    assert.match(r.reply, /^250 /);
    assert.equal(r.ms, undefined, `B saw it after ${r.ms} ms: the poll should not have run (60 s)`);
    assert.equal(await noopExists(b.c), b.exists + 1);
  });
});
