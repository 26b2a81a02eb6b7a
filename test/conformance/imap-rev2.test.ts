/**
 * IMAP4rev2 (RFC 9051). Dovecot 2.3.19 (Debian 12) does not implement it: it does not advertise
 * IMAP4rev2 and answers `ENABLE IMAP4rev2` with a bare OK (no ENABLED), so the rev2 behaviour is
 * tested against the RFC's text, one test per section, on mailfleetd. What must not change — a session
 * that never sent ENABLE IMAP4rev2 is IMAP4rev1 — is compared with Dovecot in the same run.
 * docs/imap-rev2.md lists every Appendix E item and what mailfleetd does about it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { PASSWORD } from '../daemon/mail-harness.js';
import { normalize } from './normalize.js';
import { usePeers } from './peers.js';
import { RawImap, slit as lit, type Reply } from './raw-imap.js';

const USERS = Array.from({ length: 12 }, (_, i) => `r${i}@example.com`);
const peers = usePeers({ users: USERS, label: 'rev2' });
let next = 0;
const user = () => USERS[next++]!;

const M = (n: number) => `From: a@example.com\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`;

/** Logs in, optionally enables rev2, makes folder `box` with `n` messages (the first \Seen, the last \Deleted) and selects it. */
async function session(port: number, u: string, opts: { rev2: boolean; box?: string; n?: number } = { rev2: true }): Promise<RawImap> {
  const c = await RawImap.login(port, u, PASSWORD);
  if (opts.rev2) assert.deepEqual((await c.cmd('ENABLE IMAP4rev2')).untagged, ['* ENABLED IMAP4rev2']);
  if (opts.box) {
    await c.cmd(`CREATE ${opts.box}`);
    const n = opts.n ?? 3;
    for (let i = 1; i <= n; i++) await c.cmd(`APPEND ${opts.box} ${i === 1 ? '(\\Seen) ' : i === n ? '(\\Deleted) ' : ''}${lit(M(i))}`);
  }
  return c;
}

describe('IMAP4rev1 sessions are unchanged (compared with Dovecot, which has no IMAP4rev2)', () => {
  test('SELECT reports RECENT and UNSEEN, FETCH shows \\Recent, SEARCH answers SEARCH, SEARCH RECENT/NEW/OLD, STATUS RECENT, LSUB, STATUS DELETED is unknown', async () => {
    const u = user();
    const steps = [
      'CREATE Ra',
      `APPEND Ra (\\Seen) ${lit(M(1))}`,
      `APPEND Ra ${lit(M(2))}`,
      'SUBSCRIBE Ra',
      'STATUS Ra (MESSAGES RECENT UNSEEN)',
      'STATUS Ra (DELETED)',
      'SELECT Ra',
      'FETCH 1:* (FLAGS)',
      'SEARCH ALL',
      'UID SEARCH RECENT',
      'SEARCH NEW',
      'SEARCH OLD',
      'LSUB "" R*',
    ];
    const run = async (port: number) => {
      const c = await session(port, u, { rev2: false });
      const out: string[][] = [];
      try {
        for (const st of steps) out.push([st.split('\r\n')[0]!, ...normalize(await c.cmd(st))]);
      } finally {
        await c.close();
      }
      return out;
    };
    const [ours, theirs] = await Promise.all([run(peers.mf.port), run(peers.dc.port)]);
    assert.deepEqual(ours, theirs);
  });

  test('Dovecot 2.3 does not offer IMAP4rev2 (so rev2 is tested against RFC 9051 below)', async () => {
    const c = await RawImap.login(peers.dc.port, user(), PASSWORD);
    try {
      assert.ok(!(await c.cmd('CAPABILITY')).untagged[0]!.includes('IMAP4rev2'));
      assert.deepEqual((await c.cmd('ENABLE IMAP4rev2')).untagged, []);
    } finally {
      await c.close();
    }
  });
});

