/**
 * bench/hostile: what one hostile IMAP session costs everybody else (issue 16). One in-process daemon;
 * for each expensive command an attacker repeats it for --seconds while another user (bob) sends NOOPs
 * back to back; the same probes first run with no attacker. Prints, per case, event-loop lag p99 / max
 * (perf_hooks.monitorEventLoopDelay, what mailfleetd_event_loop_lag_seconds exports) and bob's NOOP
 * p50 / p99, beside the no-attacker row, then RSS before and after 100 pre-authentication literal
 * attempts (`a LOGIN {50000000+}` followed by 1 MiB). Target: lag p99 < 50 ms.
 *
 *   npx tsx bench/hostile/run.ts [--seconds 3] [--messages 2000] [--big-mib 50] [--label current]
 *
 * Merges the run under --label into bench/results/hostile.json.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { maildirPath } from '../../lib/store/maildir/paths.js';
import { configFor, RawClient, startInProcess, tempDir } from '../../test/ops/fixture.js';
import { imapCmd, imapLogin } from '../../test/faults/fleet-client.js';
import { hostileMessages } from '../../test/faults/hostile-messages.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    messages: { type: 'string', default: '2000' },
    'big-mib': { type: 'string', default: '50' },
    label: { type: 'string', default: 'current' },
  },
});
const SECONDS = Number(values.seconds);
const MESSAGES = Number(values.messages);
const BIG = Math.min(Number(values['big-mib']) * 1024 * 1024, 52_000_000); // under imap.maxLiteralBytes

/** An IMAP session that keeps no lines: it only spots its tagged replies. */
class Attacker {
  private tail = '';
  private waiter?: { tag: string; resolve: (line: string) => void };
  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      const s = this.tail + d.toString('latin1');
      let i = 0;
      for (let nl = s.indexOf('\n'); nl >= 0; nl = s.indexOf('\n', i)) {
        const w = this.waiter;
        if (w && s.startsWith(`${w.tag} `, i)) {
          this.waiter = undefined;
          w.resolve(s.slice(i, Math.min(nl, i + 200)).trim());
        }
        i = nl + 1;
      }
      this.tail = s.slice(i, i + 200);
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, user: string): Promise<Attacker> {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise((r) => s.once('connect', r));
    const a = new Attacker(s);
    await a.run('x0', `LOGIN ${user} password`);
    await a.run('x1', 'SELECT INBOX');
    return a;
  }

  run(tag: string, cmd: string, literal?: Buffer): Promise<string> {
    return new Promise((resolve) => {
      this.waiter = { tag, resolve };
      if (literal) {
        this.socket.write(`${tag} ${cmd} {${literal.length}+}\r\n`);
        this.socket.write(literal);
        this.socket.write('\r\n');
      } else this.socket.write(`${tag} ${cmd}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Row {
  readonly case: string;
  readonly lagP99Ms: number;
  readonly lagMaxMs: number;
  readonly noopP50Ms: number;
  readonly noopP99Ms: number;
  readonly noops: number;
  readonly attacks: number;
  readonly reply: string;
}

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? 0;

async function main(): Promise<void> {
  const t = await tempDir('mf-bench-hostile-');
  const d = await startInProcess(t.dir, configFor({ imap: { allowInsecureAuth: true, authFailureDelayMs: 10 } }));
  try {
    const port = d.port('imap');
    const m = hostileMessages();
    // alice: --messages small messages (dropped into new/ as a delivery would), the poison messages, one big one.
    const newDir = join(maildirPath(join(t.dir, 'mail'), 'alice@example.com'), 'new');
    mkdirSync(newDir, { recursive: true });
    for (let i = 0; i < MESSAGES; i++) writeFileSync(join(newDir, `1700000000.M${i}P1Q${i}.bench`), `Subject: m${i}\r\nX-Tag: t${i % 7}\r\n\r\nbody ${i}\r\n`);
    const setup = await imapLogin(port, 'alice@example.com');
    await imapCmd(setup, `CREATE ${'a'.repeat(150)}`);
    for (const msg of [m.manyParts, m.hugeHeader, m.large(BIG)]) {
      const from = setup.lines.length;
      setup.socket.write(`ap APPEND INBOX {${msg.length}+}\r\n`);
      setup.socket.write(msg);
      setup.socket.write('\r\n');
      await setup.waitFor(/^ap /, 120_000, from);
    }
    const count = (await imapCmd(setup, 'SELECT INBOX', 60_000)).lines.find((l) => / EXISTS$/.test(l));
    setup.close();
    const n = Number(/\* (\d+) EXISTS/.exec(count ?? '')?.[1] ?? 0);
    const peer = await imapLogin(port, 'bob@example.com');
    await imapCmd(peer, 'SELECT INBOX');

    const measure = async (name: string, attack?: { cmd: string; literal?: Buffer }): Promise<Row> => {
      const a = attack ? await Attacker.open(port, 'alice@example.com') : undefined;
      const h = monitorEventLoopDelay({ resolution: 10 });
      let done = false;
      let attacks = 0;
      let reply = '';
      const attacking = (async () => {
        while (a && !done) {
          reply = await a.run(`h${attacks++}`, attack!.cmd, attack!.literal);
        }
      })();
      h.enable();
      const noops: number[] = [];
      const end = Date.now() + SECONDS * 1000;
      while (Date.now() < end || (a && attacks === 0)) {
        const s = performance.now();
        await imapCmd(peer, 'NOOP', 120_000);
        noops.push(performance.now() - s);
      }
      done = true;
      h.disable();
      await attacking;
      a?.close();
      const lag = (v: number) => Math.max(0, v / 1e6 - 10); // the histogram counts the 10 ms timer period
      return { case: name, lagP99Ms: lag(h.percentile(99)), lagMaxMs: lag(h.max), noopP50Ms: pct(noops, 0.5), noopP99Ms: pct(noops, 0.99), noops: noops.length, attacks, reply };
    };

    const under = Array.from({ length: 9_999 }, (_, i) => String(i * 2 + 1)).join(',');
    const cases: Array<[string, { cmd: string; literal?: Buffer }]> = [
      ['LIST "" "%*%*%*x" (150-char folder)', { cmd: 'LIST "" "%*%*%*x"' }],
      ['LSUB "" "%*" x 2000 + "x"', { cmd: `LSUB "" "${'%*'.repeat(2000)}x"` }],
      ['SEARCH NOT x 30 ALL', { cmd: `SEARCH ${'NOT '.repeat(30)}ALL` }],
      ['SEARCH 999 HEADER keys', { cmd: `SEARCH ${Array.from({ length: 999 }, () => 'HEADER X-Tag t').join(' ')}` }],
      ['UID FETCH 9,999 ranges FLAGS', { cmd: `UID FETCH ${under} (FLAGS)` }],
      ['UID SEARCH UID 9,999 ranges', { cmd: `UID SEARCH UID ${under}` }],
      ['FETCH 5,000-part msg BODYSTRUCTURE BODY[1.2]', { cmd: `FETCH ${n - 2} (BODYSTRUCTURE BODY.PEEK[1.2])` }],
      ['FETCH 1.2 MiB-header msg ENVELOPE BODY[HEADER]', { cmd: `FETCH ${n - 1} (ENVELOPE BODY.PEEK[HEADER])` }],
      [`FETCH BODY[] of ${(BIG / 2 ** 20).toFixed(0)} MiB`, { cmd: `FETCH ${n} (BODY.PEEK[])` }],
      [`APPEND ${(BIG / 2 ** 20).toFixed(0)} MiB`, { cmd: 'APPEND Trash', literal: m.large(BIG) }],
    ];
    const rows: Row[] = [await measure('no attacker')];
    await imapCmd(peer, 'NOOP');
    const c = await imapLogin(port, 'alice@example.com');
    await imapCmd(c, 'CREATE Trash');
    c.close();
    for (const [name, attack] of cases) rows.push(await measure(name, attack));

    console.log(`\nbench/hostile: ${MESSAGES} messages in the attacker's INBOX, ${SECONDS} s per case; bob NOOPs back to back\n`);
    console.log('case'.padEnd(48), 'lag p99', ' lag max', 'NOOP p50', 'NOOP p99', ' noops', 'attacks', 'reply');
    for (const r of rows) {
      console.log(
        r.case.padEnd(48),
        `${r.lagP99Ms.toFixed(1)}`.padStart(7),
        `${r.lagMaxMs.toFixed(1)}`.padStart(8),
        `${r.noopP50Ms.toFixed(1)}`.padStart(8),
        `${r.noopP99Ms.toFixed(1)}`.padStart(8),
        `${r.noops}`.padStart(6),
        `${r.attacks}`.padStart(7),
        r.reply.slice(0, 40),
      );
    }

    // 100 pre-auth literal attempts, 50 at a time, each announcing 50 MB and sending 1 MiB of it.
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    for (let batch = 0; batch < 2; batch++) {
      const clients: RawClient[] = [];
      for (let i = 0; i < 50; i++) {
        const x = await RawClient.open(port);
        await x.waitFor(/^\* OK/);
        x.socket.write(`p${i} LOGIN {50000000+}\r\n`);
        x.socket.write(chunk);
        clients.push(x);
      }
      await Promise.all(clients.map((x) => x.waitFor(/^\* BYE/, 10_000).catch(() => '')));
      await new Promise((r) => setTimeout(r, 300));
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      for (const x of clients) x.close();
    }
    await new Promise((r) => setTimeout(r, 1000));
    global.gc?.();
    const rssAfter = process.memoryUsage().rss;
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    console.log(`\nRSS around 100 pre-auth literal attempts: before ${mib(rssBefore)} MiB, peak ${mib(rssPeak)} MiB, after ${mib(rssAfter)} MiB`);
    peer.close();

    const file = 'bench/results/hostile.json';
    const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
    all[values.label!] = { date: new Date().toISOString(), seconds: SECONDS, messages: MESSAGES, bigBytes: BIG, rows, rss: { before: rssBefore, peak: rssPeak, after: rssAfter } };
    writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
  } finally {
    await d.stop();
    await t.cleanup();
  }
}

await main();
