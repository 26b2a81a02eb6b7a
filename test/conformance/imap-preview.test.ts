/**
 * PREVIEW (RFC 8970) conformance: scripted raw sessions against mailfleetd AND Dovecot 2.3.19 (Debian
 * 12), which advertises PREVIEW (and the older SNIPPET=FUZZY / PREVIEW=FUZZY, not offered here), in the
 * same run. Both generate previews the same way for plain text (whitespace collapsed, quoted "> " lines
 * left out, at most 200 characters, charset decoded to UTF-8, "" when there is no text part), so those
 * are compared exactly. For HTML the algorithms differ (Dovecot keeps &nbsp; as U+00A0 and turns every
 * tag into a space; mailfleetd collapses U+00A0 and separates words only at block tags), so HTML steps
 * compare the shape only: a PREVIEW item with no markup left in it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSWORD } from '../daemon/mail-harness.js';
import { normalize } from './normalize.js';
import { conformBoth, usePeers } from './peers.js';
import { RawImap, slit as lit, type Reply } from './raw-imap.js';

const USERS = Array.from({ length: 6 }, (_, i) => `p${i}@example.com`);
const peers = usePeers({ users: USERS, label: 'preview' });
let next = 0;

interface Step {
  readonly c: string;
  /** Compare PREVIEW texts by shape only (see the file header). */
  readonly shape?: boolean;
}

/** The PREVIEW item of a FETCH line: its text (raw octets, latin1) and what surrounds it; quoted or literal. */
function splitPreview(l: string): { head: string; text: string; tail: string } | undefined {
  const at = l.indexOf('PREVIEW ');
  if (at < 0) return undefined;
  const rest = l.slice(at + 8);
  const lm = /^\{(\d+)\}\r\n/.exec(rest);
  if (lm) {
    const end = lm[0].length + Number(lm[1]);
    return { head: l.slice(0, at), text: rest.slice(lm[0].length, end), tail: rest.slice(end) };
  }
  if (!rest.startsWith('"')) return undefined;
  let text = '';
  let i = 1;
  for (; i < rest.length && rest[i] !== '"'; i++) {
    if (rest[i] === '\\') i++;
    text += rest[i];
  }
  return { head: l.slice(0, at), text, tail: rest.slice(i + 1) };
}

/** A PREVIEW as one quoted string whether sent quoted or as a literal (servers choose by content). */
function previewForm(l: string, shape: boolean): string {
  const p = splitPreview(l);
  if (!p) return l;
  const text = shape && p.text !== '' ? 'text' : p.text;
  return `${p.head}PREVIEW "${text.replace(/[\\"]/g, (c) => `\\${c}`)}"${p.tail}`;
}

async function runScript(port: number, user: string, steps: readonly Step[]): Promise<string[][]> {
  const c = await RawImap.login(port, user, PASSWORD);
  const out: string[][] = [];
  try {
    for (const st of steps) {
      const r: Reply = await c.cmd(st.c);
      out.push([st.c.split('\r\n')[0]!, ...normalize({ ...r, untagged: r.untagged.map((l) => previewForm(l, st.shape ?? false)) })]);
    }
  } finally {
    await c.close();
  }
  return out;
}

async function conform(steps: readonly Step[]): Promise<void> {
  const user = USERS[next++]!;
  await conformBoth(peers, (port) => runScript(port, user, steps));
}

const PLAIN = [
  'Subject: ws\r\n\r\nHello   world\r\n\t  second line\r\n\r\n\r\nthird\r\n',
  'Subject: mp\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait\r\n> quoted line\r\n  > indented quote\r\nafter\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>other</p>\r\n--b--\r\n',
  `Subject: long\r\n\r\n${'word '.repeat(100)}\r\n`,
  'Subject: empty\r\n\r\n',
  'Subject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n',
  'Subject: latin\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\tx "quoted" back\\slash\r\n',
  'Subject: b64\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n' + Buffer.from('Grüße aus Köln, 東京 too').toString('base64') + '\r\n',
  'Subject: reply\r\n\r\nOn Mon, Bob wrote:\r\n> foo\r\n>> bar\r\nreply here\r\n-- \r\nsig\r\n',
  'Subject: nested\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--i--\r\n--o\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--o--\r\n',
];
const HTML = [
  'Subject: html\r\nContent-Type: text/html\r\n\r\n<html><head><style>p { color: red }</style><title>T</title></head><body><p>Hi &amp; <b>bold</b>&nbsp;x</p>\r\n<!-- hidden --><script>var x = 1 < 2;</script><p>para &lt;tag&gt; &#233;&#x20AC;</p></body></html>\r\n',
  'Subject: html-first\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<div>Only <i>html</i> here</div>\r\n--b--\r\n',
];

