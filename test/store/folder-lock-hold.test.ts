/**
 * The folder lock kept between passes (lock.ts HeldLock, imap.folderLockHoldMs): passes that follow each
 * other reuse one lock file; other processes still get the lock once the holder is idle or has held it
 * maxHoldMs; a process that exits gives it up; a folder renamed or deleted right after a change does not
 * carry a live lock to its new name. Also the lock-free usage read (usage.ts) sees another writer's file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMaildirFolder, FileLock, HeldLock, LocalMailboxEvents, Mailbox, MailStore } from '../../lib/store/mailbox/index.js';
import { addUsage, readUsage, USAGE_FILE } from '../../lib/store/usage.js';

async function temp(): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-lockhold-'));
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('GIVEN holdMs WHEN passes follow each other THEN they share one lock file, which is gone once the holder is idle', async () => {
  const { dir, done } = await temp();
  try {
    const path = join(dir, 'x.lock');
    const held = new HeldLock(path, { holdMs: 200 });
    await held.run(async () => {});
    assert.ok(existsSync(path), 'kept after the pass');
    const holder = readFileSync(path, 'utf8'); // host, pid and the time it was taken
    await held.run(async () => {
      assert.equal(readFileSync(path, 'utf8'), holder, 'the next pass runs under the same lock');
    });
    await sleep(400);
    assert.ok(!existsSync(path), 'given up after holdMs without a pass');
    assert.equal(held.holding, false);

    const once = new HeldLock(path, { holdMs: 0 });
    await once.run(async () => {});
    assert.ok(!existsSync(path), 'holdMs 0: released after every pass, as withLock');
  } finally {
    await done();
  }
});

test('GIVEN a lock kept between passes WHEN another process wants it THEN it gets it when the holder goes idle, and after maxHoldMs of back-to-back passes', async () => {
  const { dir, done } = await temp();
  try {
    const path = join(dir, 'x.lock');
    const held = new HeldLock(path, { holdMs: 100 });
    await held.run(async () => {});
    const t0 = Date.now();
    const other = new FileLock(path, { timeoutMs: 5_000 });
    await other.acquire();
    assert.ok(Date.now() - t0 < 2_000, `waited ${Date.now() - t0} ms for an idle holder`);
    // While the other process holds it, a pass of ours waits (exclusion is unchanged).
    let ran = false;
    const mine = held.run(async () => {
      ran = true;
    });
    await sleep(100);
    assert.equal(ran, false, 'no pass while another process holds the lock');
    await other.release();
    await mine;
    assert.equal(ran, true);

    // Back-to-back passes: released (and taken again) once maxHoldMs is reached.
    const busy = new HeldLock(path, { holdMs: 1_000, maxHoldMs: 50 });
    await held.release();
    const taken = new Set<string>();
    const until = Date.now() + 300;
    while (Date.now() < until)
      await busy.run(async () => {
        taken.add(readFileSync(path, 'utf8'));
        await sleep(5);
      });
    assert.ok(taken.size >= 3, `locks taken in 300 ms with maxHoldMs 50: ${taken.size}`);
    await busy.release();
  } finally {
    await done();
  }
});

test('GIVEN a process that keeps a lock between passes WHEN it exits THEN the lock file is removed', async () => {
  const { dir, done } = await temp();
  try {
    const path = join(dir, 'x.lock');
    const code = `
import { HeldLock } from './lib/store/mailbox/lock.ts';
const held = new HeldLock(process.argv[1], { holdMs: 60_000, maxHoldMs: 120_000 });
await held.run(async () => {});
process.exit(0);
`;
    await new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, path], { stdio: ['ignore', 'inherit', 'inherit'] });
      p.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`child exited ${c}`))));
    });
    assert.ok(!existsSync(path), 'the exit hook removed the kept lock');
  } finally {
    await done();
  }
});

test('GIVEN a folder lock kept after a change WHEN the folder is renamed or deleted and made again THEN its folder takes changes at once (no lock carried along)', async () => {
  const { dir, done } = await temp();
  try {
    // A long hold, so a lock that was not given up before the rename would still be held here (and a
    // lock file carried to the new name would keep it locked: it names this live process).
    const store = new MailStore({ maildirOf: () => dir, events: new LocalMailboxEvents(), pollIntervalMs: 60_000, lockHoldMs: 3_000 });
    const user = 'u@example.com';
    await store.ensureUser(user);
    await store.create(user, 'Work');
    const h = await store.openMailbox(user, 'Work');
    await h.mailbox.append(Buffer.from('Subject: w\r\n\r\nx\r\n'), '', new Date());
    h.release();
    await store.rename(user, 'Work', 'Play');
    assert.deepEqual(
      (await readdir(join(dir, '.Play'))).filter((f) => f.endsWith('.lock')),
      [],
      'no lock file carried to the new name',
    );
    const p = await store.openMailbox(user, 'Play');
    const t0 = Date.now();
    await p.mailbox.append(Buffer.from('Subject: p\r\n\r\ny\r\n'), '', new Date());
    assert.ok(Date.now() - t0 < 2_000, `APPEND into the renamed folder took ${Date.now() - t0} ms`);
    assert.equal(p.mailbox.exists, 2);
    p.release();

    await store.delete(user, 'Play');
    await store.create(user, 'Play');
    const q = await store.openMailbox(user, 'Play');
    await q.mailbox.append(Buffer.from('Subject: q\r\n\r\nz\r\n'), '', new Date());
    assert.equal(q.mailbox.exists, 1);
    q.release();
  } finally {
    await done();
  }
});

test('GIVEN new/ listed empty long ago (no listing while its mtime stays) WHEN a message is delivered THEN the next refresh takes it in', async () => {
  const { dir, done } = await temp();
  try {
    await createMaildirFolder(dir);
    const mb = new Mailbox({ name: 'INBOX', dir, lockHoldMs: 0 });
    await mb.refresh();
    const old = new Date(Date.now() - 60_000);
    await utimes(join(dir, 'new'), old, old);
    await mb.append(Buffer.from('Subject: a\r\n\r\na\r\n'), '', new Date()); // a pass that lists new/ (empty, old mtime)
    await mb.setFlags([1], 'add', 'S'); // a pass that skips it
    await writeFile(join(dir, 'tmp', '1.x.host'), 'Subject: b\r\n\r\nb\r\n');
    await rename(join(dir, 'tmp', '1.x.host'), join(dir, 'new', '1.x.host'));
    await mb.refresh();
    assert.equal(mb.exists, 2, 'the delivery was seen');
    await mb.setFlags([2], 'add', 'F');
    assert.equal(mb.byUid(2)?.letters, 'F');
  } finally {
    await done();
  }
});

test('GIVEN a cached usage read WHEN another process rewrites the usage file THEN the next read returns its numbers', async () => {
  const { dir, done } = await temp();
  try {
    await addUsage(dir, { bytes: 100, messages: 1 });
    assert.deepEqual(await readUsage(dir), { bytes: 100, messages: 1, warned: 0 });
    assert.deepEqual(await readUsage(dir), { bytes: 100, messages: 1, warned: 0 }, 'from the cache');
    // Another node writes it as updateUsage does: temp file, rename.
    await writeFile(join(dir, 'other.tmp'), 'MU1 555 5 80\n');
    await rename(join(dir, 'other.tmp'), join(dir, USAGE_FILE));
    assert.deepEqual(await readUsage(dir), { bytes: 555, messages: 5, warned: 80 });
    await addUsage(dir, { bytes: 5, messages: 1 });
    assert.deepEqual(await readUsage(dir), { bytes: 560, messages: 6, warned: 80 }, 'the update read the file, not the cache');
    await rm(join(dir, USAGE_FILE));
    assert.deepEqual(await readUsage(dir), { bytes: 0, messages: 0, warned: 0 });
  } finally {
    await done();
  }
});
