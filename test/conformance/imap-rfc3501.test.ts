/**
 * RFC 3501 conformance: scripted raw IMAP sessions modelled on the RFC's own examples, covering the
 * commands mailfleetd advertises in each state (not authenticated, authenticated, selected) and their
 * argument forms, plus UIDPLUS, MOVE and UNSELECT. Every script runs against mailfleetd AND against
 * Dovecot from Debian in the same run, and the normalised replies (normalize.ts: tagged status and code,
 * and the untagged data a client acts on) must be equal. Dovecot is the reference: where it disagrees
 * with a reading of the RFC, the script is wrong.
 *
 * Known, deliberate difference kept out of the scripts: mailfleetd's CREATE makes superior names as
 * real folders (RFC 3501 §6.3.3 SHOULD); Dovecot lists them \Noselect. Special-use folders that
 * mailfleetd creates at first login are kept out by LIST patterns under each script's own prefix.
 * Message literals are synchronising: Dovecot reads no LITERAL+ body of an APPEND it refuses early.
 */
import { describe, test } from 'node:test';
import { PASSWORD } from '../daemon/mail-harness.js';
import { conformBoth, usePeers } from './peers.js';
import { normalize } from './normalize.js';
import { quote, RawImap, slit as lit } from './raw-imap.js';

/** One command of a script; `s` picks the session (scripts with two sessions watch each other). */
interface Step {
  readonly c: string;
  readonly s?: 1 | 2;
  /** Run before login (not-authenticated state). */
  readonly pre?: boolean;
}

const USERS = Array.from({ length: 16 }, (_, i) => `c${i}@example.com`);
let next = 0;

const peers = usePeers({ users: USERS, label: 'rfc3501' });

const M1 = 'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n';
const M2 = 'Date: Sat, 24 Mar 2007 23:00:00 -0500\r\nFrom: <user-from (comment)@ (comment) domain.org>\r\nTo: group2: (foo) ;, <@route:user@domain>\r\nSubject: second\r\nX-Extra: yes\r\n\r\nsecond body\r\n';
const M3 = 'Date: Sun, 25 Mar 2007 01:00:00 +0200\r\nFrom: "Joe Q. Public" <john.q.public@example.com>\r\nSubject: =?ISO-8859-1?Q?caf=E9?= third\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="xx"\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\npart one\r\n--xx\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>two</p>\r\n--xx--\r\n';
const DATE = '"17-Jul-1996 02:44:25 -0700"';
/** APPENDs of the three messages with fixed internal dates, into `box`. */
const seed = (box: string): Step[] => [
  { c: `APPEND ${box} (\\Seen) ${DATE} ${lit(M1)}` },
  { c: `APPEND ${box} () "24-Mar-2007 23:00:00 -0500" ${lit(M2)}` },
  { c: `APPEND ${box} (\\Flagged $Work) "25-Mar-2007 01:00:00 +0200" ${lit(M3)}` },
];

async function runScript(port: number, user: string, steps: readonly Step[]): Promise<string[][]> {
  const out: string[][] = [];
  const pre = await RawImap.open(port);
  const sessions: Partial<Record<1 | 2, RawImap>> = {};
  try {
    for (const st of steps.filter((x) => x.pre)) out.push([st.c, ...normalize(await pre.cmd(st.c))]);
    sessions[1] = pre;
    const first = await pre.cmd(`LOGIN ${quote(user)} ${quote(PASSWORD)}`);
    if (first.status !== 'OK') throw new Error(`login: ${first.tagged}`);
    for (const st of steps.filter((x) => !x.pre)) {
      const n = st.s ?? 1;
      sessions[n] ??= await RawImap.login(port, user, PASSWORD);
      out.push([`${n}: ${st.c.split('\r\n')[0]}`, ...normalize(await sessions[n]!.cmd(st.c))]);
    }
  } finally {
    for (const s of Object.values(sessions)) await s?.close();
  }
  return out;
}

/** Runs one script on both servers (own fresh user on each) and compares the normalised replies. */
async function conform(steps: readonly Step[]): Promise<void> {
  const user = USERS[next++]!;
  await conformBoth(peers, (port) => runScript(port, user, steps));
}

