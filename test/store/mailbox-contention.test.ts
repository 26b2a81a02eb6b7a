/**
 * The folder under a stream of deliveries (bench/imap-contention): readers are not held behind the
 * folder lock when nothing new arrived, concurrent refreshes share one pass, and UIDs stay unique and
 * agreed between "processes" (separate Mailbox objects on one directory) with nothing lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMaildirFolder, FileLock, LocalMailboxEvents, Mailbox, MailStore } from '../../lib/store/mailbox/index.js';

async function tempMaildir(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-contention-'));
  await createMaildirFolder(dir);
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

let n = 0;
async function deliver(dir: string): Promise<string> {
  const base = `${Date.now()}.T${++n}.host`;
  await writeFile(join(dir, 'tmp', base), `Subject: m${n}\r\n\r\nbody ${n}\r\n`);
  await rename(join(dir, 'tmp', base), join(dir, 'new', base));
  return base;
}

test('GIVEN cur/ just changed by the daemon itself WHEN another process holds the folder lock THEN a refresh answers at once from the list', async () => {
  const { dir, done } = await tempMaildir();
  // Another process taking the lock waits for ours, which the Mailbox keeps a moment after a pass (folderLockHoldMs).
  const other = new FileLock(join(dir, 'mailfleet-uidlist.lock'), { timeoutMs: 2_000 });
  try {
    const mb = new Mailbox({ name: 'INBOX', dir });
    await deliver(dir);
    await mb.refresh(); // moves it into cur/: cur/'s mtime is now "racy"
    assert.equal(mb.exists, 1);
    await other.acquire();
    const t0 = Date.now();
    await mb.refresh();
    // Before: a racy cur/ mtime sent every refresh to the lock, which waited here up to 10 s.
    assert.ok(Date.now() - t0 < 500, `refresh took ${Date.now() - t0} ms behind a lock it does not need`);
    assert.equal(mb.exists, 1);
  } finally {
    await other.release();
    await done();
  }
});

test('GIVEN new mail and the lock busy WHEN many sessions refresh at once THEN they share one queued pass and all see the mail', async () => {
  const { dir, done } = await tempMaildir();
  // Another process taking the lock waits for ours, which the Mailbox keeps a moment after a pass (folderLockHoldMs).
  const other = new FileLock(join(dir, 'mailfleet-uidlist.lock'), { timeoutMs: 2_000 });
  try {
    const mb = new Mailbox({ name: 'INBOX', dir });
    await mb.refresh();
    await other.acquire();
    await deliver(dir);
    const first = mb.refresh(); // takes the queue and waits for the lock
    await new Promise((r) => setTimeout(r, 20));
    const waiting = Array.from({ length: 50 }, () => mb.refresh());
    assert.equal(new Set(waiting).size, 1, 'callers queued behind a running refresh share the next pass');
    setTimeout(() => void other.release(), 100);
    await Promise.all([first, ...waiting]);
    assert.equal(mb.exists, 1);
  } finally {
    await other.release();
    await done();
  }
});

test('GIVEN two processes refreshing while 150 deliveries stream in THEN UIDs are unique, agreed, stable and none is lost', async () => {
  const { dir, done } = await tempMaildir();
  try {
    const a = new Mailbox({ name: 'INBOX', dir });
    const b = new Mailbox({ name: 'INBOX', dir });
    const delivered: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; i < 150; i++) {
        delivered.push(await deliver(dir));
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      stop = true;
    })();
    const seen = new Map<string, number>(); // base -> uid, as first reported by either process
    const reader = async (mb: Mailbox) => {
      while (!stop) {
        await Promise.all([mb.refresh(), mb.refresh()]);
        for (const r of mb.messages) {
          const u = seen.get(r.base);
          if (u === undefined) seen.set(r.base, r.uid);
          else assert.equal(r.uid, u, `UID of ${r.base} changed`);
        }
        // Flag changes go through the lock too: they must not disturb UIDs either.
        const last = mb.messages.at(-1);
        if (last) await mb.setFlags([last.uid], 'add', 'S');
      }
    };
    await Promise.all([writer, reader(a), reader(b)]);
    await Promise.all([a.refresh(), b.refresh()]);
    const fresh = new Mailbox({ name: 'INBOX', dir });
    await fresh.refresh();
    for (const mb of [a, b, fresh]) {
      assert.equal(mb.exists, 150);
      assert.deepEqual(new Set(mb.messages.map((r) => r.base)), new Set(delivered));
      assert.equal(new Set(mb.messages.map((r) => r.uid)).size, 150, 'UIDs unique');
      for (const r of mb.messages) {
        const u = seen.get(r.base);
        if (u !== undefined) assert.equal(r.uid, u, `UID of ${r.base} stable`);
      }
    }
    assert.deepEqual(a.messages.map((r) => [r.uid, r.base]), fresh.messages.map((r) => [r.uid, r.base]));
    assert.deepEqual(b.messages.map((r) => [r.uid, r.base]), fresh.messages.map((r) => [r.uid, r.base]));
    assert.deepEqual(await readdir(join(dir, 'new')), []);
  } finally {
    await done();
  }
});

test('GIVEN a folder no session holds WHEN it is opened again THEN the index is reused; after DELETE and CREATE it is not', async () => {
  const { dir, done } = await tempMaildir();
  try {
    const store = new MailStore({ maildirOf: () => dir, events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
    await store.ensureUser('u@example.com');
    const h1 = await store.openMailbox('u@example.com', 'INBOX');
    const first = h1.mailbox;
    h1.release();
    assert.equal(store.openCount, 0);
    await deliver(dir);
    const h2 = await store.openMailbox('u@example.com', 'INBOX');
    assert.equal(h2.mailbox, first, 'kept after release');
    assert.equal(h2.mailbox.exists, 1, 'and refreshed on reopen');
    h2.release();

    const s1 = await store.openMailbox('u@example.com', 'Sent');
    const sent = s1.mailbox;
    await sent.append(Buffer.from('Subject: s\r\n\r\nx\r\n'), '', new Date());
    s1.release();
    await store.delete('u@example.com', 'Sent');
    await store.create('u@example.com', 'Sent');
    const s2 = await store.openMailbox('u@example.com', 'Sent');
    assert.notEqual(s2.mailbox, sent, 'a recreated folder gets a new index');
    assert.equal(s2.mailbox.exists, 0);
    s2.release();
  } finally {
    await done();
  }
});

test('fails when a kept folder is opened after it was removed behind the store', async () => {
  const { dir, done } = await tempMaildir();
  try {
    const store = new MailStore({ maildirOf: () => dir, events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
    await store.ensureUser('u@example.com');
    (await store.openMailbox('u@example.com', 'Junk')).release();
    await rm(join(dir, '.Junk'), { recursive: true, force: true });
    await assert.rejects(store.openMailbox('u@example.com', 'Junk'), /no such mailbox/);
  } finally {
    await done();
  }
});
