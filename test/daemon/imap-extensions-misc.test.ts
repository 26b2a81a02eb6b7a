/**
 * Issue 21 extensions (LIST-EXTENDED, LIST-STATUS, STATUS=SIZE, MULTIAPPEND, BINARY, COMPRESS=DEFLATE)
 * in raw scripted sessions and real clients, against the real daemon. Their conformance with Dovecot is
 * test/conformance/imap-misc-ext.test.ts; here: advertising, work limits, and what only mailfleetd shows.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';
import { ImapFlow } from 'imapflow';
import { connect } from 'node:net';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { COMPRESS_SESSION_BYTES } from '../../lib/daemon/imap/compress.js';
import { RawImap, slit } from '../conformance/raw-imap.js';

let h: Harness;
const USER = 'alice@example.com';

before(async () => {
  // Room for exactly one compressed session at a time (the COMPRESS limit test).
  h = await startImapHarness({ imap: { maxListPatterns: 3, maxLiteralBytes: 100_000, maxCompressMemoryBytes: COMPRESS_SESSION_BYTES } });
});
after(() => h?.close());

const login = () => RawImap.login(h.port, USER, PASSWORD);

describe('LIST-EXTENDED, LIST-STATUS, STATUS=SIZE', () => {
  test('advertised after login', async () => {
    const c = await login();
    const caps = (await c.cmd('CAPABILITY')).untagged[0]!.split(' ');
    for (const cap of ['LIST-EXTENDED', 'LIST-STATUS', 'STATUS=SIZE', 'MULTIAPPEND', 'BINARY', 'COMPRESS=DEFLATE']) assert.ok(caps.includes(cap), cap);
    await c.close();
  });

  test('more patterns than imap.maxListPatterns: NO [LIMIT], not counted as a bad command', async () => {
    const c = await login();
    const r = await c.cmd('LIST "" (a b c d)');
    assert.match(r.tagged, /^NO \[LIMIT\] Too many mailbox patterns \(limit 3\)/);
    assert.equal((await c.cmd('LIST "" (INBOX a b)')).untagged.length, 1);
    await c.close();
  });

  test('a backtracking-shaped pattern in a pattern list stays linear', async () => {
    const c = await login();
    await c.cmd(`CREATE ${'a'.repeat(150)}`);
    const t0 = Date.now();
    const r = await c.cmd('LIST "" ("%*%*%*%*%*%*%*%*x" "*%*%*%*%*%*%*%*%y") RETURN (STATUS (MESSAGES SIZE))');
    assert.equal(r.status, 'OK');
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    await c.close();
  });

  test('STATUS SIZE is the sum of RFC822.SIZE (bare LFs counted as CRLF), also in LIST-STATUS', async () => {
    const c = await login();
    await c.cmd('CREATE Sz');
    await c.cmd(`APPEND Sz ${slit('Subject: a\n\nbody\n')}`);
    await c.cmd(`APPEND Sz ${slit('Subject: b\r\n\r\nbody two\r\n')}`);
    const r = await c.cmd('STATUS Sz (SIZE)');
    assert.equal(r.untagged[0], `* STATUS "Sz" (SIZE ${'Subject: a\r\n\r\nbody\r\n'.length + 'Subject: b\r\n\r\nbody two\r\n'.length})`);
    const l = await c.cmd('LIST "" Sz RETURN (STATUS (SIZE MESSAGES))');
    assert.deepEqual(l.untagged, ['* LIST (\\HasNoChildren) "." "Sz"', `${r.untagged[0]!.slice(0, -1)} MESSAGES 2)`]);
    await c.close();
  });
});

describe('MULTIAPPEND', () => {
  test('all literals of one APPEND together are bounded by imap.maxLiteralBytes, and nothing is stored', async () => {
    const c = await login();
    await c.cmd('CREATE Mbig');
    const body = `Subject: x\r\n\r\n${'y'.repeat(40_000)}\r\n`;
    const r = await c.cmd(`APPEND Mbig ${slit(body)} ${slit(body)} ${slit(body)}`);
    assert.match(r.tagged, /^NO \[TOOBIG\]/);
    // The refused third literal was never invited: the session goes on with the next command.
    assert.equal((await c.cmd('STATUS Mbig (MESSAGES)')).untagged[0], '* STATUS "Mbig" (MESSAGES 0)');
    const ok = await c.cmd(`APPEND Mbig ${slit(body)} ${slit(body)}`);
    assert.match(ok.tagged, /^OK \[APPENDUID \d+ 1:2\]/);
    await c.close();
  });

  test('a failing message stores none of the others (all or none)', async () => {
    const c = await login();
    await c.cmd('CREATE Mall');
    const r = await c.cmd(`APPEND Mall ${slit('Subject: a\r\n\r\na\r\n')} (\\Bogus) ${slit('Subject: b\r\n\r\nb\r\n')}`);
    assert.equal(r.status, 'BAD');
    assert.equal((await c.cmd('STATUS Mall (MESSAGES)')).untagged[0], '* STATUS "Mall" (MESSAGES 0)');
    await c.close();
  });
});

describe('BINARY', () => {
  test('an unknown Content-Transfer-Encoding answers NO [UNKNOWN-CTE]; other parts still decode; NUL goes out as literal8', async () => {
    const c = await login();
    await c.cmd('CREATE Bx');
    const msg =
      'Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n' +
      '--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGE=\r\n--b--\r\n';
    await c.cmd(`APPEND Bx ${slit(msg)}`);
    await c.cmd('SELECT Bx');
    assert.match((await c.cmd('FETCH 1 (BINARY.PEEK[1])')).tagged, /^NO \[UNKNOWN-CTE\]/);
    assert.match((await c.cmd('FETCH 1 (BINARY.SIZE[])')).tagged, /^NO \[UNKNOWN-CTE\]/);
    const r = await c.cmd('FETCH 1 (BINARY.PEEK[2])');
    assert.deepEqual(r.untagged, ['* 1 FETCH (BINARY[2] ~{2}\r\n\x00a)']);
    assert.equal((await c.cmd('FETCH 1 (BINARY.PEEK[1.TEXT])')).status, 'BAD');
    await c.close();
  });
});

describe('COMPRESS=DEFLATE', () => {
  const flow = (doSTARTTLS: boolean) =>
    new ImapFlow({ host: '127.0.0.1', port: h.port, secure: false, doSTARTTLS, tls: { rejectUnauthorized: false }, auth: { user: USER, pass: PASSWORD }, logger: false });

  for (const tls of [false, true]) {
    test(`imapflow compresses by default${tls ? ' over STARTTLS' : ''}: LIST, APPEND, FETCH of an 80 kB message, IDLE hears a delivery`, async () => {
      const c = flow(tls);
      await c.connect();
      try {
        assert.ok((c as unknown as { _deflate?: unknown })._deflate, 'compression negotiated');
        assert.equal(c.capabilities.has('COMPRESS=DEFLATE'), true);
        const big = `Subject: z\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(60_000, 7).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
        await c.append('INBOX', big);
        const lock = await c.getMailboxLock('INBOX');
        let before: number;
        try {
          const msg = await c.fetchOne('*', { source: true });
          assert.equal(msg && msg.source?.length, Buffer.byteLength(big));
          before = (c.mailbox as { exists: number }).exists;
        } finally {
          lock.release();
        }
        // IDLE now (imapflow's own starts after 15 s): the delivery must arrive through the compressed stream.
        const exists = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
        void c.idle();
        setTimeout(() => void h.deliver(USER, 'Subject: idle\r\n\r\nnew\r\n'), 300);
        assert.equal(await exists, before + 1);
        assert.ok((await c.list()).some((m) => m.path === 'INBOX'));
      } finally {
        await c.logout();
      }
    });
  }

  test('past imap.maxCompressMemoryBytes COMPRESS answers NO [LIMIT] and the session goes on uncompressed; twice is COMPRESSIONACTIVE', async () => {
    const first = flow(false);
    await first.connect();
    try {
      const c = await login();
      const r = await c.cmd('COMPRESS DEFLATE');
      assert.match(r.tagged, /^NO \[LIMIT\]/);
      assert.equal((await c.cmd('NOOP')).status, 'OK');
      assert.equal((await c.cmd('COMPRESS BOGUS')).status, 'BAD');
      await c.close();
    } finally {
      await first.logout();
    }
    // The budget came back when the compressed session ended.
    const again = flow(false);
    await again.connect();
    assert.ok((again as unknown as { _deflate?: unknown })._deflate);
    // A second COMPRESS inside the compressed session is refused by code.
    const res = await (again as unknown as { exec(c: string, a: unknown[]): Promise<unknown> }).exec('COMPRESS', [{ type: 'ATOM', value: 'DEFLATE' }]).catch((e: { response?: unknown }) => e.response ?? e);
    assert.match(JSON.stringify(res), /COMPRESSIONACTIVE/);
    await again.logout();
  });
});

describe('COMPRESS=DEFLATE with a raw client', () => {
  test('a deflated 32 MB line (a few kB on the wire) is discarded as too long and the session answers the next command', async () => {
    const sock = connect(h.port, '127.0.0.1');
    let plain = '';
    let inflated = '';
    const inflate = createInflateRaw();
    inflate.on('data', (d: Buffer) => (inflated += d.toString('latin1')));
    let compressed = false;
    sock.on('data', (d: Buffer) => (compressed ? inflate.write(d) : (plain += d.toString('latin1'))));
    const waitFor = async (get: () => string, re: RegExp) => {
      for (let i = 0; i < 300 && !re.test(get()); i++) await new Promise((r) => setTimeout(r, 20));
      assert.match(get(), re);
    };
    await waitFor(() => plain, /^\* OK/);
    sock.write(`a1 LOGIN ${USER} ${PASSWORD}\r\na2 COMPRESS DEFLATE\r\n`);
    await waitFor(() => plain, /a2 OK DEFLATE active\r\n/);
    compressed = true;
    const deflate = createDeflateRaw();
    deflate.on('data', (d: Buffer) => sock.write(d));
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 32; i++) deflate.write(chunk);
    deflate.write('\r\na3 NOOP\r\n');
    deflate.flush(constants.Z_SYNC_FLUSH);
    await waitFor(() => inflated, /a3 OK/);
    assert.match(inflated, /BAD Line too long/);
    sock.destroy();
  });
});
