/**
 * The lockout window under concurrency (issue 16): the login gate reserves a failure slot before the slow
 * password check, so parallel guesses cannot all slip through a window that has one slot left, in process
 * and fleet-wide through one real redis-server; and one client IP may have only auth.concurrentChecksPerIp
 * password checks in flight. Every client connects first and sends its LOGIN only when all are connected,
 * so the LOGINs reach the daemon together. Different client IPs are loopback sources 127.0.x.y.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient } from '../harness/raw-client.js';
import { configFor, metricsText, startInProcess, tempDir, type TestDaemon } from '../ops/fixture.js';
import { startRedis, type RedisServer } from './redis-server.js';

const PER_USER = 10;
const RIGHT = 'password';
const LOCKED_USER = /^NO \[UNAVAILABLE\] Too many failed logins for this account/;

interface Attempt {
  readonly port: number;
  readonly from: string;
  readonly user: string;
  readonly password: string;
}

/** Connects every client, then sends every LOGIN at once; the tagged replies in order. */
async function loginsAtOnce(attempts: readonly Attempt[]): Promise<string[]> {
  const clients = await Promise.all(
    attempts.map(async (a) => {
      const c = await RawClient.open(a.port, a.from);
      await c.waitFor(/^\* OK/, 10_000);
      return c;
    }),
  );
  const replies = await Promise.all(clients.map((c, i) => c.send(`a LOGIN ${attempts[i]!.user} ${attempts[i]!.password}`, /^a /, 20_000)));
  for (const c of clients) c.close();
  return replies.map((r) => r.slice(2));
}

/** Replies whose password was checked: a login or a wrong password (not a lockout or busy refusal). */
const checked = (replies: readonly string[]) => replies.filter((r) => r.startsWith('OK') || r.startsWith('NO [AUTHENTICATIONFAILED]'));

async function failuresMetric(adminUrl: string): Promise<number> {
  const line = (await metricsText(adminUrl)).split('\n').find((l) => l.startsWith('mailfleetd_auth_failures_total{') && l.includes('service="imap"'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/** `n` attempts from 127.<net>.<1..n>, spread over the given ports; the right password at `rightAt`. */
function spread(ports: readonly number[], net: number, n: number, user: string, rightAt = -1): Attempt[] {
  return Array.from({ length: n }, (_, i) => ({
    port: ports[i % ports.length]!,
    from: `127.${net}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    user,
    password: i === rightAt ? RIGHT : `guess${i}`,
  }));
}

const SPEC = {
  auth: { failuresPerIp: 1000, failuresPerUser: PER_USER, windowSeconds: 600 },
  imap: { allowInsecureAuth: true, authFailureDelayMs: 0 },
  limits: { imap: { perIp: 1000, perUser: 1000, perUserIp: 1000 } },
};

describe('lockout under concurrency, in process', { timeout: 60_000 }, () => {
  let d: TestDaemon;
  let cleanup: () => Promise<void>;
  before(async () => {
    const t = await tempDir('mf-login-race-');
    cleanup = t.cleanup;
    d = await startInProcess(t.dir, configFor(SPEC));
  });
  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  it('GIVEN 9 failures for bob WHEN 40 LOGINs from 40 addresses arrive at once, the right password among them THEN at most one password is checked and the rest are locked', async () => {
    const port = d.port('imap');
    for (const r of await loginsAtOnce(spread([port], 10, PER_USER - 1, 'bob@example.com'))) assert.match(r, /^NO \[AUTHENTICATIONFAILED\]/);
    const replies = await loginsAtOnce(spread([port], 11, 40, 'bob@example.com', 20));
    assert.ok(checked(replies).length <= 1, `passwords checked: ${checked(replies).length}\n${replies.join('\n')}`);
    assert.equal(replies.filter((r) => LOCKED_USER.test(r)).length, 40 - checked(replies).length);
  });

  it('GIVEN 200 wrong guesses for carol at once from 200 addresses THEN at most failuresPerUser are checked against the hash', async () => {
    const before = await failuresMetric(d.adminUrl);
    const replies = await loginsAtOnce(spread([d.port('imap')], 12, 200, 'carol@example.org'));
    assert.ok(checked(replies).length <= PER_USER, `checked ${checked(replies).length} of 200`);
    assert.ok((await failuresMetric(d.adminUrl)) - before <= PER_USER, 'hashed failures in metrics');
    assert.equal(replies.filter((r) => LOCKED_USER.test(r)).length, 200 - checked(replies).length);
  });

  it('GIVEN concurrentChecksPerIp 4 WHEN one address sends 30 LOGINs at once THEN those over the cap get a temporary refusal without a check', async () => {
    const attempts = Array.from({ length: 30 }, (_, i) => ({ port: d.port('imap'), from: '127.13.0.1', user: `nobody${i}@example.com`, password: 'x' }));
    const replies = await loginsAtOnce(attempts);
    const busy = replies.filter((r) => /^NO \[UNAVAILABLE\] Too many logins in progress from your address \(at most 4\)/.test(r));
    assert.ok(busy.length >= 1, replies.join('\n'));
    assert.equal(busy.length + checked(replies).length, 30, replies.join('\n'));
    // Nothing leaks: once the checks are done, the address checks again.
    assert.match((await loginsAtOnce([{ port: d.port('imap'), from: '127.13.0.1', user: 'alice@example.com', password: RIGHT }]))[0]!, /^OK/);
  });
});

describe('lockout under concurrency, fleet-wide through Redis (two nodes)', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  const nodes: TestDaemon[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const t = await tempDir(`mf-login-race-redis${i}-`);
      cleanups.push(t.cleanup);
      nodes.push(await startInProcess(t.dir, configFor(SPEC, redis.url)));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await redis?.stop();
    for (const c of cleanups) await c();
  });

  it('GIVEN 9 failures WHEN 40 LOGINs split over both nodes arrive at once, the right password among them THEN at most one password is checked in the fleet', async () => {
    const ports = nodes.map((n) => n.port('imap'));
    await loginsAtOnce(spread(ports, 20, PER_USER - 1, 'bob@example.com'));
    const replies = await loginsAtOnce(spread(ports, 21, 40, 'bob@example.com', 21));
    assert.ok(checked(replies).length <= 1, `passwords checked: ${checked(replies).length}\n${replies.join('\n')}`);
  });

  it('GIVEN 200 wrong guesses split over both nodes THEN at most failuresPerUser are checked in the fleet', async () => {
    const ports = nodes.map((n) => n.port('imap'));
    const replies = await loginsAtOnce(spread(ports, 22, 200, 'carol@example.org'));
    assert.ok(checked(replies).length <= PER_USER, `checked ${checked(replies).length} of 200`);
  });
});
