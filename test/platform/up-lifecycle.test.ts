/**
 * The lifecycle of `npm start` (mailfleet up) with HAProxy, run as a user runs it: a second start while one
 * runs (same data dir, then another data dir on the same ports, then a port held by another program),
 * Ctrl-C in the middle of an SMTP DATA, SIGKILL of `up`, and a start that finds a HAProxy left behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { hashPassword } from '../../lib/directory/static.js';
import { pidAlive } from '../../lib/haproxy/process.js';
import { RUNTIME_INFO_FILE, localHaproxyRunDir, type LocalHaproxyInfo } from '../../lib/platform/haproxy.js';
import { requireHaproxy, writeTempSpec, type TempSpec } from '../haproxy/harness.js';
import { npmStart, npmStartOnce, upNodePid, requireTool, swaks, type NpmStart } from './npm-start-harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function haproxyInfo(dataDir: string): LocalHaproxyInfo {
  return JSON.parse(readFileSync(join(localHaproxyRunDir(dataDir), RUNTIME_INFO_FILE), 'utf8')) as LocalHaproxyInfo;
}

function pgid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** A line-at-a-time SMTP client: send() writes, reply() resolves with the next complete reply. */
function smtpClient(port: number): { socket: Socket; reply(timeoutMs?: number): Promise<string>; send(s: string): void } {
  const socket = createConnection({ host: '127.0.0.1', port });
  let buf = '';
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (c: Buffer) => ((buf += c.toString('latin1')), wake?.()));
  socket.on('error', () => undefined);
  socket.on('close', () => ((closed = true), wake?.()));
  return {
    socket,
    send: (s) => socket.write(s),
    async reply(timeoutMs = 15000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        // A reply ends with a line whose 4th character is a space.
        const m = buf.match(/^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/);
        if (m) {
          buf = buf.slice(m[0].length);
          return m[0];
        }
        if (closed) return `CLOSED${buf ? `: ${buf}` : ''}`;
        if (Date.now() > end) return `TIMEOUT${buf ? `: ${buf}` : ''}`;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    },
  };
}

/** Whether a plain bind of 127.0.0.1:port fails (someone listens there). */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(true));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(false)));
  });
}

/** A refusal: one line, no Node stack trace. */
function assertOneLine(out: string): string {
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `expected one line, got:\n${out}`);
  assert.doesNotMatch(out, /^\s+at /m, 'no stack trace');
  return lines[0]!;
}

