/**
 * CONDSTORE and QRESYNC (RFC 7162): with a real client (imapflow with `qresync: true`, which enables
 * both and resynchronises with SELECT (QRESYNC …)), with raw scripted sessions, and at the index level:
 * the expunge history lives in the UID list, so another process on the same folder answers VANISHED
 * alike; old lists (no history line) still read, and a list rewritten by a daemon that drops the line
 * reads as "history unknown" rather than as wrong history.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { createMaildirFolder, Mailbox } from '../../lib/store/mailbox/index.js';
import { RawImap } from '../conformance/raw-imap.js';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';

const USER = 'alice@example.com';
let h: Harness;
before(async () => {
  h = await startImapHarness();
});
after(async () => {
  await h?.close();
});

const message = (n: number) => `From: a@example.com\r\nTo: ${USER}\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`;
const client = () =>
  new ImapFlow({
    host: '127.0.0.1',
    port: h.port,
    secure: false,
    auth: { user: USER, pass: PASSWORD },
    logger: false,
    qresync: true,
    tls: { rejectUnauthorized: false },
  });

test('imapflow (qresync: true): HIGHESTMODSEQ, FETCH changedSince, STORE unchangedSince, and a QRESYNC reopen gets VANISHED (EARLIER) and the flag changes', async () => {
  const a = client();
  const b = client();
  await a.connect();
  await b.connect();
  try {
    assert.ok(a.capabilities.has('CONDSTORE') && a.capabilities.has('QRESYNC'));
    assert.ok(a.enabled.has('QRESYNC'), 'ENABLE QRESYNC took');
    await a.mailboxCreate('Sync');
    for (let i = 1; i <= 6; i++) await a.append('Sync', message(i));
    const box = await a.mailboxOpen('Sync');
    const start = box.highestModseq!;
    assert.equal(typeof start, 'bigint');
    const uidValidity = box.uidValidity;
    await a.mailboxClose();

    // Another client changes flags and expunges.
    await b.mailboxOpen('Sync');
    await b.messageFlagsAdd('2', ['\\Flagged']);
    await b.messageFlagsAdd('3,5', ['\\Deleted']);
    await b.messageDelete('3,5');
    const changed: number[] = [];
    for await (const m of b.fetch('1:*', { uid: true, flags: true }, { changedSince: start }))
      changed.push(m.uid);
    assert.deepEqual(
      changed,
      [2],
      'only the flagged message changed since the start (expunged ones are gone)',
    );
    const now = b.mailbox && b.mailbox.highestModseq;
    assert.ok(now && now > start, 'HIGHESTMODSEQ moved');
    // A conditional STORE against a stale modseq fails for the changed message only.
    const r = await b.messageFlagsAdd('1:2', ['\\Answered'], { unchangedSince: start });
    assert.equal(r, true);
    const flags = new Map<number, string[]>();
    for await (const m of b.fetch('1:*', { uid: true, flags: true }))
      flags.set(m.uid, [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort());
    assert.deepEqual(flags.get(1), ['\\Answered']);
    assert.deepEqual(
      flags.get(2),
      ['\\Flagged'],
      'message 2 changed after `start`: UNCHANGEDSINCE left it alone',
    );

    // Resynchronise with QRESYNC: only what changed comes back.
    const vanished: number[] = [];
    const flagUpdates: number[] = [];
    a.on('expunge', (e: { uid?: number; vanished: boolean; earlier?: boolean }) => {
      if (e.vanished && e.earlier && e.uid) vanished.push(e.uid);
    });
    a.on('flags', (e: { uid?: number }) => {
      if (e.uid) flagUpdates.push(e.uid);
    });
    const reopened = await a.mailboxOpen('Sync', { changedSince: start, uidValidity } as never);
    assert.equal(
      (reopened as unknown as { qresync?: boolean }).qresync,
      true,
      'imapflow accepted the QRESYNC answer',
    );
    assert.deepEqual(
      vanished.sort((x, y) => x - y),
      [3, 5],
    );
    assert.deepEqual(
      flagUpdates.sort((x, y) => x - y),
      [1, 2],
    );
  } finally {
    await a.logout().catch(() => undefined);
    await b.logout().catch(() => undefined);
  }
});

test("raw: ENABLE reports what it enabled; a QRESYNC session gets VANISHED for another session's EXPUNGE, a plain one EXPUNGE; unsolicited FETCH carries MODSEQ", async () => {
  for (let i = 1; i <= 3; i++) await h.deliver(USER, message(i));
  const q = await RawImap.login(h.port, USER, PASSWORD);
  const plain = await RawImap.login(h.port, USER, PASSWORD);
  const other = await RawImap.login(h.port, USER, PASSWORD);
  try {
    assert.deepEqual((await q.cmd('ENABLE QRESYNC X-NOPE')).untagged, ['* ENABLED QRESYNC']);
    assert.deepEqual((await plain.cmd('ENABLE X-NOPE')).untagged, ['* ENABLED']);
    const sel = await q.cmd('SELECT INBOX');
    assert.ok(
      sel.untagged.some((l) => /^\* OK \[HIGHESTMODSEQ \d+\]/.test(l)),
      sel.untagged.join('\n'),
    );
    await plain.cmd('SELECT INBOX');
    await other.cmd('SELECT INBOX');
    const uids = (await other.cmd('UID SEARCH ALL')).untagged[0]!.slice(9).split(' ').map(Number);
    await other.cmd(`UID STORE ${uids[0]} +FLAGS.SILENT (\\Flagged)`);
    await other.cmd(`UID STORE ${uids[1]} +FLAGS.SILENT (\\Deleted)`);
    await other.cmd('EXPUNGE');
    const qr = await q.cmd('NOOP');
    assert.ok(qr.untagged.includes(`* VANISHED ${uids[1]}`), qr.untagged.join('\n'));
    assert.ok(!qr.untagged.some((l) => / EXPUNGE$/.test(l)));
    assert.ok(
      qr.untagged.some((l) =>
        new RegExp(
          `^\\* 1 FETCH \\(UID ${uids[0]} FLAGS \\(\\\\Flagged( \\\\Recent)?\\) MODSEQ \\(\\d+\\)\\)$`,
        ).test(l),
      ),
      qr.untagged.join('\n'),
    );
    const pr = await plain.cmd('NOOP');
    assert.ok(pr.untagged.includes('* 2 EXPUNGE'), pr.untagged.join('\n'));
    assert.ok(
      pr.untagged.some((l) => /^\* 1 FETCH \(FLAGS \(\\Flagged[^)]*\)\)$/.test(l)),
      `no MODSEQ before CONDSTORE is enabled: ${pr.untagged.join('\n')}`,
    );
  } finally {
    await Promise.all([q.close(), plain.close(), other.close()]);
  }
});

/** A folder with `n` messages delivered into new/ and indexed. */
async function folder(
  n: number,
  opts: { expungeHistoryUids?: number; changeLogBytes?: number } = {},
): Promise<{ dir: string; mb: Mailbox }> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-condstore-'));
  await createMaildirFolder(dir);
  for (let i = 0; i < n; i++)
    await writeFile(join(dir, 'new', `1700000000.M${i}P1Q${i + 1}.test`), message(i));
  const mb = new Mailbox({ name: 'INBOX', dir, ...opts });
  await mb.refresh();
  return { dir, mb };
}

