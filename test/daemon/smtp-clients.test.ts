/**
 * mailfleetd SMTP driven by real clients: swaks, Python smtplib and nodemailer deliver and are refused
 * with the right codes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { python, run } from './mail-harness.js';
import { LineClient, PASSWORD, startSmtpHarness, type SmtpHarness } from './smtp-harness.js';

function swaks(args: string[]): Promise<string> {
  // swaks exits non-zero on any refusal; tests read the transcript either way.
  return run('swaks', ['--timeout', '10', ...args]).catch((e: Error) => e.message);
}

describe('mailfleetd SMTP with real clients', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ spec: { smtp: { maxMessageSizeBytes: 20_000, maxRecipients: 3 } } });
  });
  after(async () => {
    await h?.close();
  });

  it('GIVEN swaks on the MX port WHEN it sends to a local user THEN 250 comes after the message is in new/ with a Received header', async () => {
    const out = await swaks(['--server', `127.0.0.1:${h.port('smtp')}`, '--from', 'someone@remote.test', '--to', 'alice@example.com', '--header', 'Subject: swaks-1']);
    assert.match(out, /<- {2}250 2\.0\.0 Ok: queued as/);
    const files = await h.newMessages('alice@example.com');
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\..+,S=\d+$/);
    const text = await readFile(join(h.maildir('alice@example.com'), 'new', files[0]!), 'utf8');
    assert.match(text, /^Return-Path: <someone@remote\.test>\r\nDelivered-To: alice@example\.com\r\nReceived: from .* \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(mailfleetd\) with ESMTP id /);
    assert.match(text, /for <alice@example\.com>/);
    assert.match(text, /Subject: swaks-1/);
    assert.equal(Number(/,S=(\d+)$/.exec(files[0]!)![1]), Buffer.byteLength(text));
  });

  it('fails with 550 5.1.1 for an unknown user, 550 5.7.1 for a foreign domain, 553 5.1.3 for path tricks', async () => {
    const base = ['--server', `127.0.0.1:${h.port('smtp')}`, '--from', 'x@remote.test'];
    assert.match(await swaks([...base, '--to', 'nobody@example.com']), /<\*\* 550 5\.1\.1 /);
    assert.match(await swaks([...base, '--to', 'victim@gmail.com']), /<\*\* 550 5\.7\.1 relaying denied/);
    // smtp-server refuses what is not an address at all (501); what parses but could leave the Maildir
    // root is refused by mailfleetd (553). Either way nothing is written outside <dataDir>/mail.
    for (const bad of ['../../etc@example.com', '.alice@example.com', 'a/b@example.com', '"../x"@example.com'])
      assert.match(await swaks([...base, '--to', bad]), /<\*\* 5(01|53) 5\.1\.3 /, bad);
    assert.deepEqual((await readdir(h.dir)).sort(), ['admin.token', 'mail', 'users.yaml']);
  });

  it('fails with 552 5.3.4 when the message is over the size limit, and nothing is stored', async () => {
    const before = (await h.newMessages('bob@example.com')).length;
    const out = await swaks(['--server', `127.0.0.1:${h.port('smtp')}`, '--from', 'x@remote.test', '--to', 'bob@example.com', '--body', 'x'.repeat(60) + '\n'.repeat(1) + ('y'.repeat(70) + '\n').repeat(400)]);
    assert.match(out, /<\*\* 552 5\.3\.4 /);
    assert.equal((await h.newMessages('bob@example.com')).length, before);
  });

  it('GIVEN Python smtplib WHEN it talks to submission THEN AUTH is required, bad passwords get 535 5.7.8, STARTTLS + AUTH delivers', async () => {
    const out = await python(
      `
import smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl._create_unverified_context()
s = smtplib.SMTP('127.0.0.1', port, timeout=10)
s.ehlo()
try:
    s.sendmail('alice@example.com', ['bob@example.com'], 'Subject: x\\r\\n\\r\\nhi\\r\\n')
except smtplib.SMTPSenderRefused as e:
    print('noauth', e.smtp_code, e.smtp_error.decode())
try:
    s.login('alice@example.com', 'password')
except smtplib.SMTPNotSupportedError:
    print('needtls: AUTH not offered')
s.starttls(context=ctx)
s.ehlo()
try:
    s.login('alice@example.com', 'wrong')
except smtplib.SMTPAuthenticationError as e:
    print('badpw', e.smtp_code, e.smtp_error.decode())
s.login('alice@example.com', sys.argv[2])
r = s.sendmail('alice@example.com', ['bob@example.com', 'team@example.com'], 'Subject: py\\r\\n\\r\\nhello\\r\\n')
print('sent', r)
s.quit()
`,
      [String(h.port('submission')), PASSWORD],
    );
    assert.match(out, /noauth 530 5\.7\.0/);
    assert.match(out, /needtls: AUTH not offered/);
    assert.match(out, /badpw 535 5\.7\.8/);
    assert.match(out, /sent \{\}/);
    // bob directly and via the team alias: one copy for bob, one for alice (aliases fan out, deduplicated).
    const bob = await h.newMessages('bob@example.com');
    const alice = await h.newMessages('alice@example.com');
    const bobTexts = await Promise.all(bob.map((f) => readFile(join(h.maildir('bob@example.com'), 'new', f), 'utf8')));
    assert.equal(bobTexts.filter((t) => t.includes('Subject: py')).length, 1);
    assert.match(bobTexts.find((t) => t.includes('Subject: py'))!, /with ESMTPSA id/);
    assert.ok(alice.length >= 1);
  });

  it('GIVEN smtplib on the implicit-TLS port WHEN it logs in THEN it delivers; a disabled account gets 535', async () => {
    const out = await python(
      `
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
s = smtplib.SMTP_SSL('127.0.0.1', int(sys.argv[1]), context=ctx, timeout=10)
try:
    s.login('dave@example.com', 'password')
except smtplib.SMTPAuthenticationError as e:
    print('disabled', e.smtp_code)
s.login('carol@example.org', 'password')
s.sendmail('carol@example.org', ['alice@example.com'], 'Subject: implicit\\r\\n\\r\\nx\\r\\n')
print('ok')
s.quit()
`,
      [String(h.port('submissions'))],
    );
    assert.match(out, /disabled 535/);
    assert.match(out, /ok/);
  });

  it('GIVEN nodemailer with AUTH over STARTTLS WHEN it sends THEN the message is accepted; a wrong password is refused with 535', async () => {
    const mk = (pass: string) =>
      nodemailer.createTransport({ host: '127.0.0.1', port: h.port('submission'), secure: false, requireTLS: true, auth: { user: 'bob@example.com', pass }, tls: { rejectUnauthorized: false } });
    const info = await mk(PASSWORD).sendMail({ from: 'bob@example.com', to: 'carol@example.org', subject: 'nm', text: 'from nodemailer' });
    assert.deepEqual(info.accepted, ['carol@example.org']);
    assert.match(info.response, /^250 2\.0\.0 /);
    await assert.rejects(mk('nope').sendMail({ from: 'bob@example.com', to: 'carol@example.org', text: 'x' }), (e: { responseCode?: number }) => e.responseCode === 535);
    const carol = await h.newMessages('carol@example.org');
    const texts = await Promise.all(carol.map((f) => readFile(join(h.maildir('carol@example.org'), 'new', f), 'utf8')));
    assert.ok(texts.some((t) => t.includes('from nodemailer')));
  });

  it('fails with 452 4.5.3 past the recipient limit, keeping the recipients already accepted', async () => {
    const c = await LineClient.open(h.port('smtp'));
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250/m);
    assert.match(await c.cmd('MAIL FROM:<x@remote.test>'), /^250/);
    for (const r of ['alice@example.com', 'bob@example.com', 'team@example.com']) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250/);
    assert.match(await c.cmd('RCPT TO:<carol@example.org>'), /^452 4\.5\.3 /);
    assert.match(await c.cmd('QUIT'), /^221/);
    c.close();
  });

  it('fails with 500 5.5.2 when a DATA line is longer than smtp.maxLineLengthBytes', async () => {
    const c = await LineClient.open(h.port('smtp'));
    await c.reply();
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<x@remote.test>');
    await c.cmd('RCPT TO:<bob@example.com>');
    assert.match(await c.cmd('DATA'), /^354/);
    c.socket.write(`Subject: long\r\n\r\n${'z'.repeat(5000)}\r\n.\r\n`);
    assert.match(await c.reply(), /^500 5\.5\.2 line longer than 4096 bytes/);
    c.close();
  });
});
