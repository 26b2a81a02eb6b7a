/**
 * The change log beside the UID list (lib/store/mailbox/change-log.ts): changes are appended records,
 * readers apply them on top of the list, the list is rewritten past changeLogBytes. What must hold:
 * every acknowledged change survives a crash (kill -9 at any byte of the log: a torn last record was
 * never acknowledged and is dropped), sessions in several processes (several Mailbox objects on one
 * folder) see each other's changes, and a folder whose list has no log reads as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CHANGE_LOG_FILE, createMaildirFolder, Mailbox, readListState, UIDLIST_FILE } from '../../lib/store/mailbox/index.js';

type State = NonNullable<Awaited<ReturnType<typeof readListState>>>;
/** What a reader must agree on: header fields, every record, the expunge history. */
const view = (s: State) => ({
  uidValidity: s.uidValidity,
  nextUid: s.nextUid,
  modseq: s.modseq,
  firstRecent: s.firstRecent,
  messages: s.messages.map((r) => `${r.uid} ${r.modseq} ${r.size} ${r.date} ${r.base}:2,${r.letters}`),
  history: { floor: s.history.floor, entries: s.history.entries.map((e) => `${e[0]}:${e[1]}`) },
});
const mailboxView = (m: Mailbox) => ({
  uidValidity: m.uidValidity,
  nextUid: m.nextUid,
  modseq: m.modseq,
  messages: m.messages.map((r) => `${r.uid} ${r.modseq} ${r.size} ${r.date} ${r.base}:2,${r.letters}`),
});

/** Offsets after each whole record of a log (the header's end first). */
function boundaries(log: Buffer): number[] {
  const out = [log.indexOf(0x0a) + 1];
  let at = out[0]!;
  while (at < log.length) {
    const nl = log.indexOf(0x0a, at);
    at = nl + 1 + Number(log.toString('latin1', at + 1, nl).split(' ')[0]);
    out.push(at);
  }
  return out;
}

const op = fc.record({
  session: fc.nat(2),
  kind: fc.constantFrom('append', 'store', 'store', 'expunge', 'claim'),
  pick: fc.nat(1000),
  letters: fc.subarray(['D', 'F', 'S', 'a'], { minLength: 1 }).map((x) => x.join('')),
  mode: fc.constantFrom('set', 'add', 'remove') as fc.Arbitrary<'set' | 'add' | 'remove'>,
});

let cutsChecked = 0;

