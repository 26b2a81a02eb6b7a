/**
 * What the HAProxy hop costs, in one run against one mailfleetd (local-behind-proxy mode):
 *   haproxy   client → HAProxy frontend (rendered from the plan) → PROXY v2 → mailfleetd
 *   direct    client → mailfleetd's internal port, the client writing the PROXY v2 header itself
 *             (same daemon code path, without the hop)
 * Figures: connect + greeting latency (p50/p99, sequential connections) and SMTP messages/s (concurrent
 * sessions, one message per MAIL/RCPT/DATA round, no pipelining), and haproxy/direct ratios.
 * Usage: npx tsx bench/proxy/run.ts [--greetings 400] [--seconds 4] [--sessions 8] [--size 2048]
 * Writes bench/results/proxy.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writePlot } from '../lib/plot.js';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { startProxiedDaemon } from '../../test/haproxy/proxied-daemon.js';
import { INTERNAL_OFFSET } from '../../test/haproxy/harness.js';

const { values } = parseArgs({
  options: {
    greetings: { type: 'string', default: '400' },
    seconds: { type: 'string', default: '4' },
    sessions: { type: 'string', default: '8' },
    size: { type: 'string', default: '2048' },
  },
});
const GREETINGS = Number(values.greetings);
const SECONDS = Number(values.seconds);
const SESSIONS = Number(values.sessions);
const SIZE = Number(values.size);

/** Reads SMTP replies (multi-line aware) off a socket. */
class Replies {
  private buf = '';
  private waiting?: (reply: string) => void;
  private readonly ready: string[] = [];
  constructor(sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      let start = 0;
      while ((i = this.buf.indexOf('\r\n', start)) >= 0) {
        const line = this.buf.slice(start, i);
        start = i + 2;
        if (line[3] !== '-') {
          this.ready.push(this.buf.slice(0, i));
          this.buf = this.buf.slice(start);
          start = 0;
        }
      }
      this.flush();
    });
  }
  private flush() {
    if (this.waiting && this.ready.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.ready.shift()!);
    }
  }
  next(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.flush();
    });
  }
}

interface Target {
  readonly name: 'haproxy' | 'direct';
  readonly port: number;
  /** PROXY v2 header the client writes first (direct only), for a given client port. */
  readonly header?: (clientPort: number) => Buffer;
}

function connect(t: Target): Promise<{ sock: Socket; replies: Replies }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port: t.port });
    sock.setNoDelay(true);
    const replies = new Replies(sock);
    sock.once('error', reject);
    sock.once('connect', () => {
      if (t.header) sock.write(t.header(sock.localPort!));
      resolve({ sock, replies });
    });
  });
}

async function greetingLatency(t: Target, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const { sock, replies } = await connect(t);
    const g = await replies.next();
    out.push(performance.now() - t0);
    if (!g.startsWith('220')) throw new Error(`${t.name}: unexpected greeting ${g}`);
    sock.end('QUIT\r\n');
    sock.destroy();
  }
  return out;
}

async function expect(replies: Replies, sock: Socket, line: string | undefined, code: string): Promise<void> {
  if (line !== undefined) sock.write(line);
  const r = await replies.next();
  if (!r.startsWith(code)) throw new Error(`expected ${code}, got ${r}`);
}

async function smtpRate(t: Target, seconds: number, sessions: number): Promise<{ messages: number; perSecond: number }> {
  const body = `Subject: bench\r\nFrom: bench@example.net\r\nTo: alice@example.com\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.ceil(SIZE / 130)));
  let messages = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const { sock, replies } = await connect(t);
      await expect(replies, sock, undefined, '220');
      await expect(replies, sock, 'EHLO bench.example.net\r\n', '250');
      while (performance.now() < end) {
        await expect(replies, sock, 'MAIL FROM:<bench@example.net>\r\n', '250');
        await expect(replies, sock, 'RCPT TO:<alice@example.com>\r\n', '250');
        await expect(replies, sock, 'DATA\r\n', '354');
        await expect(replies, sock, `${body}.\r\n`, '250');
        messages++;
      }
      sock.end('QUIT\r\n');
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return { messages, perSecond: Math.round(messages / elapsed) };
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0).toFixed(3));
};

const BIG = 1_000_000;
const p = await startProxiedDaemon({
  limits: { smtp: { listenerConnections: 1000, sourceConnections: 1000, perIp: 1000, perListener: 2000, portConnections: 2000 } },
  rates: { messagesPerMinutePerIp: BIG, messagesPerMinutePerSender: BIG, messagesPerMinutePerDomain: BIG, recipientsPerHourPerSender: BIG },
});
try {
  const publicPort = p.spec.port('smtp');
  const targets: Target[] = [
    { name: 'direct', port: publicPort + INTERNAL_OFFSET, header: (clientPort) => encodeProxyV2({ source: { address: '127.0.0.1', port: clientPort }, destination: { address: '127.0.0.1', port: publicPort } }) },
    { name: 'haproxy', port: publicPort },
  ];
  for (const t of targets) await greetingLatency(t, 30); // warm-up: TLS cache, JIT, HAProxy pools
  const latency: Record<string, { p50Ms: number; p99Ms: number; n: number }> = {};
  const rate: Record<string, { messages: number; perSecond: number }> = {};
  for (const t of targets) {
    const xs = await greetingLatency(t, GREETINGS);
    latency[t.name] = { p50Ms: q(xs, 0.5), p99Ms: q(xs, 0.99), n: xs.length };
  }
  for (const t of targets) rate[t.name] = await smtpRate(t, SECONDS, SESSIONS);
  const result = {
    bench: 'proxy',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length },
    params: { greetings: GREETINGS, seconds: SECONDS, sessions: SESSIONS, messageBytes: SIZE },
    latency,
    smtp: rate,
    ratios: {
      greetingP50HaproxyOverDirect: Number((latency.haproxy!.p50Ms / latency.direct!.p50Ms).toFixed(2)),
      greetingP99HaproxyOverDirect: Number((latency.haproxy!.p99Ms / latency.direct!.p99Ms).toFixed(2)),
      smtpRateHaproxyOverDirect: Number((rate.haproxy!.perSecond / rate.direct!.perSecond).toFixed(2)),
    },
  };
  console.log('connect+greeting latency (ms)');
  for (const t of targets) console.log(`  ${t.name.padEnd(8)} p50 ${latency[t.name]!.p50Ms.toFixed(3)}  p99 ${latency[t.name]!.p99Ms.toFixed(3)}  (n=${GREETINGS})`);
  console.log(`SMTP messages/s (${SESSIONS} sessions, ${SIZE} B, ${SECONDS} s)`);
  for (const t of targets) console.log(`  ${t.name.padEnd(8)} ${rate[t.name]!.perSecond} msg/s (${rate[t.name]!.messages} messages)`);
  console.log(
    `ratios haproxy/direct: greeting p50 ${result.ratios.greetingP50HaproxyOverDirect}x, p99 ${result.ratios.greetingP99HaproxyOverDirect}x; SMTP rate ${result.ratios.smtpRateHaproxyOverDirect}x`,
  );
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'proxy.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench/results/proxy.json');
  writePlot('proxy', { title: 'SMTP messages/s: direct vs through HAProxy', unit: 'msg/s', bars: targets.map((t) => ({ label: t.name, value: rate[t.name]!.perSecond })) });
} finally {
  await p.stop();
}
