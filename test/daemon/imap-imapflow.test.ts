import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
before(async () => {
  h = await startImapHarness();
});
after(async () => h?.close());

function client(secure = false): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1',
    port: h.port,
    secure,
    auth: { user: 'bob@example.com', pass: PASSWORD },
    logger: false,
    tls: { rejectUnauthorized: false },
    doSTARTTLS: true,
  });
}

test('imapflow: STARTTLS, AUTHENTICATE, special-use list, append, fetch source, move, and IDLE sees a delivery within 1 s', async () => {
  const c = client();
  await c.connect();
  try {
    assert.equal(c.capabilities.has('STARTTLS'), false, 'upgraded with STARTTLS: no longer offered');
    assert.equal(c.capabilities.has('IDLE'), true);
    const boxes = await c.list();
    const byUse = Object.fromEntries(boxes.filter((b) => b.specialUse).map((b) => [b.specialUse, b.path]));
    assert.deepEqual(byUse, { '\\Inbox': 'INBOX', '\\Drafts': 'Drafts', '\\Junk': 'Junk', '\\Sent': 'Sent', '\\Trash': 'Trash' });

    const raw = 'From: bob@example.com\r\nTo: x@example.org\r\nSubject: draft \u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nd\u00e9j\u00e0 vu\r\n';
    const appended = await c.append('Drafts', Buffer.from(raw), ['\\Draft', '\\Seen']);
    assert.ok(appended && appended.uid === 1 && appended.uidValidity, `APPENDUID: ${appended && appended.uid} ${appended && appended.uidValidity}`);

    const lock = await c.getMailboxLock('Drafts');
    try {
      const msg = await c.fetchOne('1', { source: true, flags: true, envelope: true, bodyStructure: true, uid: true });
      assert.ok(msg);
      assert.equal(msg.source?.toString(), raw);
      // No \Recent: imapflow enables IMAP4rev2 (offered since issue 21), which has none (RFC 9051 Appendix E).
      assert.deepEqual([...(msg.flags ?? [])].sort(), ['\\Draft', '\\Seen']);
      assert.equal(msg.envelope?.subject, 'draft \u00e9');
      assert.equal(msg.bodyStructure?.type, 'text/plain');
      const moved = await c.messageMove('1', 'Sent');
      assert.ok(moved && moved.uidMap?.get(1) === 1, 'COPYUID maps 1 → 1');
    } finally {
      lock.release();
    }
    assert.equal((await c.status('Sent', { messages: true })).messages, 1);
    assert.equal((await c.status('Drafts', { messages: true })).messages, 0);

    await c.mailboxOpen('INBOX');
    const before = c.mailbox ? c.mailbox.exists : 0;
    const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
    void c.idle().catch(() => {}); // starts IDLE; its promise settles only when IDLE ends
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await h.deliver('bob@example.com', 'Subject: ping\r\n\r\nhello\r\n');
    const count = await Promise.race([seen, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS within 1 s')), 1000))]);
    assert.equal(count, before + 1);
    assert.ok(Date.now() - t0 < 1000);
  } finally {
    await c.logout();
  }
});
