import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  createMaildirFolder,
  decodeMutf7,
  encodeMutf7,
  FileLock,
  folderDir,
  LocalMailboxEvents,
  Mailbox,
  MailStore,
  nameFromWire,
  parseMime,
  readListState,
  resolveSection,
  summarise,
} from '../../lib/store/mailbox/index.js';
import { isMailfleetError } from '../../lib/errors.js';

async function tempMaildir(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-mbox-'));
  await createMaildirFolder(dir);
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

async function deliver(dir: string, name: string, body: string): Promise<void> {
  await writeFile(join(dir, 'new', name), body);
}

test('modified UTF-7 round-trips RFC 3501 examples and any string', () => {
  assert.equal(encodeMutf7('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMutf7('&U,BTFw-'), '台北');
  assert.equal(encodeMutf7('A&B'), 'A&-B');
  assert.equal(decodeMutf7('&Jjo-!'), '☺!');
  assert.equal(decodeMutf7('&AGE-'), undefined, 'ASCII must not be encoded');
  assert.equal(decodeMutf7('&U,BTFw'), undefined, 'unterminated run');
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => decodeMutf7(encodeMutf7(s)) === s));
});

test('fails when a mailbox name would leave the user tree', () => {
  for (const bad of ['..', '../x', 'a/../../b', '.hidden', 'a..b', 'a.', '/etc', 'a\\b', 'x\u0000y', '&AC4ALg-']) {
    assert.throws(() => nameFromWire(bad), (e) => isMailfleetError(e, 'MAILBOX_INVALID_NAME'), bad);
  }
  assert.equal(nameFromWire('inbox'), 'INBOX');
  assert.equal(nameFromWire('Inbox.Sub'), 'INBOX.Sub');
  assert.equal(folderDir('/m', 'Archive.2024'), '/m/.Archive.2024');
  assert.equal(folderDir('/m', '台北'), '/m/.&U,BTFw-');
});

test('GIVEN deliveries in new/ WHEN two processes refresh THEN they agree on UIDs, which stay stable', async () => {
  const { dir, done } = await tempMaildir();
  try {
    await deliver(dir, '1.a.host', 'Subject: one\r\n\r\nbody\r\n');
    await deliver(dir, '2.b.host', 'Subject: two\n\nbare LF\n');
    const p1 = new Mailbox({ name: 'INBOX', dir });
    const p2 = new Mailbox({ name: 'INBOX', dir });
    await Promise.all([p1.refresh(), p2.refresh()]);
    assert.deepEqual(p1.messages.map((m) => m.uid), [1, 2]);
    assert.deepEqual(p2.messages.map((m) => [m.uid, m.base]), p1.messages.map((m) => [m.uid, m.base]));
    assert.equal(p1.uidValidity, p2.uidValidity);
    assert.equal(p1.messages[1]!.size, 'Subject: two\r\n\r\nbare LF\r\n'.length, 'size counts CRLF');
    assert.deepEqual(await readdir(join(dir, 'new')), []);
    // Flags set by one are seen by the other, UIDs unchanged.
    await p1.setFlags([2], 'add', 'S');
    await p2.refresh();
    assert.equal(p2.byUid(2)!.letters, 'S');
    await deliver(dir, '3.c.host', 'Subject: three\r\n\r\n');
    await p2.refresh();
    await p1.refresh();
    assert.deepEqual(p1.messages.map((m) => m.uid), [1, 2, 3]);
    const removed = await p2.expunge([1]);
    assert.deepEqual(removed, [1]);
    await p1.refresh();
    assert.deepEqual(p1.messages.map((m) => m.uid), [2, 3]);
    // A fresh process reads the same state from the list file.
    const p3 = new Mailbox({ name: 'INBOX', dir });
    await p3.refresh();
    assert.deepEqual(p3.messages.map((m) => [m.uid, m.letters]), [[2, 'S'], [3, '']]);
    assert.equal(p3.nextUid, 4);
    // The list plus its change log (what a new reader applies) hold UIDNEXT 4.
    assert.equal((await readListState(dir))?.nextUid, 4);
    assert.equal((await p3.read(p3.byUid(2)!)).toString(), 'Subject: two\r\n\r\nbare LF\r\n');
  } finally {
    await done();
  }
});

test('GIVEN a stale lock left by a dead process WHEN a mailbox changes THEN the lock is taken over', async () => {
  const { dir, done } = await tempMaildir();
  try {
    await writeFile(join(dir, 'mailfleet-uidlist.lock'), `${(await import('node:os')).hostname()} 999999999 0\n`);
    await deliver(dir, '1.a.host', 'Subject: x\r\n\r\n');
    const m = new Mailbox({ name: 'INBOX', dir });
    await m.refresh();
    assert.equal(m.exists, 1);
    const held = new FileLock(join(dir, 'x.lock'), { timeoutMs: 50 });
    await held.acquire();
    await assert.rejects(new FileLock(join(dir, 'x.lock'), { timeoutMs: 50 }).acquire(), (e) => isMailfleetError(e, 'MAILBOX_LOCKED'));
    await held.release();
  } finally {
    await done();
  }
});

test('GIVEN an empty lock file (its holder was killed between creating it and writing its name) older than a moment THEN it is taken over, long before staleMs', async () => {
  const { dir, done } = await tempMaildir();
  try {
    const path = join(dir, 'empty.lock');
    await writeFile(path, '');
    const past = new Date(Date.now() - 5_000);
    await utimes(path, past, past);
    const lock = new FileLock(path, { timeoutMs: 1_000 }); // staleMs stays at its 30 s default
    await lock.acquire();
    await lock.release();
    // A fresh empty file may be a live holder about to write its name: not taken over at once.
    await writeFile(path, '');
    await assert.rejects(new FileLock(path, { timeoutMs: 200 }).acquire(), (e) => isMailfleetError(e, 'MAILBOX_LOCKED'));
  } finally {
    await done();
  }
});

test('MIME tree offsets, ENVELOPE and BODYSTRUCTURE of a nested message', async () => {
  const msg = Buffer.from(
    [
      'From: "Ann" <ann@example.com>',
      'To: bob@example.org, team: c@x.org, d@y.org;',
      'Subject: =?utf-8?q?caf=C3=A9?=',
      'Message-ID: <m1@x>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="XX"',
      '',
      'preamble',
      '--XX',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'hello',
      'world',
      '--XX',
      'Content-Type: message/rfc822',
      '',
      'Subject: inner',
      'Content-Type: multipart/alternative; boundary=YY',
      '',
      '--YY',
      'Content-Type: text/plain',
      '',
      'inner text',
      '--YY--',
      '',
      '--XX--',
      '',
    ].join('\r\n'),
  );
  const root = await parseMime(msg);
  const s = summarise(root, msg);
  const text = (r?: { start: number; end: number }) => (r ? msg.subarray(r.start, r.end).toString() : undefined);
  assert.equal(text(resolveSection(root, [1], '')), 'hello\r\nworld');
  assert.equal(text(resolveSection(root, [1], 'MIME')), 'Content-Type: text/plain; charset=utf-8\r\n\r\n');
  assert.equal(text(resolveSection(root, [2], 'HEADER')), 'Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n');
  assert.equal(text(resolveSection(root, [2, 1], '')), 'inner text');
  assert.equal(text(resolveSection(root, [3], '')), undefined);
  assert.deepEqual((s.envelope as unknown[])[5], [[null, null, 'bob', 'example.org'], [null, null, 'team', null], [null, null, 'c', 'x.org'], [null, null, 'd', 'y.org'], [null, null, null, null]]);
  assert.equal(s.search.subject, 'café');
  const bs = s.bodystructure as unknown[];
  assert.equal(bs[2], 'mixed');
  // "hello\r\nworld": one line end (the CRLF before --XX belongs to the boundary); Dovecot counts 1 too.
  assert.deepEqual((bs[0] as unknown[]).slice(0, 8), ['text', 'plain', ['CHARSET', 'utf-8'], null, null, '7bit', 12, 1]);
  const inner = bs[1] as unknown[];
  assert.equal(inner[0], 'message');
  assert.equal((inner[7] as unknown[])[1], 'inner');
});

test('GIVEN a watched mailbox WHEN a delivery event is published THEN the watcher fires within 1 s', async () => {
  const { dir, done } = await tempMaildir();
  try {
    const events = new LocalMailboxEvents();
    const store = new MailStore({ maildirOf: () => dir, events, pollIntervalMs: 60_000 });
    await store.ensureUser('u@example.com');
    assert.deepEqual((await store.list('u@example.com')).map((f) => [f.name, f.specialUse]), [
      ['INBOX', undefined],
      ['Drafts', '\\Drafts'],
      ['Junk', '\\Junk'],
      ['Sent', '\\Sent'],
      ['Trash', '\\Trash'],
    ]);
    const h = await store.openMailbox('u@example.com', 'inbox');
    const fired = new Promise<number>((resolve) => h.watch(() => resolve(h.mailbox.exists)));
    const t0 = Date.now();
    await deliver(dir, '9.z.host', 'Subject: hi\r\n\r\n');
    events.publish('U@example.com');
    assert.equal(await fired, 1);
    assert.ok(Date.now() - t0 < 1000);
    h.release();
    assert.equal(store.openCount, 0);
  } finally {
    await done();
  }
});