const run = promisify(execFile);

test('cross-process: an expunge and a flag change made by another process are seen with the same modseqs and VANISHED history', async () => {
  const { dir, mb } = await folder(5);
  try {
    const start = mb.modseq;
    // Another process (a second daemon on the same shared folder) changes it under the folder lock.
    const script = `
      import { Mailbox } from ${JSON.stringify(join(process.cwd(), 'lib/store/mailbox/index.ts'))};
      const mb = new Mailbox({ name: 'INBOX', dir: process.argv[1] });
      await mb.refresh();
      await mb.setFlags([1], 'add', 'F');
      await mb.expunge([2, 4]);
      console.log(JSON.stringify({ modseq: mb.modseq, vanished: mb.vanishedSince(${start}), records: mb.messages.map((r) => [r.uid, r.modseq]) }));
    `;
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, dir],
      { cwd: process.cwd() },
    );
    const theirs = JSON.parse(stdout) as { modseq: number; vanished: number[]; records: number[][] };
    await mb.refresh();
    assert.equal(mb.modseq, theirs.modseq, 'HIGHESTMODSEQ agrees');
    assert.deepEqual(
      mb.messages.map((r) => [r.uid, r.modseq]),
      theirs.records,
      'per-message modseqs agree',
    );
    assert.deepEqual(mb.vanishedSince(start), [2, 4]);
    assert.deepEqual(theirs.vanished, [2, 4]);
    assert.ok(mb.byUid(1)!.modseq > start);
    assert.deepEqual(mb.vanishedSince(mb.modseq), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('expunge history is bounded: past the bound the floor rises and older modseqs read as unknown', async () => {
  const { dir, mb } = await folder(6, { expungeHistoryUids: 2 });
  try {
    const start = mb.modseq;
    await mb.expunge([1]);
    const afterFirst = mb.modseq;
    await mb.expunge([2]);
    await mb.expunge([3]);
    assert.equal(mb.vanishedSince(start), undefined, 'UID 1 was trimmed: history before it is unknown');
    assert.deepEqual(mb.vanishedSince(afterFirst), [2, 3]);
    // A second reader gets the same from the file.
    const other = new Mailbox({ name: 'INBOX', dir });
    await other.refresh();
    assert.equal(other.vanishedSince(start), undefined);
    assert.deepEqual(other.vanishedSince(afterFirst), [2, 3]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The previous parser's patterns (lib/store/mailbox/mailbox.ts before the history line): the header it
// must still accept, and the record pattern the history line must not match (it skips such lines).
const OLD_HEAD = /^MF1 V(\d+) N(\d+) M(\d+) C(-?[\d.]+)(?: R(\d+))?$/;
const OLD_RECORD = /^(\d+) (\d+) (\d+) (\d+) (.+)$/;

test('format versioning: an old list (no history line) reads, with history unknown; a list rewritten by an old daemon (line dropped) reads as unknown, not as wrong', async () => {
  // The list written whole on every change (no change log): what an older daemon reads and writes.
  const { dir, mb } = await folder(4, { changeLogBytes: 0 });
  try {
    await mb.expunge([1]);
    const p = join(dir, 'mailfleet-uidlist');
    const text = await readFile(p, 'utf8');
    const [head, hist, ...records] = text.trimEnd().split('\n');
    assert.match(head!, OLD_HEAD, 'the header keeps the shape old daemons parse');
    assert.match(hist!, /^X1 M\d+ F\d+ \d+:1$/);
    assert.doesNotMatch(hist!, OLD_RECORD, 'old daemons skip the history line');
    assert.ok(records.every((l) => OLD_RECORD.test(l)));

    // What an old daemon writes after its own expunge of UID 2: the header's modseq moves, no history line.
    const m = OLD_HEAD.exec(head!)!;
    const oldModseq = Number(m[3]) + 1;
    const rewritten =
      [head!.replace(/ M\d+ /, ` M${oldModseq} `), ...records.filter((l) => !l.startsWith('2 '))].join('\n') +
      '\n';
    await unlink(join(dir, 'cur', records.find((l) => l.startsWith('2 '))!.split(' ')[4]!));
    await writeFile(p, rewritten);
    const other = new Mailbox({ name: 'INBOX', dir, changeLogBytes: 0 });
    await other.refresh();
    assert.equal(other.modseq, oldModseq);
    assert.equal(
      other.vanishedSince(oldModseq - 2),
      undefined,
      'history lost: unknown, so QRESYNC falls back to known UIDs',
    );
    assert.deepEqual(other.vanishedSince(oldModseq), []);
    // The next write by a new daemon starts history again from there.
    await other.expunge([3]);
    assert.deepEqual(other.vanishedSince(oldModseq), [3]);

    // A stale history line (header moved on under an old daemon that kept the line verbatim) is not trusted either.
    const again = await readFile(p, 'utf8');
    await writeFile(
      p,
      again.replace(/^MF1 (V\d+ N\d+) M(\d+)/, (_, vn: string, ms: string) => `MF1 ${vn} M${Number(ms) + 5}`),
    );
    const third = new Mailbox({ name: 'INBOX', dir, changeLogBytes: 0 });
    await third.refresh();
    assert.equal(third.vanishedSince(oldModseq), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('raw: SELECT (QRESYNC) after history was lost reports every known UID that is gone (RFC 7162 §3.2.5.2 fallback)', async () => {
  const r = await RawImap.login(h.port, USER, PASSWORD);
  try {
    await r.cmd('CREATE Lost');
    for (let i = 1; i <= 4; i++) {
      const body = message(i);
      await r.cmd(`APPEND Lost {${body.length}+}\r\n${body}`);
    }
    await r.cmd('ENABLE QRESYNC');
    const sel = await r.cmd('SELECT Lost');
    const uidv = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.join('\n'))![1]);
    const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1]);
    await r.cmd('STORE 2 +FLAGS.SILENT (\\Deleted)');
    await r.cmd('EXPUNGE');
    await r.cmd('UNSELECT');
    // Drop the history line, as a daemon without it would on rewrite (and move the header on).
    const p = join(h.maildir(USER), '.Lost', 'mailfleet-uidlist');
    const text = await readFile(p, 'utf8');
    await writeFile(
      p,
      text
        .split('\n')
        .filter((l) => !l.startsWith('X'))
        .join('\n')
        .replace(/ M(\d+) /, (_, ms: string) => ` M${Number(ms) + 1} `),
    );
    const again = await r.cmd(`SELECT Lost (QRESYNC (${uidv} ${hms} 1:4))`);
    assert.ok(again.untagged.includes('* VANISHED (EARLIER) 2'), again.untagged.join('\n'));
    const none = await r.cmd(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${hms + 1} VANISHED)`);
    assert.ok(none.untagged.includes('* VANISHED (EARLIER) 2'), 'fallback for UID FETCH VANISHED too');
  } finally {
    await r.close();
  }
});

test('imap.expungeHistoryUids reaches the index: past it an old modseq gets the known-UID fallback (UID 1, expunged before it, included)', async () => {
  const small = await startImapHarness({ imap: { expungeHistoryUids: 2 } });
  try {
    const answers: string[] = [];
    for (const hh of [h, small]) {
      const r = await RawImap.login(hh.port, USER, PASSWORD);
      try {
        await r.cmd('CREATE Bound');
        for (let i = 1; i <= 6; i++) await r.cmd(`APPEND Bound {${message(i).length}+}\r\n${message(i)}`);
        await r.cmd('ENABLE QRESYNC');
        await r.cmd('SELECT Bound');
        await r.cmd('UID STORE 1 +FLAGS.SILENT (\\Deleted)');
        const ex = await r.cmd('EXPUNGE');
        assert.ok(ex.untagged.includes('* VANISHED 1'));
        const sel = await r.cmd('SELECT Bound');
        const uidv = /UIDVALIDITY (\d+)/.exec(sel.untagged.join('\n'))![1];
        const start = /HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))![1];
        for (const u of [2, 3, 4]) {
          await r.cmd(`UID STORE ${u} +FLAGS.SILENT (\\Deleted)`);
          await r.cmd('EXPUNGE');
        }
        await r.cmd('UNSELECT');
        const q = await r.cmd(`SELECT Bound (QRESYNC (${uidv} ${start} 1:6))`);
        answers.push(q.untagged.find((l) => l.startsWith('* VANISHED')) ?? '');
      } finally {
        await r.close();
      }
    }
    assert.deepEqual(answers, ['* VANISHED (EARLIER) 2:4', '* VANISHED (EARLIER) 1:4']);
  } finally {
    await small.close();
  }
});
