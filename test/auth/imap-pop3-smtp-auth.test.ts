/**
 * Strong authentication on a real daemon: SCRAM-SHA-256 (test client from RFC 5802 alone), OAUTHBEARER and
 * XOAUTH2 with tokens from a local OIDC issuer, over IMAP, POP3 and SMTP; every failure counts toward the
 * lockout window of the shared login gate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { ScramClient } from './scram-client.js';
import { startIssuer, type LocalIssuer } from './oidc-issuer.js';
import { b64, LineClient, PASSWORD, startAuthDaemon, unb64, type AuthDaemon } from './harness.js';

function imapflow(port: number, auth: { user: string; pass?: string; accessToken?: string }): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: auth as never, logger: false, tls: { rejectUnauthorized: false } });
}

/** IMAP AUTHENTICATE SCRAM-SHA-256 with SASL-IR; returns the tagged reply and whether the server proved itself. */
async function imapScram(port: number, user: string, password: string): Promise<{ tagged: string; serverOk: boolean; client: LineClient }> {
  const c = await LineClient.open(port);
  await c.line();
  const scram = new ScramClient(user, password);
  c.send(`a AUTHENTICATE SCRAM-SHA-256 ${b64(scram.clientFirst)}`);
  const first = await c.line();
  if (!first.startsWith('+ ')) return { tagged: first, serverOk: false, client: c };
  c.send(b64(scram.clientFinal(unb64(first.slice(2)))));
  const second = await c.line();
  if (!second.startsWith('+ ')) return { tagged: second, serverOk: false, client: c };
  const serverOk = scram.verifyServerFinal(unb64(second.slice(2)));
  c.send('');
  return { tagged: (await c.until('a '))!.at(-1)!, serverOk, client: c };
}

/** IMAP AUTHENTICATE OAUTHBEARER (RFC 7628) by hand: the error challenge, then the failure. */
async function imapOAuthBearer(port: number, user: string, token: string): Promise<{ challenge?: Record<string, unknown>; tagged: string }> {
  const c = await LineClient.open(port);
  try {
    await c.line();
    c.send(`a AUTHENTICATE OAUTHBEARER ${b64(`n,a=${user},\x01host=127.0.0.1\x01port=${port}\x01auth=Bearer ${token}\x01\x01`)}`);
    const l = await c.line();
    if (!l.startsWith('+ ')) return { tagged: l };
    const challenge = JSON.parse(unb64(l.slice(2))) as Record<string, unknown>;
    c.send(b64('\x01'));
    return { challenge, tagged: await c.line() };
  } finally {
    c.close();
  }
}