describe('IMAP4rev2 (RFC 9051) after ENABLE IMAP4rev2, on mailfleetd', () => {
  const port = () => peers.mf.port;
  const cmd = async (c: RawImap, line: string): Promise<Reply> => c.cmd(line);

  test('§6.1.1 CAPABILITY lists IMAP4rev2 beside IMAP4rev1; §6.3.1 ENABLE IMAP4rev2 answers ENABLED IMAP4rev2, after login only', async () => {
    const c = await RawImap.open(port());
    try {
      const caps = (await cmd(c, 'CAPABILITY')).untagged[0]!.split(' ');
      assert.ok(caps.includes('IMAP4rev1') && caps.includes('IMAP4rev2'), caps.join(' '));
      assert.equal((await cmd(c, 'ENABLE IMAP4rev2')).status, 'BAD'); // not authenticated yet
      assert.equal((await cmd(c, `LOGIN ${user()} ${PASSWORD}`)).status, 'OK');
      assert.deepEqual((await cmd(c, 'ENABLE IMAP4rev2')).untagged, ['* ENABLED IMAP4rev2']);
    } finally {
      await c.close();
    }
  });

  test('§6.3.2 SELECT/EXAMINE: FLAGS, EXISTS, LIST, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT; no RECENT, no UNSEEN; [CLOSED] when another mailbox was selected', async () => {
    const c = await session(port(), user(), { rev2: true, box: 'Sa' });
    try {
      await cmd(c, 'CREATE Sb.kid');
      const r = await cmd(c, 'SELECT Sa');
      assert.equal(r.tagged.split(' ')[1], '[READ-WRITE]');
      const kinds = r.untagged.map((l) => l.replace(/^\* (\d+) /, '* n ').replace(/ \d+\]/, ' n]').split(/\]| \(/)[0]);
      assert.deepEqual(kinds.sort(), ['* FLAGS', '* LIST', '* OK [HIGHESTMODSEQ n', '* OK [PERMANENTFLAGS', '* OK [UIDNEXT n', '* OK [UIDVALIDITY n', '* n EXISTS'].sort());
      assert.ok(r.untagged.includes('* LIST () "." "Sa"'), r.untagged.join('\n'));
      assert.ok(!r.untagged.some((l) => / RECENT$|\[UNSEEN /.test(l)));
      const e = await cmd(c, 'EXAMINE Sb.kid');
      assert.equal(e.untagged[0], '* OK [CLOSED] Previous mailbox closed');
      assert.ok(e.untagged.includes('* LIST () "." "Sb.kid"'));
      assert.equal(e.tagged.split(' ')[1], '[READ-ONLY]');
    } finally {
      await c.close();
    }
  });

  test('Appendix E / §2.3.2: no \\Recent flag and no RECENT response, also for new mail; a rev1 session on the same mailbox still sees them', async () => {
    const u = user();
    const c = await session(port(), u, { rev2: true, box: 'Rc', n: 2 });
    const old = await session(port(), u, { rev2: false });
    try {
      await cmd(c, 'SELECT Rc');
      assert.deepEqual((await cmd(c, 'FETCH 1:* (FLAGS)')).untagged, ['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS (\\Deleted))']);
      await peers.mf.deliver(u, M(9)); // to INBOX: the rev1 session selects INBOX and claims it
      await cmd(old, 'APPEND Rc {' + Buffer.byteLength(M(3)) + '+}\r\n' + M(3));
      const noop = await cmd(c, 'NOOP');
      assert.deepEqual(noop.untagged, ['* 3 EXISTS']);
      assert.deepEqual((await cmd(c, 'FETCH 3 (FLAGS)')).untagged, ['* 3 FETCH (FLAGS ())']);
      const sel = await cmd(old, 'SELECT INBOX');
      assert.ok(sel.untagged.includes('* 1 RECENT'), sel.untagged.join('\n'));
      assert.deepEqual((await cmd(old, 'FETCH 1 (FLAGS)')).untagged, ['* 1 FETCH (FLAGS (\\Recent))']);
    } finally {
      await c.close();
      await old.close();
    }
  });

  test('§6.4.4 SEARCH answers ESEARCH (no RETURN means ALL), UID SEARCH with UID; RECENT, NEW, OLD are not search keys', async () => {
    const c = await session(port(), user(), { rev2: true, box: 'Se', n: 4 });
    try {
      await cmd(c, 'SELECT Se');
      assert.deepEqual((await c.cmd('SEARCH UNSEEN', 'x0')).untagged, ['* ESEARCH (TAG "x0") ALL 2:4']);
      const r = await c.cmd('UID SEARCH DELETED', 'x1');
      assert.deepEqual(r.untagged, ['* ESEARCH (TAG "x1") UID ALL 4']);
      assert.deepEqual((await c.cmd('SEARCH SUBJECT nothing', 'x2')).untagged, ['* ESEARCH (TAG "x2")']);
      assert.deepEqual((await c.cmd('SEARCH RETURN (COUNT) ALL', 'x3')).untagged, ['* ESEARCH (TAG "x3") COUNT 4']);
      for (const k of ['RECENT', 'NEW', 'NOT OLD', 'OR SEEN (RECENT)']) assert.equal((await cmd(c, `SEARCH ${k}`)).status, 'BAD', k);
      assert.equal((await cmd(c, 'SEARCH SEEN')).status, 'OK');
    } finally {
      await c.close();
    }
  });

  test('§6.3.11 STATUS: DELETED and SIZE items; RECENT is not one (also in LIST … RETURN (STATUS))', async () => {
    const c = await session(port(), user(), { rev2: true, box: 'St', n: 3 });
    try {
      const size = 3 * Buffer.byteLength(M(1));
      assert.deepEqual((await cmd(c, 'STATUS St (MESSAGES DELETED SIZE UNSEEN)')).untagged, [`* STATUS "St" (MESSAGES 3 DELETED 1 SIZE ${size} UNSEEN 2)`]);
      assert.equal((await cmd(c, 'STATUS St (RECENT)')).status, 'BAD');
      const l = await cmd(c, 'LIST "" St RETURN (STATUS (DELETED))');
      assert.deepEqual(l.untagged.slice(1), ['* STATUS "St" (DELETED 1)']);
      assert.equal((await cmd(c, 'LIST "" St RETURN (STATUS (RECENT))')).status, 'BAD');
    } finally {
      await c.close();
    }
  });

  test('§6.3.9 LIST: LSUB is gone (LIST (SUBSCRIBED) instead, with \\NonExistent), child attributes always sent', async () => {
    const c = await session(port(), user(), { rev2: true });
    try {
      await cmd(c, 'CREATE Li.kid');
      await cmd(c, 'SUBSCRIBE Li.kid');
      await cmd(c, 'CREATE Lgone');
      await cmd(c, 'SUBSCRIBE Lgone');
      await cmd(c, 'DELETE Lgone');
      assert.equal((await cmd(c, 'LSUB "" L*')).status, 'BAD');
      assert.deepEqual((await cmd(c, 'LIST (SUBSCRIBED) "" L*')).untagged.sort(), ['* LIST (\\Subscribed \\HasNoChildren) "." "Li.kid"', '* LIST (\\Subscribed \\NonExistent \\HasNoChildren) "." "Lgone"'].sort());
      assert.deepEqual((await cmd(c, 'LIST "" Li*')).untagged, ['* LIST (\\HasChildren) "." "Li"', '* LIST (\\HasNoChildren \\Subscribed) "." "Li.kid"']);
    } finally {
      await c.close();
    }
  });

  test('§5.1 mailbox names are UTF-8 in rev2 sessions (sent and received); a rev1 session sees the same folders in modified UTF-7', async () => {
    const u = user();
    const c = await session(port(), u, { rev2: true });
    const old = await session(port(), u, { rev2: false });
    // RawImap writes strings as UTF-8 and reads lines as latin1: compare the UTF-8 octets.
    const w = (x: string) => Buffer.from(x, 'utf8').toString('latin1');
    try {
      assert.equal((await cmd(c, 'CREATE "Grüße.Köln"')).status, 'OK');
      assert.deepEqual((await cmd(c, 'LIST "" "Grü*"')).untagged, [w('* LIST (\\HasChildren) "." "Grüße"'), w('* LIST (\\HasNoChildren) "." "Grüße.Köln"')]);
      assert.deepEqual((await cmd(c, 'STATUS "Grüße.Köln" (MESSAGES)')).untagged, [w('* STATUS "Grüße.Köln" (MESSAGES 0)')]);
      assert.ok((await cmd(c, 'SELECT "Grüße"')).untagged.includes(w('* LIST () "." "Grüße"')));
      assert.deepEqual((await cmd(old, 'LIST "" Gr*')).untagged, ['* LIST (\\HasChildren) "." "Gr&APwA3w-e"', '* LIST (\\HasNoChildren) "." "Gr&APwA3w-e.K&APY-ln"']);
      assert.equal((await cmd(old, 'SELECT Gr&APwA3w-e.K&APY-ln')).status, 'OK');
      // 7-bit names are UTF-8 too in rev2: "R&D" is that name, which a rev1 session sees as R&-D.
      assert.equal((await cmd(c, 'CREATE R&D')).status, 'OK');
      assert.deepEqual((await cmd(c, 'LIST "" R&*')).untagged, ['* LIST (\\HasNoChildren) "." "R&D"']);
      assert.equal((await cmd(c, 'SELECT "R&D"')).status, 'OK');
      assert.deepEqual((await cmd(old, 'LIST "" R*')).untagged, ['* LIST (\\HasNoChildren) "." "R&-D"']);
    } finally {
      await c.close();
      await old.close();
    }
  });

  test('imapflow (which enables IMAP4rev2 when offered) works with UTF-8 and "&" folder names, STATUS DELETED and ESEARCH', async () => {
    const c = new ImapFlow({ host: '127.0.0.1', port: port(), secure: false, tls: { rejectUnauthorized: false }, auth: { user: user(), pass: PASSWORD }, logger: false });
    await c.connect();
    try {
      assert.ok((c as unknown as { enabled: Set<string> }).enabled.has('IMAP4REV2'));
      await c.mailboxCreate('Grüße & Co');
      await c.append('Grüße & Co', M(1), ['\\Deleted']);
      await c.append('Grüße & Co', M(2));
      assert.ok((await c.list()).some((b) => b.path === 'Grüße & Co'));
      const st = await c.status('Grüße & Co', { messages: true, deleted: true } as never);
      assert.equal(st.messages, 2);
      assert.equal((st as { deleted?: number }).deleted, 1);
      const lock = await c.getMailboxLock('Grüße & Co');
      try {
        assert.deepEqual(await c.search({ deleted: false }, { uid: true }), [2]);
        const flags: string[] = [];
        for await (const m of c.fetch('1:*', { flags: true })) flags.push([...(m.flags ?? [])].sort().join(','));
        assert.deepEqual(flags, ['\\Deleted', '']);
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  });

  test('§7.5.2 unsolicited FETCH responses carry UID (flag changes made by another session)', async () => {
    const u = user();
    const c = await session(port(), u, { rev2: true, box: 'Uf', n: 2 });
    const other = await session(port(), u, { rev2: false });
    try {
      await cmd(c, 'SELECT Uf');
      await cmd(other, 'SELECT Uf');
      await cmd(other, 'STORE 2 +FLAGS.SILENT (\\Flagged)');
      const u = (await cmd(c, 'NOOP')).untagged;
      assert.equal(u.length, 1);
      assert.match(u[0]!, /^\* 2 FETCH \(UID 2 FLAGS \((\\Deleted \\Flagged|\\Flagged \\Deleted)\)\)$/);
    } finally {
      await c.close();
      await other.close();
    }
  });
});
