/**
 * Group commit (Mailbox.mutate): changes that arrive together share one locked pass and one list write.
 * What must not change: each change is answered only once the UID list on disk holds it (durability),
 * every caller gets its own result, and a fresh reader (another process) sees the same folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMaildirFolder, Mailbox, readListState } from '../../lib/store/mailbox/index.js';

/** UID → letters as the UID list and its change log on disk say right now (readListState: no lock, no scan). */
async function onDisk(dir: string): Promise<Map<number, string>> {
  return new Map((await readListState(dir))!.messages.map((r) => [r.uid, r.letters]));
}

test('GIVEN flag changes, appends and expunges issued together on one folder THEN each is in the UID list on disk when answered, results are per caller, and a fresh reader agrees', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-group-'));
  try {
    await createMaildirFolder(dir);
    const mb = new Mailbox({ name: 'INBOX', dir });
    await mb.refresh();
    const body = (i: number) => Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => mb.append(body(i), '', new Date())));
    assert.equal(new Set(first).size, 20, 'concurrent appends get distinct UIDs');
    for (const uid of first) assert.ok((await onDisk(dir)).has(uid));

    const checks: Array<Promise<void>> = [];
    // Flag changes on the even UIDs: each answered with its own record, on disk by then.
    for (const uid of first.filter((_, i) => i % 2 === 0)) {
      checks.push(
        mb.setFlags([uid], 'add', 'F').then(async (changed) => {
          assert.deepEqual(
            changed.map((r) => r.uid),
            [uid],
          );
          assert.equal((await onDisk(dir)).get(uid), 'F', `flag of ${uid} on disk when answered`);
        }),
      );
    }
    // Expunges of the first three odd UIDs.
    const gone = [first[1]!, first[3]!, first[5]!];
    checks.push(
      mb.expunge(gone).then(async (removed) => {
        assert.deepEqual(removed, [...gone].sort((a, b) => a - b));
        const now = await onDisk(dir);
        for (const u of gone) assert.ok(!now.has(u), `${u} out of the list when answered`);
      }),
    );
    // More appends in the same burst.
    for (let i = 20; i < 25; i++)
      checks.push(
        mb.append(body(i), 'S', new Date()).then(async (uid) => {
          assert.equal((await onDisk(dir)).get(uid), 'S', `appended ${uid} on disk when answered`);
        }),
      );
    await Promise.all(checks);

    // Another process's view: a new Mailbox on the same directory.
    const fresh = new Mailbox({ name: 'INBOX', dir });
    await fresh.refresh();
    assert.equal(fresh.exists, 22);
    assert.deepEqual(
      fresh.messages.map((r) => [r.uid, r.letters]),
      mb.messages.map((r) => [r.uid, r.letters]),
    );
    const files = (await readdir(join(dir, 'cur'))).sort();
    assert.equal(files.length, 22, 'one file per listed message');
    for (const r of fresh.messages) assert.ok(files.includes(`${r.base}:2,${r.letters}`), `file of UID ${r.uid}`);
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  }
});

test('GIVEN sessions claiming \\Recent while flag changes share the pass (RFC 3501 §2.3.2) THEN each recent UID goes to exactly one claimer and the claim is on disk when answered', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-group-recent-'));
  try {
    await createMaildirFolder(dir);
    const mb = new Mailbox({ name: 'INBOX', dir });
    await mb.refresh();
    const uids = await Promise.all(Array.from({ length: 6 }, (_, i) => mb.append(Buffer.from(`Subject: r${i}\r\n\r\nx\r\n`), '', new Date())));
    const claims = await Promise.all([mb.claimRecent(), mb.setFlags([uids[0]!], 'add', 'S').then(() => mb.claimRecent()), mb.claimRecent(), mb.claimRecent()]);
    assert.deepEqual(claims.flat().sort((a, b) => a - b), [...uids].sort((a, b) => a - b), 'every recent UID claimed once');
    const disk = (await readListState(dir))!;
    assert.equal(disk.firstRecent, mb.nextUid, 'nothing left to claim on disk');
    const fresh = new Mailbox({ name: 'INBOX', dir });
    await fresh.refresh();
    assert.equal(fresh.unclaimedRecent, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('GIVEN a session appending to the folder it has selected WHEN appendClaiming claims THEN the new message and any unclaimed one are claimed in the APPEND\'s own pass, on disk when answered', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-group-'));
  try {
    await createMaildirFolder(dir);
    const mb = new Mailbox({ name: 'INBOX', dir });
    await mb.refresh();
    const body = Buffer.from('Subject: r\r\n\r\nr\r\n');
    const [first] = await mb.appendMany([{ data: body, letters: '', date: new Date() }]); // unclaimed
    assert.equal(mb.unclaimedRecent, 1);
    const { uids, claimed } = await mb.appendClaiming([{ data: body, letters: 'S', date: new Date() }], true);
    assert.deepEqual(claimed, [first!, uids[0]!]);
    assert.equal(mb.unclaimedRecent, 0);
    const disk = (await readListState(dir))!;
    assert.equal(disk.firstRecent, disk.nextUid, 'the claim is in the list written by the APPEND');
    assert.deepEqual(await mb.claimRecent(), [], 'nothing left for a later claim');
    const plain = await mb.appendClaiming([{ data: body, letters: '', date: new Date() }], false);
    assert.deepEqual(plain.claimed, []);
    assert.equal(mb.unclaimedRecent, 1, 'without claim the new message stays \\Recent for whoever looks first');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('GIVEN expunges one after another, several in one pass, and a history trimmed to its bound THEN the history line on disk always lists exactly what the folder remembers (cached groups)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-group-'));
  try {
    await createMaildirFolder(dir);
    const mb = new Mailbox({ name: 'INBOX', dir, expungeHistoryUids: 12, changeLogBytes: 0 });
    await mb.refresh();
    const body = Buffer.from('Subject: h\r\n\r\nh\r\n');
    const uids = await mb.appendMany(Array.from({ length: 40 }, () => ({ data: body, letters: '', date: new Date() })));
    const mem = () => (mb as unknown as { history: { floor: number; entries: Array<readonly [number, number]> } }).history;
    const check = async () => {
      const disk = (await readListState(dir))!;
      assert.equal(disk.history.floor, mem().floor);
      assert.deepEqual(
        disk.history.entries.map((e) => `${e[0]}:${e[1]}`),
        mem().entries.map((e) => `${e[0]}:${e[1]}`),
        'the list on disk remembers the same expunges',
      );
      assert.ok(mem().entries.length <= 12 && mem().entries.length > 0);
    };
    let k = 0;
    for (let round = 0; round < 8; round++) {
      // One expunge alone, then two in one pass (group commit), then a flag change (history unchanged).
      await mb.expunge([uids[k++]!]);
      await check();
      await Promise.all([mb.expunge([uids[k++]!, uids[k++]!]), mb.expunge([uids[k++]!])]);
      await check();
      await mb.setFlags([uids[39]!], round % 2 ? 'add' : 'remove', 'S');
      await check();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
