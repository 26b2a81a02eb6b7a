/**
 * A user at its cap is refused before the password check (lib/daemon/login-gate.ts): a client that retries
 * against a cap the governor set must not cost a password hash each time (bench/governor). The directory
 * here is the real static directory, counting its authenticate() calls. The early refusal is only for a
 * password this node verified before: a wrong password still gets the full check and the ordinary
 * failure (the reply tells nothing about the user), and every admitted login is still checked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LoginGate } from '../../lib/daemon/login-gate.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import type { AuthenticateOptions, AuthResult } from '../../lib/directory/types.js';
import { StaticDirectory } from '../../lib/directory/static.js';
import { AuthFailureWindow } from '../../lib/limits/auth-failures.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { testCert } from '../daemon/mail-harness.js';
import { configFor, RawClient, tempDir } from '../ops/fixture.js';

class CountingDirectory extends StaticDirectory {
  calls = 0;
  override async authenticate(login: string, password: string, opts?: AuthenticateOptions): Promise<AuthResult> {
    this.calls++;
    return super.authenticate(login, password, opts);
  }
}

const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

describe('refusal before the password check', { timeout: 60_000 }, () => {
  let daemon: RunningDaemon;
  let directory: CountingDirectory;
  let cleanup: () => Promise<void>;
  const clients: RawClient[] = [];
  const port = (protocol: string) => daemon.sockets.find((s) => s.protocol === protocol && s.listener.startsWith('default-'))!.port;

  before(async () => {
    const t = await tempDir('mf-gov-hash-');
    cleanup = t.cleanup;
    directory = new CountingDirectory({ file: join(t.dir, 'users.yaml'), domains: ['example.com', 'example.org'], logger: silentLogger });
    const config = configFor({ limits: { imap: { perUser: 1 }, submission: { perUser: 1 } }, imap: { allowInsecureAuth: true, authFailureDelayMs: 0 } });
    daemon = await startDaemon(config, { dataDir: t.dir, baseDir: t.dir, logger: silentLogger, tls: testCert(), directory });
  });
  after(async () => {
    for (const c of clients) c.close();
    await daemon?.stop(1000);
    await cleanup?.();
  });

  async function imapLogin(user: string, password: string): Promise<string> {
    const c = await RawClient.open(port('imap'));
    clients.push(c);
    await c.waitFor(/^\* OK/, 10_000);
    return (await c.send(`a LOGIN ${user} ${password}`, /^a /, 10_000)).slice(2);
  }

  it('GIVEN alice holds her one IMAP session WHEN she logs in again with her password THEN NO [UNAVAILABLE] without a password check; a wrong password is checked and fails as for anyone', async () => {
    assert.match(await imapLogin('alice@example.com', 'password'), /^OK/);
    const checks = directory.calls;
    for (let i = 0; i < 5; i++) assert.match(await imapLogin('alice@example.com', 'password'), /^NO \[UNAVAILABLE\]/);
    assert.equal(directory.calls, checks, 'a capped user with a password verified before costs no password check');
    // Wrong password, unknown user: both the ordinary failure after a check (no hint that alice is at her cap).
    assert.match(await imapLogin('alice@example.com', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.match(await imapLogin('nobody@example.com', 'password'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.equal(directory.calls, checks + 2);
  });

  it('GIVEN a wrong password erased what was verified WHEN alice retries with hers THEN it is checked again before she is refused', async () => {
    const checks = directory.calls;
    assert.match(await imapLogin('alice@example.com', 'password'), /^NO \[UNAVAILABLE\]/);
    assert.equal(directory.calls, checks + 1);
    assert.match(await imapLogin('alice@example.com', 'password'), /^NO \[UNAVAILABLE\]/);
    assert.equal(directory.calls, checks + 1);
  });

  it('GIVEN her session ends WHEN alice logs in THEN she is admitted, and the admitted login is still checked', async () => {
    for (const c of clients.splice(0)) c.close();
    const checks = directory.calls;
    let reply = '';
    // The closed session's lease is released when the daemon sees the close: retry briefly.
    for (let i = 0; i < 50 && !reply.startsWith('OK'); i++) {
      reply = await imapLogin('alice@example.com', 'password');
      if (!reply.startsWith('OK')) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(reply, /^OK/);
    assert.ok(directory.calls > checks, 'an admitted login asks the directory');
  });

  it('GIVEN bob holds his one submission session WHEN he AUTHs again THEN 421 4.7.0 without a password check', async () => {
    const first = await RawClient.open(port('submission'));
    clients.push(first);
    await first.waitFor(/^220 /, 10_000);
    await first.send('EHLO t.test', /^250 /, 10_000);
    assert.match(await first.send(`AUTH PLAIN ${plain('bob@example.com', 'password')}`, /^\d{3} /, 10_000), /^235 /);
    const checks = directory.calls;
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.open(port('submission'));
      clients.push(c);
      await c.waitFor(/^220 /, 10_000);
      await c.send('EHLO t.test', /^250 /, 10_000);
      assert.match(await c.send(`AUTH PLAIN ${plain('bob@example.com', 'password')}`, /^\d{3} /, 10_000), /^421 4\.7\.0 /);
    }
    assert.equal(directory.calls, checks);
  });
});

describe('password checks take turns per login name', { timeout: 60_000 }, () => {
  it('GIVEN 12 logins of alice in flight WHEN bob logs in after them THEN his check is not queued behind all of hers', async () => {
    const t = await tempDir('mf-gov-fair-');
    try {
      const directory = new StaticDirectory({ file: join(t.dir, 'users.yaml'), domains: ['example.com'], logger: silentLogger });
      const gate = new LoginGate({
        directory,
        admission: new LocalAdmission(() => 1000),
        failures: new AuthFailureWindow({ failuresPerIp: 1000, failuresPerUser: 1000 }),
        concurrentChecksPerIp: 1000,
      });
      const done: string[] = [];
      const attempt = (login: string) =>
        gate.login({ service: 'imap', login, password: 'password', remoteAddress: '127.0.0.1', failureDelayMs: 0 }).then((o) => {
          assert.equal(o.kind, 'ok');
          if (o.kind === 'ok') o.lease.release();
          done.push(login);
        });
      const all = Array.from({ length: 12 }, () => attempt('alice@example.com'));
      all.push(attempt('bob@example.com'));
      await Promise.all(all);
      // FIFO on the thread pool, bob's check would end last (13th); round-robin serves him at the next turn
      // (3rd or 4th; up to 6th when a loaded machine reorders the pool's completions, as seen once in a run).
      const at = done.indexOf('bob@example.com');
      assert.ok(at <= 5, `bob's login ended ${at + 1}th of 13: ${done.join(', ')}`);
    } finally {
      await t.cleanup();
    }
  });
});