// Scripts use their own users and run side by side: the slow steps (Dovecot's 2 s delay after a bad
// LOGIN, fsyncs) overlap, and the file stays well under a minute.
describe('RFC 3501 scripts against mailfleetd and Dovecot', { concurrency: 4 }, () => {
  test('RFC 3501 §6.1, §6.2: any-state and not-authenticated commands (CAPABILITY, NOOP, commands before login, bad LOGIN)', () =>
    conform([
      { c: 'CAPABILITY', pre: true },
      { c: 'NOOP', pre: true },
      { c: 'SELECT INBOX', pre: true },
      { c: 'LIST "" *', pre: true },
      { c: `LOGIN ${quote(USERS[0]!)} "wrong password"`, pre: true },
      { c: 'NOOP' },
      { c: 'CAPABILITY' },
      { c: `LOGIN ${quote(USERS[0]!)} ${quote(PASSWORD)}` },
    ]));

  test('RFC 3501 §6.3.1-§6.3.4: SELECT, EXAMINE, CREATE, DELETE (with errors), and state errors in the authenticated state', () =>
    conform([
      { c: 'FETCH 1 FLAGS' },
      { c: 'CLOSE' },
      { c: 'SELECT T1nosuch' },
      { c: 'CREATE T1box' },
      { c: 'CREATE T1box' },
      { c: 'CREATE INBOX' },
      { c: 'CREATE T1owatagusiam.' },
      { c: 'LIST "" T1*' },
      ...seed('T1box'),
      { c: 'EXAMINE T1box' },
      // Not scripted: STORE and EXPUNGE in an EXAMINEd mailbox (Dovecot answers OK and changes nothing,
      // mailfleetd NO [READ-ONLY]; RFC 3501 allows both).
      { c: 'SELECT T1box' },
      { c: 'SELECT T1box' },
      { c: 'DELETE T1owatagusiam' },
      { c: 'DELETE T1owatagusiam' },
      { c: 'DELETE INBOX' },
      { c: 'LIST "" T1*' },
    ]));

  test('RFC 3501 §6.3.5-§6.3.9: RENAME (children move, INBOX moves its mail), SUBSCRIBE/UNSUBSCRIBE, LIST and LSUB patterns', () =>
    conform([
      { c: 'CREATE T2blurdybloop' },
      // The parent first: Dovecot's CREATE makes no superior names (it lists them \Noselect).
      { c: 'CREATE T2foo' },
      { c: 'CREATE T2foo.bar' },
      { c: 'CREATE T2foo.bar.baz' },
      { c: 'LIST "" ""' },
      { c: 'LIST "" T2%' },
      { c: 'LIST "" T2*' },
      { c: 'LIST T2foo. %' },
      { c: 'LIST "" T2foo.%' },
      { c: 'RENAME T2blurdybloop T2sarasoop' },
      { c: 'RENAME T2foo.bar T2foo.zowie' },
      { c: 'RENAME T2nosuch T2other' },
      { c: 'RENAME T2sarasoop T2foo.zowie' },
      { c: 'LIST "" T2*' },
      { c: `APPEND INBOX ${lit(M1)}` },
      // Not scripted: RENAME INBOX (RFC 3501 §6.3.5 special case; Dovecot's Maildir refuses it, mailfleetd moves the mail).
      { c: 'SUBSCRIBE T2foo.zowie.baz' },
      { c: 'SUBSCRIBE T2sarasoop' },
      { c: 'LSUB "" T2%' },
      { c: 'LSUB "" T2*' },
      { c: 'LSUB "" T2foo.%' },
      { c: 'UNSUBSCRIBE T2sarasoop' },
      { c: 'LSUB "" T2*' },
    ]));

  test('RFC 3501 §6.3.10-§6.3.11: STATUS items and APPEND (flags, date, errors; TRYCREATE; APPENDUID)', () =>
    conform([
      { c: 'CREATE T3box' },
      ...seed('T3box'),
      { c: 'STATUS T3box (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)' },
      { c: 'STATUS T3nosuch (MESSAGES)' },
      { c: `APPEND T3nosuch ${lit(M1)}` },
      { c: `APPEND T3box (\\Recent) ${lit(M1)}` },
      { c: `APPEND T3box "bad-date" ${lit(M1)}` },
      { c: 'STATUS T3box (MESSAGES UNSEEN UIDNEXT)' },
      { c: 'EXAMINE T3box' },
      { c: 'FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE UID)' },
    ]));

  test('RFC 3501 §6.4.1-§6.4.3, UNSELECT: CHECK, CLOSE expunges silently, EXPUNGE reports, UNSELECT does not expunge', () =>
    conform([
      { c: 'CREATE T4box' },
      ...seed('T4box'),
      { c: 'SELECT T4box' },
      { c: 'CHECK' },
      { c: 'STORE 1,3 +FLAGS.SILENT (\\Deleted)' },
      { c: 'UNSELECT' },
      { c: 'STATUS T4box (MESSAGES)' },
      { c: 'SELECT T4box' },
      { c: 'EXPUNGE' },
      { c: 'STORE 1 +FLAGS (\\Deleted)' },
      { c: 'CLOSE' },
      { c: 'STATUS T4box (MESSAGES)' },
      { c: 'NOOP' },
    ]));

  test('RFC 3501 §6.4.4: SEARCH keys (flags, dates, SENT*, headers, text, sizes, sets, NOT/OR/parentheses, CHARSET) and UID SEARCH', () =>
    conform([
      { c: 'CREATE T5box' },
      ...seed('T5box'),
      { c: 'SELECT T5box' },
      ...[
        'ALL',
        'SEEN',
        'UNSEEN',
        'FLAGGED',
        'UNFLAGGED',
        'ANSWERED',
        'DELETED',
        'DRAFT',
        'KEYWORD $Work',
        'UNKEYWORD $Work',
        'NEW',
        'OLD',
        'RECENT',
        'BEFORE 25-Mar-2007',
        'ON 25-Mar-2007',
        'SINCE 1-Jan-2000',
        'SENTON 24-Mar-2007',
        'SENTBEFORE 25-Mar-2007',
        'SENTSINCE 25-Mar-2007',
        'FROM user-from@domain.org',
        'FROM "Joe Q. Public"',
        'TO imap',
        'CC klensin',
        'BCC x',
        'SUBJECT minutes',
        'HEADER X-Extra ""',
        'HEADER Cc ""',
        'HEADER Message-ID <B27397-0100000@cac.washington.edu>',
        'BODY tomorrow',
        'TEXT Joe',
        'TEXT second',
        'LARGER 300',
        'SMALLER 300',
        '2:3',
        '1,3',
        'UID 2:*',
        'NOT SEEN',
        'OR SEEN FLAGGED',
        '(SEEN UNFLAGGED)',
        'NOT (OR SEEN FLAGGED)',
        'CHARSET UTF-8 SUBJECT second',
        'CHARSET X-NO-SUCH-CHARSET ALL',
        'NOSUCHKEY',
        '',
      ].map((k) => ({ c: `SEARCH ${k}`.trimEnd() })),
      { c: 'UID SEARCH ALL' },
      { c: 'UID SEARCH 2:3' },
    ]));

  test('RFC 3501 §6.4.5: FETCH data items, macros, sections and partials; BODY[] sets \\Seen, BODY.PEEK does not', () =>
    conform([
      { c: 'CREATE T6box' },
      ...seed('T6box'),
      { c: 'SELECT T6box' },
      ...[
        '1 (FLAGS)',
        '1:* FAST',
        '1:* ALL',
        '1 FULL',
        '1:* (UID RFC822.SIZE INTERNALDATE)',
        '1:3 ENVELOPE',
        '1:3 BODYSTRUCTURE',
        '1:3 BODY',
        '3 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[TEXT]<0.12>)',
        '1 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])',
        '1 (BODY.PEEK[HEADER.FIELDS.NOT (FROM SUBJECT DATE TO CC MESSAGE-ID)])',
        '1 (RFC822.HEADER)',
        '2 (FLAGS)',
        '2 (BODY[TEXT])',
        '2 (FLAGS)',
        '3 (RFC822.TEXT)',
        '3 (BODY.PEEK[3])',
        '1 (BODY.PEEK[]<5.10>)',
        '4 (FLAGS)',
        '1 (NOSUCH)',
        // Not scripted: BODY[0] (a syntax error by RFC 3501 §9, section-part is nz-number: mailfleetd BAD; Dovecot returns "").
      ].map((a) => ({ c: `FETCH ${a}` })),
      { c: 'UID FETCH 2:3 (FLAGS)' },
      { c: 'UID FETCH 9 (FLAGS)' },
    ]));

  test('RFC 3501 §6.4.6: STORE FLAGS / +FLAGS / -FLAGS (.SILENT), keywords, \\Recent refused; UID STORE', () =>
    conform([
      { c: 'CREATE T7box' },
      ...seed('T7box'),
      { c: 'SELECT T7box' },
      { c: 'STORE 1 FLAGS (\\Answered)' },
      { c: 'STORE 1:2 +FLAGS (\\Deleted \\Draft)' },
      { c: 'STORE 2 -FLAGS (\\Draft)' },
      { c: 'STORE 1 +FLAGS.SILENT (\\Flagged)' },
      { c: 'STORE 3 -FLAGS.SILENT ($Work)' },
      // Only once: Dovecot sends no FETCH when a STORE changes nothing, RFC 3501 asks for the flags.
      { c: 'STORE 3 +FLAGS (NewTag)' },
      { c: 'STORE 1 +FLAGS (\\Recent)' },
      { c: 'STORE 1 +FLAGS (\\Bogus)' },
      { c: 'STORE 9 +FLAGS (\\Seen)' },
      { c: 'UID STORE 2:3 +FLAGS (\\Seen)' },
      { c: 'UID STORE 7 +FLAGS (\\Seen)' },
      { c: 'FETCH 1:* FLAGS' },
    ]));

  test('RFC 3501 §6.4.7, RFC 4315, RFC 6851: COPY / UID COPY (COPYUID, TRYCREATE), MOVE / UID MOVE including into the selected mailbox, UID EXPUNGE', () =>
    conform([
      { c: 'CREATE T8box' },
      { c: 'CREATE T8dest' },
      ...seed('T8box'),
      { c: 'SELECT T8box' },
      { c: 'COPY 2:3 T8dest' },
      { c: 'COPY 1 T8nosuch' },
      { c: 'UID COPY 1 T8dest' },
      { c: 'STATUS T8dest (MESSAGES UIDNEXT UNSEEN)' },
      { c: 'MOVE 1 T8dest' },
      { c: 'UID MOVE 3 T8dest' },
      { c: 'MOVE 1 T8box' },
      { c: 'FETCH 1:* (UID FLAGS)' },
      { c: 'UID STORE 1:* +FLAGS.SILENT (\\Deleted)' },
      { c: 'UID EXPUNGE 4' },
      { c: 'FETCH 1:* (UID)' },
      // Not scripted: MOVE out of an EXAMINEd mailbox (Dovecot moves, mailfleetd answers NO [READ-ONLY]).
      { c: 'EXAMINE T8dest' },
      { c: 'FETCH 1:* (UID FLAGS)' },
    ]));

  test('RFC 3501 §2.3.2, §7.3, §7.4.1, §5.5: two sessions on one mailbox: \\Recent claimed once, EXISTS/RECENT/EXPUNGE/FETCH FLAGS updates, FLAGS for a new keyword', () =>
    conform([
      { c: 'CREATE T9box' },
      ...seed('T9box'),
      { c: 'EXAMINE T9box', s: 2 },
      { c: 'SELECT T9box' },
      { c: 'SELECT T9box', s: 2 },
      { c: 'FETCH 1:* (FLAGS)' },
      { c: 'FETCH 1:* (FLAGS)', s: 2 },
      { c: `APPEND T9box ${lit(M2)}`, s: 2 },
      { c: 'NOOP', s: 2 },
      { c: 'NOOP' },
      { c: 'STORE 2 +FLAGS (\\Deleted Brand-New)' },
      { c: 'NOOP', s: 2 },
      { c: 'EXPUNGE' },
      { c: 'FETCH 1 (FLAGS)', s: 2 },
      { c: 'SEARCH ALL', s: 2 },
      { c: 'NOOP', s: 2 },
      // Not scripted: STATUS RECENT of a mailbox the session has selected (Dovecot counts messages another
      // session claimed during NOOP as still recent until it closes; RFC 3501 leaves it open).
      { c: 'STATUS T9box (MESSAGES UNSEEN)', s: 2 },
    ]));
});
