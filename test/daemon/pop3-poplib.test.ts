import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, python, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
before(async () => {
  h = await startImapHarness({ users: ['carol@example.com', 'dave@example.com'] });
});
after(async () => h?.close());

const MESSAGE = 'From: Ann <ann@example.com>\r\nTo: carol@example.com\r\nSubject: pop me\r\n\r\n.dot line\r\nsecond\r\n';

test('python poplib: a whole session — CAPA, USER/PASS, STAT, LIST, UIDL, TOP, RETR byte-identical, DELE, RSET, QUIT', async () => {
  await h.deliver('carol@example.com', MESSAGE);
  await h.deliver('carol@example.com', 'Subject: two\r\n\r\nbody\r\n');
  const out = await python(
    `
import poplib, sys, json
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
r = {}
r['capa'] = sorted(p.capa().keys())
p.user('carol@example.com')
r['pass'] = p.pass_(sys.argv[2]).decode()
r['stat'] = list(p.stat())
r['list'] = [x.decode() for x in p.list()[1]]
uidl = [x.decode() for x in p.uidl()[1]]
r['uidl'] = uidl
resp, lines, octets = p.retr(1)
r['retr'] = (b'\\r\\n'.join(lines) + b'\\r\\n').decode()
r['octets'] = octets
r['top'] = [x.decode() for x in p.top(1, 0)[1]]
p.dele(2)
r['stat_after_dele'] = list(p.stat())
p.rset()
p.dele(2)
r['quit'] = p.quit().decode()
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
p.user('carol@example.com'); p.pass_(sys.argv[2])
r['second_uidl'] = [x.decode() for x in p.uidl()[1]]
p.quit()
print(json.dumps(r))
`,
    [String(h.pop3Port), PASSWORD],
  );
  const r = JSON.parse(out);
  assert.deepEqual(r.capa, ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'STLS', 'TOP', 'UIDL', 'USER']);
  assert.match(r.pass, /^\+OK/);
  assert.equal(r.stat[0], 2);
  assert.equal(r.list[0], `1 ${Buffer.byteLength(MESSAGE)}`);
  assert.equal(r.retr, MESSAGE, 'byte-identical after un-stuffing');
  assert.deepEqual(r.top, ['From: Ann <ann@example.com>', 'To: carol@example.com', 'Subject: pop me', '']);
  assert.equal(r.stat_after_dele[0], 1);
  assert.match(r.quit, /^\+OK/);
  assert.deepEqual(r.second_uidl, [r.uidl[0]], 'DELE applied at QUIT, UIDL stable');
});

test('fails with -ERR [IN-USE] when a second session opens a locked maildrop, and -ERR [AUTH] on a bad password', async () => {
  const out = await python(
    `
import poplib, sys
a = poplib.POP3('127.0.0.1', int(sys.argv[1]))
a.user('dave@example.com'); a.pass_(sys.argv[2])
b = poplib.POP3('127.0.0.1', int(sys.argv[1]))
b.user('dave@example.com')
try:
    b.pass_(sys.argv[2]); print('second ok')
except poplib.error_proto as e:
    print('second', e)
c = poplib.POP3('127.0.0.1', int(sys.argv[1]))
c.user('dave@example.com')
try:
    c.pass_('nope'); print('bad ok')
except poplib.error_proto as e:
    print('bad', e)
a.quit()
b.user('dave@example.com')
print('after quit', b.pass_(sys.argv[2]).decode()[:3])
`,
    [String(h.pop3Port), PASSWORD],
  );
  assert.match(out, /second b'-ERR \[IN-USE\]/);
  assert.match(out, /bad b'-ERR \[AUTH\]/);
  assert.match(out, /after quit \+OK/);
});
