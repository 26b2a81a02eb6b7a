/**
 * A logged-in (or not yet logged-in) IMAP client trying to freeze or bloat the one event loop every
 * session shares (issue 16): backtracking LIST patterns, poison messages (5,000 MIME parts, a header over
 * 1 MiB), deep and wide SEARCH, huge sequence sets, big literals before login, large BODY[] and APPEND.
 * Each case checks the reply, and the costly ones that another user's NOOP and /healthz answer within
 * 100 ms while they run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { configFor, metricsText, RawClient, startInProcess, tempDir, type TestDaemon } from '../ops/fixture.js';
import { imapCmd, imapLogin } from './fleet-client.js';
import { ImapParser } from '../../lib/daemon/imap/parser.js';
import { LiteralBudget } from '../../lib/daemon/imap/literal-budget.js';
import { imapWorkLimits } from '../../lib/daemon/imap/work-limits.js';
import { DEFAULT_IMAP_WORK_LIMITS } from '../../lib/spec/defaults.js';
import { hostileMessages } from './hostile-messages.js';
import { maildirPath } from '../../lib/store/maildir/paths.js';

/** A client that keeps no lines: it only finds its tagged reply (a 20 MB BODY[] costs the test nothing). */
class SinkClient {
  private tail = '';
  private waiters: Array<() => void> = [];
  readonly tagged = new Map<string, string>();
  closed = false;
  received = 0;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.received += d.length;
      // Scan only line starts near chunk edges: keep the last partial line (bounded) for the next chunk.
      const s = this.tail + d.toString('latin1');
      let i = 0;
      for (;;) {
        const nl = s.indexOf('\n', i);
        if (nl < 0) break;
        const line = s.slice(i, Math.min(nl, i + 200));
        const m = /^(h\d+) (OK|NO|BAD)/.exec(line);
        if (m) this.tagged.set(m[1]!, line.replace(/\r$/, ''));
        i = nl + 1;
      }
      this.tail = s.slice(i, i + 200);
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
  }

  static async login(port: number, user: string): Promise<SinkClient> {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => s.once('connect', r));
    const c = new SinkClient(s);
    c.socket.write(`h0 LOGIN ${user} password\r\nh00 SELECT INBOX\r\n`);
    await c.reply('h00', 10_000);
    return c;
  }

  async reply(tag: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.tagged.has(tag)) {
      if (this.closed || Date.now() > deadline) throw new Error(`no reply to ${tag} (closed=${this.closed})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100).unref();
      });
    }
    return this.tagged.get(tag)!;
  }
}

let hostileTag = 0;

describe('hostile IMAP sessions: no freeze, no bloat, no poison', { timeout: 240_000 }, () => {
  let d: TestDaemon;
  let dir: string;
  let cleanup: () => Promise<void>;
  let peer: RawClient;

  before(async () => {
    const t = await tempDir('mf-hostile-imap-');
    dir = t.dir;
    cleanup = t.cleanup;
    d = await startInProcess(dir, configFor({ imap: { allowInsecureAuth: true, authFailureDelayMs: 10, keepaliveSeconds: 1 } }));
    // bob is the bystander whose NOOPs must keep answering.
    peer = await imapLogin(d.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(peer, 'SELECT INBOX')).status, /^OK/);
    baseline = await probeWhile(new Promise((r) => setTimeout(r, 1500)));
  });

  after(async () => {
    peer?.close();
    await d?.stop();
    await cleanup?.();
  });

  interface Probe {
    /** Another user's NOOP round trips and /healthz requests, in ms. */
    readonly noop: number[];
    readonly health: number[];
  }

  /** Polls bob's NOOP and /healthz until `until` settles. */
  async function probeWhile<T>(until: Promise<T>): Promise<Probe & { result: T }> {
    let done = false;
    const noop: number[] = [];
    const health: number[] = [];
    const settled = until.finally(() => (done = true));
    while (!done) {
      let t = performance.now();
      assert.match((await imapCmd(peer, 'NOOP', 20_000)).status, /^OK/);
      noop.push(performance.now() - t);
      t = performance.now();
      await (await fetch(`${d.adminUrl}/healthz`)).text();
      health.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
    return { noop, health, result: await settled };
  }

  let baseline: Probe;
  const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? 0;
  const p50 = (xs: number[]) => pct(xs, 0.5);
  const p90 = (xs: number[]) => pct(xs, 0.9);

  /**
   * Runs `cmd` in a hostile session, again and again for at least a second (so the probes see a steady
   * attacker, not one short burst), while bob NOOPs and /healthz is polled. With a literal it runs once.
   */
  async function whileHostile(user: string, cmd: string, literal?: Buffer): Promise<Probe & { reply: string }> {
    const h = await SinkClient.login(d.port('imap'), user);
    const attack = async (): Promise<string> => {
      const started = Date.now();
      for (;;) {
        const tag = `h${++hostileTag}`;
        if (literal) {
          h.socket.write(`${tag} ${cmd} {${literal.length}+}\r\n`);
          h.socket.write(literal);
          h.socket.write('\r\n');
        } else {
          h.socket.write(`${tag} ${cmd}\r\n`);
        }
        const reply = await h.reply(tag, 120_000);
        if (literal || !/ OK /.test(reply) || Date.now() - started > 1000) return reply;
      }
    };
    try {
      const r = await probeWhile(attack());
      return { ...r, reply: r.result };
    } finally {
      h.socket.destroy();
    }
  }

  /**
   * 100 ms as the issue asks, for the median probe; on a host loaded beyond that the bar is three times
   * what the same probes took with no attacker (measured first, in the same run). No probe may wait a
   * second (the old LIST froze everything for minutes).
   */
  function assertResponsive(what: string, r: Probe): void {
    const bar = (xs: number[]) => Math.max(100, 3 * p50(xs));
    const fig = (xs: number[], base: number[]) => `p50 ${p50(xs).toFixed(1)} / p90 ${p90(xs).toFixed(1)} / max ${Math.max(...xs).toFixed(1)} ms (no attacker p50 ${p50(base).toFixed(1)})`;
    const msg = `${what}: peer NOOP ${fig(r.noop, baseline.noop)}, /healthz ${fig(r.health, baseline.health)} over ${r.noop.length} probes`;
    assert.ok(p50(r.noop) < bar(baseline.noop) && p50(r.health) < bar(baseline.health), msg);
    assert.ok(Math.max(...r.noop, ...r.health) < 1000, msg);
  }

  it('LIST and LSUB with "%*%*%*x" against a long folder name answer at once and freeze nobody', async () => {
    const c = await imapLogin(d.port('imap'), 'alice@example.com');
    assert.match((await imapCmd(c, `CREATE ${'a'.repeat(150)}`)).status, /^OK/);
    c.close();
    for (const cmd of ['LIST "" "%*%*%*x"', `LIST "" "${'%*'.repeat(2000)}x"`, 'LSUB "" "%*%*%*%*%*x"', 'LIST "" "*%*%a*"']) {
      const t = performance.now();
      const r = await whileHostile('alice@example.com', cmd);
      assert.match(r.reply, / OK /, `${cmd}: ${r.reply}`);
      assert.ok(performance.now() - t < 5000, `${cmd} took ${performance.now() - t} ms`);
      assertResponsive(cmd, r);
    }
  });

  it('poison messages (5,000 MIME parts; a 1.2 MiB header) get a flattened BODYSTRUCTURE and never fail FETCH or SEARCH of the mailbox', async () => {
    const c = await imapLogin(d.port('imap'), 'carol@example.org');
    const m = hostileMessages();
    for (const msg of [m.normal, m.manyParts, m.hugeHeader, m.normal]) {
      const from = c.lines.length;
      c.socket.write(`p1 APPEND INBOX {${msg.length}+}\r\n`);
      c.socket.write(msg);
      c.socket.write('\r\n');
      assert.match(await c.waitFor(/^p1 /, 30_000, from), /^p1 OK/);
    }
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    const bs = await imapCmd(c, 'FETCH 1:* (UID FLAGS BODYSTRUCTURE)', 30_000);
    assert.match(bs.status, /^OK/, bs.status);
    const lines = bs.lines.filter((l) => /^\* \d+ FETCH/.test(l));
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /BODYSTRUCTURE \("text" "plain"/);
    // Over the limits: one application/octet-stream part (the body still holds its boundaries).
    assert.match(lines[1]!, /BODYSTRUCTURE \("application" "octet-stream" NIL NIL NIL "7bit" \d+/);
    assert.match(lines[2]!, /BODYSTRUCTURE \("text" "plain"/);
    const env = await imapCmd(c, 'FETCH 1:* ENVELOPE', 30_000);
    assert.match(env.status, /^OK/, env.status);
    const envLines = env.lines.filter((l) => /^\* \d+ FETCH/.test(l));
    assert.match(envLines[1]!, /"five thousand parts"/);
    assert.match(envLines[2]!, /"huge header"/);
    for (const q of ['SEARCH SUBJECT huge', 'SEARCH HEADER X-Junk zzz', 'SEARCH HEADER X-Nothing x', 'SEARCH OR SUBJECT parts BODY nowhere']) {
      const s = await imapCmd(c, q, 30_000);
      assert.match(s.status, /^OK/, `${q}: ${s.status}`);
    }
    assert.deepEqual((await imapCmd(c, 'SEARCH SUBJECT huge')).lines, ['* SEARCH 3']);
    // BODY[1] of the flattened message is its whole body, as for any single-part message.
    const part = await imapCmd(c, 'FETCH 2 (BODY.PEEK[1]<0.20>)');
    assert.match(part.status, /^OK/);
    c.close();
    const r = await whileHostile('carol@example.org', 'FETCH 1:* (BODYSTRUCTURE ENVELOPE BODY.PEEK[1.2] BODY.PEEK[HEADER])');
    assert.match(r.reply, / OK /);
    assertResponsive('FETCH of the poison messages', r);
  });

  it('SEARCH and sequence sets over the limits get NO [LIMIT]; just under them the work does not block others', async () => {
    // 200 messages in alice's INBOX, dropped into new/ as a delivery would.
    const newDir = join(maildirPath(join(dir, 'mail'), 'alice@example.com'), 'new');
    mkdirSync(newDir, { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(newDir, `1700000000.M${i}P1Q${i}.test`), `Subject: m${i}\r\nX-Tag: t${i % 7}\r\n\r\nbody ${i}\r\n`);
    const c = await imapLogin(d.port('imap'), 'alice@example.com');
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    const manyKeys = Array.from({ length: 1001 }, () => 'ALL').join(' ');
    assert.match((await imapCmd(c, `SEARCH ${manyKeys}`)).status, /^NO \[LIMIT\]/);
    assert.match((await imapCmd(c, `SEARCH ${'NOT '.repeat(40)}ALL`)).status, /^NO \[LIMIT\]/);
    const ranges = Array.from({ length: 10_001 }, (_, i) => String(i * 2 + 1)).join(',');
    assert.match((await imapCmd(c, `UID FETCH ${ranges} FLAGS`)).status, /^NO \[LIMIT\]/);
    assert.match((await imapCmd(c, 'NOOP')).status, /^OK/, 'the session goes on');
    c.close();
    // 999 header keys that every message passes (all are evaluated), 9,999 ranges: just under the limits.
    const wide = Array.from({ length: 999 }, () => 'HEADER X-Tag t').join(' ');
    const under = Array.from({ length: 9_999 }, (_, i) => String(i * 2 + 1)).join(',');
    for (const cmd of [`SEARCH ${'NOT '.repeat(30)}ALL`, `SEARCH ${wide}`, `UID FETCH ${under} (FLAGS)`, `UID SEARCH UID ${under}`, 'FETCH 1:* (BODY.PEEK[TEXT] ENVELOPE)']) {
      const r = await whileHostile('alice@example.com', cmd);
      assert.match(r.reply, / (OK|NO) /, `${cmd.slice(0, 60)}: ${r.reply}`);
      assertResponsive(cmd.slice(0, 60), r);
    }
  });

  it('before login a literal over 8 KiB is refused unread: NO [TOOBIG] for {n}, BAD and BYE for {n+}; RSS does not grow with 100 attempts', async () => {
    const c = await RawClient.open(d.port('imap'));
    await c.waitFor(/^\* OK/);
    assert.match(await c.send('s1 LOGIN {9000}', /^s1 /), /^s1 NO \[TOOBIG\]/);
    assert.ok(!c.lines.some((l) => l.startsWith('+')), 'no continuation invited');
    assert.match(await c.send('s2 LOGIN {17}', /^(\+|s2 )/), /^\+/, 'a small literal is still invited');
    assert.match(await c.send('alice@example.com {8}', /^(\+|s2 )/), /^\+/);
    assert.match(await c.send('password', /^s2 /), /^s2 OK/);
    // Logged in: the 50 MiB APPEND limit applies again.
    assert.match(await c.send('s3 APPEND INBOX {9000}', /^(\+|s3 )/), /^\+/);
    c.socket.write(Buffer.alloc(9000, 0x61));
    assert.match(await c.send('', /^s3 /), /^s3 OK/);
    c.close();

    // 100 attempts, 50 open at a time (the per-IP cap is 100), each sending 1 MiB of its 50 MB literal.
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    for (let batch = 0; batch < 2; batch++) {
      const clients: RawClient[] = [];
      for (let i = 0; i < 50; i++) {
        const x = await RawClient.open(d.port('imap'));
        await x.waitFor(/^\* OK/);
        x.socket.write(`x${i} LOGIN {50000000+}\r\n`);
        x.socket.write(chunk);
        clients.push(x);
      }
      // While they are open, the daemon holds none of it: it answered without reading.
      await Promise.all(clients.map((x) => x.waitFor(/^\* BYE/, 10_000)));
      await new Promise((r) => setTimeout(r, 300));
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      for (const x of clients) {
        assert.ok(x.lines.some((l) => /^x\d+ BAD \[TOOBIG\]/.test(l)), JSON.stringify(x.lines));
        x.close();
      }
    }
    assert.ok(rssPeak - rssBefore < 40 * 1024 * 1024, `RSS grew ${((rssPeak - rssBefore) / 2 ** 20).toFixed(0)} MiB over 100 pre-auth literal attempts`);
  });

  it('a process-wide literal budget refuses a literal it cannot hold with LIMIT, and frees it once the command ran', () => {
    const budget = new LiteralBudget(100);
    const a = new ImapParser({ maxLineLengthBytes: 1000, maxLiteralBytes: 1000, budget });
    const b = new ImapParser({ maxLineLengthBytes: 1000, maxLiteralBytes: 1000, budget });
    a.push(Buffer.from('a1 APPEND INBOX {80}\r\n'));
    assert.equal(a.read()?.kind, 'continue');
    b.push(Buffer.from('b1 APPEND INBOX {30}\r\n'));
    assert.deepEqual(b.read(), { kind: 'error', tag: 'b1', text: 'Server is out of memory for literals, try again later', code: 'LIMIT' });
    a.push(Buffer.concat([Buffer.alloc(80, 0x61), Buffer.from('\r\n')]));
    assert.equal(a.read()?.kind, 'command');
    assert.equal(budget.usedBytes, 80, 'held while the command runs');
    a.releaseCommands();
    assert.equal(budget.usedBytes, 0);
    b.push(Buffer.from('b2 APPEND INBOX {30}\r\n'));
    assert.equal(b.read()?.kind, 'continue');
    b.dispose();
    assert.equal(budget.usedBytes, 0, 'a closed session returns its reservation');
  });

  it('a daemon config rendered before these options existed keeps the documented limits, not none', () => {
    assert.deepEqual(imapWorkLimits({}), DEFAULT_IMAP_WORK_LIMITS);
    assert.equal(imapWorkLimits({ maxSearchKeys: 5 }).maxSearchKeys, 5);
  });

  it('BODY[] of a 20 MiB message and a 20 MiB APPEND leave NOOP and /healthz answering', async () => {
    const big = hostileMessages().large(20 * 1024 * 1024);
    const up = await whileHostile('alice@example.com', 'APPEND INBOX', big);
    assert.match(up.reply, / OK /, up.reply);
    assertResponsive('APPEND of 20 MiB', up);
    const down = await whileHostile('alice@example.com', 'FETCH * (BODY.PEEK[])');
    assert.match(down.reply, / OK /, down.reply);
    assertResponsive('BODY[] of 20 MiB', down);
  });

  it('IDLE sends "* OK Still here" every imap.keepaliveSeconds', async () => {
    const c = await imapLogin(d.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    const from = c.lines.length;
    c.socket.write('i1 IDLE\r\n');
    await c.waitFor(/^\+ idling/, 5000, from);
    const t = Date.now();
    await c.waitFor(/^\* OK Still here/, 3000, from);
    await c.waitFor(/^\* OK Still here/, 3000, c.lines.length);
    assert.ok(Date.now() - t >= 1500, 'two keepalives take about two periods');
    assert.match(await c.send('DONE', /^i1 /), /^i1 OK/);
    c.close();
  });

  it('event-loop lag is a metric', async () => {
    const text = await metricsText(d.adminUrl);
    assert.match(text, /^mailfleetd_event_loop_lag_seconds\{quantile="0\.99"\} [\d.e-]+$/m);
    assert.match(text, /^mailfleetd_event_loop_lag_seconds\{quantile="max"\} [\d.e-]+$/m);
  });
});
