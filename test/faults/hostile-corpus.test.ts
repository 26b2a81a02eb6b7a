/**
 * Hostile input against real SMTP, IMAP and POP3 sessions of one in-process daemon: overlong lines, huge
 * literals, NUL, bare CR/LF, deep parentheses, invalid mUTF-7/UTF-8 names, path-traversal names and
 * addresses, pipelining floods (early talkers: hostile-fuzz.test.ts). Each case checks the reply the client sees,
 * that a normal session still works afterwards, and that nothing was written outside the user's Maildir.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configFor, RawClient, startInProcess, tempDir, type TestDaemon } from '../ops/fixture.js';
import { deliver, imapCmd, imapLogin, messagesOnDisk } from './fleet-client.js';

/** Every path under dir, relative. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      out.push(relative(dir, p));
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Opens a session, writes each chunk, waits, returns every line received and whether it closed. */
async function exchange(port: number, chunks: Array<string | Buffer>, opts: { early?: boolean; waitMs?: number } = {}) {
  const c = await RawClient.open(port);
  if (!opts.early) await c.waitFor(/^(220|\* OK|\+OK)/, 5000);
  for (const ch of chunks) c.socket.write(ch);
  await new Promise((r) => setTimeout(r, opts.waitMs ?? 400));
  const r = { lines: [...c.lines], closed: c.closed };
  c.close();
  return r;
}

