import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RedisAdmission } from '../../lib/limits/redis.js';
import { LimitTable } from '../../lib/limits/table.js';
import { LocalRateLimiter, RedisRateLimiter } from '../../lib/limits/rates.js';
import type { Lease, ScopeKey } from '../../lib/limits/types.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { testConfig } from './fixture.js';

const user = (id: string): ScopeKey => ({ kind: 'user', service: 'imap', id });
const dom = (id: string): ScopeKey => ({ kind: 'domain', service: 'imap', id });

describe('RedisAdmission against a real redis-server', () => {
  let redis: RedisServer;
  const open: RedisAdmission[] = [];
  const node = (limitOf: (k: ScopeKey) => number, leaseSeconds = 30, keyPrefix = `t${Math.random()}:`) => {
    const a = new RedisAdmission({ url: redis.url, limitOf, leaseSeconds, keyPrefix });
    open.push(a);
    return a;
  };
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const a of open) await a.close();
    await redis.stop();
  });

  test('GIVEN two nodes sharing Redis WHEN 10× the cap acquire in parallel THEN exactly the cap is admitted fleet-wide', async () => {
    const prefix = 'flood:';
    const a = node(() => 5, 30, prefix);
    const b = node(() => 5, 30, prefix);
    await Promise.all([a.ready(), b.ready()]);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? a : b).acquire([user('alice@example.com'), dom('example.com')]),
      ),
    );
    const ok = results.filter((r) => r.ok);
    assert.equal(ok.length, 5);
    for (const r of results)
      if (!r.ok) assert.equal(r.text, 'imap perUser limit of 5 reached for user alice@example.com');
    const snapA = await a.snapshot();
    assert.equal(snapA.find((u) => u.scope.kind === 'user')!.current, 5, 'fleet-wide count seen from node A');
    for (const r of ok) (r as Lease).release();
    await new Promise((r) => setTimeout(r, 50));
    const again = await b.acquire([user('alice@example.com')]);
    assert.equal(again.ok, true, 'released slots are free again');
    if (again.ok) again.release();
  });

  test('GIVEN a node that dies holding leases THEN its slots come back after the lease TTL, and live leases are refreshed', async () => {
    const prefix = 'heal:';
    const dying = node(() => 2, 1, prefix);
    const alive = node(() => 3, 1, prefix);
    await Promise.all([dying.ready(), alive.ready()]);
    assert.equal((await dying.acquire([user('bob@example.com')])).ok, true);
    assert.equal((await dying.acquire([user('bob@example.com')])).ok, true);
    const kept = await alive.acquire([user('bob@example.com')]);
    assert.equal(kept.ok, true);
    assert.equal((await alive.acquire([user('bob@example.com')])).ok, false, '3 held, limit 3');
    // The node dies: no release, no refresh.
    dying.client.disconnect();
    await new Promise((r) => setTimeout(r, 1600));
    const s = (await alive.snapshot()).find((u) => u.scope.kind === 'user')!;
    assert.equal(s.current, 1, 'only the live (refreshed) lease is left');
    assert.equal(s.local, 1);
  });

  test('GIVEN Redis goes away THEN admission falls back to per-node counters and never fails; back again, leases are re-registered', async () => {
    const own = await startRedis();
    const a = new RedisAdmission({ url: own.url, limitOf: () => 2, leaseSeconds: 30, commandTimeoutMs: 200 });
    open.push(a);
    await a.ready();
    const l1 = await a.acquire([user('carol@example.com')]);
    assert.equal(l1.ok, true);
    const port = own.port;
    await own.stop();
    const l2 = await a.acquire([user('carol@example.com')]);
    assert.equal(l2.ok, true, 'fallback admits within the per-node count');
    const l3 = await a.acquire([user('carol@example.com')]);
    assert.equal(l3.ok, true, 'the per-node fallback counts only leases taken during the outage');
    assert.ok(a.fallbacks >= 2);
    assert.equal(
      (await a.acquire([user('carol@example.com')])).ok,
      false,
      'per-node cap still holds during the outage',
    );
    const back = await startRedis(port);
    try {
      await a.ready(5000);
      await new Promise((r) => setTimeout(r, 300));
      const s = (await a.snapshot()).find((u) => u.scope.kind === 'user')!;
      assert.equal(s.current, 3, 'every live lease (before and during the outage) is counted in Redis again');
    } finally {
      await a.close();
      await back.stop();
    }
  });

  test('GIVEN a live limit change THEN the Redis admission uses the new value at the next attempt', async () => {
    const table = new LimitTable({ config: testConfig() });
    const a = node((k) => table.limitOf(k));
    await a.ready();
    const leases = await Promise.all(
      [1, 2, 3].map(() => a.acquire([{ kind: 'user', service: 'pop3', id: 'dave@example.com' }])),
    );
    assert.ok(leases.every((l) => l.ok));
    table.apply([{ scope: 'pop3.perUser', value: 1 }]);
    const r = await a.acquire([{ kind: 'user', service: 'pop3', id: 'dave@example.com' }]);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.text, 'pop3 perUser limit of 1 reached for user dave@example.com');
  });

  test('GIVEN Redis token buckets shared by two nodes THEN the rate holds fleet-wide and a refusal says when to retry', async () => {
    const a = node(() => 1);
    const b = node(() => 1);
    await Promise.all([a.ready(), b.ready()]);
    const limitOf = () => 10;
    const ra = new RedisRateLimiter({
      redis: a.client,
      limitOf,
      fallback: new LocalRateLimiter(limitOf),
      keyPrefix: 'rate-test:',
    });
    const rb = new RedisRateLimiter({
      redis: b.client,
      limitOf,
      fallback: new LocalRateLimiter(limitOf),
      keyPrefix: 'rate-test:',
    });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? ra : rb).take([
          { rate: 'messagesPerMinutePerSender', id: 'eve@example.com' },
          { rate: 'messagesPerMinutePerIp', id: '192.0.2.3' },
        ]),
      ),
    );
    assert.equal(results.filter((r) => r.ok).length, 10);
    const refused = results.find((r) => !r.ok);
    assert.ok(refused && !refused.ok);
    assert.match(
      refused.text,
      /rate limit exceeded: messagesPerMinutePerSender limit of 10 messages per minute reached for eve@example.com/,
    );
    assert.ok(refused.retryAfterSeconds >= 1 && refused.retryAfterSeconds <= 6);
  });

  test('GIVEN a login rate of 341 a minute in Redis WHEN a user logs in 40 times at once THEN its bucket holds 5 s of the rate (28), not a minute\'s; a rate under 12 a minute still holds one token', async () => {
    const a = node(() => 1);
    await a.ready();
    const limitOf = (c: { id: string }) => (c.id === 'slow@example.com' ? 7 : 341);
    const r = new RedisRateLimiter({ redis: a.client, limitOf, fallback: new LocalRateLimiter(limitOf), keyPrefix: `burst${Math.random()}:` });
    const take = (id: string) => r.take([{ rate: 'loginsPerMinutePerUser', id }]);
    const results = await Promise.all(Array.from({ length: 40 }, () => take('heavy@example.com')));
    // 28.4 tokens, plus what refills (5.7/s) while 40 calls go by on a loaded box; a minute's worth would admit all 40.
    const ok = results.filter((x) => x.ok).length;
    assert.ok(ok >= 28 && ok <= 30, `admitted ${ok}`);
    const no = results.find((x) => !x.ok);
    assert.ok(no && !no.ok);
    assert.match(no.text, /loginsPerMinutePerUser limit of 341 logins per minute reached for heavy@example.com/);
    assert.equal(no.retryAfterSeconds, 1, 'a token every 0.18 s');
    // 7 a minute: 0.58 tokens of 5 s is clamped to one token (refilled every 8.6 s).
    assert.deepEqual((await Promise.all([take('slow@example.com'), take('slow@example.com')])).map((x) => x.ok), [true, false]);
  });
});