test('property: random APPEND/STORE/EXPUNGE from 3 concurrent sessions, crashed at any byte of the log after a point where all were answered, recover exactly the answered state; sessions agree with a fresh reader', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 6 }), fc.constantFrom(400, 1500, 1 << 20), fc.nat(), async (batches, changeLogBytes, cutSeed) => {
      const dir = await mkdtemp(join(tmpdir(), 'mf-clog-'));
      try {
        await createMaildirFolder(dir);
        const sessions = [0, 1, 2].map(() => new Mailbox({ name: 'INBOX', dir, changeLogBytes }));
        await sessions[0]!.append(Buffer.from('Subject: seed\r\n\r\nx\r\n'), '', new Date());
        /** After every batch (nothing in flight): the list, the log, and what a new reader makes of them. */
        const checkpoints: Array<{ list: Buffer; log?: Buffer; state: State }> = [];
        let n = 0;
        for (const batch of batches) {
          const expunged = new Set<number>();
          await Promise.all(
            batch.map(async (o) => {
              const mb = sessions[o.session]!;
              await mb.refresh();
              const uids = mb.messages.map((r) => r.uid);
              const uid = uids[o.pick % Math.max(1, uids.length)];
              if (o.kind === 'append') {
                const got = await mb.append(Buffer.from(`Subject: m${++n}\r\n\r\nbody ${n}\r\n`), o.letters.replace('a', ''), new Date());
                // Answered: any reader sees it from now on (unless expunged since).
                const disk = (await readListState(dir))!;
                assert.ok(disk.messages.some((r) => r.uid === got) || expunged.has(got), `appended ${got} on disk when answered`);
              } else if (o.kind === 'store' && uid !== undefined) {
                const changed = await mb.setFlags([uid], o.mode, o.letters.replace('a', ''));
                for (const r of changed) {
                  const d = (await readListState(dir))!.messages.find((x) => x.uid === r.uid);
                  assert.ok(!d || d.modseq >= r.modseq, `flag change of ${r.uid} on disk when answered`);
                }
              } else if (o.kind === 'expunge' && uid !== undefined) {
                for (const u of await mb.expunge([uid])) {
                  expunged.add(u);
                  assert.ok(!(await readListState(dir))!.messages.some((r) => r.uid === u), `expunge of ${u} on disk when answered`);
                }
              } else if (o.kind === 'claim') await mb.claimRecent();
            }),
          );
          const state = (await readListState(dir))!;
          // Every session (another process's view) agrees with a new reader.
          for (const mb of sessions) {
            await mb.refresh();
            assert.deepEqual(mailboxView(mb).messages, view(state).messages);
            assert.equal(mb.modseq, state.modseq);
            assert.equal(mb.nextUid, state.nextUid);
          }
          const log = existsSync(join(dir, CHANGE_LOG_FILE)) ? await readFile(join(dir, CHANGE_LOG_FILE)) : undefined;
          checkpoints.push({ list: await readFile(join(dir, UIDLIST_FILE)), log, state });
        }

        // kill -9 after checkpoint k, while the passes of batch k+1 were writing: the list of k with the
        // log of k+1 cut at any byte past what k had. Up to the next record boundary nothing was answered.
        for (let k = 0; k + 1 < checkpoints.length; k++) {
          const a = checkpoints[k]!;
          const b = checkpoints[k + 1]!;
          if (!a.list.equals(b.list) || !b.log) continue; // the list was rewritten in between: no log tail to tear
          const from = a.log?.length ?? 0;
          const ends = boundaries(b.log).filter((x) => x > from);
          if (ends.length === 0) continue;
          const next = ends[0]!;
          const crashDir = await mkdtemp(join(tmpdir(), 'mf-clog-crash-'));
          try {
            await writeFile(join(crashDir, UIDLIST_FILE), a.list);
            // At the boundary itself and at a random byte inside the next record.
            for (const cut of new Set([from, from + (cutSeed % Math.max(1, next - from)), next - 1])) {
              if (cut === 0) await rm(join(crashDir, CHANGE_LOG_FILE), { force: true });
              else await writeFile(join(crashDir, CHANGE_LOG_FILE), b.log.subarray(0, cut));
              assert.deepEqual(view((await readListState(crashDir))!), view(a.state), `cut at ${cut} (answered up to ${from}, next record ends ${next})`);
              cutsChecked++;
            }
            // The whole next record's length on disk but not its data (size grew, blocks never written): zeros.
            const zeroed = Buffer.from(b.log.subarray(0, next));
            zeroed.fill(0, b.log.indexOf(0x0a, from) + 1, next);
            await writeFile(join(crashDir, CHANGE_LOG_FILE), zeroed);
            assert.deepEqual(view((await readListState(crashDir))!), view(a.state), 'a record of zeros (checksum) is dropped');
          } finally {
            await rm(crashDir, { recursive: true, force: true });
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true, maxRetries: 5 });
      }
    }),
    { numRuns: 15 },
  );
  assert.ok(cutsChecked > 10, `crash points checked: ${cutsChecked}`);
});

