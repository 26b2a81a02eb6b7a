/**
 * Issue 20's list of RFC 3501 defects, one test each, over raw IMAP sessions (test/conformance/raw-imap.ts)
 * against the real daemon: \Recent, SENT* dates, HEADER "", FROM with comments, ENVELOPE groups and
 * routes, MOVE into the selected mailbox, '[' in atoms, LSUB's \Noselect parents, UIDVALIDITY after
 * DELETE + CREATE, FLAGS after a new keyword, CREATE of superior names, and FETCH/SEARCH/STORE under
 * concurrent changes from other sessions and another node.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';
import { lit, RawImap, searchHits, type Reply } from '../conformance/raw-imap.js';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
let n = 0;
before(async () => {
  h = await startImapHarness({ users: Array.from({ length: 12 }, (_, i) => `u${i}@example.com`) });
});
after(async () => h?.close());

/** A fresh user per test, so tests do not see each other's folders. */
function user(): string {
  return `u${n++}@example.com`;
}
const login = (u: string) => RawImap.login(h.port, u, PASSWORD);
const msg = (headers: string, body = 'body\r\n') => `${headers.replace(/\n/g, '\r\n')}\r\n\r\n${body}`;
/** Mailbox names unquoted ("Work" → Work): both forms are valid astrings; servers differ. */
const unq = (l: string) => l.replace(/"([^"\\ ]*)"(?= \(|$)/g, '$1');
const lines = (r: Reply) => r.untagged.map(unq);
const has = (r: Reply, re: RegExp) => lines(r).some((l) => re.test(l));

test('RFC 3501 §2.3.2 \\Recent: SELECT claims new messages (RECENT n, FETCH FLAGS \\Recent, SEARCH RECENT/NEW/OLD); EXAMINE and STATUS do not claim; a later SELECT sees none', async () => {
  const u = user();
  await h.deliver(u, msg('Subject: r1'));
  await h.deliver(u, msg('Subject: r2'));
  const a = await login(u);
  const b = await login(u);
  try {
    const st = await a.cmd('STATUS INBOX (MESSAGES RECENT)');
    assert.ok(has(st, /^\* STATUS INBOX \(MESSAGES 2 RECENT 2\)$/), st.untagged.join('\n'));
    const ex = await b.cmd('EXAMINE INBOX');
    assert.ok(has(ex, /^\* 2 RECENT$/), ex.untagged.join('\n'));
    const sel = await a.cmd('SELECT INBOX');
    assert.ok(has(sel, /^\* 2 RECENT$/), sel.untagged.join('\n'));
    const f = await a.cmd('FETCH 1:* (FLAGS)');
    assert.deepEqual(f.untagged, ['* 1 FETCH (FLAGS (\\Recent))', '* 2 FETCH (FLAGS (\\Recent))']);
    await a.cmd('STORE 1 +FLAGS.SILENT (\\Seen)');
    assert.deepEqual(searchHits(await a.cmd('SEARCH RECENT')), [1, 2]);
    assert.deepEqual(searchHits(await a.cmd('SEARCH NEW')), [2]);
    assert.deepEqual(searchHits(await a.cmd('SEARCH OLD')), []);
    // Claimed by a: b's SELECT sees nothing recent, and no \Recent in its FETCH.
    const sel2 = await b.cmd('SELECT INBOX');
    assert.ok(has(sel2, /^\* 0 RECENT$/), sel2.untagged.join('\n'));
    assert.deepEqual((await b.cmd('FETCH 2 (FLAGS)')).untagged, ['* 2 FETCH (FLAGS ())']);
    assert.deepEqual(searchHits(await b.cmd('SEARCH OLD')), [1, 2]);
    // A new delivery goes to the first session that looks: EXISTS with RECENT.
    await h.deliver(u, msg('Subject: r3'));
    const noop = await a.cmd('NOOP');
    assert.ok(has(noop, /^\* 3 EXISTS$/) && has(noop, /^\* 3 RECENT$/), noop.untagged.join('\n'));
    const noop2 = await b.cmd('NOOP');
    // Its count did not change (still 0): no RECENT line, as Dovecot.
    assert.ok(has(noop2, /^\* 3 EXISTS$/) && !has(noop2, /RECENT/), noop2.untagged.join('\n'));
    const st2 = await b.cmd('STATUS INBOX (RECENT)');
    assert.ok(has(st2, /RECENT 0\)$/), st2.untagged.join('\n'));
  } finally {
    await a.close();
    await b.close();
  }
});

