/**
 * RedisMailboxEvents against a real redis-server: events cross instances (as nodes), an instance does
 * not hear its own message twice, other subscribers on the channel and malformed messages do no harm,
 * and an unreachable Redis neither throws nor delays the in-process event.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { RedisMailboxEvents } from '../../lib/store/mailbox/index.js';
import { startRedis, type RedisServer } from '../limits/redis-server.js';

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('RedisMailboxEvents', { timeout: 20_000 }, () => {
  let redis: RedisServer;
  const open: RedisMailboxEvents[] = [];
  const make = (props: Partial<ConstructorParameters<typeof RedisMailboxEvents>[0]> = {}) => {
    const e = new RedisMailboxEvents({ url: redis.url, channel: 'test:mailbox', ...props });
    open.push(e);
    return e;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const e of open) await e.close();
    await redis?.stop();
  });

  it('GIVEN two instances THEN a publish on one reaches the other once, and its own listener once (not again from Redis)', async () => {
    let remote = 0;
    const a = make();
    const b = make({ onRemote: () => remote++ });
    await until(() => a.usingRedis && b.usingRedis, 5000, 'subscribed');
    let onA = 0;
    let onB = 0;
    let otherFolder = 0;
    a.subscribe('Alice@Example.com', 'INBOX', () => onA++);
    b.subscribe('alice@example.com', undefined, () => onB++);
    b.subscribe('alice@example.com', 'Sent', () => otherFolder++);
    a.publish('alice@example.com', 'inbox');
    assert.equal(onA, 1, 'in-process event is synchronous');
    await until(() => onB === 1, 1000, 'remote event');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(onA, 1, 'own message from Redis must not fire again');
    assert.equal(onB, 1);
    assert.equal(otherFolder, 0, 'other folders stay quiet');
    assert.equal(remote, 1);
  });

  it('GIVEN garbage on the channel THEN it is counted as an error and nothing fires', async () => {
    const errors: unknown[] = [];
    const b = make({ onError: (e) => errors.push(e) });
    await until(() => b.usingRedis, 5000, 'subscribed');
    let fired = 0;
    b.subscribe('alice@example.com', undefined, () => fired++);
    const raw = new Redis(redis.url);
    try {
      await raw.publish('test:mailbox', 'not json');
      await raw.publish('test:mailbox', JSON.stringify({ a: 42, o: 'x' }));
      await raw.publish('test:mailbox', JSON.stringify({ a: 'alice@example.com', o: 'x' }));
    } finally {
      raw.disconnect();
    }
    await until(() => fired === 1, 1000, 'the one good event');
    assert.equal(errors.length, 2);
  });

  it('GIVEN Redis unreachable THEN one log line for the outage, publish emits in-process at once, never throws, and close() is harmless twice', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const errors: unknown[] = [];
    const logLines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) }));
    const e = new RedisMailboxEvents({ url: `redis://127.0.0.1:${port}`, logger, onError: (x) => errors.push(x) });
    let fired = 0;
    e.subscribe('alice@example.com', undefined, () => fired++);
    // Several failed reconnects (both connections) make one log line: once per outage, not per attempt.
    await until(() => errors.length >= 6, 3000, 'repeated connection errors');
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) e.publish('alice@example.com');
    const ms = performance.now() - t0;
    assert.equal(fired, 1000);
    assert.ok(ms < 200, `1000 publishes with Redis down took ${ms} ms`);
    assert.equal(e.usingRedis, false);
    assert.equal(logLines.filter((l) => l.includes('mailbox events unavailable')).length, 1, logLines.join(''));
    await e.close();
    await e.close();
    e.publish('alice@example.com');
    assert.equal(fired, 1001, 'after close, events stay in-process');
  });
});
