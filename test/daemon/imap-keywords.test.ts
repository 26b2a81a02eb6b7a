/**
 * IMAP keywords ($Forwarded, $Junk, Thunderbird tags) with a real client (imapflow): kept in Maildir
 * letters a–z with the folder's table in `dovecot-keywords` (Dovecot's format), found by SEARCH KEYWORD,
 * carried by COPY into a folder whose table differs, set at APPEND, seen by a second store that reads the
 * same Maildir (another node), and capped at 26 per folder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
let c: ImapFlow;
before(async () => {
  h = await startImapHarness();
  c = new ImapFlow({ host: '127.0.0.1', port: h.port, secure: false, auth: { user: 'alice@example.com', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
  await c.connect();
});
after(async () => {
  await c?.logout().catch(() => undefined);
  await h?.close();
});

// \Recent (this session saw the messages first) is not what these tests are about.
const stored = (flags: Iterable<string> | undefined) => [...(flags ?? [])].filter((f) => f !== '\\Recent').sort();

const message = (subject: string) => `From: a@example.com\r\nTo: alice@example.com\r\nSubject: ${subject}\r\n\r\nbody\r\n`;

test('imapflow: STORE keywords, FETCH and SEARCH them; PERMANENTFLAGS offers \\*; the table is Dovecot\'s dovecot-keywords', async () => {
  await h.deliver('alice@example.com', message('k1'));
  await h.deliver('alice@example.com', message('k2'));
  const box = await c.mailboxOpen('INBOX');
  assert.ok(box.permanentFlags?.has('\\*'), `PERMANENTFLAGS ${[...(box.permanentFlags ?? [])].join(' ')}`);
  assert.equal(await c.messageFlagsAdd('1', ['$Forwarded', 'Project-X', '\\Seen']), true);
  await c.messageFlagsAdd('2', ['$Junk']);
  const flags = new Map<number, string[]>();
  for await (const m of c.fetch('1:*', { flags: true, uid: true })) flags.set(m.seq, stored(m.flags));
  assert.deepEqual(flags.get(1), ['$Forwarded', 'Project-X', '\\Seen']);
  assert.deepEqual(flags.get(2), ['$Junk']);
  assert.deepEqual(await c.search({ keyword: '$Forwarded' }), [1]);
  assert.deepEqual(await c.search({ keyword: 'project-x' }), [1], 'keywords compare case-insensitively');
  assert.deepEqual(await c.search({ unKeyword: '$Junk' }), [1]);
  assert.deepEqual(await c.search({ keyword: 'NeverDefined' }), []);
  await c.messageFlagsRemove('1', ['Project-X']);
  for await (const m of c.fetch('1', { flags: true })) assert.deepEqual(stored(m.flags), ['$Forwarded', '\\Seen']);
  const inbox = h.maildir('alice@example.com');
  assert.equal(readFileSync(join(inbox, 'dovecot-keywords'), 'utf8'), '0 $Forwarded\n1 Project-X\n2 $Junk\n');
  const names = readdirSync(join(inbox, 'cur')).sort();
  assert.ok(names.some((n) => /:2,Sa$/.test(n)), names.join(' ')); // ASCII order, as Maildir asks
  assert.ok(names.some((n) => /:2,c$/.test(n)), names.join(' '));
});

test('COPY into a folder with another keyword table keeps the names; APPEND sets keywords; another node reads them from disk', async () => {
  await c.mailboxCreate('Tagged');
  await c.append('Tagged', message('appended'), ['$Label1', '\\Flagged']);
  await c.mailboxOpen('INBOX');
  await c.messageCopy('1:2', 'Tagged');
  await c.mailboxOpen('Tagged');
  const seen: string[][] = [];
  for await (const m of c.fetch('1:*', { flags: true })) seen.push(stored(m.flags));
  assert.deepEqual(seen, [['$Label1', '\\Flagged'], ['$Forwarded', '\\Seen'], ['$Junk']]);
  // A second store over the same Maildir, as a second daemon node would have.
  const other = new MailStore({ maildirOf: (a) => join(h.root, 'mail', a.split('@')[1]!, a.split('@')[0]!, 'Maildir'), events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
  const handle = await other.openMailbox('alice@example.com', 'Tagged');
  try {
    assert.deepEqual(handle.mailbox.messages.map((r) => handle.mailbox.flagsOf(r).sort()), seen);
  } finally {
    handle.release();
  }
});

test('past 26 keywords in a folder the extra ones are not stored, and nothing fails', async () => {
  await c.mailboxCreate('Many');
  await c.append('Many', message('many'));
  await c.mailboxOpen('Many');
  const kws = Array.from({ length: 30 }, (_, i) => `kw${i}`);
  assert.equal(await c.messageFlagsAdd('1', kws), true);
  for await (const m of c.fetch('1', { flags: true })) {
    const got = stored(m.flags);
    assert.equal(got.length, 26);
    assert.ok(got.includes('kw0') && got.includes('kw25') && !got.includes('kw26'));
  }
});

test('a folder brought over from Dovecot (dovecot-keywords, no UID list of ours) shows its keywords by name', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mf-dovecot-kw-'));
  try {
    const md = join(root, 'example.com', 'dana', 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(md, sub), { recursive: true });
    writeFileSync(join(md, 'dovecot-keywords'), '0 $Forwarded\n1 Work\n');
    writeFileSync(join(md, 'cur', '1700000000.M1P1.old,S=30:2,Sb'), 'Subject: from dovecot\r\n\r\nbody\r\n');
    const store = new MailStore({ maildirOf: () => md, events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
    const h = await store.openMailbox('dana@example.com', 'INBOX');
    try {
      assert.deepEqual(h.mailbox.messages.map((r) => h.mailbox.flagsOf(r)), [['\\Seen', 'Work']]);
    } finally {
      h.release();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