test('RFC 3501 §6.4.4 SENTON/SENTBEFORE/SENTSINCE compare the Date header\'s own day, not the UTC day', async () => {
  const u = user();
  await h.deliver(u, msg('Subject: late\nDate: Sat, 24 Mar 2007 23:00:00 -0500')); // 25 Mar in UTC
  await h.deliver(u, msg('Subject: early\nDate: Sun, 25 Mar 2007 01:00:00 +0200')); // 24 Mar in UTC
  await h.deliver(u, msg('Subject: noon\nDate: Sat, 24 Mar 2007 12:00:00 +0000'));
  const c = await login(u);
  try {
    await c.cmd('SELECT INBOX');
    assert.deepEqual(searchHits(await c.cmd('SEARCH SENTON 24-Mar-2007')), [1, 3]);
    assert.deepEqual(searchHits(await c.cmd('SEARCH SENTBEFORE 25-Mar-2007')), [1, 3]);
    assert.deepEqual(searchHits(await c.cmd('SEARCH SENTSINCE 25-Mar-2007')), [2]);
  } finally {
    await c.close();
  }
});

test('RFC 3501 §6.4.4 HEADER <field> "" matches only messages that have the field, cached ones (From/To/Cc/Bcc/Subject) too', async () => {
  const u = user();
  await h.deliver(u, msg('From: a@example.com\nCc: c@example.com\nSubject: s'));
  await h.deliver(u, msg('From: a@example.com'));
  const c = await login(u);
  try {
    await c.cmd('SELECT INBOX');
    assert.deepEqual(searchHits(await c.cmd('SEARCH HEADER Cc ""')), [1]);
    assert.deepEqual(searchHits(await c.cmd('SEARCH HEADER Subject ""')), [1]);
    assert.deepEqual(searchHits(await c.cmd('SEARCH HEADER Bcc ""')), []);
    assert.deepEqual(searchHits(await c.cmd('SEARCH HEADER X-Other ""')), []);
    assert.deepEqual(searchHits(await c.cmd('SEARCH HEADER From ""')), [1, 2]);
  } finally {
    await c.close();
  }
});

test('RFC 3501 §6.4.4 FROM finds an address written with comments: <user-from (comment)@ (comment) domain.org>', async () => {
  const u = user();
  await h.deliver(u, msg('From: <user-from (comment)@ (comment) domain.org>\nSubject: c'));
  await h.deliver(u, msg('From: other@domain.org\nSubject: d'));
  const c = await login(u);
  try {
    await c.cmd('SELECT INBOX');
    assert.deepEqual(searchHits(await c.cmd('SEARCH FROM user-from@domain.org')), [1]);
    assert.deepEqual(searchHits(await c.cmd('SEARCH FROM user-from')), [1]);
  } finally {
    await c.close();
  }
});

test('RFC 3501 §7.4.2 ENVELOPE: group syntax gives start/end markers and no stray address; a source route is the adl', async () => {
  const u = user();
  await h.deliver(u, msg('From: <@route:user@domain>\nTo: group2: (foo) ;, x@y.test\nCc: Team: a@b.test, "C D" <c@d.test>;\nSubject: env'));
  const c = await login(u);
  try {
    await c.cmd('SELECT INBOX');
    const r = await c.cmd('FETCH 1 (ENVELOPE)');
    const env = r.untagged[0]!;
    assert.ok(env.includes('((NIL "@route" "user" "domain"))'), env);
    assert.ok(env.includes('((NIL NIL "group2" NIL)(NIL NIL NIL NIL)(NIL NIL "x" "y.test"))'), env);
    assert.ok(env.includes('((NIL NIL "Team" NIL)(NIL NIL "a" "b.test")("C D" NIL "c" "d.test")(NIL NIL NIL NIL))'), env);
  } finally {
    await c.close();
  }
});