describe('RFC 8970 PREVIEW scripts against mailfleetd and Dovecot', { concurrency: 3 }, () => {
  test('PREVIEW is advertised', async () => {
    for (const port of [peers.mf.port, peers.dc.port]) {
      const c = await RawImap.login(port, USERS[5]!, PASSWORD);
      const r = await c.cmd('CAPABILITY');
      await c.close();
      assert.ok(r.untagged[0]!.split(' ').includes('PREVIEW'), r.untagged[0]);
    }
  });

  test('plain text previews: whitespace, quoted lines, 200 characters, charsets, no text part, first text part', () =>
    conform([
      { c: 'CREATE Pv' },
      ...PLAIN.map((m) => ({ c: `APPEND Pv ${lit(m)}` })),
      { c: 'SELECT Pv' },
      { c: 'FETCH 1:* (PREVIEW)' },
      { c: 'FETCH 1:* (PREVIEW (LAZY))' },
      { c: 'UID FETCH 2 (PREVIEW FLAGS)' },
      { c: 'FETCH 3 PREVIEW' },
      { c: 'FETCH 1:* (FLAGS)' },
    ]));

  test('HTML previews: markup, style, script and comments dropped, entities decoded (shape compared)', () =>
    conform([
      { c: 'CREATE Ph' },
      ...HTML.map((m) => ({ c: `APPEND Ph ${lit(m)}` })),
      { c: 'SELECT Ph' },
      { c: 'FETCH 1:* (PREVIEW)', shape: true },
    ]));

  test('PREVIEW modifiers: LAZY, errors', () =>
    conform([
      { c: 'CREATE Pm' },
      { c: `APPEND Pm ${lit(PLAIN[0]!)}` },
      { c: 'EXAMINE Pm' },
      { c: 'FETCH 1 (PREVIEW (LAZY))' },
      { c: 'FETCH 1 (PREVIEW (LAZY) UID)' },
      { c: 'FETCH 1 (PREVIEW (BOGUS))' },
      { c: 'FETCH 1 (PREVIEW ())' },
      { c: 'FETCH 1 (PREVIEW)' },
    ]));
});

describe('PREVIEW text on mailfleetd (RFC 8970 §3 rules)', () => {
  test('HTML preview: no markup, no style/script/comment content, entities decoded, words kept apart at block tags', async () => {
    const c = await RawImap.login(peers.mf.port, USERS[4]!, PASSWORD);
    try {
      await c.cmd('CREATE Hx');
      await c.cmd(`APPEND Hx ${lit(HTML[0]!)}`);
      await c.cmd('SELECT Hx');
      const r = await c.cmd('FETCH 1 (PREVIEW)');
      const text = Buffer.from(splitPreview(r.untagged[0]!)!.text, 'latin1').toString('utf8');
      assert.equal(text, 'Hi & bold x para <tag> é€');
    } finally {
      await c.close();
    }
  });

  test('the preview is kept in the mailbox index: a second FETCH does not read the message file', async () => {
    const user = USERS[4]!;
    const c = await RawImap.login(peers.mf.port, user, PASSWORD);
    try {
      await c.cmd('CREATE Kc');
      await c.cmd(`APPEND Kc ${lit('Subject: k\r\n\r\noriginal text\r\n')}`);
      await c.cmd('SELECT Kc');
      // Not cached yet: LAZY answers NIL without reading the file.
      assert.deepEqual((await c.cmd('FETCH 1 (PREVIEW (LAZY))')).untagged, ['* 1 FETCH (PREVIEW NIL)']);
      assert.deepEqual((await c.cmd('FETCH 1 (PREVIEW)')).untagged, ['* 1 FETCH (PREVIEW "original text")']);
      // The file changes under the server (same size): the preview still comes from the index.
      const cur = join(peers.mf.maildir(user), '.Kc', 'cur');
      const name = readdirSync(cur)[0]!;
      const before = readFileSync(join(cur, name), 'latin1');
      writeFileSync(join(cur, name), before.replace('original text', 'CHANGED!!text'));
      assert.deepEqual((await c.cmd('FETCH 1 (PREVIEW)')).untagged, ['* 1 FETCH (PREVIEW "original text")']);
      assert.deepEqual((await c.cmd('FETCH 1 (PREVIEW (LAZY))')).untagged, ['* 1 FETCH (PREVIEW "original text")']);
    } finally {
      await c.close();
    }
  });
});
