/**
 * Authentication brute force, as the daemon defends today: IMAP and POP3 delay every failed login by
 * authFailureDelayMs and close the session after maxBadCommands failures; SMTP AUTH failures are counted
 * in mailfleetd_messages_rejected_total{reason="auth-failed"}. A right password still works afterwards.
 * (No per-IP / per-user lockout window exists yet: see docs/faults.md, "Gaps".)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configFor, RawClient, startInProcess, tempDir, TOKEN, type TestDaemon } from '../ops/fixture.js';
import { imapCmd } from './fleet-client.js';

const DELAY_MS = 150;

describe('authentication brute force', { timeout: 30_000 }, () => {
  let d: TestDaemon;
  let cleanup: () => Promise<void>;

  before(async () => {
    const t = await tempDir('mf-brute-');
    cleanup = t.cleanup;
    d = await startInProcess(
      t.dir,
      configFor({
        smtp: { allowInsecureAuth: true },
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

  it('submission: AUTH failures are refused with 535 5.7.8 and visible in metrics', async () => {
    const c = await RawClient.open(d.port('submission'));
    await c.waitFor(/^220 /);
    await c.send('EHLO brute.test', /^250 /);
    for (let i = 0; i < 3; i++) {
      const r = await c.send(`AUTH PLAIN ${Buffer.from(`\0alice@example.com\0wrong${i}`).toString('base64')}`, /^\d{3} /);
      assert.match(r, /^535 5\.7\.8 /);
    }
    c.close();
    const text = await (await fetch(`${d.adminUrl}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
    const m = /^mailfleetd_messages_rejected_total\{[^}]*reason="auth-failed"[^}]*\} (\d+)/m.exec(text);
    assert.ok(m, 'auth-failed counter present');
    assert.ok(Number(m[1]) >= 3, `auth-failed = ${m[1]}`);
  });
});
