import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MiniImapClient } from '../../lib/dr/mini-imap.js';
import { readSmtpBanner } from '../../lib/dr/mini-smtp.js';
import { PASSWORD, python, startImapHarness, type Harness } from '../daemon/mail-harness.js';
import { createServer, type Server } from 'node:net';

let h: Harness;
before(async () => {
  h = await startImapHarness();
  for (let i = 1; i <= 3; i++)
    await h.deliver(
      'alice@example.com',
      `Message-ID: <m${i}@drill.test>\r\nSubject: ${i}\r\n\r\nbody ${'x'.repeat(i * 100)}\r\n`,
    );
});
after(() => h.close());

const IMAPLIB = `
import imaplib, sys, re
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login('alice@example.com', sys.argv[2])
c.select('INBOX', readonly=True)
typ, data = c.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
for item in data:
    if isinstance(item, tuple):
        uid = re.search(rb'UID (\\d+)', item[0]).group(1).decode()
        mid = re.search(rb'<[^>]*>', item[1]).group(0).decode()
        print(uid, mid)
c.logout()
`;

describe('drill probes against the real IMAP session', () => {
  it('lists UIDs and Message-IDs (literals parsed) the same as python3 imaplib', async () => {
    const c = await MiniImapClient.connect({ host: '127.0.0.1', port: h.port });
    await c.login('alice@example.com', PASSWORD);
    assert.equal(await c.select('INBOX'), 3);
    const mine = await c.messageIds();
    await c.logout();
    // UIDs follow the order the store first saw the files, not necessarily delivery order: compare as a set.
    assert.deepEqual(
      mine.map((m) => m.messageId).sort(),
      ['<m1@drill.test>', '<m2@drill.test>', '<m3@drill.test>'],
    );
    const theirs = (await python(IMAPLIB, [String(h.port), PASSWORD])).trim().split('\n');
    assert.deepEqual(
      theirs,
      mine.map((m) => `${m.uid} ${m.messageId}`),
    );
  });

  it('fails when the password is wrong, with the server reply', async () => {
    const c = await MiniImapClient.connect({ host: '127.0.0.1', port: h.port });
    await assert.rejects(c.login('alice@example.com', 'wrong'), /IMAP LOGIN: NO/);
    await c.logout();
  });

  it('reads an SMTP banner, multi-line included, and fails on a closed port', async () => {
    const srv: Server = createServer((s) => s.resume().write('220-mx.test first\r\n220 mx.test ready\r\n'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    assert.equal(await readSmtpBanner('127.0.0.1', port, 2000), '220-mx.test first\n220 mx.test ready');
    await new Promise<void>((r) => srv.close(() => r()));
    await assert.rejects(readSmtpBanner('127.0.0.1', port, 2000), /ECONNREFUSED|closed/);
  });
});
