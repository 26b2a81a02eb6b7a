/**
 * SORT, THREAD (RFC 5256), ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and ESORT (RFC 5267) conformance:
 * the same scripted raw sessions against mailfleetd AND Dovecot in one run, compared after
 * normalize.ts. Dovecot is the reference: where it disagrees with a reading of the RFCs, the script is
 * wrong (deliberate differences are listed in docs/imap-pop3.md).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD } from '../daemon/mail-harness.js';
import { usePeers } from './peers.js';
import { normalize } from './normalize.js';
import { quote, RawImap, slit as lit } from './raw-imap.js';
import { SORT_SET, THREAD_SET } from './sort-fixtures.js';

const USERS = Array.from({ length: 6 }, (_, i) => `s${i}@example.com`);
let next = 0;

const peers = usePeers({ users: USERS, label: 'sort' });

async function runScript(port: number, user: string, steps: readonly string[]): Promise<string[][]> {
  const c = await RawImap.open(port);
  const out: string[][] = [];
  try {
    const r = await c.cmd(`LOGIN ${quote(user)} ${quote(PASSWORD)}`);
    if (r.status !== 'OK') throw new Error(`login: ${r.tagged}`);
    for (const st of steps) out.push([st.split('\r\n')[0]!, ...normalize(await c.cmd(st))]);
  } finally {
    await c.close();
  }
  return out;
}

async function conform(steps: readonly string[]): Promise<void> {
  const user = USERS[next++]!;
  const [ours, theirs] = await Promise.all([runScript(peers.mf.port, user, steps), runScript(peers.dc.port, user, steps)]);
  for (let i = 0; i < theirs.length; i++) assert.deepEqual(ours[i], theirs[i], `step ${i + 1}: ${theirs[i]![0]}\nmailfleetd: ${JSON.stringify(ours[i])}\ndovecot:    ${JSON.stringify(theirs[i])}`);
  assert.equal(ours.length, theirs.length);
}

const seedSort = (box: string) => [`CREATE ${box}`, ...SORT_SET.map((x) => `APPEND ${box} () "${x.at}" ${lit(x.m)}`), `SELECT ${box}`];
const seedThread = (box: string) => [`CREATE ${box}`, ...THREAD_SET.map((m, i) => `APPEND ${box} () "0${(i % 9) + 1}-Feb-2022 10:00:00 +0000" ${lit(m)}`), `SELECT ${box}`];

describe('SORT / THREAD / ESEARCH / SEARCHRES scripts against mailfleetd and Dovecot', { concurrency: 3 }, () => {
  test('RFC 5256 SORT: every key, REVERSE, several keys, UID SORT, a search program, charset errors', () =>
    conform([
      ...seedSort('S1'),
      ...['(ARRIVAL)', '(DATE)', '(SUBJECT)', '(FROM)', '(TO)', '(CC)', '(SIZE)', '(REVERSE DATE)', '(REVERSE SUBJECT ARRIVAL)', '(SUBJECT REVERSE DATE)', '(CC REVERSE TO)'].map((k) => `SORT ${k} UTF-8 ALL`),
      'UID SORT (SUBJECT) US-ASCII ALL',
      'SORT (SUBJECT) UTF-8 OR FROM amy FROM bob',
      'SORT (SUBJECT) UTF-8 SUBJECT nothing-matches',
      // Not scripted: KOI8-R and other real charsets (Dovecot converts them; mailfleetd, like its SEARCH, takes UTF-8 and US-ASCII).
      'SORT (SUBJECT) X-NO-SUCH-CHARSET ALL',
      'SORT () UTF-8 ALL',
      'SORT (REVERSE) UTF-8 ALL',
      'SORT (NOSUCH) UTF-8 ALL',
      'SORT (SUBJECT) ALL',
    ]));

  test('RFC 5256 THREAD: ORDEREDSUBJECT and REFERENCES (missing parents, loops, duplicate ids, In-Reply-To, subject merges), UID THREAD', () =>
    conform([
      ...seedThread('T1'),
      'THREAD ORDEREDSUBJECT UTF-8 ALL',
      'THREAD REFERENCES UTF-8 ALL',
      'UID THREAD REFERENCES UTF-8 ALL',
      'THREAD REFERENCES UTF-8 NOT SUBJECT other',
      'THREAD REFERENCES UTF-8 SUBJECT nothing-matches',
      'THREAD NOSUCH UTF-8 ALL',
    ]));

  test('RFC 4731 ESEARCH: RETURN (MIN MAX ALL COUNT), RETURN (), no match, UID SEARCH RETURN', () =>
    conform([
      ...seedSort('E1'),
      'STORE 2,4:5 +FLAGS (\\Flagged)',
      'SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED',
      'SEARCH RETURN () FLAGGED',
      'SEARCH RETURN (COUNT) DELETED',
      'SEARCH RETURN (MIN MAX) DELETED',
      'UID SEARCH RETURN (ALL COUNT) UNFLAGGED',
      'SEARCH RETURN (MAX) CHARSET UTF-8 FLAGGED',
      'SEARCH RETURN (NOSUCH) ALL',
    ]));

  test('RFC 5182 SEARCHRES: SAVE then $ in FETCH, STORE, SEARCH, UID SEARCH UID $, COPY; SAVE with MIN/MAX; a BAD SAVE leaves $ as it was', () =>
    conform([
      ...seedSort('R1'),
      'FETCH $ (UID)',
      'SEARCH RETURN (SAVE) SUBJECT apple',
      'FETCH $ (UID)',
      'UID FETCH $ (FLAGS)',
      'STORE $ +FLAGS (\\Seen)',
      'SEARCH $',
      'SEARCH UNSEEN $',
      'UID SEARCH UID $',
      'SEARCH RETURN (SAVE MIN) ALL',
      'FETCH $ (UID)',
      'SEARCH RETURN (SAVE MIN MAX) ALL',
      'FETCH $ (UID)',
      'SEARCH RETURN (SAVE COUNT) SEEN',
      'FETCH $ (UID)',
      'COPY $ R1',
      'SEARCH RETURN (SAVE) NOSUCHKEY',
      'FETCH $ (UID)',
    ]));

  test('RFC 5267 ESORT: SORT RETURN (MIN MAX COUNT ALL), UID SORT RETURN, SAVE', () =>
    conform([
      ...seedSort('O1'),
      'SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL',
      'SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL',
      'UID SORT RETURN (ALL) (DATE) UTF-8 ALL',
      'SORT RETURN (COUNT) (DATE) UTF-8 DELETED',
      'SORT RETURN (SAVE) (SUBJECT) UTF-8 FROM amy',
      'FETCH $ (UID)',
    ]));
});
