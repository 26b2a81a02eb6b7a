/**
 * Storage faults on one node: a full disk (a real 2 MiB tmpfs as the mail root) gives temporary failures
 * and leaves no partial files; a daemon SIGKILLed mid-APPEND or mid-EXPUNGE restarts onto a consistent
 * mailbox (no half message visible, the UID list loads, every listed UID fetches).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { configFor, RawClient, startInProcess, startProcess, tempDir, type TestDaemon } from '../ops/fixture.js';
import { deliver, imapCmd, imapLogin, messagesOnDisk, uids } from './fleet-client.js';

function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

describe('disk full', { timeout: 60_000 }, () => {
  let d: TestDaemon;
  let dir: string;
  let mailRoot: string;
  let cleanup: () => Promise<void>;
  let mounted = false;

  before(async () => {
    const t = await tempDir('mf-full-');
    dir = t.dir;
    cleanup = t.cleanup;
    mailRoot = join(dir, 'mail');
    mkdirSync(mailRoot);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mailRoot], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`disk-full test needs root to mount a tmpfs: ${m.stderr}`);
    mounted = true;
    d = await startInProcess(dir, configFor());
  });
  after(async () => {
    await d?.stop();
    if (mounted) spawnSync('umount', ['-l', mailRoot]);
    await cleanup?.();
  });

  it('GIVEN a mail root that fills up THEN SMTP answers 452 4.3.1 (temporary), never 250 for an unstored message, and leaves no partial file', async () => {
    const body = 'x'.repeat(76) + '\r\n';
    const big = body.repeat(2500); // ~195 KB
    const acked: string[] = [];
    let refusal = '';
    for (let i = 0; i < 30 && !refusal; i++) {
      const r = await deliver(d.port('smtp'), 'alice@example.com', `full-${i}`, big);
      if (r.startsWith('250')) acked.push(`full-${i}`);
      else refusal = r;
    }
    assert.match(refusal, /^452 4\.3\.1 /, `refusal: ${refusal}`);
    assert.ok(acked.length >= 3, `${acked.length} stored before full`);
    const box = join(mailRoot, 'example.com', 'alice', 'Maildir');
    assert.deepEqual(filesIn(join(box, 'tmp')), [], 'no partial file left in tmp/');
    const disk = messagesOnDisk(mailRoot).subjects;
    assert.deepEqual(disk.sort(), [...acked].sort(), 'exactly the acknowledged messages are stored');
    // IMAP APPEND on the full disk: a temporary NO, the mailbox still opens with every stored UID.
    const c = await imapLogin(d.port('imap'), 'alice@example.com');
    const sel = await imapCmd(c, 'SELECT INBOX');
    assert.match(sel.status, /^OK/);
    assert.equal((await uids(c)).length, acked.length);
    const from = c.lines.length;
    const lit = big.length;
    await c.send(`ap APPEND INBOX {${lit}}`, /^\+ /);
    c.socket.write(`${big}\r\n`);
    const ap = await c.waitFor(/^ap /, 10_000, from);
    assert.match(ap, /^ap NO \[(OVERQUOTA|UNAVAILABLE)\]/);
    c.close();
    assert.deepEqual(filesIn(join(box, 'tmp')), [], 'no partial APPEND left in tmp/');
  });
});

describe('daemon SIGKILLed mid-APPEND and mid-EXPUNGE', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let node: (TestDaemon & { proc: import('node:child_process').ChildProcess }) | undefined;
  const config = configFor();

  before(async () => {
    const t = await tempDir('mf-kill-');
    dir = t.dir;
    cleanup = t.cleanup;
    node = await startProcess(dir, config);
    for (let i = 0; i < 40; i++) assert.match(await deliver(node.port('smtp'), 'bob@example.com', `keep-${i}`), /^250 /);
  });
  after(async () => {
    await node?.stop();
    await cleanup?.();
  });

  async function killAndRestart(): Promise<void> {
    const exited = new Promise((r) => node!.proc.once('exit', r));
    node!.proc.kill('SIGKILL');
    await exited;
    node = await startProcess(dir, config);
  }

  it('GIVEN an APPEND whose literal is half sent WHEN the daemon is SIGKILLed THEN after restart no half message is visible', async () => {
    const c = await RawClient.open(node!.port('imap'));
    await c.waitFor(/^\* OK/);
    await c.send('a LOGIN bob@example.com password', /^a /);
    const msg = `Subject: half-append\r\n\r\n${'y'.repeat(200_000)}\r\n`;
    await c.send(`b APPEND INBOX {${msg.length}}`, /^\+ /);
    c.socket.write(msg.slice(0, msg.length / 2));
    await new Promise((r) => setTimeout(r, 200));
    await killAndRestart();
    c.close();
    const s = await imapLogin(node!.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(s, 'SELECT INBOX')).status, /^OK/);
    const list = await uids(s);
    assert.equal(list.length, 40, 'the half APPEND is not a message');
    const f = await imapCmd(s, 'UID FETCH 1:* (RFC822.SIZE)');
    assert.match(f.status, /^OK/);
    assert.equal(f.lines.filter((l) => /FETCH/.test(l)).length, 40);
    s.close();
    const disk = messagesOnDisk(join(dir, 'mail'));
    assert.equal(disk.subjects.filter((x) => x === 'half-append').length, 0, 'nothing half-written in new/ or cur/');
  });

  it('GIVEN an EXPUNGE of 20 messages WHEN the daemon is SIGKILLed during it THEN after restart the UID list loads and matches cur/', async () => {
    const c = await imapLogin(node!.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    assert.match((await imapCmd(c, 'UID STORE 1:20 +FLAGS.SILENT (\\Deleted)')).status, /^OK/);
    c.socket.write('x EXPUNGE\r\n');
    await new Promise((r) => setTimeout(r, 3));
    await killAndRestart();
    c.close();
    const s = await imapLogin(node!.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(s, 'SELECT INBOX')).status, /^OK/);
    const list = await uids(s);
    assert.ok(list.length >= 20 && list.length <= 40, `${list.length} messages`);
    assert.equal(new Set(list).size, list.length, 'no duplicate UID');
    assert.ok(list.slice(-20).every((u, i) => u === 21 + i), 'the 20 kept messages keep their UIDs');
    const f = await imapCmd(s, 'UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.match(f.status, /^OK/);
    // Finishing the interrupted EXPUNGE works and leaves exactly the 20 kept messages, on disk too.
    assert.match((await imapCmd(s, 'EXPUNGE')).status, /^OK/);
    assert.equal((await uids(s)).length, 20);
    s.close();
    const box = join(dir, 'mail', 'example.com', 'bob', 'Maildir');
    assert.equal(filesIn(join(box, 'cur')).length + filesIn(join(box, 'new')).length, 20);
  });
});