test('RFC 6851 §3.3 MOVE into the selected mailbox: a new UID, the original EXPUNGEd, no duplicate (as Dovecot)', async () => {
  const u = user();
  await h.deliver(u, msg('Subject: m'));
  const c = await login(u);
  try {
    await c.cmd('SELECT INBOX');
    const r = await c.cmd('MOVE 1 INBOX');
    assert.equal(r.status, 'OK', r.tagged);
    assert.ok(has(r, /^\* OK \[COPYUID \d+ 1 2\]/), r.untagged.join('\n'));
    assert.ok(has(r, /^\* 1 EXPUNGE$/), r.untagged.join('\n'));
    const f = await c.cmd('UID FETCH 1:* (FLAGS)');
    assert.equal(f.untagged.length, 1, f.untagged.join('\n'));
    assert.match(f.untagged[0]!, /UID 2/);
    const st = await c.cmd('STATUS INBOX (MESSAGES)');
    assert.ok(has(st, /MESSAGES 1\)$/), st.untagged.join('\n'));
  } finally {
    await c.close();
  }
});

test('RFC 3501 §9 atom: "[" is an ATOM-CHAR (only "]" is a resp-special): CREATE/LIST/SELECT a[b', async () => {
  const c = await login(user());
  try {
    const r = await c.cmd('CREATE a[b');
    assert.equal(r.status, 'OK', r.tagged);
    const l = await c.cmd('LIST "" a[b');
    assert.deepEqual(lines(l).map((x) => x.replace(/^\* LIST \([^)]*\) /, '')), ['"." a[b']);
    await c.cmd(`APPEND a[b ${lit(msg('Subject: in a[b'))}`);
    assert.equal((await c.cmd('SELECT a[b')).status, 'OK');
    // Fetch sections still hold spaces inside their brackets.
    assert.equal((await c.cmd('FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])')).status, 'OK');
  } finally {
    await c.close();
  }
});

test('RFC 3501 §6.3.9 LSUB "%" lists the unsubscribed parent of a subscribed child as \\Noselect', async () => {
  const c = await login(user());
  try {
    await c.cmd('CREATE Work.Projects');
    await c.cmd('SUBSCRIBE Work.Projects');
    const r = lines(await c.cmd('LSUB "" %'));
    assert.ok(r.includes('* LSUB (\\Noselect) "." Work'), r.join('\n'));
    assert.ok(!r.some((l) => l.endsWith('Work.Projects')), r.join('\n'));
    const all = lines(await c.cmd('LSUB "" *'));
    assert.ok(all.some((l) => l.endsWith('"." Work.Projects')) && !all.some((l) => l.endsWith('"." Work')), all.join('\n'));
  } finally {
    await c.close();
  }
});

test('RFC 3501 §2.3.1.1 UIDVALIDITY is never reused after DELETE + CREATE of the same name, even within a second and with the folder held open', async () => {
  const u = user();
  const c = await login(u);
  const other = await login(u);
  try {
    const v = async () => Number(/UIDVALIDITY (\d+)/.exec((await c.cmd('STATUS Box (UIDVALIDITY)')).untagged[0]!)![1]);
    await c.cmd('CREATE Box');
    await c.cmd(`APPEND Box ${lit(msg('Subject: one'))}`);
    const v1 = await v();
    await other.cmd('SELECT Box'); // another session keeps the folder's index in memory
    assert.equal((await c.cmd('DELETE Box')).status, 'OK');
    await c.cmd('CREATE Box');
    const v2 = await v();
    assert.notEqual(v2, v1);
    assert.ok(v2 > v1, `${v2} > ${v1}`);
    await c.cmd('DELETE Box');
    await c.cmd('CREATE Box');
    const v3 = await v();
    assert.ok(v3 > v2, `${v3} > ${v2}`);
    const ap = await c.cmd(`APPEND Box ${lit(msg('Subject: two'))}`);
    assert.match(ap.tagged, new RegExp(`APPENDUID ${v3} 1\\]`));
  } finally {
    await c.close();
    await other.close();
  }
});

