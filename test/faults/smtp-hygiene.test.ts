/**
 * SMTP hygiene as Postfix does it (issue 16), against a real daemon driven by real clients (Python
 * smtplib, swaks, nodemailer) and raw pipelined sessions: the hard error limit, recipient harvesting by
 * unknown or repeated RCPTs, RCPT TO:<postmaster>, bare LF/CR in DATA, AUTH hidden until STARTTLS, sender
 * ownership for authenticated local mail, Return-Path/Delivered-To, and Maildir tmp/ cleanup at start.
 * The Postfix 3.7 figures each case follows were taken from a Postfix peer (see docs/faults.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { RawClient } from '../harness/raw-client.js';
import { python, run } from '../daemon/mail-harness.js';
import { LineClient, PASSWORD, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

/** Opens a session on `port`, writes `text` in one go, returns every line until the server closes (or `ms` passes). */
async function pipelined(port: number, text: string, ms = 20_000): Promise<{ lines: string[]; closed: boolean }> {
  const c = await RawClient.open(port);
  await c.waitFor(/^220 /);
  c.socket.write(text);
  const deadline = Date.now() + ms;
  while (!c.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const r = { lines: [...c.lines], closed: c.closed };
  c.close();
  return r;
}

async function newTexts(h: SmtpHarness, address: string): Promise<string[]> {
  return Promise.all((await h.newMessages(address)).map((f) => readFile(join(h.maildir(address), 'new', f), 'utf8')));
}

function swaks(args: string[]): Promise<string> {
  return run('swaks', ['--timeout', '10', ...args]).catch((e: Error) => e.message);
}

describe('SMTP hygiene (Postfix-like)', { timeout: 120_000 }, () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('GIVEN smtplib sending unknown RCPTs WHEN it reaches smtp.hardErrorLimit (20) THEN 421 4.7.0 too many errors and the server closes', async () => {
    const out = await python(
      `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.ehlo('harvest.test')
s.mail('x@remote.test')
codes = []
try:
    for i in range(10000):
        code, msg = s.rcpt('nobody%d@example.com' % i)
        codes.append(code)
        if code == 421:
            print('421', msg.decode())
            break
except smtplib.SMTPServerDisconnected:
    print('disconnected')
print('550s', codes.count(550), 'total', len(codes))
`,
      [String(h.port('smtp'))],
    );
    assert.match(out, /421 4\.7\.0 .*too many errors/);
    assert.match(out, /550s 20 total 21/);
  });

  it('GIVEN 10,000 unknown RCPTs pipelined in one write THEN 20 are answered 550 5.1.1, then 421 4.7.0 and close (not 10,000 replies)', async () => {
    const rcpts = Array.from({ length: 10_000 }, (_, i) => `RCPT TO:<nobody${i}@example.com>\r\n`).join('');
    const r = await pipelined(h.port('smtp'), `EHLO harvest.test\r\nMAIL FROM:<x@remote.test>\r\n${rcpts}`);
    assert.equal(r.lines.filter((l) => l.startsWith('550 5.1.1')).length, 20);
    assert.match(r.lines.at(-1) ?? '', /^421 4\.7\.0 mx\.test Error: too many errors$/);
    assert.equal(r.closed, true);
  });

  it('GIVEN the same RCPT 10,000 times THEN it counts toward smtp.maxRecipients (100), the overshoot past smtp.recipientOvershootLimit counts as errors, and the session ends with 421', async () => {
    const rcpts = 'RCPT TO:<alice@example.com>\r\n'.repeat(10_000);
    const r = await pipelined(h.port('smtp'), `EHLO dup.test\r\nMAIL FROM:<x@remote.test>\r\n${rcpts}`);
    // The last EHLO line, MAIL FROM, then the 100 RCPTs.
    assert.equal(r.lines.filter((l) => l.startsWith('250 ')).length, 1 + 1 + 100);
    assert.equal(r.lines.filter((l) => l.startsWith('452 4.5.3')).length, 1000 + 20);
    assert.match(r.lines.at(-1) ?? '', /^421 4\.7\.0 .*too many errors/);
    assert.equal(r.closed, true);
  });

  it('GIVEN one recipient named three times (in two spellings) THEN it gets one copy', async () => {
    const before = (await h.newMessages('bob@example.com')).length;
    const out = await python(
      `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
print('refused', s.sendmail('x@remote.test', ['bob@example.com', 'bob@example.com', 'BOB@example.com'], 'Subject: dup-once\\r\\n\\r\\nx\\r\\n'))
s.quit()
`,
      [String(h.port('smtp'))],
    );
    assert.match(out, /refused \{\}/);
    assert.equal((await h.newMessages('bob@example.com')).length, before + 1);
  });

  it('GIVEN a successful delivery THEN the error count starts again (errors "without delivering mail", as Postfix counts them)', async () => {
    const bad = Array.from({ length: 15 }, (_, i) => `RCPT TO:<nobody${i}@example.com>\r\n`).join('');
    const msg = `MAIL FROM:<x@remote.test>\r\n${bad}RCPT TO:<alice@example.com>\r\nDATA\r\nSubject: reset\r\n\r\nx\r\n.\r\n`;
    const r = await pipelined(h.port('smtp'), `EHLO reset.test\r\n${msg}${msg}QUIT\r\n`);
    assert.equal(r.lines.filter((l) => l.startsWith('550 5.1.1')).length, 30);
    assert.equal(r.lines.filter((l) => l.startsWith('250 2.0.0 Ok: queued')).length, 2);
    assert.match(r.lines.at(-1) ?? '', /^221 /);
  });

  it('GIVEN swaks WHEN it sends to <postmaster> without a domain THEN 250 and the message reaches postmaster@ of the first domain (RFC 5321 4.5.1)', async () => {
    const before = (await h.newMessages('alice@example.com')).length;
    const out = await swaks(['--server', `127.0.0.1:${h.port('smtp')}`, '--from', 'x@remote.test', '--to', 'postmaster', '--header', 'Subject: to-postmaster']);
    assert.match(out, /<- {2}250 2\.0\.0 Ok: queued as/);
    const texts = await newTexts(h, 'alice@example.com');
    assert.equal(texts.length, before + 1);
    assert.ok(texts.some((t) => t.includes('Subject: to-postmaster')));
    const c = await LineClient.open(h.port('smtp'));
    await c.reply();
    await c.cmd('EHLO pm.test');
    await c.cmd('MAIL FROM:<x@remote.test>');
    assert.match(await c.cmd('RCPT TO:<PostMaster>'), /^250 /);
    c.close();
  });

  it('GIVEN bare LF in DATA THEN 550 5.5.2 bare <LF> received (smtp.bareNewline: reject), nothing stored, the session goes on', async () => {
    const before = (await h.newMessages('alice@example.com')).length;
    const tx = (body: string) => `MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n${body}\r\n.\r\n`;
    const r = await pipelined(
      h.port('smtp'),
      `EHLO bare.test\r\n${tx('Subject: bare-lf\r\n\r\nline one\nline two')}${tx('Subject: bare-cr\r\n\r\nline one\rline two')}${tx('Subject: clean\r\n\r\nfine')}QUIT\r\n`,
    );
    const data = r.lines.filter((l) => /^(550|250 2\.0\.0)/.test(l));
    assert.deepEqual(data.map((l) => l.slice(0, 9)), ['550 5.5.2', '550 5.5.2', '250 2.0.0'], JSON.stringify(r.lines));
    assert.match(data[0]!, /bare <LF> received/);
    assert.match(data[1]!, /bare <CR> received/);
    const texts = await newTexts(h, 'alice@example.com');
    assert.equal(texts.length, before + 1);
    assert.ok(!texts.some((t) => t.includes('Subject: bare-')));
  });

  it('GIVEN submission without TLS THEN EHLO does not offer AUTH (plaintext auth is off); after STARTTLS it does; MAIL before AUTH is still 530 5.7.0', async () => {
    const out = await python(
      `
import smtplib, ssl, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.ehlo()
print('plain-auth', s.has_extn('auth'))
print('mail', s.mail('alice@example.com'))
print('authcmd', s.docmd('AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHBhc3N3b3Jk'))
s.rset()
s.starttls(context=ssl._create_unverified_context())
s.ehlo()
print('tls-auth', s.has_extn('auth'), s.esmtp_features.get('auth'))
s.login('alice@example.com', sys.argv[2])
print('login ok')
s.quit()
`,
      [String(h.port('submission')), PASSWORD],
    );
    assert.match(out, /plain-auth False/);
    assert.match(out, /mail \(530, b'5\.7\.0 /);
    assert.match(out, /authcmd \(538, b'5\.7\.0 /);
    assert.match(out, /tls-auth True\s+PLAIN LOGIN/);
    assert.match(out, /login ok/);
  });

  it('GIVEN nodemailer authenticated as bob WHEN it sends as alice to a local recipient THEN 553 5.7.1; as bob or an alias that reaches bob it is accepted', async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: h.port('submission'), secure: false, requireTLS: true, auth: { user: 'bob@example.com', pass: PASSWORD }, tls: { rejectUnauthorized: false } });
    const before = (await h.newMessages('carol@example.org')).length;
    await assert.rejects(t.sendMail({ from: 'alice@example.com', to: 'carol@example.org', subject: 'forged', text: 'x' }), (e: { responseCode?: number; response?: string }) => {
      assert.equal(e.responseCode, 553);
      assert.match(e.response ?? '', /^553 5\.7\.1 /);
      return true;
    });
    assert.equal((await t.sendMail({ from: 'bob@example.com', to: 'carol@example.org', subject: 'own', text: 'x' })).accepted.length, 1);
    assert.equal((await t.sendMail({ from: 'team@example.com', to: 'carol@example.org', subject: 'alias', text: 'x' })).accepted.length, 1);
    const texts = await newTexts(h, 'carol@example.org');
    assert.equal(texts.length, before + 2);
    assert.ok(!texts.some((t2) => t2.includes('Subject: forged')));
    t.close();
  });

  it('GIVEN a message to two mailboxes THEN each copy starts with Return-Path: <sender> and its own Delivered-To', async () => {
    const out = await swaks(['--server', `127.0.0.1:${h.port('smtp')}`, '--from', 'Sender@Remote.test', '--to', 'team@example.com', '--header', 'Subject: trace-headers']);
    assert.match(out, /<- {2}250 2\.0\.0 /);
    for (const a of ['alice@example.com', 'bob@example.com']) {
      const t = (await newTexts(h, a)).find((x) => x.includes('Subject: trace-headers'));
      assert.ok(t, a);
      assert.match(t, new RegExp(`^Return-Path: <Sender@Remote\\.test>\\r\\nDelivered-To: ${a.replace('.', '\\.')}\\r\\nReceived: from `));
      const files = await h.newMessages(a);
      const f = files.find((n) => n.endsWith(`,S=${Buffer.byteLength(t)}`));
      assert.ok(f, `S= of ${a} matches its own copy`);
    }
    const bounce = await swaks(['--server', `127.0.0.1:${h.port('smtp')}`, '--from', '<>', '--to', 'bob@example.com', '--header', 'Subject: null-sender']);
    assert.match(bounce, /<- {2}250 2\.0\.0 /);
    const t = (await newTexts(h, 'bob@example.com')).find((x) => x.includes('Subject: null-sender'));
    assert.match(t ?? '', /^Return-Path: <>\r\nDelivered-To: bob@example\.com\r\n/);
  });
});

describe('SMTP hygiene: bareNewline normalize', { timeout: 60_000 }, () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ spec: { smtp: { allowInsecureAuth: false, bareNewline: 'normalize' } } });
  });
  after(async () => {
    await h?.close();
  });

  it('GIVEN smtp.bareNewline normalize THEN bare LF and bare CR are stored as CRLF', async () => {
    const r = await pipelined(
      h.port('smtp'),
      'EHLO n.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: norm\r\n\r\none\ntwo\rthree\r\n.\r\nQUIT\r\n',
    );
    assert.ok(r.lines.some((l) => l.startsWith('250 2.0.0')), JSON.stringify(r.lines));
    const [t] = await newTexts(h, 'alice@example.com');
    assert.ok(t!.endsWith('Subject: norm\r\n\r\none\r\ntwo\r\nthree\r\n'), JSON.stringify(t));
  });
});