test('LocalRateLimiter: a login rate holds 5 s of its rate (RATE_BURST_SECONDS), refills at the rate, and a raise adds its extra capacity at once', () => {
  let now = 1_000_000;
  let limit = 341;
  const r = new LocalRateLimiter(() => limit, () => now);
  try {
    const take = () => r.takeSync([{ rate: 'loginsPerMinutePerUser', id: 'heavy@example.com' }]).ok;
    let n = 0;
    while (take()) n++;
    assert.equal(n, 28, '341 × 5 / 60 = 28.4 tokens');
    now += 1000;
    n = 0;
    while (take()) n++;
    assert.equal(n, 6, '341 / 60 = 5.7 a second (with the fraction left over)');
    limit = 682;
    assert.equal(take(), true, 'a raise to 682 adds 28.4 tokens of capacity');
  } finally {
    r.close();
  }
});

test('LocalRateLimiter: burst up to the limit, then refill at limit/window; all or nothing across buckets', () => {
  let now = 1_000_000;
  const r = new LocalRateLimiter(
    (c) => (c.rate === 'messagesPerMinutePerIp' ? 6 : 100),
    () => now,
  );
  try {
    for (let i = 0; i < 6; i++)
      assert.equal(r.takeSync([{ rate: 'messagesPerMinutePerIp', id: '1.2.3.4' }]).ok, true);
    const refused = r.takeSync([
      { rate: 'messagesPerMinutePerSender', id: 'a@x.org' },
      { rate: 'messagesPerMinutePerIp', id: '1.2.3.4' },
    ]);
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.equal(refused.retryAfterSeconds, 10);
    now += 10_000; // one token back (6 per 60 s)
    assert.equal(r.takeSync([{ rate: 'messagesPerMinutePerIp', id: '1.2.3.4' }]).ok, true);
    assert.equal(r.takeSync([{ rate: 'messagesPerMinutePerIp', id: '1.2.3.4' }]).ok, false);
    // the refused combined take cost the sender bucket nothing: 100 are still there
    for (let i = 0; i < 100; i++)
      assert.equal(r.takeSync([{ rate: 'messagesPerMinutePerSender', id: 'a@x.org' }]).ok, true);
    assert.equal(r.takeSync([{ rate: 'messagesPerMinutePerSender', id: 'a@x.org' }]).ok, false);
  } finally {
    r.close();
  }
});