test('RFC 3501 §7.2.6 a STORE that defines a new keyword sends * FLAGS and PERMANENTFLAGS first; other sessions get them at their next command', async () => {
  const u = user();
  await h.deliver(u, msg('Subject: k'));
  const a = await login(u);
  const b = await login(u);
  try {
    await a.cmd('SELECT INBOX');
    await b.cmd('SELECT INBOX');
    const r = await a.cmd('STORE 1 +FLAGS (NewKw)');
    assert.equal(r.untagged[0], '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NewKw)');
    assert.equal(r.untagged[1], '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NewKw \\*)] Flags permitted');
    assert.match(r.untagged[2]!, /^\* 1 FETCH \(FLAGS \(NewKw( \\Recent)?\)\)$/);
    const again = await a.cmd('STORE 1 -FLAGS (NewKw)');
    assert.ok(!has(again, /^\* FLAGS/), again.untagged.join('\n'));
    const n2 = await b.cmd('NOOP');
    assert.ok(has(n2, /^\* FLAGS \(.*NewKw\)$/), n2.untagged.join('\n'));
  } finally {
    await a.close();
    await b.close();
  }
});

test('RFC 3501 §6.3.3 CREATE makes the superior names (Work.Projects makes Work); RENAME and DELETE of the parent then work (§6.3.4, §6.3.5)', async () => {
  const c = await login(user());
  try {
    assert.equal((await c.cmd('CREATE Work.Projects')).status, 'OK');
    const l = await c.cmd('LIST "" Work*');
    assert.deepEqual(lines(l).sort(), ['* LIST (\\HasChildren) "." Work', '* LIST (\\HasNoChildren) "." Work.Projects']);
    assert.equal((await c.cmd('SELECT Work')).status, 'OK');
    await c.cmd('UNSELECT');
    // mbsync's Archive/2026 arrives as Archive.2026 (the server's delimiter): its parent is listed too.
    await c.cmd('CREATE Archive.2026');
    const pct = await c.cmd('LIST "" %');
    assert.ok(lines(pct).includes('* LIST (\\HasChildren) "." Archive'), lines(pct).join('\n'));
    assert.equal((await c.cmd('RENAME Work Job')).status, 'OK');
    const l2 = await c.cmd('LIST "" Job*');
    assert.deepEqual(lines(l2).sort(), ['* LIST (\\HasChildren) "." Job', '* LIST (\\HasNoChildren) "." Job.Projects']);
    // RENAME to a name whose parent is missing creates it too.
    assert.equal((await c.cmd('RENAME Job.Projects Deep.Inside.Projects')).status, 'OK');
    const l3 = await c.cmd('LIST "" Deep*');
    assert.deepEqual(lines(l3).sort(), ['* LIST (\\HasChildren) "." Deep', '* LIST (\\HasChildren) "." Deep.Inside', '* LIST (\\HasNoChildren) "." Deep.Inside.Projects']);
    // DELETE of a parent with children: its messages go, the name stays as \Noselect (§6.3.4).
    assert.equal((await c.cmd('DELETE Deep')).status, 'OK');
    const l4 = await c.cmd('LIST "" Deep');
    assert.deepEqual(lines(l4), ['* LIST (\\Noselect \\HasChildren) "." Deep']);
    const d2 = await c.cmd('DELETE Deep');
    assert.match(d2.tagged, /^NO \[NONEXISTENT\]/);
  } finally {
    await c.close();
  }
});

