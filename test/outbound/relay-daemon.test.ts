/**
 * Submission to other domains through the spec's relay, end to end with real daemons: node A relays to
 * node B (another mailfleetd, the smarthost owning example.net). nodemailer submits one message to a
 * local user, a remote user and a remote address that does not exist: the local copy lands at once, the
 * remote one arrives on B, the unknown one comes back to the sender as a delivery-status report. A's MX
 * port still refuses to relay.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { hashPassword } from '../../lib/directory/static.js';
import { configFor, RawClient, startInProcess, tempDir, metricsText, type TestDaemon } from '../ops/fixture.js';

function inbox(root: string, address: string): string[] {
  const [local, domain] = address.split('@') as [string, string];
  const dir = join(root, 'mail', domain, local, 'Maildir');
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) out.push(readFileSync(join(dir, sub, n), 'latin1'));
  }
  return out;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('submission to other domains through smtp.relay (two real daemons)', { timeout: 30_000 }, () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let dirA: string;
  let dirB: string;
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    const tb = await tempDir('mf-relay-b-');
    cleanups.push(tb.cleanup);
    dirB = tb.dir;
    writeFileSync(join(dirB, 'users.yaml'), `users:\n  - address: zed@example.net\n    passwordHash: ${await hashPassword('password')}\n`);
    b = await startInProcess(dirB, configFor({ domains: [{ name: 'example.net' }] }));
    const ta = await tempDir('mf-relay-a-');
    cleanups.push(ta.cleanup);
    dirA = ta.dir;
    a = await startInProcess(
      dirA,
      configFor({ smtp: { allowInsecureAuth: true, authFailureDelayMs: 0, relay: { host: '127.0.0.1', port: b.port('smtp'), startTls: 'none', retrySeconds: 1 } } }),
    );
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    for (const c of cleanups) await c();
  });

  it('nodemailer submits to a local, a remote and an unknown remote recipient: local at once, remote on the relay, a bounce for the unknown one', async () => {
    const t = createTransport({ host: '127.0.0.1', port: a.port('submission'), secure: false, auth: { user: 'alice@example.com', pass: 'password' }, tls: { rejectUnauthorized: false } });
    const info = await t.sendMail({
      from: 'alice@example.com',
      to: ['zed@example.net', 'bob@example.com', 'nouser@example.net'],
      subject: 'outbound through the relay',
      text: 'hello over there',
    });
    t.close();
    assert.deepEqual([...info.accepted].sort(), ['bob@example.com', 'nouser@example.net', 'zed@example.net']);
    assert.equal(inbox(dirA, 'bob@example.com').filter((m) => m.includes('Subject: outbound through the relay')).length, 1, 'local copy durable before the 250');
    await until(() => inbox(dirB, 'zed@example.net').length === 1, 10_000, 'the relayed copy on B');
    const relayed = inbox(dirB, 'zed@example.net')[0]!;
    assert.match(relayed, /Subject: outbound through the relay/);
    assert.equal((relayed.match(/^Received: /gm) ?? []).length, 2, 'received by A, then by B');
    await until(() => inbox(dirA, 'alice@example.com').length === 1, 10_000, 'the bounce to alice');
    const bounce = inbox(dirA, 'alice@example.com')[0]!;
    assert.match(bounce, /Subject: Undelivered Mail Returned to Sender/);
    assert.match(bounce, /^Return-Path: <>\r\nDelivered-To: alice@example\.com\r\n/, 'a bounce carries the null sender');
    assert.match(bounce, /Final-Recipient: rfc822; nouser@example\.net\r\nAction: failed\r\nStatus: 5\.1\.1/);
    // The queue entry goes after the bounce is delivered (never before): wait for it, do not race it.
    await until(() => readdirSync(join(dirA, 'queue', hostname())).length === 0, 10_000, 'queue empty (one folder per node)');
    assert.deepEqual(readdirSync(join(dirA, 'queue', hostname())), []);
    const text = await metricsText(a.adminUrl);
    assert.match(text, /^mailfleetd_outbound_recipients_total\{outcome="relayed"\} 1$/m);
    assert.match(text, /^mailfleetd_outbound_recipients_total\{outcome="bounced"\} 1$/m);
  });

  it('relayed mail must come from an address the user owns: alice sending as bob gets 553 5.7.1; as the team alias she is in, it goes', async () => {
    const c = await RawClient.open(a.port('submission'));
    await c.waitFor(/^220 /);
    await c.send('EHLO x.test', /^250 /);
    assert.match(await c.send(`AUTH PLAIN ${Buffer.from('\0alice@example.com\0password').toString('base64')}`, /^\d{3} /), /^235 /);
    await c.send('MAIL FROM:<bob@example.com>', /^250/);
    assert.match(await c.send('RCPT TO:<zed@example.net>', /^\d{3} /), /^553 5\.7\.1 .*not owned/);
    assert.match(await c.send('RCPT TO:<bob@example.com>', /^\d{3} /), /^553 5\.7\.1 .*not owned/, 'local recipients too: sending as another local user is refused the same way');
    await c.send('RSET', /^250/);
    await c.send('MAIL FROM:<team@example.com>', /^250/);
    assert.match(await c.send('RCPT TO:<zed@example.net>', /^\d{3} /), /^250 /);
    c.close();
  });

  it('the MX port (25) still refuses to relay, and submission refuses other domains before AUTH', async () => {
    const mx = await RawClient.open(a.port('smtp'));
    await mx.waitFor(/^220 /);
    await mx.send('EHLO x.test', /^250 /);
    await mx.send('MAIL FROM:<x@elsewhere.test>', /^250/);
    assert.match(await mx.send('RCPT TO:<zed@example.net>', /^\d{3} /), /^550 5\.7\.1 /);
    mx.close();
    const sub = await RawClient.open(a.port('submission'));
    await sub.waitFor(/^220 /);
    await sub.send('EHLO x.test', /^250 /);
    assert.match(await sub.send('MAIL FROM:<alice@example.com>', /^\d{3} /), /^530 5\.7\.0 /);
    sub.close();
  });
});