test('GIVEN a log torn mid-record by a crash WHEN a new process changes the folder THEN the torn tail is cut off, the change is appended after the last whole record, and every reader sees it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-clog-torn-'));
  try {
    await createMaildirFolder(dir);
    const a = new Mailbox({ name: 'INBOX', dir });
    const uids: number[] = [];
    for (let i = 0; i < 4; i++) uids.push(await a.append(Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`), '', new Date()));
    await a.setFlags([uids[0]!], 'add', 'S');
    const answered = view((await readListState(dir))!);
    // A writer killed halfway through its next record.
    const logPath = join(dir, CHANGE_LOG_FILE);
    const log = await readFile(logPath);
    await writeFile(logPath, Buffer.concat([log, Buffer.from('R120 deadbeef\n2 9 1')]));
    assert.deepEqual(view((await readListState(dir))!), answered, 'torn record dropped');
    const b = new Mailbox({ name: 'INBOX', dir });
    await b.refresh();
    assert.deepEqual(mailboxView(b).messages, answered.messages);
    await b.setFlags([uids[1]!], 'add', 'F');
    const after = (await readListState(dir))!;
    assert.equal(after.messages.find((r) => r.uid === uids[1])!.letters, 'F', 'appended after the last whole record, readable');
    assert.ok(!(await readFile(logPath)).includes('deadbeef'), 'torn tail cut');
    await a.refresh();
    assert.deepEqual(mailboxView(a), mailboxView(b));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('GIVEN changeLogBytes small WHEN changes pass it THEN the list is rewritten with the log folded in; a log left behind by a crash between the rewrite and its removal is ignored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-clog-compact-'));
  try {
    await createMaildirFolder(dir);
    const a = new Mailbox({ name: 'INBOX', dir, changeLogBytes: 600 });
    const uid = await a.append(Buffer.from('Subject: x\r\n\r\nx\r\n'), '', new Date());
    let oldLog: Buffer | undefined;
    const listBefore = await readFile(join(dir, UIDLIST_FILE));
    for (let i = 0; i < 20 && (await readFile(join(dir, UIDLIST_FILE))).equals(listBefore); i++) {
      if (existsSync(join(dir, CHANGE_LOG_FILE))) oldLog = await readFile(join(dir, CHANGE_LOG_FILE));
      await a.setFlags([uid], i % 2 ? 'remove' : 'add', 'S');
    }
    assert.ok(!(await readFile(join(dir, UIDLIST_FILE))).equals(listBefore), 'list rewritten once the log passed 600 bytes');
    assert.ok(oldLog && oldLog.length > 100, 'changes went to the log before');
    const folded = view((await readListState(dir))!);
    assert.equal(folded.modseq, a.modseq);
    // Crash between the list's rename and the log's removal: the old log is still there.
    await writeFile(join(dir, CHANGE_LOG_FILE), oldLog);
    assert.deepEqual(view((await readListState(dir))!), folded, 'old generation ignored');
    const b = new Mailbox({ name: 'INBOX', dir, changeLogBytes: 600 });
    await b.refresh();
    assert.deepEqual(mailboxView(b), mailboxView(a));
    await b.setFlags([uid], 'add', 'F');
    await a.refresh();
    assert.deepEqual(mailboxView(a), mailboxView(b));
    assert.ok(a.byUid(uid)!.letters.includes('F'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('upgrade in place: a folder whose list has no log line (an older daemon wrote it) reads as before, and its first change writes the list whole; changeLogBytes 0 keeps no log', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-clog-upgrade-'));
  try {
    await createMaildirFolder(dir);
    const old = new Mailbox({ name: 'INBOX', dir, changeLogBytes: 0 });
    const uid = await old.append(Buffer.from('Subject: x\r\n\r\nx\r\n'), '', new Date());
    await old.setFlags([uid], 'add', 'S');
    assert.ok(!existsSync(join(dir, CHANGE_LOG_FILE)), 'no log with changeLogBytes 0');
    const text = await readFile(join(dir, UIDLIST_FILE), 'utf8');
    assert.ok(!/^L/m.test(text), 'no generation line: the list an older daemon writes');
    const mb = new Mailbox({ name: 'INBOX', dir });
    await mb.refresh();
    assert.deepEqual(mailboxView(mb), mailboxView(old));
    await mb.setFlags([uid], 'add', 'F');
    assert.ok(/^L/m.test(await readFile(join(dir, UIDLIST_FILE), 'utf8')), 'first change writes the list with a generation');
    await mb.setFlags([uid], 'remove', 'F');
    assert.ok(existsSync(join(dir, CHANGE_LOG_FILE)), 'later changes go to the log');
    await old.refresh();
    assert.deepEqual(mailboxView(old), mailboxView(mb));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('GIVEN a damaged UID list WHEN the folder changes THEN the list is written whole again (a log never continues a list that does not parse)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mf-clog-damaged-'));
  try {
    await createMaildirFolder(dir);
    const a = new Mailbox({ name: 'INBOX', dir });
    const uid = await a.append(Buffer.from('Subject: x\r\n\r\nx\r\n'), '', new Date());
    await a.setFlags([uid], 'add', 'S');
    await writeFile(join(dir, UIDLIST_FILE), 'garbage\n');
    assert.equal(await readListState(dir), undefined);
    await a.refresh();
    await a.setFlags([uid], 'add', 'F');
    const disk = (await readListState(dir))!;
    assert.ok(disk, 'the list parses again');
    assert.equal(disk.uidValidity, a.uidValidity, 'UIDVALIDITY kept');
    assert.deepEqual(view(disk).messages, mailboxView(a).messages);
    const b = new Mailbox({ name: 'INBOX', dir });
    await b.refresh();
    assert.deepEqual(mailboxView(b), mailboxView(a));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
