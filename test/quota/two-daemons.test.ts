/**
 * Two daemons on one mail volume (one mailRoot, as two nodes on GlusterFS): concurrent deliveries and
 * APPENDs through both, an EXPUNGE through one; both report the same usage, and it equals the Maildir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { UserQuotaStatus } from '../../lib/quota/index.js';
import { measureMaildir } from '../../lib/store/usage.js';
import { PASSWORD, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

const ALICE = 'alice@example.com';

async function quotaGet(h: SmtpHarness, address: string): Promise<UserQuotaStatus> {
  const res = await fetch(`http://127.0.0.1:${h.adminPort}/v1/quota/${address}`, { headers: { Authorization: `Bearer ${h.adminToken}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as UserQuotaStatus;
}

function imap(h: SmtpHarness): ImapFlow {
  const port = h.daemon.sockets.find((s) => s.protocol === 'imap')!.port;
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: ALICE, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
}

describe('quota usage with two daemons on one volume', () => {
  let volume: string;
  let a: SmtpHarness;
  let b: SmtpHarness;
  before(async () => {
    volume = await mkdtemp(join(tmpdir(), 'mf-quota-vol-'));
    const spec = { imap: { allowInsecureAuth: true }, quotas: { warnPercents: [] } };
    a = await startSmtpHarness({ spec, daemon: { mailRoot: volume } });
    b = await startSmtpHarness({ spec, daemon: { mailRoot: volume } });
  });
  after(async () => {
    await a.close();
    await b.close();
    await rm(volume, { recursive: true, force: true });
  });

  it('GIVEN deliveries, APPENDs and an EXPUNGE through both daemons at once THEN both report the usage the Maildir holds', async () => {
    const send = (h: SmtpHarness, i: number) =>
      nodemailer
        .createTransport({ host: '127.0.0.1', port: h.port('smtp'), secure: false, ignoreTLS: true })
        .sendMail({ envelope: { from: 'x@remote.test', to: [ALICE] }, raw: `Subject: m${i}\r\n\r\n${'z'.repeat(100 + i * 37)}\r\n` });
    const ca = imap(a);
    const cb = imap(b);
    await Promise.all([ca.connect(), cb.connect()]);
    await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => send(i % 2 === 0 ? a : b, i)),
      ...Array.from({ length: 4 }, (_, i) => (i % 2 === 0 ? ca : cb).append('INBOX', `Subject: ap${i}\r\n\r\n${'w'.repeat(500 + i)}\r\n`)),
    ]);
    // One expunge through b while a delivers more.
    await cb.mailboxOpen('INBOX');
    await Promise.all([cb.messageDelete('1:3'), send(a, 99), send(b, 98)]);
    await Promise.all([ca.logout(), cb.logout()]);
    const truth = await measureMaildir(join(volume, 'example.com', 'alice', 'Maildir'));
    assert.equal(truth.messages, 12 + 4 - 3 + 2);
    const [ua, ub] = await Promise.all([quotaGet(a, ALICE), quotaGet(b, ALICE)]);
    assert.deepEqual(ua.usage, truth);
    assert.deepEqual(ub.usage, truth);
  });
});