describe('strong authentication: SCRAM-SHA-256 and OIDC tokens', () => {
  let d: AuthDaemon;
  let issuer: LocalIssuer;

  before(async () => {
    issuer = await startIssuer();
    d = await startAuthDaemon({
      users: [{ address: 'alice@example.com' }, { address: 'carol@example.com', scram: false }, { address: 'dave@example.com' }, { address: 'erin@example.com' }, ...[1, 2, 3, 4, 5].map((i) => ({ address: `t${i}@example.com` }))],
      auth: { failuresPerUser: 3, failuresPerIp: 1000, oidc: { issuer: issuer.issuer, audience: 'mail' } },
    });
  });
  after(async () => {
    await d?.close();
    await issuer?.close();
  });

  it('advertises AUTH=SCRAM-SHA-256, AUTH=OAUTHBEARER and AUTH=XOAUTH2 (IMAP), SASL … (POP3), XOAUTH2 only (SMTP)', async () => {
    const c = await LineClient.open(d.port('imap'));
    const greeting = await c.line();
    assert.match(greeting, /AUTH=PLAIN AUTH=SCRAM-SHA-256 AUTH=OAUTHBEARER AUTH=XOAUTH2/);
    c.close();
    const p = await LineClient.open(d.port('pop3'));
    await p.line();
    p.send('CAPA');
    assert.ok((await p.until('.')).includes('SASL PLAIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2'));
    p.close();
    const s = await LineClient.open(d.port('submission'));
    await s.line();
    s.send('EHLO client.test');
    const ehlo = await s.until('250 ');
    assert.ok(ehlo.includes('250-AUTH PLAIN LOGIN XOAUTH2'), ehlo.join('\n'));
    s.close();
  });

  it('IMAP: SCRAM-SHA-256 logs in with the stored keys, the server proves itself, and the session works', async () => {
    const { tagged, serverOk, client } = await imapScram(d.port('imap'), 'alice@example.com', PASSWORD);
    assert.match(tagged, /^a OK/);
    assert.equal(serverOk, true);
    client.send('b SELECT INBOX');
    assert.match((await client.until('b ')).at(-1)!, /^b OK/);
    client.close();
  });

  it('IMAP: SCRAM-SHA-256 with a wrong password, or for a user without SCRAM keys, fails AUTHENTICATIONFAILED', async () => {
    const wrong = await imapScram(d.port('imap'), 'erin@example.com', 'not-it');
    assert.match(wrong.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
    wrong.client.close();
    const noKeys = await imapScram(d.port('imap'), 'carol@example.com', PASSWORD);
    assert.match(noKeys.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
    noKeys.client.close();
  });

  it('POP3: SCRAM-SHA-256 logs in (RFC 5034 challenges) and STAT answers', async () => {
    const c = await LineClient.open(d.port('pop3'));
    await c.line();
    const scram = new ScramClient('alice@example.com', PASSWORD);
    c.send('AUTH SCRAM-SHA-256');
    assert.equal(await c.line(), '+ ');
    c.send(b64(scram.clientFirst));
    const first = await c.line();
    c.send(b64(scram.clientFinal(unb64(first.slice(2)))));
    const final = await c.line();
    assert.equal(scram.verifyServerFinal(unb64(final.slice(2))), true);
    c.send('');
    assert.match(await c.line(), /^\+OK Logged in/);
    c.send('STAT');
    assert.match(await c.line(), /^\+OK 0 0/);
    c.close();
  });

  it('IMAP: OAUTHBEARER with a token from the issuer (imapflow accessToken)', async () => {
    const token = await issuer.sign({ email: 'alice@example.com' });
    const client = imapflow(d.port('imap'), { user: 'alice@example.com', accessToken: token });
    await client.connect();
    const box = await client.mailboxOpen('INBOX');
    assert.equal(box.path, 'INBOX');
    await client.logout();
  });

  it('IMAP: XOAUTH2 with a token from the issuer', async () => {
    const token = await issuer.sign({ email: 'alice@example.com' });
    const c = await LineClient.open(d.port('imap'));
    await c.line();
    c.send(`a AUTHENTICATE XOAUTH2 ${b64(`user=alice@example.com\x01auth=Bearer ${token}\x01\x01`)}`);
    assert.match((await c.until('a ')).at(-1)!, /^a OK/);
    c.close();
  });

  it('IMAP: expired, wrong-audience, foreign-key and other-user tokens fail with the RFC 7628 challenge, then NO', async () => {
    // One user per case: each failure counts toward its login's lockout (auth.failuresPerUser 3 here).
    const cases = [
      await issuer.sign({ email: 't1@example.com' }, { expiresInSeconds: -120 }),
      await issuer.sign({ email: 't2@example.com' }, { audience: 'someone-else' }),
      await issuer.sign({ email: 't3@example.com' }, { foreignKey: true }),
      await issuer.sign({ email: 't4@example.com' }, { issuer: 'https://evil.example' }),
    ];
    for (const [i, token] of cases.entries()) {
      const r = await imapOAuthBearer(d.port('imap'), `t${i + 1}@example.com`, token);
      assert.equal(r.challenge?.status, 'invalid_token');
      assert.equal(r.challenge?.['openid-configuration'], `${issuer.issuer}/.well-known/openid-configuration`);
      assert.match(r.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
    }
    // A good token for erin presented as t5.
    const other = await imapOAuthBearer(d.port('imap'), 't5@example.com', await issuer.sign({ email: 'erin@example.com' }));
    assert.match(other.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
  });

  it('SMTP: XOAUTH2 with a token sends (nodemailer); a bad token gets the 334 challenge, then 535', async () => {
    const token = await issuer.sign({ email: 'alice@example.com' });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: d.port('submission'), secure: false, ignoreTLS: true, auth: { type: 'OAuth2', user: 'alice@example.com', accessToken: token } });
    const info = await t.sendMail({ from: 'alice@example.com', to: 'erin@example.com', subject: 'x', text: 'y' });
    assert.deepEqual(info.accepted, ['erin@example.com']);
    t.close();
    const c = await LineClient.open(d.port('submission'));
    await c.line();
    c.send('EHLO client.test');
    await c.until('250 ');
    c.send(`AUTH XOAUTH2 ${b64(`user=erin@example.com\x01auth=Bearer ${await issuer.sign({ email: 'erin@example.com' }, { audience: 'x' })}\x01\x01`)}`);
    const challenge = await c.line();
    assert.match(challenge, /^334 /);
    assert.equal((JSON.parse(unb64(challenge.slice(4))) as { status: string }).status, '401');
    c.send('');
    assert.match(await c.line(), /^535 /);
    c.close();
  });

  it('every failure (SCRAM proof, bad token, wrong password) counts toward the lockout window', async () => {
    const port = d.port('imap');
    const scram = await imapScram(port, 'dave@example.com', 'wrong');
    assert.match(scram.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
    scram.client.close();
    const token = await imapOAuthBearer(port, 'dave@example.com', await issuer.sign({ email: 'dave@example.com' }, { expiresInSeconds: -120 }));
    assert.match(token.tagged, /^a NO \[AUTHENTICATIONFAILED\]/);
    await assert.rejects(imapflow(port, { user: 'dave@example.com', pass: 'wrong' }).connect());
    // Three failures for dave (auth.failuresPerUser 3): now even the right password and a good token are refused.
    const locked = await imapScram(port, 'dave@example.com', PASSWORD);
    assert.match(locked.tagged, /^a NO \[UNAVAILABLE\] Too many failed logins for this account/);
    locked.client.close();
    const good = await imapOAuthBearer(port, 'dave@example.com', await issuer.sign({ email: 'dave@example.com' }));
    assert.match(good.tagged, /^a NO \[UNAVAILABLE\] Too many failed logins/);
    assert.ok(Number((await d.daemon.ctx.metrics.authLockouts.get()).values.reduce((n, v) => n + v.value, 0)) >= 2);
  });
});
