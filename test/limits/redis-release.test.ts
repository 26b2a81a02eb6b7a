/**
 * Releases in RedisAdmission are queued, not sent one by one: they ride along with the node's next acquire
 * script or go out in one call a turn of the loop later. These prove that batching never holds a slot a
 * client gave back, never lets the order flip, and never loses a release.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisAdmission } from '../../lib/limits/redis.js';
import type { Lease, ScopeKey } from '../../lib/limits/types.js';
import { startRedis, type RedisServer } from './redis-server.js';

const ip = (id: string): ScopeKey => ({ kind: 'ip', service: 'smtp', id });
const listener: ScopeKey = { kind: 'listener', service: 'smtp', id: 'default-smtp' };

describe('RedisAdmission release batching against a real redis-server', () => {
  let redis: RedisServer;
  let admin: Redis;
  const open: RedisAdmission[] = [];
  const node = (limitOf: (k: ScopeKey) => number, keyPrefix: string) => {
    const a = new RedisAdmission({ url: redis.url, limitOf, keyPrefix });
    open.push(a);
    return a;
  };
  const members = (key: string) => admin.zcard(key);
  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  after(async () => {
    for (const a of open) await a.close();
    admin.disconnect();
    await redis.stop();
  });

  test('GIVEN a cap of 1 held WHEN released and acquired again in the same tick THEN the new acquire is admitted (release goes first)', async () => {
    const a = node(() => 1, 'same-tick:');
    await a.ready();
    for (let i = 0; i < 20; i++) {
      const first = await a.acquire([ip('10.0.0.1')]);
      assert.equal(first.ok, true, `round ${i}: first`);
      (first as Lease).release();
      const second = await a.acquire([ip('10.0.0.1')]);
      assert.equal(second.ok, true, `round ${i}: a reconnect right after the close is admitted`);
      (second as Lease).release();
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await members('same-tick:smtp:ip:10.0.0.1'), 0, 'nothing left behind');
  });

  test('GIVEN a node that releases and then stays idle THEN the release still reaches Redis at once and another node gets the slot', async () => {
    const a = node(() => 1, 'idle:');
    const b = node(() => 1, 'idle:');
    await Promise.all([a.ready(), b.ready()]);
    const held = await a.acquire([ip('10.0.0.2'), listener]);
    assert.equal(held.ok, true);
    assert.equal((await b.acquire([ip('10.0.0.2')])).ok, false, 'the cap of 1 is held by node a');
    (held as Lease).release();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await members('idle:smtp:ip:10.0.0.2'), 0);
    assert.equal(await members('idle:smtp:listener:default-smtp'), 0);
    const taken = await b.acquire([ip('10.0.0.2')]);
    assert.equal(taken.ok, true, 'node b admits once node a released, no lease TTL to wait for');
    (taken as Lease).release();
  });

  test('GIVEN more releases in one tick than one script call carries THEN every one is removed', async () => {
    const a = node(() => 10_000, 'many:');
    await a.ready();
    const leases = await Promise.all(Array.from({ length: 1200 }, (_, i) => a.acquire([ip(`10.1.${i >> 8}.${i & 255}`), listener])));
    assert.equal(leases.filter((l) => l.ok).length, 1200);
    assert.equal(await members('many:smtp:listener:default-smtp'), 1200);
    for (const l of leases) (l as Lease).release();
    // One acquire right after carries part of the queue; the rest goes in its own calls.
    const next = await a.acquire([listener]);
    assert.equal(next.ok, true);
    (next as Lease).release();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await members('many:smtp:listener:default-smtp'), 0);
    assert.equal((await admin.keys('many:*')).length, 0, 'every ip set emptied and gone');
  });
});