describe('npm start lifecycle (pidfile, second start, Ctrl-C, stale HAProxy)', () => {
  let spec: TempSpec;
  let dataDir: string;
  const ups: NpmStart[] = [];
  const haproxyPids: number[] = [];

  before(async () => {
    requireHaproxy();
    requireTool('swaks', 'swaks');
    spec = await writeTempSpec({}, [{ address: 'alice@example.com', passwordHash: await hashPassword('pw-lifecycle') }]);
    dataDir = join(spec.dir, 'data');
    ups.push(await npmStart(spec.file, dataDir));
    haproxyPids.push(haproxyInfo(dataDir).pid);
  });

  after(() => {
    for (const up of ups) up.kill();
    for (const pid of haproxyPids) if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    spec?.cleanup();
  });

  it('GIVEN up running THEN HAProxy runs in its own process group, so a terminal signal to the group does not reach it', () => {
    const master = haproxyPids[0]!;
    assert.ok(pidAlive(master));
    assert.notEqual(pgid(master), ups[0]!.child.pid, 'haproxy is not in the npm process group');
    assert.equal(ups[0]!.groupPids().includes(master), false);
  });

  it('GIVEN up running WHEN a second npm start uses the same data dir THEN it says in one line that up runs (pid) and exits 1', async () => {
    const second = await npmStartOnce(spec.file, dataDir);
    const line = assertOneLine(second.out);
    assert.match(line, new RegExp(`already running .*pid ${upNodePid(ups[0]!)}\\b`));
    assert.equal(second.code, 1, second.out);
    assert.ok(pidAlive(haproxyPids[0]!), 'the running HAProxy is left alone');
    assert.match(swaks(spec.port('smtp'), 'alice@example.com', 'still up'), /250 2\.0\.0 Ok/);
  });

  it('GIVEN up running WHEN a second npm start uses another data dir on the same ports THEN one line names the port and the pid holding it, exit 1', async () => {
    const second = await npmStartOnce(spec.file, join(spec.dir, 'other-data'));
    const line = assertOneLine(second.out);
    const m = line.match(/port (\d+) .*in use by pid (\d+)/);
    assert.ok(m, line);
    assert.equal(Number(m[2]), upNodePid(ups[0]!), line);
    assert.equal(second.code, 1, second.out);
    assert.ok(pidAlive(haproxyPids[0]!), 'the running HAProxy is left alone');
  });

  it('GIVEN a public port held by another program WHEN npm start runs THEN one line names the port and its pid, and nothing is left running', async () => {
    const other = await writeTempSpec({}, []);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(other.port('imap'), '127.0.0.1', r));
    try {
      const r = await npmStartOnce(other.file, join(other.dir, 'data'));
      const line = assertOneLine(r.out);
      assert.match(line, new RegExp(`port ${other.port('imap')} .*imap listener default-imap.* in use by pid ${process.pid}\\b`));
      assert.equal(r.code, 1, r.out);
      assert.equal(existsSync(join(other.dir, 'data/run/up.pid')), false, 'up.pid released');
      assert.equal(existsSync(join(localHaproxyRunDir(join(other.dir, 'data')), 'haproxy.pid')), false, 'no HAProxy started');
    } finally {
      holder.close();
      other.cleanup();
    }
  });

  it('GIVEN a client in the middle of DATA WHEN Ctrl-C reaches the process group THEN the message is accepted through HAProxy, then everything stops', async () => {
    const up = ups[0]!;
    const c = smtpClient(spec.port('smtp'));
    assert.match(await c.reply(), /^220/);
    c.send('EHLO client.test\r\n');
    assert.match(await c.reply(), /^250/);
    c.send('MAIL FROM:<bob@example.net>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n');
    assert.match(await c.reply(), /^250/);
    assert.match(await c.reply(), /^250/);
    assert.match(await c.reply(), /^354/);
    c.send('Subject: mid-data\r\n\r\nfirst half\r\n');
    await sleep(200);
    process.kill(-up.child.pid!, 'SIGINT');
    await sleep(700);
    c.send('second half\r\n.\r\n');
    const reply = await c.reply();
    assert.match(reply, /^250 /, `the delivery in flight completes:\n${up.output()}`);
    c.socket.destroy();
    const code = await Promise.race([up.exited, sleep(20000).then(() => 'timeout' as const)]);
    // npm itself dies of the terminal's SIGINT once its script ended, so its code says nothing: the output does.
    assert.notEqual(code, 'timeout', up.output());
    assert.match(up.output(), /haproxy and mailfleetd stopped/);
    const end = Date.now() + 10000;
    while (pidAlive(haproxyPids[0]!) && Date.now() < end) await sleep(50);
    assert.equal(pidAlive(haproxyPids[0]!), false, 'haproxy is gone');
    const newDir = join(dataDir, 'mail/example.com/alice/Maildir/new');
    assert.ok(readdirSync(newDir).some((f) => readFileSync(join(newDir, f), 'utf8').includes('second half')));
    assert.equal(existsSync(join(dataDir, 'run/up.pid')), false, 'up.pid removed');
    assert.equal(existsSync(join(localHaproxyRunDir(dataDir), 'haproxy.pid')), false, 'haproxy.pid removed');
  });

  it('GIVEN up running WHEN its process is SIGKILLed THEN its HAProxy stops too (parent-death signal)', async () => {
    const killed = await npmStart(spec.file, dataDir);
    ups.push(killed);
    const master = haproxyInfo(dataDir).pid;
    haproxyPids.push(master);
    process.kill(upNodePid(killed), 'SIGKILL');
    await killed.exited;
    const end = Date.now() + 10000;
    while (pidAlive(master) && Date.now() < end) await sleep(50);
    assert.equal(pidAlive(master), false, 'haproxy does not outlive up');
  });

  it('GIVEN a HAProxy left running on the data dir (haproxy.pid) WHEN npm start runs THEN it stops that HAProxy first and serves', async () => {
    // What a SIGKILLed up leaves where no parent-death signal is set (no setpriv, or an older mailfleet):
    // its HAProxy, still bound to the public ports, named by the pidfile.
    const runDir = localHaproxyRunDir(dataDir);
    const left = spawn('haproxy', ['-W', '-db', '-S', `${join(runDir, 'master.sock')},mode,600`, '-f', join(runDir, 'haproxy.cfg')], {
      detached: true,
      stdio: 'ignore',
    });
    left.unref();
    const stale = left.pid!;
    haproxyPids.push(stale);
    writeFileSync(join(runDir, 'haproxy.pid'), `${stale}\n`);
    const end = Date.now() + 10000;
    while (!(await portTaken(spec.port('smtp'))) && Date.now() < end) await sleep(50);
    assert.ok(await portTaken(spec.port('smtp')), 'precondition: the left-over HAProxy holds the SMTP port');

    const next = await npmStart(spec.file, dataDir);
    ups.push(next);
    const fresh = haproxyInfo(dataDir).pid;
    haproxyPids.push(fresh);
    assert.equal(pidAlive(stale), false, `the stale HAProxy ${stale} is stopped:\n${next.output()}`);
    assert.notEqual(fresh, stale);
    assert.match(next.output(), new RegExp(`stale HAProxy \\(pid ${stale}\\)`));
    assert.match(swaks(spec.port('smtp'), 'alice@example.com', 'after restart'), /250 2\.0\.0 Ok/);
    assert.notEqual(await next.interrupt(), 'timeout');
    assert.equal(pidAlive(fresh), false);
  });
});
