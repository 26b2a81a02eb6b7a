/**
 * A user's logins per minute (rates.loginsPerMinutePerUser, per user: user:<address>:rates.<rate>) against a
 * real daemon with the real static directory, counting its password checks: over the rate, a login with a
 * password this node verified before is refused with a temporary error on every protocol *without* a
 * password check (what a governor that lowers it to save CPU needs); a wrong password is checked and fails
 * as for anyone and never uses the user's tokens; other users are untouched. Then the governor, given a
 * CPU target it cannot meet, lowers the heaviest user's login rate through the `mailfleet limit set` path
 * and records it, with the rate it measured from the daemon's sample.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import type { AuthenticateOptions, AuthResult } from '../../lib/directory/types.js';
import { StaticDirectory } from '../../lib/directory/static.js';
import { governorConfig } from '../../lib/governor/config.js';
import { Governor } from '../../lib/governor/loop.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { setLimits } from '../../lib/ops/limit.js';
import { silentLogger } from '../../lib/log.js';
import { governorSchema } from '../../lib/spec/schema.js';
import { testCert } from '../daemon/mail-harness.js';
import { adminGet, configFor, RawClient, tempDir, TOKEN } from '../ops/fixture.js';

class CountingDirectory extends StaticDirectory {
  calls = 0;
  override async authenticate(login: string, password: string, opts?: AuthenticateOptions): Promise<AuthResult> {
    this.calls++;
    return super.authenticate(login, password, opts);
  }
}

const ALICE_RATE = 'user:alice@example.com:rates.loginsPerMinutePerUser';
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

describe('the login rate per user', { timeout: 90_000 }, () => {
  let daemon: RunningDaemon;
  let directory: CountingDirectory;
  let dir: string;
  let cleanup: () => Promise<void>;
  const port = (protocol: string) => daemon.sockets.find((s) => s.protocol === protocol && s.listener.startsWith('default-'))!.port;
  const admin = () => `http://127.0.0.1:${daemon.adminPort}`;
  const fleet = () => resolveFleet({ admin: [admin()], token: TOKEN });

  before(async () => {
    const t = await tempDir('mf-gov-rate-');
    dir = t.dir;
    cleanup = t.cleanup;
    directory = new CountingDirectory({ file: join(t.dir, 'users.yaml'), domains: ['example.com', 'example.org'], logger: silentLogger });
    const config = configFor({ imap: { allowInsecureAuth: true, authFailureDelayMs: 0 }, pop3: { allowInsecureAuth: true, authFailureDelayMs: 0 } });
    daemon = await startDaemon(config, { dataDir: t.dir, baseDir: t.dir, logger: silentLogger, tls: testCert(), directory });
  });
  after(async () => {
    await daemon?.stop(1000);
    await cleanup?.();
  });

  /** One IMAP session: LOGIN, then LOGOUT when admitted; the tagged reply of LOGIN. */
  async function imap(user: string, password = 'password'): Promise<string> {
    const c = await RawClient.open(port('imap'));
    try {
      await c.waitFor(/^\* OK/, 10_000);
      const r = (await c.send(`a LOGIN ${user} ${password}`, /^a /, 10_000)).slice(2);
      if (r.startsWith('OK')) await c.send('b LOGOUT', /^b /, 10_000);
      return r;
    } finally {
      c.close();
    }
  }

  async function smtpAuth(user: string): Promise<string> {
    const c = await RawClient.open(port('submission'));
    try {
      await c.waitFor(/^220 /, 10_000);
      await c.send('EHLO client.test', /^250 /, 10_000);
      return await c.send(`AUTH PLAIN ${plain(user, 'password')}`, /^\d{3} /, 10_000);
    } finally {
      c.close();
    }
  }

  async function pop3(user: string): Promise<string> {
    const c = await RawClient.open(port('pop3'));
    try {
      await c.waitFor(/^\+OK/, 10_000);
      await c.send(`USER ${user}`, /^[+-]/, 10_000);
      return await c.send('PASS password', /^[+-]/, 10_000);
    } finally {
      c.close();
    }
  }

  it('GIVEN no login rate (the default, 0) WHEN alice logs in 25 times in a row THEN every login is admitted', async () => {
    for (let i = 0; i < 25; i++) assert.match(await imap('alice@example.com'), /^OK/, `login ${i + 1}`);
  });

  it('GIVEN alice is held to 1 login a minute WHEN she logs in again and again THEN she is refused with a temporary error on IMAP, SMTP and POP3, without a password check; bob is untouched', async () => {
    // The memory of verified passwords is per service: each protocol has seen hers once.
    assert.match(await smtpAuth('alice@example.com'), /^235 /);
    assert.match(await pop3('alice@example.com'), /^\+OK/);
    const reports = await setLimits(fleet(), [{ scope: ALICE_RATE, value: 1 }]);
    assert.ok(reports.every((r) => r.ok), JSON.stringify(reports));
    assert.match(await imap('alice@example.com'), /^OK/, 'her one login of the minute');
    const checks = directory.calls;
    assert.match(await imap('alice@example.com'), /^NO \[UNAVAILABLE\] .*loginsPerMinutePerUser limit of 1 logins per minute/);
    assert.match(await smtpAuth('alice@example.com'), /^454 4\.7\.0 .*loginsPerMinutePerUser/);
    assert.match(await pop3('alice@example.com'), /^-ERR \[SYS\/TEMP\] .*loginsPerMinutePerUser/);
    assert.equal(directory.calls, checks, 'a refused login with a password verified before costs no password check');
    for (let i = 0; i < 5; i++) assert.match(await imap('bob@example.com'), /^OK/, `bob's login ${i + 1}`);
  });

  it('GIVEN alice is over her rate WHEN someone tries a wrong password THEN it is checked and fails as for anyone, and takes none of her tokens', async () => {
    const checks = directory.calls;
    assert.match(await imap('alice@example.com', 'wrong'), /^NO \[AUTHENTICATIONFAILED\]/);
    assert.equal(directory.calls, checks + 1);
    // Her right password, no longer remembered after the failure: checked, then refused by the rate.
    assert.match(await imap('alice@example.com'), /^NO \[UNAVAILABLE\] .*loginsPerMinutePerUser/);
    assert.equal(directory.calls, checks + 2);
  });

  it('GIVEN a raise to 1000 WHEN alice logs in THEN she is admitted at once (a raise adds its tokens), and the sample reports her checks and refusals', async () => {
    await setLimits(fleet(), [{ scope: ALICE_RATE, value: 1000 }]);
    assert.match(await imap('alice@example.com'), /^OK/);
    const sample = await adminGet<{ logins: Array<{ user: string; checked: number; rateRefused: number; limit: number }> }>(admin(), '/v1/governor/sample');
    const alice = sample.logins.find((r) => r.user === 'alice@example.com');
    assert.ok(alice, JSON.stringify(sample.logins));
    assert.equal(alice.limit, 1000);
    assert.ok(alice.rateRefused >= 4, `rate refusals counted: ${alice.rateRefused}`);
    assert.ok(alice.checked >= 29, `checks counted: ${alice.checked}`);
    await setLimits(fleet(), [{ scope: ALICE_RATE, value: 'default' }]);
  });

  it('GIVEN a CPU target the daemon cannot meet and no session to cap WHEN alice logs in far more than bob THEN the governor lowers her login rate (from none) to no less than the fair share, and records it', async () => {
    const config = governorConfig(
      governorSchema.parse({ mode: 'enforce', targets: { cpuPercent: 0.001 }, intervalSeconds: 0.2, settleSeconds: 0.2, cooldownSeconds: 60, stepPercent: 50, floor: 2 }),
    );
    const gov = new Governor({ fleet: fleet(), config, stateDir: join(dir, 'governor') });
    gov.start();
    try {
      await gov.tickOnce(); // the first reading: no deltas yet
      for (let i = 0; i < 12; i++) assert.match(await imap('alice@example.com'), /^OK/);
      for (let i = 0; i < 2; i++) assert.match(await imap('bob@example.com'), /^OK/);
      const t = await gov.tickOnce();
      const d = t.result?.decisions.find((x) => x.scope === ALICE_RATE);
      assert.ok(d, `decisions: ${JSON.stringify(t.result?.decisions)}; scopes read: ${JSON.stringify(t.result?.readings)}`);
      assert.equal(d.action, 'lower');
      assert.equal(d.kind, 'login');
      assert.equal(d.from, undefined, 'she had no login rate');
      assert.ok(typeof d.to === 'number' && d.to >= d.fairShare! && d.to < d.current!, JSON.stringify(d));
      assert.ok(!t.result!.decisions.some((x) => x.scope.startsWith('user:bob')), 'bob, under the fair share, is not touched');
      const limits = await adminGet<{ overrides: Record<string, number> }>(admin(), '/v1/limits');
      assert.equal(limits.overrides[ALICE_RATE], d.to);
      const logged = gov.store.readLog().filter((e) => e.event === 'decision' && e.decision?.scope === ALICE_RATE).map((e) => e.status);
      assert.deepEqual(logged, ['applying', 'applied']);
      // Given back at the end: the override is dropped (she had none).
      assert.equal(gov.current.managed[ALICE_RATE]?.restoreTo, 'default');
    } finally {
      gov.stop();
    }
  });
});
