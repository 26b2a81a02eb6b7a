/**
 * IMAP and POP3 inside the real daemon (startDaemon): a message sent over SMTP is fetched byte-identical
 * through IMAP and POP3, IDLE hears the delivery within 1 s, implicit TLS on imaps/pop3s, and the port
 * cap answers with the protocol's busy reply.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { python } from './mail-harness.js';
import { PASSWORD, startSmtpHarness, type SmtpHarness } from './smtp-harness.js';

let h: SmtpHarness;
const port = (p: string) => h.daemon.sockets.find((s) => s.protocol === p)!.port;

before(async () => {
  h = await startSmtpHarness({
    spec: { smtp: { allowInsecureAuth: true }, imap: { allowInsecureAuth: true, pollIntervalSeconds: 30 }, pop3: { allowInsecureAuth: true } },
  });
});
after(async () => h?.close());

const BODY = 'From: Zed <zed@example.net>\r\nTo: bob@example.com\r\nSubject: over smtp\r\nMessage-ID: <smtp-1@example.net>\r\n\r\nfirst line\r\n.leading dot\r\nlast line\r\n';

test('GIVEN an IMAP client in IDLE WHEN a message arrives over SMTP THEN EXISTS within 1 s, and IMAP and POP3 return the stored bytes exactly', async () => {
  const out = await python(
    `
import imaplib, poplib, smtplib, socket, ssl, sys, json, time
imap_port, pop_port, smtp_port, imaps_port, pop3s_port, pw = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
r = {}
m = imaplib.IMAP4('127.0.0.1', imap_port)
m.login('bob@example.com', pw)
m.select('INBOX')
tag = m._new_tag().decode()
m.send(('%s IDLE\\r\\n' % tag).encode())
assert m.readline().startswith(b'+')
t0 = time.time()
s = smtplib.SMTP('127.0.0.1', smtp_port)
s.sendmail('zed@example.net', ['bob@example.com'], sys.argv[7].encode())
s.quit()
line = m.readline()
r['idle_line'] = line.decode().strip()
r['idle_ms'] = int((time.time() - t0) * 1000)
m.send(b'DONE\\r\\n')
while not m.readline().startswith(tag.encode()): pass
typ, data = m.fetch('1', '(RFC822.SIZE BODY.PEEK[])')
r['imap'] = data[0][1].decode('latin1')
r['imap_size'] = data[0][0].decode()
m.logout()
p = poplib.POP3('127.0.0.1', pop_port)
p.user('bob@example.com'); p.pass_(pw)
resp, lines, octets = p.retr(1)
r['pop'] = (b'\\r\\n'.join(lines) + b'\\r\\n').decode('latin1')
p.quit()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ms = imaplib.IMAP4_SSL('127.0.0.1', imaps_port, ssl_context=ctx)
r['imaps'] = ms.login('bob@example.com', pw)[0]
ms.logout()
ps = poplib.POP3_SSL('127.0.0.1', pop3s_port, context=ctx)
ps.user('bob@example.com')
r['pop3s'] = ps.pass_(pw).decode()[:3]
ps.quit()
print(json.dumps(r))
`,
    [String(port('imap')), String(port('pop3')), String(port('smtp')), String(port('imaps')), String(port('pop3s')), PASSWORD, BODY],
  );
  const r = JSON.parse(out);
  assert.equal(r.idle_line, '* 1 EXISTS');
  assert.ok(r.idle_ms < 1000, `EXISTS after ${r.idle_ms} ms`);
  const cur = join(h.maildir('bob@example.com'), 'cur');
  const [file] = await readdir(cur);
  const stored = (await readFile(join(cur, file!))).toString('latin1');
  assert.ok(stored.endsWith(BODY), 'the stored message is what was sent, after the Received header');
  assert.equal(r.imap, stored, 'IMAP BODY[] is byte-identical');
  assert.equal(r.pop, stored, 'POP3 RETR is byte-identical');
  assert.match(r.imap_size, new RegExp(`RFC822.SIZE ${Buffer.byteLength(stored, 'latin1')}`));
  assert.equal(r.imaps, 'OK');
  assert.equal(r.pop3s, '+OK');
});

test('fails when the port is full: IMAP says * BYE [UNAVAILABLE], POP3 says -ERR [SYS/TEMP]', async () => {
  const full = await startSmtpHarness({ spec: { limits: { imap: { portConnections: 1 }, pop3: { portConnections: 1 } } } });
  try {
    const p = (proto: string) => full.daemon.sockets.find((s) => s.protocol === proto)!.port;
    const out = await python(
      `
import socket, sys, time
def greet(port):
    s = socket.create_connection(('127.0.0.1', port)); s.settimeout(3)
    return s, s.recv(512).decode()
for port in (int(sys.argv[1]), int(sys.argv[2])):
    a, ga = greet(port)
    b, gb = greet(port)
    print(ga.split(' ')[0], '|', gb.strip())
    a.close(); b.close()
`,
      [String(p('imap')), String(p('pop3'))],
    );
    const [imap, pop3] = out.trim().split('\n');
    assert.match(imap!, /^\* \| \* BYE \[UNAVAILABLE\] /);
    assert.match(pop3!, /^\+OK \| -ERR \[SYS\/TEMP\] /);
  } finally {
    await full.close();
  }
});