describe('hostile input against SMTP, IMAP and POP3', { timeout: 60_000 }, () => {
  let d: TestDaemon;
  let dir: string;
  let cleanup: () => Promise<void>;
  let topBefore: string[];

  before(async () => {
    const t = await tempDir('mf-hostile-');
    dir = t.dir;
    cleanup = t.cleanup;
    d = await startInProcess(dir, configFor());
    // Create alice's Maildir so the tree check below has a known baseline.
    assert.match(await deliver(d.port('smtp'), 'alice@example.com', 'baseline'), /^250/);
    topBefore = readdirSync(dir).sort();
  });

  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  /** The daemon still serves a normal session on every protocol. */
  async function stillServes(): Promise<void> {
    assert.match(await deliver(d.port('smtp'), 'bob@example.com', 'still-up'), /^250 /);
    const c = await imapLogin(d.port('imap'), 'alice@example.com');
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    c.close();
    const p = await exchange(d.port('pop3'), ['USER alice@example.com\r\nPASS password\r\nSTAT\r\nQUIT\r\n']);
    assert.ok(p.lines.some((l) => /^\+OK \d+ \d+/.test(l)), `POP3 STAT: ${JSON.stringify(p.lines)}`);
  }

  it('SMTP: an overlong command line gets 421/500 and the connection is dropped, not buffered', async () => {
    const r = await exchange(d.port('smtp'), [`EHLO ${'a'.repeat(20_000)}\r\n`]);
    assert.match(r.lines[1] ?? '', /^(421|500) /);
    assert.equal(r.closed, true);
  });

  it('SMTP: NUL in a command and path-traversal recipients are refused with 5xx; nothing lands outside the mail root', async () => {
    const r = await exchange(d.port('smtp'), [
      'EHLO a\0b\r\n',
      'EHLO ok.test\r\nMAIL FROM:<x@fault.test>\r\n',
      'RCPT TO:<../../etc@example.com>\r\nRCPT TO:<a/../../b@example.com>\r\nRCPT TO:<alice@../../example.com>\r\nRCPT TO:<..\\..\\x@example.com>\r\n',
    ]);
    assert.match(r.lines[1] ?? '', /^501 /);
    const rcpt = r.lines.filter((l) => /^(5\d\d|250 2\.1\.5)/.test(l) && !l.startsWith('501 Error: Bad hostname'));
    assert.equal(rcpt.length, 4, JSON.stringify(r.lines));
    for (const l of rcpt) assert.match(l, /^5\d\d /);
  });

  it('SMTP: bare CR/LF inside DATA is refused 550 5.5.2 (smtp.bareNewline, smtp-hygiene.test.ts); NUL is stored as one message, the dot terminator still works', async () => {
    const r = await exchange(d.port('smtp'), [
      'EHLO ok.test\r\nMAIL FROM:<x@fault.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n',
      'Subject: bare-crlf\r\n\r\nline\rwith bare cr\nand bare lf\r\nnul\0here\r\n.\r\n',
      'MAIL FROM:<x@fault.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n',
      'Subject: nul-data\r\n\r\nnul\0here\r\n.\r\n',
    ]);
    assert.ok(r.lines.some((l) => l.startsWith('550 5.5.2 ')), JSON.stringify(r.lines));
    assert.match(r.lines.at(-1) ?? '', /^250 /);
    const subjects = messagesOnDisk(join(dir, 'mail')).subjects;
    assert.equal(subjects.filter((s) => s === 'bare-crlf').length, 0);
    assert.equal(subjects.filter((s) => s === 'nul-data').length, 1);
  });

  it('SMTP: a pipelining flood of 500 commands gets 500 replies in order and no crash', async () => {
    const cmds = Array.from({ length: 500 }, (_, i) => (i % 2 ? 'NOOP' : 'RSET')).join('\r\n') + '\r\n';
    const r = await exchange(d.port('smtp'), ['EHLO ok.test\r\n' + cmds], { waitMs: 1500 });
    assert.equal(r.lines.filter((l) => /^250 2\.0\.0/.test(l) || /^250 OK/i.test(l) || /^250 [^-]/.test(l)).length, 501);
  });

  it('IMAP: overlong line → BAD, huge literal → NO [TOOBIG] without reading it, NUL → BAD, deep parentheses → BAD', async () => {
    const r = await exchange(d.port('imap'), [
      `a1 ${'x'.repeat(70_000)}\r\n`,
      'a2 LOGIN alice@example.com {999999999}\r\n',
      'a3 NOOP\0x\r\n',
      `a4 ID ${'('.repeat(20_000)}\r\n`,
      'a5 NOOP\r\n',
    ], { waitMs: 800 });
    const tagged = (t: string) => r.lines.find((l) => l.startsWith(`${t} `)) ?? '';
    assert.match(tagged('a1'), /^a1 BAD /);
    assert.match(tagged('a2'), /^a2 NO \[TOOBIG\]/);
    assert.match(tagged('a3'), /^a3 BAD /);
    assert.match(tagged('a4'), /^a4 BAD /);
    assert.match(tagged('a5'), /^a5 OK/, 'the session survives all of it');
  });

  it('IMAP: invalid mUTF-7 / UTF-8 and path-traversal mailbox names are refused and create nothing', async () => {
    const c = await imapLogin(d.port('imap'), 'alice@example.com');
    const bad = ['"&Jjo"', '"&-&"', '"\xff\xfe"', '"../../etc"', '"a/../../b"', '"..\\\\..\\\\x"', '".."', '"/etc/passwd"', '"INBOX/../../.."'];
    for (const name of bad) {
      const r = await imapCmd(c, `CREATE ${name}`);
      assert.match(r.status, /^(NO|BAD)/, `CREATE ${name}: ${r.status}`);
      const s = await imapCmd(c, `SELECT ${name}`);
      assert.match(s.status, /^(NO|BAD)/, `SELECT ${name}: ${s.status}`);
      const rn = await imapCmd(c, `RENAME INBOX ${name}`);
      assert.match(rn.status, /^(NO|BAD)/, `RENAME INBOX ${name}: ${rn.status}`);
    }
    c.close();
    // On disk: only the two users' Maildirs, no directory named like the attack, nothing new beside the mail root.
    assert.deepEqual(readdirSync(dir).sort(), topBefore);
    const paths = tree(join(dir, 'mail'));
    for (const p of paths) assert.doesNotMatch(p, /(^|\/)\.\.?(\/|$)|etc|passwd/, p);
  });

  it('IMAP: a command before the greeting is answered after it; 300 pipelined commands all get tagged replies', async () => {
    const early = await exchange(d.port('imap'), ['e1 CAPABILITY\r\n'], { early: true });
    assert.match(early.lines[0] ?? '', /^\* OK/);
    assert.ok(early.lines.some((l) => l.startsWith('e1 OK')));
    const cmds = Array.from({ length: 300 }, (_, i) => `p${i} NOOP\r\n`).join('');
    const r = await exchange(d.port('imap'), [cmds], { waitMs: 1500 });
    const tagged = r.lines.filter((l) => /^p\d+ /.test(l));
    // Unauthenticated: the daemon may cut the flood at maxUnauthenticatedCommands with a BYE.
    if (tagged.length < 300) assert.ok(r.lines.some((l) => l.startsWith('* BYE')), JSON.stringify(r.lines.slice(-3)));
    else assert.equal(tagged.filter((l) => / OK/.test(l)).length, 300);
  });

  it('POP3: an endless line gets -ERR, NUL and traversal user names never log in; the session goes on', async () => {
    const c = await RawClient.open(d.port('pop3'));
    await c.waitFor(/^\+OK/);
    // 100 KB without a line end, in pieces: the daemon drops it instead of buffering.
    for (let i = 0; i < 25; i++) c.socket.write('x'.repeat(4096));
    const tooLong = await c.waitFor(/^-ERR/, 3000);
    assert.match(tooLong, /^-ERR .*(long|line)/i);
    const from = c.lines.length;
    c.socket.write(
      ['\r\nUSER a\0b', 'PASS x', 'USER ../../etc@example.com', 'PASS password', 'USER alice@../../example.com', 'PASS password', 'CAPA', ''].join('\r\n'),
    );
    await c.waitFor(/^\.$/, 5000, from);
    const lines = c.lines.slice(from);
    c.close();
    assert.ok(!lines.some((l) => /^\+OK Logged in/.test(l)), JSON.stringify(lines));
    assert.equal(lines.filter((l) => l.startsWith('-ERR [AUTH]')).length, 3, JSON.stringify(lines));
    assert.ok(lines.includes('+OK Capability list follows'));
  });

  it('POP3: one overlong line arriving whole with its CRLF gets -ERR once; a flood of pipelined commands after login is answered in full', async () => {
    const c = await RawClient.open(d.port('pop3'));
    await c.waitFor(/^\+OK/);
    const from = c.lines.length;
    c.socket.write(`USER ${'y'.repeat(20_000)}\r\nCAPA\r\n`);
    await c.waitFor(/^\.$/, 5000, from);
    const lines = c.lines.slice(from);
    assert.match(lines[0] ?? '', /^-ERR .*(long|line)/i);
    assert.equal(lines.filter((l) => l.startsWith('-ERR')).length, 1, JSON.stringify(lines.slice(0, 5)));
    assert.equal(lines[1], '+OK Capability list follows');
    // Before login a flood ends at maxUnauthenticatedCommands; after it, 3,000 commands (~20 KB) in one
    // write are read with backpressure and every one is answered.
    await c.send('USER bob@example.com', /^\+OK/);
    await c.send('PASS password', /^\+OK/);
    const n = 3000;
    const start = c.lines.length;
    c.socket.write('STAT\r\n'.repeat(n));
    const answered = () => c.lines.slice(start).filter((l) => /^\+OK \d+ \d+$/.test(l)).length;
    const deadline = Date.now() + 10_000;
    while (answered() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(answered(), n);
    c.close();
  });

  it('the daemon still serves normal SMTP, IMAP and POP3 sessions afterwards, and wrote only inside the mail root', async () => {
    await stillServes();
    assert.deepEqual(readdirSync(dir).sort(), topBefore);
    const users = readdirSync(join(dir, 'mail')).flatMap((dom) => readdirSync(join(dir, 'mail', dom)).map((u) => `${dom}/${u}`));
    assert.deepEqual(users.sort(), ['example.com/alice', 'example.com/bob']);
  });
});

