/**
 * Issue 23, the L7 edge in the HAProxy tier, through a real HAProxy rendered from the plan in front of a
 * real mailfleetd: an SMTP client that talks before the greeting is answered 554 by HAProxy and never
 * reaches a daemon; `mailfleet edge block <cidr>` (the real CLI) refuses that network within a second,
 * `unblock` and the allow list let it back; a per-source connection-rate limit holds under a burst while
 * another source is served. Clients pick their loopback source address (127.0.0.x) to be told apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { greet } from './greeter.js';
import { requireHaproxy } from './harness.js';
import { startProxiedDaemon, type ProxiedDaemon } from './proxied-daemon.js';
import { renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { HaproxyRuntime } from '../../lib/haproxy/runtime.js';
import { buildPlan } from '../../lib/plan/index.js';
import { parseSpec } from '../../lib/spec/index.js';

const PAUSE_MS = 700;
const IMAP_RATE = 4;

/**
 * The real CLI as its own process. Asynchronous on purpose: the daemon runs in this process, and a
 * spawnSync would stall it long enough for HAProxy's health checks to mark it down.
 */
function cli(p: ProxiedDaemon, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const by = args[0] === 'list' ? [] : ['--by', 'edge-test'];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'edge', ...args, '-c', p.spec.file, '--data-dir', join(p.spec.dir, 'var'), ...by], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Connects, writes `first` at once, and returns the first line the server sends (or '' / RESET). */
function talkFirst(port: number, first: string, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    {
      const s = createConnection({ host: '127.0.0.1', port, localAddress }, () => s.write(first));
      let buf = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error('no answer within 10 s'));
      }, 10_000);
      s.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        const i = buf.indexOf('\r\n');
        if (i >= 0) {
          clearTimeout(timer);
          s.destroy();
          resolve(buf.slice(0, i));
        }
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(timer);
        resolve(buf);
      });
    }
  });
}

describe('the L7 edge in the HAProxy tier', { timeout: 180_000 }, () => {
  let p: ProxiedDaemon;
  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon({ edge: { smtpGreetPauseMs: PAUSE_MS, connectionRatePerSource: { imap: IMAP_RATE } } });
  });
  after(async () => {
    await p?.stop();
  });
  /** Connections HAProxy opened to the daemon for MX (the server row: the backend row also counts applet streams). */
  const reachedDaemon = async () => {
    const fe = p.haproxy.layout.frontends.find((f) => f.listener.service === 'smtp' && f.bindPort === p.spec.port('smtp'))!;
    const rows = await new HaproxyRuntime(p.haproxy.info.adminSocket).showStat();
    return Number(rows.find((r) => r.pxname === fe.backend && r.svname === 'mailfleetd')?.stot ?? NaN);
  };

  it('GIVEN edge.smtpGreetPauseMs WHEN a client sends EHLO before the greeting THEN HAProxy answers 554 5.5.1 and the daemon never sees it', async () => {
    const before = await reachedDaemon();
    const line = await talkFirst(p.spec.port('smtp'), 'EHLO early.example\r\n');
    assert.match(line, /^554 5\.5\.1 mail\.test Protocol error: you talked before the greeting$/);
    assert.equal(await reachedDaemon(), before, 'the early talker reached the daemon');
  });

  it('GIVEN the same pause WHEN a client waits for the greeting THEN it gets the daemon\'s 220 after the pause', async () => {
    const before = await reachedDaemon();
    const t0 = performance.now();
    const g = await greet(p.spec.port('smtp'));
    const waited = performance.now() - t0;
    g.socket.destroy();
    assert.match(g.line, /^220 /);
    assert.equal(await reachedDaemon(), before + 1);
    assert.ok(waited >= PAUSE_MS - 50, `greeted after ${waited.toFixed(0)} ms, pause ${PAUSE_MS} ms`);
  });

  it('GIVEN the pause applies to MX only WHEN a submission client connects THEN it is greeted at once', async () => {
    const t0 = performance.now();
    const g = await greet(p.spec.port('submission'));
    g.socket.destroy();
    assert.match(g.line, /^220 /);
    assert.ok(performance.now() - t0 < PAUSE_MS, 'submission waited for the MX pause');
  });

  it('GIVEN mailfleet edge block 127.0.0.2 WHEN that source connects within a second THEN it is closed before any byte, while 127.0.0.1 is served; unblock lets it back', async () => {
    assert.match((await greet(p.spec.port('imap'), { localAddress: '127.0.0.2' })).line, /^\* OK/);
    const r = await cli(p, 'block', '127.0.0.2/32');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /deny 127\.0\.0\.2\/32: added, live on the running HAProxy/);
    const t0 = performance.now();
    const blocked = await greet(p.spec.port('imap'), { localAddress: '127.0.0.2' });
    blocked.socket.destroy();
    assert.ok(performance.now() - t0 < 1000);
    assert.ok(blocked.line === '' || blocked.line === 'RESET', `blocked source got "${blocked.line}"`);
    const other = await greet(p.spec.port('imap'), { localAddress: '127.0.0.1' });
    other.socket.destroy();
    assert.match(other.line, /^\* OK/);

    const listed = await cli(p, 'list', '--json');
    assert.equal(listed.status, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { list: string; network: string; source: string; setAt?: string; setBy?: string; active?: boolean }[];
    const row = rows.find((x) => x.network === '127.0.0.2/32');
    assert.deepEqual({ ...row, setAt: undefined }, { list: 'deny', network: '127.0.0.2/32', source: 'live', setAt: undefined, setBy: 'edge-test', active: true });

    const u = await cli(p, 'unblock', '127.0.0.2/32');
    assert.equal(u.status, 0, u.stderr);
    const back = await greet(p.spec.port('imap'), { localAddress: '127.0.0.2' });
    back.socket.destroy();
    assert.match(back.line, /^\* OK/);
  });

  it('GIVEN a bad network WHEN edge block runs THEN it exits 2 naming the input', async () => {
    const r = await cli(p, 'block', '300.1.2.3/8');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /"300\.1\.2\.3\/8" is not an address or CIDR/);
  });

  it(`GIVEN imap at ${IMAP_RATE} new connections per 10 s per source WHEN one source bursts THEN the ones past the rate get * BYE [UNAVAILABLE], another source is served, and an allowed source is exempt`, async () => {
    const lines: string[] = [];
    for (let i = 0; i < IMAP_RATE + 3; i++) {
      const g = await greet(p.spec.port('imap'), { localAddress: '127.0.0.3' });
      g.socket.destroy();
      lines.push(g.line);
    }
    assert.equal(lines.filter((l) => l.startsWith('* OK')).length, IMAP_RATE, lines.join(' | '));
    assert.deepEqual(lines.slice(IMAP_RATE).map((l) => l.replace(/,.*/, '')), Array(3).fill('* BYE [UNAVAILABLE] Too many connections from your address'));
    const other = await greet(p.spec.port('imap'), { localAddress: '127.0.0.4' });
    other.socket.destroy();
    assert.match(other.line, /^\* OK/);
    const a = await cli(p, 'allow', '127.0.0.3');
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stdout, /allow 127\.0\.0\.3: added, live on the running HAProxy/);
    const exempt = await greet(p.spec.port('imap'), { localAddress: '127.0.0.3' });
    exempt.socket.destroy();
    assert.match(exempt.line, /^\* OK/);
  });
});