describe('Maildir tmp/ cleanup at start', { timeout: 60_000 }, () => {
  it('GIVEN leftovers in tmp/ WHEN the daemon starts THEN files older than maildir.tmpMaxAgeHours and this host\'s files of dead processes go; others stay', async () => {
    const h0 = await startSmtpHarness();
    const tmp = join(h0.maildir('alice@example.com'), 'tmp');
    const folderTmp = join(h0.maildir('alice@example.com'), '.Sent', 'tmp');
    await h0.daemon.stop(2000);
    await mkdir(tmp, { recursive: true });
    await mkdir(folderTmp, { recursive: true });
    const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
    const now = Math.floor(Date.now() / 1000);
    // A pid that is not running: well above the usual pid_max of a test box, then checked.
    let dead = 4_000_000;
    for (;;) {
      try {
        process.kill(dead, 0);
        dead++;
      } catch {
        break;
      }
    }
    const files = {
      old: join(tmp, `${now - 40 * 3600}.M1P${process.ppid}Q1Rdeadbeef.other.host`),
      crashed: join(tmp, `${now - 60}.M1P${dead}Q7Rdeadbeef.${host}`),
      crashedCopy: join(folderTmp, `${now - 60}.M2P${dead}Q8Rdeadbeef.${host}.copy`),
      otherHost: join(tmp, `${now - 60}.M3P${dead}Q9Rdeadbeef.other.host`),
      liveProcess: join(tmp, `${now - 60}.M4P${process.ppid}Q1Rdeadbeef.${host}`),
    };
    for (const f of Object.values(files)) await writeFile(f, 'partial');
    const oldTime = new Date(Date.now() - 40 * 3600_000);
    await utimes(files.old, oldTime, oldTime);
    const h = await startSmtpHarness({ daemon: { dataDir: h0.dir, baseDir: h0.dir } });
    try {
      const exists = (p: string) => stat(p).then(() => true, () => false);
      const deadline = Date.now() + 10_000;
      while ((await exists(files.old)) || (await exists(files.crashed)) || (await exists(files.crashedCopy))) {
        assert.ok(Date.now() < deadline, 'stale tmp files still there after 10 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(await exists(files.otherHost), true, 'another host\'s recent file stays');
      assert.equal(await exists(files.liveProcess), true, 'a file of a running process stays');
    } finally {
      await h.close();
      await h0.close().catch(() => undefined);
    }
  });
});
