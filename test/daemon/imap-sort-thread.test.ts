/**
 * SORT, THREAD (RFC 5256), ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and ESORT (RFC 5267): the pure
 * parts (base subject, sent dates, message-ids, the REFERENCES tree) tested directly, then raw sessions
 * and Python imaplib against the real daemon. The expected SORT/THREAD answers are the ones Dovecot
 * gives for the same messages (test/conformance/imap-sort.test.ts runs both).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseSubject, casemap, msgIds, parseSentDate, type SortKeys } from '../../lib/store/mailbox/sort-keys.js';
import { formatThreads, referencesThreads, type SortItem } from '../../lib/daemon/imap/sort/index.js';
import { PASSWORD, python, startImapHarness, type Harness } from './mail-harness.js';
import { RawImap, slit as lit } from '../conformance/raw-imap.js';
import { msg, SORT_SET, THREAD_SET } from '../conformance/sort-fixtures.js';

describe('base subject (RFC 5256 §2.1)', () => {
  test('removes Re:/Fw:/Fwd: leaders with blobs, (fwd) trailers, [fwd: …] wrappers and list blobs; reports replies', () => {
    const cases: Array<[string, string, boolean]> = [
      ['Hello', 'Hello', false],
      ['Re: Hello', 'Hello', true],
      ['RE: Re[2]: [list] Fwd: Hello (fwd)', 'Hello', true],
      ['re :   Hello\t  world  ', 'Hello world', true],
      ['[fwd: Re: Hello]', 'Hello', true],
      ['Re: [fwd: [list] re: hi ]', 'hi', true],
      ['[list] Hello', 'Hello', false],
      ['[a] [b] x', 'x', false],
      // The last blob is the subject when nothing follows it.
      ['[a][b][c]', '[c]', false],
      ['Fw: fwd: re:', '', true],
      ['refresh: x', 'refresh: x', false],
      ['Re[x]: [y] z', 'z', true],
      ['[unclosed Re: x', '[unclosed Re: x', false],
    ];
    for (const [s, base, reply] of cases) assert.deepEqual(baseSubject(s), { base, reply }, s);
  });

  test('is linear: bracket and prefix floods of 600,000 characters finish in well under a second each', () => {
    for (const s of ['[fwd:'.repeat(100_000) + '['.repeat(100_000), '[a]'.repeat(200_000) + 'x', 're: '.repeat(150_000), '[fwd:'.repeat(60_000) + 'x' + ']'.repeat(60_000)]) {
      const t = performance.now();
      baseSubject(s);
      // A quadratic pass over 600,000 characters takes minutes; linear is a few hundred ms on a loaded box.
      assert.ok(performance.now() - t < 5000, `${s.slice(0, 12)}… took ${performance.now() - t} ms`);
    }
  });

  test('i;unicode-casemap keys: case and compatibility forms compare equal, ß keeps its simple mapping', () => {
    assert.equal(casemap('apple'), casemap('APPLE'));
    assert.equal(casemap('café'), casemap('CAFÉ'));
    assert.equal(casemap('ａpple'), casemap('APPLE'), 'fullwidth forms: NFKD after the case mapping');
    assert.equal(casemap('straße'), 'STRAßE'.normalize('NFKD'));
  });

  test('sent dates apply time and zone; message-ids need an @ and lose white space', () => {
    assert.equal(parseSentDate('Sat, 24 Mar 2007 23:00:00 -0500 (EST)'), Date.UTC(2007, 2, 25, 4, 0, 0));
    assert.equal(parseSentDate('24 Mar 07 23:00 PDT'), Date.UTC(2007, 2, 25, 6, 0, 0));
    assert.equal(parseSentDate('no date here'), undefined);
    assert.deepEqual(msgIds('<a@b> (c) <c d@e> <noat> <y <z@w>'), ['a@b', 'cd@e', 'z@w']);
  });
});

const keys = (k: Partial<SortKeys>): SortKeys => ({ subject: '', reply: false, from: '', to: '', cc: '', refs: [], ...k });
const item = (seq: number, k: Partial<SortKeys>): SortItem => ({ seq, uid: seq * 10, arrival: seq, size: 1, keys: keys({ date: seq * 1000, ...k }) });

describe('THREAD=REFERENCES tree (RFC 5256 §3)', () => {
  test('missing parents become dummies (pruned, or kept at the root over several children); references loops are not linked', () => {
    const items = [
      item(1, { messageId: 'a@x', subject: 'A' }),
      // Parent gone: a dummy between 1 and 2, pruned (2 goes under 1).
      item(2, { messageId: 'b@x', refs: ['a@x', 'gone@x'], subject: 'A', reply: true }),
      // Two children of one missing root: the dummy stays at the root.
      item(3, { messageId: 'c@x', refs: ['root@x'], subject: 'C' }),
      item(4, { messageId: 'd@x', refs: ['root@x'], subject: 'D' }),
      // A loop: e says f is its parent, f says e is: only the first link is made.
      item(5, { messageId: 'e@x', refs: ['f@x'], subject: 'E' }),
      item(6, { messageId: 'f@x', refs: ['e@x'], subject: 'F' }),
      // Its own parent: ignored.
      item(7, { messageId: 'g@x', refs: ['g@x'], subject: 'G' }),
    ];
    assert.equal(formatThreads(referencesThreads(items, (i) => i.seq)), '(1 2)((3)(4))(6 5)(7)');
    assert.equal(formatThreads(referencesThreads(items, (i) => i.uid)), '(10 20)((30)(40))(60 50)(70)');
  });

  test('a References chain 30,000 deep (past any recursion limit) threads without overflowing the stack', () => {
    const n = 30_000;
    const items = Array.from({ length: n }, (_, k) => item(k + 1, { messageId: `${k}@x`, refs: k > 0 ? [`${k - 1}@x`] : [], subject: 's' }));
    const out = formatThreads(referencesThreads(items, (i) => i.seq));
    assert.equal(out, `(${items.map((i) => i.seq).join(' ')})`);
  });
});

let h: Harness;
before(async () => {
  h = await startImapHarness({ imap: { maxSearchKeys: 5 } });
});
after(async () => h?.close());

async function seeded(box: string): Promise<RawImap> {
  const c = await RawImap.login(h.port, 'alice@example.com', PASSWORD);
  await c.cmd(`CREATE ${box}`);
  return c;
}

describe('SORT, THREAD, ESEARCH and SEARCHRES over raw sessions', () => {
  test('capabilities name ESEARCH, SEARCHRES, SORT, ESORT, THREAD=ORDEREDSUBJECT and THREAD=REFERENCES', async () => {
    const c = await RawImap.login(h.port, 'alice@example.com', PASSWORD);
    const caps = (await c.cmd('CAPABILITY')).untagged[0]!.split(' ');
    for (const x of ['ESEARCH', 'SEARCHRES', 'SORT', 'ESORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES']) assert.ok(caps.includes(x), x);
    assert.ok(!caps.includes('CONTEXT=SORT'), 'CONTEXT=SORT is not offered');
    await c.close();
  });

  test('SORT by each key, REVERSE, UID SORT and ESORT give the order Dovecot gives', async () => {
    const c = await seeded('Sorts');
    for (const x of SORT_SET) await c.cmd(`APPEND Sorts () "${x.at}" ${lit(x.m)}`);
    await c.cmd('SELECT Sorts');
    const want: Record<string, string> = {
      '(ARRIVAL)': '4 2 5 3 1',
      '(DATE)': '2 4 3 5 1',
      '(SUBJECT)': '2 4 1 5 3',
      '(FROM)': '5 2 3 4 1',
      '(TO)': '4 3 5 1 2',
      '(CC)': '2 4 5 3 1',
      '(SIZE)': '4 5 1 3 2',
      '(REVERSE DATE)': '1 5 3 2 4',
    };
    for (const [k, v] of Object.entries(want)) assert.deepEqual((await c.cmd(`SORT ${k} UTF-8 ALL`)).untagged, [`* SORT ${v}`], k);
    const uids = (await c.cmd('UID SORT (SUBJECT) UTF-8 ALL')).untagged[0]!;
    assert.match(uids, /^\* SORT \d+ \d+ \d+ \d+ \d+$/);
    const r = await c.cmd('SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL');
    assert.match(r.untagged[0]!, /^\* ESEARCH \(TAG "a\d+"\) MIN 2 MAX 3 ALL 2,4,1,5,3 COUNT 5$/);
    assert.match((await c.cmd('SORT (SUBJECT) X-NOSUCH ALL')).tagged, /^NO \[BADCHARSET/);
    assert.match((await c.cmd('SORT (SUBJECT) UTF-8 OR OR OR OR OR ALL ALL ALL ALL ALL ALL')).tagged, /^NO \[LIMIT\]/, 'imap.maxSearchKeys bounds SORT too');
    await c.close();
  });

  test('THREAD ORDEREDSUBJECT and REFERENCES on a tree with missing parents, a loop, a duplicate Message-ID and In-Reply-To', async () => {
    const c = await seeded('Threads');
    for (const m of THREAD_SET) await c.cmd(`APPEND Threads ${lit(m)}`);
    await c.cmd('SELECT Threads');
    assert.deepEqual((await c.cmd('THREAD ORDEREDSUBJECT UTF-8 ALL')).untagged, ['* THREAD (8 (1)(2)(3)(10))(4 (5)(11))(6 7)(9)(12)(13 14)']);
    assert.deepEqual((await c.cmd('THREAD REFERENCES UTF-8 ALL')).untagged, ['* THREAD ((8)(1 (2 10)(3)))((4)(5))(7 6)(9)(12 11)(14 13)']);
    assert.deepEqual((await c.cmd('THREAD REFERENCES UTF-8 SUBJECT nothing')).untagged, ['* THREAD ']);
    assert.equal((await c.cmd('THREAD NOSUCH UTF-8 ALL')).status, 'BAD');
    await c.close();
  });

  test('ESEARCH RETURN options, and "$" after SAVE in FETCH, STORE, SEARCH and COPY', async () => {
    const c = await seeded('Saved');
    for (const x of SORT_SET) await c.cmd(`APPEND Saved () "${x.at}" ${lit(x.m)}`);
    await c.cmd('SELECT Saved');
    await c.cmd('STORE 2,4:5 +FLAGS (\\Flagged)');
    assert.match((await c.cmd('SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED')).untagged[0]!, /^\* ESEARCH \(TAG "a\d+"\) MIN 2 MAX 5 ALL 2,4:5 COUNT 3$/);
    assert.match((await c.cmd('SEARCH RETURN (COUNT) DELETED')).untagged[0]!, /^\* ESEARCH \(TAG "a\d+"\) COUNT 0$/);
    assert.match((await c.cmd('UID SEARCH RETURN () FLAGGED')).untagged[0]!, /^\* ESEARCH \(TAG "a\d+"\) UID ALL \d+,\d+:\d+$/);
    assert.deepEqual((await c.cmd('FETCH $ (UID)')).untagged, [], 'nothing saved yet');
    assert.deepEqual((await c.cmd('SEARCH RETURN (SAVE) SUBJECT apple')).untagged, [], 'SAVE alone answers no ESEARCH');
    assert.deepEqual((await c.cmd('SEARCH $')).untagged, ['* SEARCH 2 4']);
    await c.cmd('STORE $ +FLAGS.SILENT (\\Seen)');
    assert.deepEqual((await c.cmd('SEARCH SEEN')).untagged, ['* SEARCH 2 4']);
    assert.equal((await c.cmd('COPY $ Saved')).status, 'OK');
    // The copies (6, 7) kept \\Flagged: MAX is the last of them.
    await c.cmd('SEARCH RETURN (SAVE MAX) FLAGGED');
    assert.deepEqual((await c.cmd('FETCH $ (FLAGS)')).untagged.filter((l) => l.includes('FETCH')).map((l) => l.split(' ')[1]), ['7']);
    assert.equal((await c.cmd('FETCH 1,$ (UID)')).status, 'BAD', '"$" stands alone');
    await c.close();
  });

  test('sort keys come from the summary cache: a message file rewritten behind the daemon does not change SORT', async () => {
    const c = await seeded('Cached');
    for (const s of ['charlie', 'alpha', 'bravo']) await c.cmd(`APPEND Cached ${lit(msg({ subject: s, date: 'Mon, 3 Jan 2022 10:00:00 +0000' }))}`);
    await c.cmd('SELECT Cached');
    assert.deepEqual((await c.cmd('SORT (SUBJECT) UTF-8 ALL')).untagged, ['* SORT 2 3 1']);
    const dir = join(h.maildir('alice@example.com'), '.Cached');
    assert.match(readFileSync(join(dir, 'mailfleet-cache'), 'utf8'), /"sort":\{"subject":"ALPHA"/);
    // Same size, other subject: were keys read from the files per command, the order would change.
    for (const f of readdirSync(join(dir, 'cur'))) {
      const p = join(dir, 'cur', f);
      writeFileSync(p, readFileSync(p, 'latin1').replace(/Subject: \w/, 'Subject: z'), 'latin1');
    }
    assert.deepEqual((await c.cmd('SORT (SUBJECT) UTF-8 ALL')).untagged, ['* SORT 2 3 1']);
    await c.close();
  });
});

test('python imaplib: sort(), thread() and uid("SORT") against the daemon', async () => {
  const c = await seeded('Py');
  for (const m of THREAD_SET) await c.cmd(`APPEND Py ${lit(m)}`);
  await c.close();
  const out = await python(
    `
import imaplib, sys, json
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice@example.com', sys.argv[2])
m.select('Py')
r = {}
typ, data = m.capability()
r['caps'] = [c for c in data[0].decode().split() if c.startswith(('SORT', 'THREAD', 'ESEARCH'))]
typ, data = m.sort('(REVERSE DATE)', 'UTF-8', 'ALL')
r['sort'] = [typ, data[0].decode()]
typ, data = m.thread('REFERENCES', 'UTF-8', 'ALL')
r['thread'] = [typ, data[0].decode()]
typ, data = m.thread('ORDEREDSUBJECT', 'UTF-8', 'SUBJECT', 'hello')
r['ordered'] = [typ, data[0].decode()]
typ, data = m.uid('SORT', '(SUBJECT)', 'UTF-8', 'ALL')
r['uidsort'] = [typ, data[0].decode()]
m.logout()
print(json.dumps(r))
`,
    [String(h.port), PASSWORD],
  );
  const r = JSON.parse(out);
  assert.deepEqual(r.caps.sort(), ['ESEARCH', 'SORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES']);
  assert.deepEqual(r.sort, ['OK', '14 13 12 11 10 9 7 6 5 4 3 2 1 8']);
  assert.deepEqual(r.thread, ['OK', '((8)(1 (2 10)(3)))((4)(5))(7 6)(9)(12 11)(14 13)']);
  assert.deepEqual(r.ordered, ['OK', '(8 (1)(2)(3)(10))']);
  assert.equal(r.uidsort[0], 'OK');
  assert.equal(r.uidsort[1].split(' ').length, 14);
});