describe('edge rendering', () => {
  const spec = (edge: Record<string, unknown>) =>
    parseSpec(JSON.stringify({ version: 1, platform: { name: 'edgetest' }, domains: [{ name: 'example.com' }], edge }), 'edge.yaml');

  it('GIVEN the default spec WHEN rendered THEN no frontend waits (no inspect-delay) and none rate-limits, but every frontend reads the deny list', () => {
    const cfg = renderHaproxyConfig(buildPlan(spec({})), { target: 'cloud' });
    assert.doesNotMatch(cfg, /inspect-delay|sc0_conn_rate/);
    const frontends = cfg.split('\nfrontend ').slice(1).filter((f) => !f.startsWith('health') && !f.startsWith('busy') && !f.startsWith('metrics'));
    assert.ok(frontends.length > 0);
    for (const f of frontends) assert.match(f, /tcp-request session reject if \{ src -f \/etc\/haproxy\/mailfleet-deny\.acl \} !\{ src -f \/etc\/haproxy\/mailfleet-allow\.acl \}/);
  });

  it('GIVEN a greet pause WHEN rendered THEN only the MX (smtp) frontends wait, and after the admitted-connection tracking', () => {
    const cfg = renderHaproxyConfig(buildPlan(spec({ smtpGreetPauseMs: 1500 })), { target: 'cloud' });
    const blocks = cfg.split('\nfrontend ').slice(1);
    const waiting = blocks.filter((b) => b.includes('inspect-delay'));
    assert.ok(waiting.length > 0);
    for (const b of waiting) {
      assert.match(b, /# tenant .*, smtp /);
      assert.ok(b.indexOf('track-sc1') < b.indexOf('inspect-delay 1500ms'), b);
    }
  });

  it('GIVEN an invalid network in the spec WHEN parsed THEN the error names the field', () => {
    assert.throws(() => spec({ deny: ['10.0.0.0/33'] }), /edge\.deny\[0\]: expected an address or CIDR.*got "10\.0\.0\.0\/33"/);
  });
});
