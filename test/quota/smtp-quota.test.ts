/**
 * Quota at SMTP with a real client (nodemailer) and raw sessions: 99 % full takes one more small message
 * and refuses the next big one with 552 5.2.2; an over-quota recipient does not fail the others (RCPT
 * 452 4.2.2, or at DATA: delivered to the rest, a DSN for the one over); warnings at 80/95 %.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import { readUsage } from '../../lib/store/usage.js';
import { LineClient, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.org';

/** A raw message of about `bytes` octets: short CRLF lines (under smtp.maxLineLengthBytes). */
function rawMessage(subject: string, bytes: number): string {
  const line = 'x'.repeat(68) + '\r\n';
  return `From: <sender@remote.test>\r\nSubject: ${subject}\r\n\r\n${line.repeat(Math.max(1, Math.ceil(bytes / line.length)))}`;
}

function mx(h: SmtpHarness) {
  return nodemailer.createTransport({ host: '127.0.0.1', port: h.port('smtp'), secure: false, ignoreTLS: true });
}

describe('SMTP quota', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({
      spec: {
        quotas: {
          warnPercents: [80, 95],
          domains: {
            'example.com': { users: { alice: { storageBytes: 100_000 }, bob: { storageBytes: 10_000_000 } } },
            'example.org': { users: { carol: { storageBytes: 3_000 } } },
          },
        },
      },
    });
  });
  after(() => h.close());

  it('GIVEN a user at 99 % WHEN a small message comes THEN it is taken, and the next big one is 552 5.2.2', async () => {
    const t = mx(h);
    await t.sendMail({ envelope: { from: 'sender@remote.test', to: [ALICE] }, raw: rawMessage('fill', 98_300) });
    const filled = await readUsage(h.maildir(ALICE));
    assert.ok(filled.bytes >= 98_000 && filled.bytes < 100_000, `usage after filling: ${filled.bytes}`);
    const small = await t.sendMail({ envelope: { from: 'sender@remote.test', to: [ALICE] }, raw: rawMessage('small', 50) });
    assert.match(small.response, /^250 /);
    const afterSmall = await readUsage(h.maildir(ALICE));
    assert.ok(afterSmall.messages > filled.messages && afterSmall.bytes > filled.bytes);
    await assert.rejects(
      t.sendMail({ envelope: { from: 'sender@remote.test', to: [ALICE] }, raw: rawMessage('big', 5_000) }),
      (e: { responseCode?: number; response?: string }) => e.responseCode === 552 && /5\.2\.2/.test(e.response ?? ''),
    );
    const names = await h.newMessages(ALICE);
    const texts = await Promise.all(names.map((n) => readFile(join(h.maildir(ALICE), 'new', n), 'utf8')));
    assert.ok(texts.some((x) => x.includes('Subject: small')));
    assert.ok(!texts.some((x) => x.includes('Subject: big')));
    // Crossing 80 % and 95 % in one message warns once, at the highest threshold reached.
    const warnings = texts.filter((x) => x.includes('X-Mailfleet-Quota-Warning:'));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /X-Mailfleet-Quota-Warning: 95/);
  });

  it('GIVEN one full recipient WHEN a message goes to it and another with SIZE= THEN RCPT refuses it with 552 5.2.2 and the other gets the message', async () => {
    // alice is now at or over 99 %: a known-full mailbox for a message without SIZE= (plain session).
    const c = await LineClient.open(h.port('smtp'));
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250/m);
    assert.match(await c.cmd('MAIL FROM:<sender@remote.test> SIZE=900'), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${ALICE}>`), /^552 5\.2\.2 /);
    assert.match(await c.cmd(`RCPT TO:<${BOB}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    assert.match(await c.cmd(`${rawMessage('multi', 500)}\r\n.`), /^250 /);
    c.close();
    const bobs = await Promise.all((await h.newMessages(BOB)).map((n) => readFile(join(h.maildir(BOB), 'new', n), 'utf8')));
    assert.ok(bobs.some((x) => x.includes('Subject: multi')));
  });

  it('GIVEN nodemailer to a full and a free recipient THEN info.rejected names the full one and the other is delivered', async () => {
    // Live: alice's quota down to exactly what she holds, so not one more byte fits (a known-full mailbox).
    const used = (await readUsage(h.maildir(ALICE))).bytes;
    const res = await fetch(`http://127.0.0.1:${h.adminPort}/v1/quota/${ALICE}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${h.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ storageBytes: used }),
    });
    assert.equal(res.status, 200);
    const again = await mx(h).sendMail({ envelope: { from: 'sender@remote.test', to: [ALICE, BOB] }, raw: rawMessage('nm-multi', 300) });
    assert.match(String((again as unknown as { rejectedErrors?: Array<{ response?: string }> }).rejectedErrors?.[0]?.response), /^452 4\.2\.2 /);
    assert.deepEqual(again.accepted, [BOB]);
    assert.deepEqual(again.rejected, [ALICE]);
  });

  it('GIVEN no SIZE= and a message too big for one recipient only WHEN sent THEN the others get it (250) and the sender a DSN with 5.2.2', async () => {
    const c = await LineClient.open(h.port('smtp'));
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250/m);
    // carol (3 000 bytes) is empty: RCPT cannot know; the 5 000-byte message is too big for her at DATA.
    assert.match(await c.cmd(`MAIL FROM:<${BOB}>`), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${CAROL}>`), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${BOB}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    assert.match(await c.cmd(`${rawMessage('data-time', 5_000)}\r\n.`), /^250 /);
    c.close();
    assert.deepEqual(await h.newMessages(CAROL), []);
    const bobs = await Promise.all((await h.newMessages(BOB)).map((n) => readFile(join(h.maildir(BOB), 'new', n), 'utf8')));
    assert.ok(bobs.some((x) => x.includes('Subject: data-time') && !x.includes('multipart/report')));
    const dsn = bobs.find((x) => x.includes('multipart/report'));
    assert.ok(dsn, 'the sender got a DSN');
    assert.match(dsn, /Final-Recipient: rfc822; carol@example\.org/);
    assert.match(dsn, /Status: 5\.2\.2/);
  });

  it('GIVEN every recipient over quota at DATA THEN the reply is 552 5.2.2 and nothing is stored', async () => {
    const c = await LineClient.open(h.port('smtp'));
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd('EHLO client.test'), /^250/m);
    assert.match(await c.cmd('MAIL FROM:<sender@remote.test>'), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${CAROL}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    assert.match(await c.cmd(`${rawMessage('too-big', 5_000)}\r\n.`), /^552 5\.2\.2 /);
    c.close();
    assert.deepEqual(await h.newMessages(CAROL), []);
    assert.equal((await readUsage(h.maildir(CAROL))).messages, 0);
  });
});
