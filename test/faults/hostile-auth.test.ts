/**
 * Authentication brute force. Inside one connection: IMAP, POP3 and SMTP AUTH delay every failed login
 * by authFailureDelayMs, and IMAP/POP3 close the session after maxBadCommands failures. Across
 * connections: the lockout window (spec `auth`) refuses an IP after failuresPerIp failures and a login
 * name after failuresPerUser failures from any IP, for every service, without checking the password,
 * until old failures age out of windowSeconds. Different client IPs are loopback sources 127.0.0.x.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import { configFor, RawClient, startInProcess, tempDir, metricsText, type TestDaemon } from '../ops/fixture.js';
import { imapCmd } from './fleet-client.js';

const DELAY_MS = 150;

const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

async function metric(adminUrl: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await metricsText(adminUrl);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function imapFrom(port: number, from: string, user: string, password: string): Promise<string> {
  const c = await RawClient.open(port, from);
  await c.waitFor(/^\* OK/);
  const r = (await imapCmd(c, `LOGIN ${user} ${password}`)).status;
  c.close();
  return r;
}

async function pop3From(port: number, from: string, user: string, password: string): Promise<string> {
  const c = await RawClient.open(port, from);
  await c.waitFor(/^\+OK/);
  await c.send(`USER ${user}`, /^[+-]/);
  const r = await c.send(`PASS ${password}`, /^[+-]/, 3000);
  c.close();
  return r;
}

async function smtpAuthFrom(port: number, from: string, user: string, password: string): Promise<string> {
  const c = await RawClient.open(port, from);
  await c.waitFor(/^220 /);
  await c.send('EHLO brute.test', /^250 /);
  const r = await c.send(`AUTH PLAIN ${plain(user, password)}`, /^\d{3} /);
  c.close();
  return r;
}

describe('authentication brute force', { timeout: 30_000 }, () => {
  let d: TestDaemon;
  let cleanup: () => Promise<void>;

  before(async () => {
    const t = await tempDir('mf-brute-');
    cleanup = t.cleanup;
    d = await startInProcess(
      t.dir,
      configFor({
        smtp: { allowInsecureAuth: true, authFailureDelayMs: DELAY_MS },
        imap: { allowInsecureAuth: true, authFailureDelayMs: DELAY_MS, maxBadCommands: 5 },
        pop3: { allowInsecureAuth: true, authFailureDelayMs: DELAY_MS, maxBadCommands: 5 },
      }),
    );
  });
  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  it('IMAP: each wrong password costs the failure delay; the 5th failure closes the session', async () => {
    const c = await RawClient.open(d.port('imap'));
    await c.waitFor(/^\* OK/);
    const t0 = Date.now();
    for (let i = 0; i < 4; i++)
      assert.match((await imapCmd(c, `LOGIN alice@example.com wrong${i}`)).status, /^NO \[AUTHENTICATIONFAILED\]/);
    assert.ok(Date.now() - t0 >= 4 * DELAY_MS - 20, `4 failures took ${Date.now() - t0} ms`);
    c.socket.write('z LOGIN alice@example.com wrong4\r\n');
    assert.match(await c.waitFor(/^\* BYE/, 3000), /^\* BYE Too many invalid commands/);
    const ok = await RawClient.open(d.port('imap'));
    await ok.waitFor(/^\* OK/);
    assert.match((await imapCmd(ok, 'LOGIN alice@example.com password')).status, /^OK/);
    ok.close();
  });

  it('POP3: each wrong password costs the failure delay and answers -ERR [AUTH]', async () => {
    const c = await RawClient.open(d.port('pop3'));
    await c.waitFor(/^\+OK/);
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) {
      await c.send('USER bob@example.com', /^[+-]/);
      assert.match(await c.send(`PASS wrong${i}`, /^[+-]/, 3000), /^-ERR \[AUTH\]/);
    }
    assert.ok(Date.now() - t0 >= 3 * DELAY_MS - 20, `3 failures took ${Date.now() - t0} ms`);
    c.close();
  });

  it('submission: each AUTH failure costs the failure delay, is refused with 535 5.7.8 and is visible in metrics', async () => {
    const c = await RawClient.open(d.port('submission'));
    await c.waitFor(/^220 /);
    await c.send('EHLO brute.test', /^250 /);
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) {
      const r = await c.send(`AUTH PLAIN ${plain('alice@example.com', `wrong${i}`)}`, /^\d{3} /);
      assert.match(r, /^535 5\.7\.8 /);
    }
    assert.ok(Date.now() - t0 >= 3 * DELAY_MS - 20, `3 failures took ${Date.now() - t0} ms`);
    c.close();
    const text = await metricsText(d.adminUrl);
    const m = /^mailfleetd_messages_rejected_total\{[^}]*reason="auth-failed"[^}]*\} (\d+)/m.exec(text);
    assert.ok(m, 'auth-failed counter present');
    assert.ok(Number(m[1]) >= 3, `auth-failed = ${m[1]}`);
  });
});

describe('authentication lockout window (per IP and per login, all services)', { timeout: 30_000 }, () => {
  const WINDOW_S = 2;
  let d: TestDaemon;
  let cleanup: () => Promise<void>;

  before(async () => {
    const t = await tempDir('mf-lockout-');
    cleanup = t.cleanup;
    d = await startInProcess(
      t.dir,
      configFor({
        auth: { failuresPerIp: 5, failuresPerUser: 3, windowSeconds: WINDOW_S },
        smtp: { allowInsecureAuth: true, authFailureDelayMs: 0 },
        imap: { allowInsecureAuth: true, authFailureDelayMs: 0 },
        pop3: { allowInsecureAuth: true, authFailureDelayMs: 0 },
      }),
    );
  });
  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  it('per login: 3 IMAP failures from one IP lock bob on every IP and service, even with the right password; others are not locked; it opens after the window', async () => {
    for (let i = 0; i < 3; i++) assert.match(await imapFrom(d.port('imap'), '127.0.0.2', 'bob@example.com', `wrong${i}`), /^NO \[AUTHENTICATIONFAILED\]/);
    const lockedAt = Date.now();
    assert.match(await imapFrom(d.port('imap'), '127.0.0.3', 'bob@example.com', 'password'), /^NO \[UNAVAILABLE\] Too many failed logins for this account, try again in [12] seconds/);
    assert.match(await pop3From(d.port('pop3'), '127.0.0.3', 'BOB@example.com', 'password'), /^-ERR \[SYS\/TEMP\] Too many failed logins for this account/);
    assert.match(await smtpAuthFrom(d.port('submission'), '127.0.0.3', 'bob@example.com', 'password'), /^454 4\.7\.0 Too many failed logins for this account/);
    assert.match(await imapFrom(d.port('imap'), '127.0.0.3', 'alice@example.com', 'password'), /^OK /);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000 - (Date.now() - lockedAt) + 100));
    assert.match(await imapFrom(d.port('imap'), '127.0.0.3', 'bob@example.com', 'password'), /^OK /);
    assert.ok((await metric(d.adminUrl, 'mailfleetd_auth_lockouts_total', { service: 'imap', scope: 'user' })) >= 1);
    assert.ok((await metric(d.adminUrl, 'mailfleetd_auth_lockouts_total', { service: 'pop3', scope: 'user' })) >= 1);
    assert.ok((await metric(d.adminUrl, 'mailfleetd_auth_lockouts_total', { service: 'submission', scope: 'user' })) >= 1);
    assert.ok((await metric(d.adminUrl, 'mailfleetd_auth_failures_total', { service: 'imap' })) >= 3);
  });

  it('per IP: 5 POP3 failures on 5 different logins lock that IP for everyone; another IP still logs in', async () => {
    for (let i = 0; i < 5; i++) assert.match(await pop3From(d.port('pop3'), '127.0.0.4', `guess${i}@example.com`, 'x'), /^-ERR \[AUTH\]/);
    assert.match(await pop3From(d.port('pop3'), '127.0.0.4', 'carol@example.org', 'password'), /^-ERR \[SYS\/TEMP\] Too many failed logins from your address/);
    assert.match(await imapFrom(d.port('imap'), '127.0.0.4', 'carol@example.org', 'password'), /^NO \[UNAVAILABLE\] Too many failed logins from your address/);
    assert.match(await pop3From(d.port('pop3'), '127.0.0.5', 'carol@example.org', 'password'), /^\+OK/);
    assert.ok((await metric(d.adminUrl, 'mailfleetd_auth_lockouts_total', { service: 'pop3', scope: 'ip' })) >= 1);
  });

  it('SMTP: wrong passwords get 535 5.7.8 until the lockout, then 454 4.7.0 (temporary: clients do not ask for a new password)', async () => {
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await smtpAuthFrom(d.port('submission'), '127.0.0.6', 'carol@example.org', `wrong${i}`));
    assert.deepEqual(replies.map((r) => r.slice(0, 9)), ['535 5.7.8', '535 5.7.8', '535 5.7.8', '454 4.7.0']);
  });
});

describe('lockout window fleet-wide through Redis (two nodes, one redis-server)', { timeout: 30_000 }, () => {
  let redis: RedisServer;
  const nodes: TestDaemon[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    redis = await startRedis();
    const config = configFor(
      {
        auth: { failuresPerIp: 5, failuresPerUser: 3, windowSeconds: 60 },
        smtp: { allowInsecureAuth: true, authFailureDelayMs: 0 },
        imap: { allowInsecureAuth: true, authFailureDelayMs: 0 },
        pop3: { allowInsecureAuth: true, authFailureDelayMs: 0 },
      },
      redis.url,
    );
    for (let i = 0; i < 2; i++) {
      const t = await tempDir(`mf-lockout-fleet${i}-`);
      cleanups.push(t.cleanup);
      nodes.push(await startInProcess(t.dir, config));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await redis?.stop();
    for (const c of cleanups) await c();
  });

  it('failures on node A lock the login on node B (another IP, another service); other users are not locked', async () => {
    const [a, b] = nodes as [TestDaemon, TestDaemon];
    for (let i = 0; i < 3; i++) assert.match(await imapFrom(a.port('imap'), '127.0.0.2', 'bob@example.com', `wrong${i}`), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imapFrom(b.port('imap'), '127.0.0.3', 'bob@example.com', 'password'), /^NO \[UNAVAILABLE\] Too many failed logins for this account, try again in (59|60) seconds/);
    assert.match(await pop3From(b.port('pop3'), '127.0.0.3', 'bob@example.com', 'password'), /^-ERR \[SYS\/TEMP\] Too many failed logins for this account/);
    assert.match(await imapFrom(b.port('imap'), '127.0.0.3', 'alice@example.com', 'password'), /^OK /);
    assert.ok((await metric(b.adminUrl, 'mailfleetd_auth_lockouts_total', { service: 'imap', scope: 'user' })) >= 1);
  });

  it('per IP across nodes: failures split over A and B add up', async () => {
    const [a, b] = nodes as [TestDaemon, TestDaemon];
    for (let i = 0; i < 5; i++) await pop3From((i % 2 ? b : a).port('pop3'), '127.0.0.4', `guess${i}@example.com`, 'x');
    assert.match(await imapFrom(a.port('imap'), '127.0.0.4', 'carol@example.org', 'password'), /^NO \[UNAVAILABLE\] Too many failed logins from your address/);
  });

  it('GIVEN redis-server stopped THEN logins still work and the window falls back to each node (no crash, no refusal for Redis)', async () => {
    const [a, b] = nodes as [TestDaemon, TestDaemon];
    await redis.stop();
    assert.match(await imapFrom(b.port('imap'), '127.0.0.5', 'carol@example.org', 'password'), /^OK /);
    for (let i = 0; i < 3; i++) assert.match(await imapFrom(a.port('imap'), '127.0.0.5', 'carol@example.org', `wrong${i}`), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imapFrom(a.port('imap'), '127.0.0.5', 'carol@example.org', 'password'), /^NO \[UNAVAILABLE\]/, 'node A counts locally');
    assert.match(await imapFrom(b.port('imap'), '127.0.0.5', 'carol@example.org', 'password'), /^OK /, 'node B did not see them: per node while Redis is down');
  });
});
