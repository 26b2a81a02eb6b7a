import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, python, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
before(async () => {
  h = await startImapHarness();
});
after(async () => h?.close());

const MESSAGE = 'From: Ann <ann@example.com>\r\nTo: alice@example.com\r\nSubject: hello imap\r\nMessage-ID: <x1@example.com>\r\n\r\nline one\r\n.line two\r\n';

test('python imaplib: a whole session — login, list, select, fetch byte-identical, store, copy, search, expunge, logout', async () => {
  await h.deliver('alice@example.com', MESSAGE);
  const out = await python(
    `
import imaplib, sys, json
port = int(sys.argv[1])
m = imaplib.IMAP4('127.0.0.1', port)
r = {}
r['caps'] = list(m.capabilities)
r['login'] = m.login('alice@example.com', sys.argv[2])[0]
typ, data = m.list()
r['list'] = [d.decode() for d in data]
typ, data = m.select('INBOX')
r['exists'] = data[0].decode()
typ, data = m.uid('FETCH', '1:*', '(UID RFC822.SIZE FLAGS BODY.PEEK[])')
r['size'] = data[0][0].decode()
r['body'] = data[0][1].decode()
typ, data = m.fetch('1', '(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.8>)')
r['envelope'] = data[0][0].decode()
r['text'] = data[1][1].decode() if len(data) > 1 and isinstance(data[1], tuple) else repr(data)
typ, data = m.store('1', '+FLAGS', '(\\\\Flagged)')
r['store'] = data[0].decode()
typ, data = m.copy('1', 'Trash')
r['copy'] = [typ, data[0].decode()]
typ, data = m.search(None, 'FLAGGED', 'SUBJECT', 'hello')
r['search'] = data[0].decode()
typ, data = m.uid('SEARCH', 'UNSEEN')
r['unseen'] = data[0].decode()
m.store('1', '+FLAGS', '(\\\\Deleted)')
typ, data = m.expunge()
r['expunge'] = [d.decode() for d in data if d]
typ, data = m.status('Trash', '(MESSAGES UIDNEXT UNSEEN)')
r['status'] = data[0].decode()
m.create('Archive.2024')
typ, data = m.list('""', 'Archive*')
r['archive'] = [d.decode() for d in data]
m.rename('Archive.2024', 'Old.2024')
m.delete('Old.2024')
typ, data = m.list('""', 'Old*')
r['deleted'] = [d.decode() if d else d for d in data]
r['logout'] = m.logout()[0]
print(json.dumps(r))
`,
    [String(h.port), PASSWORD],
  );
  const r = JSON.parse(out);
  assert.ok(r.caps.includes('IDLE') && r.caps.includes('UIDPLUS') && r.caps.includes('AUTH=PLAIN'), r.caps.join(' '));
  assert.equal(r.login, 'OK');
  assert.ok(r.list.some((l: string) => l.includes('\\Sent') && l.endsWith('"Sent"')), r.list.join('\n'));
  assert.equal(r.exists, '1');
  assert.match(r.size, new RegExp(`RFC822.SIZE ${Buffer.byteLength(MESSAGE)}`));
  assert.equal(r.body, MESSAGE, 'byte-identical');
  assert.match(r.envelope, /ENVELOPE \(NIL "hello imap" \(\("Ann" NIL "ann" "example.com"\)\)/);
  assert.match(r.envelope, /BODYSTRUCTURE \("text" "plain" \("CHARSET" "us-ascii"\) NIL NIL "7bit" 21 2/);
  assert.equal(r.text, 'line one');
  assert.match(r.store, /FLAGS \(\\Flagged \\Recent\)/); // first to see it: \\Recent here (RFC 3501 §2.3.2)
  assert.equal(r.copy[0], 'OK');
  assert.match(r.copy[1], /^\[COPYUID \d+ 1 1\] COPY completed$/);
  assert.equal(r.search, '1');
  assert.equal(r.unseen, '1', 'BODY.PEEK leaves the message unseen');
  assert.deepEqual(r.expunge, ['1']);
  assert.match(r.status, /"Trash" \(MESSAGES 1 UIDNEXT 2 UNSEEN 1\)/);
  assert.ok(r.archive.some((l: string) => l.endsWith('"." "Archive.2024"')), r.archive.join('\n'));
  // RENAME made the superior name Old (RFC 3501 §6.3.5); DELETE Old.2024 leaves it.
  assert.deepEqual(r.deleted, ['(\\HasNoChildren) "." "Old"']);
  assert.equal(r.logout, 'BYE');
});

test('fails when the password is wrong: NO [AUTHENTICATIONFAILED]', async () => {
  const out = await python(
    `
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
try:
    m.login('alice@example.com', 'wrong')
    print('logged-in')
except imaplib.IMAP4.error as e:
    print('refused', e)
`,
    [String(h.port)],
  );
  assert.match(out, /refused .*AUTHENTICATIONFAILED/);
});