test('concurrency: FETCH/SEARCH/STORE never answer NO or BAD while other sessions and another node STORE, EXPUNGE, MOVE and deliver on the same mailbox', async () => {
  const u = user();
  for (let i = 0; i < 30; i++) await h.deliver(u, msg(`Subject: s${i}`, `body ${i}\r\n`.repeat(20)));
  const sessions: RawImap[] = [];
  for (let i = 0; i < 5; i++) sessions.push(await login(u));
  for (const s of sessions) await s.cmd('SELECT INBOX');
  await sessions[0]!.cmd('CREATE Other');
  // Another node: its own MailStore over the same Maildir (file locks, no shared memory).
  const node2 = new MailStore({ maildirOf: () => h.maildir(u), events: new LocalMailboxEvents(), pollIntervalMs: 60_000 });
  const inbox2 = await node2.openMailbox(u, 'INBOX');
  const failures: string[] = [];
  const check = (what: string, r: Reply) => {
    if (r.status !== 'OK') failures.push(`${what}: ${r.tagged}`);
    for (const l of r.untagged) if (/^\* (NO|BAD)\b/.test(l)) failures.push(`${what}: ${l}`);
  };
  const until = Date.now() + 3000;
  const loop = async (fn: (i: number) => Promise<void>) => {
    for (let i = 0; Date.now() < until; i++) await fn(i);
  };
  const [s0, s1, s2, s3, s4] = sessions as [RawImap, RawImap, RawImap, RawImap, RawImap];
  try {
    await Promise.all([
      loop(async (i) => check('STORE', await s0.cmd(`UID STORE 1:* ${i % 2 ? '-' : '+'}FLAGS (\\Flagged $Kw${i % 3})`))),
      loop(async (i) => {
        check('UID STORE', await s1.cmd(`UID STORE 1:* +FLAGS.SILENT (\\Deleted)`));
        check('EXPUNGE', await s1.cmd(i % 2 ? 'EXPUNGE' : 'UID EXPUNGE 1:*'));
        await h.deliver(u, msg(`Subject: more${i}`, 'more\r\n'));
        await h.deliver(u, msg(`Subject: more${i}b`, 'more\r\n'));
      }),
      // Sequence sets only name messages the session knows exist (a BAD otherwise is right): UIDs here.
      loop(async () => {
        const found = await s2.cmd('UID SEARCH ALL');
        check('UID SEARCH', found);
        const first = searchHits(found)[0];
        if (first !== undefined) check('UID MOVE', await s2.cmd(`UID MOVE ${first} Other`));
      }),
      loop(async () => {
        check('FETCH', await s3.cmd('UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])'));
        check('SEARCH', await s3.cmd('SEARCH TEXT body'));
      }),
      loop(async () => {
        check('UID FETCH', await s4.cmd('UID FETCH 1:* (FLAGS BODY.PEEK[HEADER] BODYSTRUCTURE)'));
        check('UID SEARCH', await s4.cmd('UID SEARCH FROM nobody OR SUBJECT s1 FLAGGED'));
        check('STORE seen', await s4.cmd('UID STORE 1:* +FLAGS (\\Seen)'));
      }),
      loop(async (i) => {
        await inbox2.mailbox.refresh();
        const uids = inbox2.mailbox.messages.map((r) => r.uid);
        await inbox2.mailbox.setFlags(uids, i % 2 ? 'add' : 'remove', 'F');
        // Expunged on the other node: this node's index still lists the message until it next looks.
        if (i % 2 === 0) await inbox2.mailbox.expunge(uids.slice(-3));
        await new Promise((r) => setTimeout(r, 5));
      }),
    ]);
  } finally {
    inbox2.release();
    for (const s of sessions) await s.close();
  }
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} NO/BAD answers`);
});
