/**
 * bench/smtp-filter: inbound SMTP with filtering on, mailfleetd (rspamd's HTTP protocol, POST /checkv2
 * after DATA) against Postfix with the same rspamd as a milter (smtpd_milters = rspamd's proxy worker in
 * milter mode), in one run, on one rspamd with ClamAV (antivirus module) and a private DNS server for the
 * SPF/DMARC lookups (test/harness/rspamd.ts: rspamd, clamd and dnsmasq, nothing leaves the machine).
 *
 *   npx tsx bench/smtp-filter/run.ts [--messages 2000] [--sessions 20] [--warmup 400] [--rounds 1] [--no-baseline] [--tsx] [--profile]
 *
 * Both get the same message mix, in the same order, from the same client (one connection per message,
 * `--sessions` at a time): 60 % ham (SPF and DMARC pass), 20 % spam-ish (lottery wording, HTML only, no
 * Message-ID), 10 % GTUBE and 10 % EICAR. Both scanners are one rspamd process (the normal worker for
 * mailfleetd, the self-scanning proxy worker for Postfix) and both refuse GTUBE and EICAR with 5xx before
 * the reply; the reply tallies are printed per kind and must agree.
 *
 * msg/s is measured to "every accepted message is in the Maildir" (mailfleetd: the last reply, it stores
 * durably before 250; Postfix: queued at 250, the run waits for virtual(8) to deliver). Latency is what the
 * client sees per message, connect to the reply to the final dot. CPU per message counts the MTA's
 * processes, then the filter's too (rspamd's process tree and clamd). --rounds N alternates the two N times
 * and reports medians. Each round also runs both without filtering (same mix, all accepted), which says what
 * filtering costs each of them on this machine (--no-baseline skips it). --profile: mailfleetd only, under
 * `node --cpu-prof`, top self-time functions printed. mailfleetd runs as the bundle the engines ship (--tsx: the sources).
 * Results: bench/results/smtp-filter.json (+ .svg).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashPassword } from '../../lib/directory/static.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { EICAR, GTUBE, filterStackUnavailable, startFilterStack, type FilterStack } from '../../test/harness/rspamd.js';
import { startBenchDaemon } from '../lib/daemon.js';
import { writePlot } from '../lib/plot.js';
import { countFiles, startPostfix, waitForCount } from '../lib/postfix.js';
import { cpuDelta, cpuSeconds, treeCpuSeconds, type Cpu } from '../lib/proc.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg('messages', 2000);
const SESSIONS = arg('sessions', 20);
/** Messages each server gets first, outside the measurement (JIT, rspamd's and clamd's caches, Postfix process start). */
const WARMUP = arg('warmup', 400);
const ROUNDS = arg('rounds', 1);
const TSX = process.argv.includes('--tsx');
/** Also run both without filtering (same mix) to show what filtering costs each; --no-baseline skips it. */
const BASELINE = !process.argv.includes('--no-baseline');
/** Development loop: mailfleetd only, under `node --cpu-prof`, with its top self-time functions printed. */
const PROFILE = process.argv.includes('--profile');
const REPO = resolve(import.meta.dirname, '../..');

// ---------------------------------------------------------------------------------------------------
// The message mix

type Kind = 'ham' | 'spamish' | 'gtube' | 'eicar';
const KINDS: readonly Kind[] = ['ham', 'spamish', 'gtube', 'eicar'];
/** Message i's kind: a fixed pattern of ten, so both servers see the same sequence. */
const PATTERN: readonly Kind[] = ['ham', 'ham', 'spamish', 'ham', 'gtube', 'ham', 'ham', 'spamish', 'ham', 'eicar'];

const HAM_TEXT = (
  'Hello Bob,\n\nthe minutes of Tuesday\'s meeting are below; the next one is on the 14th at 10:00 in the ' +
  'usual room. Please send the figures for the third quarter before Friday so that we can put them in the ' +
  'report, and tell me if the date does not suit you.\n\n'
).repeat(5);

function messageOf(kind: Kind, i: number, to: string): { from: string; data: string } {
  const id = `<${i}.${Date.now().toString(36)}@client.test>`;
  const date = new Date().toUTCString();
  switch (kind) {
    case 'ham':
      return {
        from: 'news@good.test',
        data: `From: News <news@good.test>\nTo: ${to}\nSubject: Minutes of the meeting, ${i}\nMessage-ID: ${id}\nDate: ${date}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n${HAM_TEXT}`,
      };
    case 'spamish':
      return {
        from: 'winner@lottery.test',
        data:
          `From: "PRIZE DEPT" <winner@lottery.test>\nTo: ${to}\nSubject: YOU HAVE WON $1,000,000 !!! CLAIM NOW\nDate: ${date}\nMIME-Version: 1.0\n` +
          'Content-Type: text/html; charset=utf-8\n\n' +
          '<html><body><p><b>CONGRATULATIONS!!!</b> You are our lucky WINNER. Claim your CASH PRIZE now, 100% FREE, ' +
          'no risk, act now, limited time offer!</p><p><a href="http://192.0.2.7/claim">CLICK HERE</a> to receive your money ' +
          'transfer today. Send your bank account details to release the funds.</p></body></html>\n',
      };
    case 'gtube':
      return { from: 'someone@elsewhere.test', data: `From: someone@elsewhere.test\nTo: ${to}\nSubject: test ${i}\nMessage-ID: ${id}\nDate: ${date}\n\n${GTUBE}\n` };
    case 'eicar':
      return { from: 'someone@elsewhere.test', data: `From: someone@elsewhere.test\nTo: ${to}\nSubject: file ${i}\nMessage-ID: ${id}\nDate: ${date}\n\n${EICAR}\n` };
  }
}

// ---------------------------------------------------------------------------------------------------
// The client: one connection per message, `sessions` at a time (what smtp-source does, plus per-message
// latency and per-kind reply codes, which smtp-source does not report).

class Conn {
  private buf = '';
  private waiter?: (reply: string) => void;
  private failed?: Error;
  private constructor(private readonly s: Socket) {
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      this.buf += c;
      this.pump();
    });
    s.on('error', (e) => (this.failed = e));
    s.on('close', () => {
      this.failed ??= new Error('connection closed');
      this.pump();
    });
  }
  static open(port: number): Promise<Conn> {
    return new Promise((res, rej) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => res(new Conn(s)));
      s.once('error', rej);
    });
  }
  private pump(): void {
    if (!this.waiter) return;
    // A reply is complete at a line "NNN text" (space after the code), after any "NNN-" lines.
    let at = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', at);
      if (nl < 0) break;
      if (this.buf[at + 3] === ' ' || nl - at <= 4) {
        const reply = this.buf.slice(0, nl + 1);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiter;
        this.waiter = undefined;
        w(reply.trimEnd());
        return;
      }
      at = nl + 1;
    }
    if (this.failed) {
      const w = this.waiter;
      this.waiter = undefined;
      w(`000 ${this.failed.message}`);
    }
  }
  reply(): Promise<string> {
    return new Promise((r) => {
      this.waiter = r;
      this.pump();
    });
  }
  cmd(line: string): Promise<string> {
    this.s.write(`${line}\r\n`);
    return this.reply();
  }
  close(): void {
    this.s.end();
  }
}

interface Outcome {
  readonly kind: Kind;
  /** First digit of the reply to the final dot (2, 4, 5), 0 for a failed session. */
  readonly code: number;
  readonly ms: number;
}

async function sendOne(port: number, kind: Kind, i: number, to: string): Promise<Outcome> {
  const { from, data } = messageOf(kind, i, to);
  const t0 = performance.now();
  const c = await Conn.open(port);
  const done = (reply: string): Outcome => ({ kind, code: Number(reply[0]), ms: performance.now() - t0 });
  try {
    const steps = [await c.reply(), await c.cmd('EHLO client.test')];
    if (steps.some((r) => r[0] !== '2')) return done(steps.find((r) => r[0] !== '2')!);
    for (const line of [`MAIL FROM:<${from}>`, `RCPT TO:<${to}>`]) {
      const r = await c.cmd(line);
      if (r[0] !== '2') return done(r);
    }
    const go = await c.cmd('DATA');
    if (go[0] !== '3') return done(go);
    // Dot-stuffing is not needed: no line of the mix starts with a dot.
    const final = await c.cmd(`${data.replace(/\n/g, '\r\n')}.`);
    const out = done(final);
    c.cmd('QUIT').catch(() => undefined);
    return out;
  } finally {
    setTimeout(() => c.close(), 0);
  }
}

async function drive(port: number, count: number, to: string): Promise<{ seconds: number; outcomes: Outcome[] }> {
  const outcomes: Outcome[] = [];
  let next = 0;
  const t0 = performance.now();
  const session = async () => {
    while (next < count) {
      const i = next++;
      outcomes.push(await sendOne(port, PATTERN[i % PATTERN.length]!, i, to));
    }
  };
  await Promise.all(Array.from({ length: Math.min(SESSIONS, count) }, session));
  return { seconds: (performance.now() - t0) / 1000, outcomes };
}

// ---------------------------------------------------------------------------------------------------
// The two servers

interface Run {
  /** To "every accepted message is in the Maildir". */
  readonly seconds: number;
  /** To the last reply (Postfix: queued, not yet delivered). */
  readonly ackSeconds: number;
  readonly outcomes: Outcome[];
  readonly mtaCpu: Cpu;
  readonly filterCpu: Cpu;
  /** mailfleetd: accepted messages in INBOX and in Junk. */
  readonly folders?: { inbox: number; junk: number };
}

function filterCpu(stack: FilterStack): Cpu {
  const r = treeCpuSeconds(stack.rspamd.pid);
  const c = stack.clamd ? cpuSeconds(stack.clamd.pid) : { user: 0, system: 0 };
  return { user: r.user + c.user, system: r.system + c.system };
}

const accepted = (o: readonly Outcome[]) => o.filter((x) => x.code === 2).length;

async function runMailfleetd(work: string, name: string, stack: FilterStack, filter: boolean): Promise<Run> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  await writeFile(join(dir, 'users.yaml'), `users:\n  - address: bench@example.com\n    passwordHash: ${await hashPassword('x')}\n  - address: warm@example.com\n    passwordHash: ${await hashPassword('x')}\n`);
  const spec = specSchema.parse({
    platform: { name: 'bench', hostname: 'mx.bench' },
    domains: [{ name: 'example.com' }],
    limits: { smtp: { portConnections: 1000, perIp: 1000, perListener: 1000 } },
    // The defaults otherwise: spam past 15 refused, past 6 to Junk; ClamAV through rspamd.
    ...(filter ? { filtering: { rspamd: { url: stack.url } } } : {}),
  });
  const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides: Object.fromEntries(PROTOCOLS.map((p) => [p, 0])), adminPort: 0 });
  await writeFile(join(dir, 'mailfleetd.json'), JSON.stringify(config));
  const profDir = join(work, 'cpu-prof');
  const daemon = await startBenchDaemon({ configFile: join(dir, 'mailfleetd.json'), dataDir: dir, work, tsx: TSX, nodeFlags: PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
  const child = daemon.child;
  try {
    const port = daemon.port('smtp');
    const warm = await drive(port, WARMUP, 'warm@example.com');
    // A warm-up refused for another reason (rspamd not answering: 451) would measure nothing useful.
    if (warm.outcomes.some((o) => o.kind === 'ham' && o.code !== 2)) throw new Error('mailfleetd refused ham during the warm-up');
    const m0 = cpuSeconds(child.pid!);
    const f0 = filterCpu(stack);
    const { seconds, outcomes } = await drive(port, MESSAGES, 'bench@example.com');
    const mtaCpu = cpuDelta(m0, cpuSeconds(child.pid!));
    const fCpu = cpuDelta(f0, filterCpu(stack));
    const md = join(dir, 'mail/example.com/bench/Maildir');
    const folders = { inbox: countFiles(join(md, 'new')), junk: countFiles(join(md, '.Junk/new')) };
    // Stored durably before each 250: everything accepted is there at the last reply.
    if (folders.inbox + folders.junk !== accepted(outcomes)) throw new Error(`mailfleetd stored ${folders.inbox + folders.junk} of ${accepted(outcomes)} accepted`);
    return { seconds, ackSeconds: seconds, outcomes, mtaCpu, filterCpu: fCpu, folders };
  } finally {
    await daemon.stop();
  }
}

async function runPostfix(work: string, name: string, stack: FilterStack, filter: boolean): Promise<Run> {
  const pf = await startPostfix({
    dir: join(work, name),
    // rspamd's Postfix integration (https://rspamd.com/doc/integration.html): the proxy worker as milter;
    // rspamd unreachable: 4xx, like mailfleetd's onUnavailable: tempfail.
    extraMain: !filter ? [] : [
      `smtpd_milters = inet:${stack.milter!}`,
      'milter_protocol = 6',
      'milter_default_action = tempfail',
      'milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}',
    ],
  });
  try {
    // Ready when the port answers.
    for (let i = 0; i < 100; i++) {
      const c = await Conn.open(pf.port).catch(() => undefined);
      if (c) {
        c.close();
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const warm = await drive(pf.port, WARMUP, 'warm@example.com');
    if (warm.outcomes.some((o) => o.kind === 'ham' && o.code !== 2))
      throw new Error(`postfix refused ham during the warm-up: ${tally(figures({ seconds: 1, ackSeconds: 1, outcomes: warm.outcomes, mtaCpu: { user: 0, system: 0 }, filterCpu: { user: 0, system: 0 } }))}\n${readFileSync(pf.logFile, 'utf8').split('\n').slice(-4).join('\n')}\nrspamd:\n${readFileSync(join(stack.dir, 'rspamd/log/rspamd.log'), 'utf8').split('\n').filter((l) => /proxy|milter|error|warn/i.test(l)).slice(-15).join('\n')}`);
    await waitForCount(pf.newDir, accepted(warm.outcomes), 120_000);
    const before = countFiles(pf.newDir);
    const m0 = treeCpuSeconds(pf.masterPid);
    const f0 = filterCpu(stack);
    const t0 = performance.now();
    const { seconds: ackSeconds, outcomes } = await drive(pf.port, MESSAGES, 'bench@example.com');
    await waitForCount(pf.newDir, before + accepted(outcomes), 600_000);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, ackSeconds, outcomes, mtaCpu: cpuDelta(m0, treeCpuSeconds(pf.masterPid)), filterCpu: cpuDelta(f0, filterCpu(stack)) };
  } finally {
    pf.stop();
  }
}

// ---------------------------------------------------------------------------------------------------
// Figures

function topOfProfile(profDir: string): string[] {
  const f = existsSync(profDir) ? readdirSync(profDir).find((x) => x.endsWith('.cpuprofile')) : undefined;
  if (!f) return [];
  const prof = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  for (const s of prof.samples) {
    const n = byId.get(s)!;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(`file://${REPO}/`, '')}:${n.callFrame.lineNumber + 1}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .map(([k, c]) => `${((100 * c) / prof.samples.length).toFixed(1).padStart(5)}%  ${k}`);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const median = (xs: readonly number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

interface Figures {
  msgPerSecond: number;
  ackMsgPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  hamP50Ms: number;
  hamP99Ms: number;
  mtaCpuMsPerMessage: number;
  filterCpuMsPerMessage: number;
  totalCpuMsPerMessage: number;
  replies: Record<Kind, Record<string, number>>;
  folders?: { inbox: number; junk: number };
}

function figures(r: Run): Figures {
  const ms = r.outcomes.map((o) => o.ms).sort((a, b) => a - b);
  const ham = r.outcomes.filter((o) => o.kind === 'ham').map((o) => o.ms).sort((a, b) => a - b);
  const per = (c: Cpu) => (1000 * (c.user + c.system)) / MESSAGES;
  const replies = Object.fromEntries(KINDS.map((k) => [k, {} as Record<string, number>])) as Record<Kind, Record<string, number>>;
  for (const o of r.outcomes) replies[o.kind][`${o.code}xx`] = (replies[o.kind][`${o.code}xx`] ?? 0) + 1;
  return {
    msgPerSecond: MESSAGES / r.seconds,
    ackMsgPerSecond: MESSAGES / r.ackSeconds,
    p50Ms: percentile(ms, 50),
    p99Ms: percentile(ms, 99),
    hamP50Ms: percentile(ham, 50),
    hamP99Ms: percentile(ham, 99),
    mtaCpuMsPerMessage: per(r.mtaCpu),
    filterCpuMsPerMessage: per(r.filterCpu),
    totalCpuMsPerMessage: per(r.mtaCpu) + per(r.filterCpu),
    replies,
    ...(r.folders ? { folders: r.folders } : {}),
  };
}

const tally = (f: Figures) => KINDS.map((k) => `${k} ${Object.entries(f.replies[k]).map(([c, n]) => `${c}:${n}`).join(' ')}`).join(', ');

function line(name: string, f: Figures): string {
  return (
    `${name.padEnd(11)} ${f.msgPerSecond.toFixed(0)} msg/s to Maildir (replies at ${f.ackMsgPerSecond.toFixed(0)} msg/s), ` +
    `latency p50 ${f.p50Ms.toFixed(1)} ms p99 ${f.p99Ms.toFixed(1)} ms (ham p50 ${f.hamP50Ms.toFixed(1)} p99 ${f.hamP99Ms.toFixed(1)}), ` +
    `CPU per message: MTA ${f.mtaCpuMsPerMessage.toFixed(2)} ms + filter ${f.filterCpuMsPerMessage.toFixed(2)} ms = ${f.totalCpuMsPerMessage.toFixed(2)} ms\n` +
    `            replies: ${tally(f)}${f.folders ? `; stored INBOX ${f.folders.inbox}, Junk ${f.folders.junk}` : ''}`
  );
}

async function main(): Promise<void> {
  const missing = filterStackUnavailable();
  if (missing) throw new Error(`bench/smtp-filter needs rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);
  const work = await mkdtemp(join(tmpdir(), 'mf-bench-smtp-filter-'));
  const stack = await startFilterStack({
    milter: true,
    records: [
      { name: 'good.test', txt: 'v=spf1 ip4:127.0.0.1 -all' },
      { name: '_dmarc.good.test', txt: 'v=DMARC1; p=reject' },
    ],
  });
  try {
    console.log(
      `${MESSAGES} messages (60 % ham, 20 % spam-ish, 10 % GTUBE, 10 % EICAR), ${SESSIONS} sessions, one connection per message, one rspamd (+ clamd, dnsmasq) for both; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}`,
    );
    const mf: Figures[] = [];
    const pf: Figures[] = [];
    const mfPlain: Figures[] = [];
    const pfPlain: Figures[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const a = figures(await runMailfleetd(work, `mf-${i}`, stack, true));
      console.log(line('mailfleetd', a));
      if (PROFILE) {
        console.log(topOfProfile(join(work, 'cpu-prof')).join('\n'));
        return;
      }
      const b = figures(await runPostfix(work, `pf-${i}`, stack, true));
      console.log(line('postfix', b));
      // Same rspamd, same mix: GTUBE and EICAR must be refused by both (else one of them is not filtering).
      for (const f of [a, b]) for (const k of ['gtube', 'eicar'] as const) if (f.replies[k]['2xx']) throw new Error(`${k} accepted: ${tally(f)}`);
      mf.push(a);
      pf.push(b);
      if (BASELINE) {
        // The same two without filtering, same mix (everything accepted): what filtering costs each.
        const c = figures(await runMailfleetd(work, `mf-plain-${i}`, stack, false));
        console.log(line('mf plain', c));
        const d = figures(await runPostfix(work, `pf-plain-${i}`, stack, false));
        console.log(line('pf plain', d));
        mfPlain.push(c);
        pfPlain.push(d);
      }
    }
    const pick = (xs: Figures[], k: keyof Omit<Figures, 'replies' | 'folders'>) => median(xs.map((x) => x[k]));
    const ratio = pick(mf, 'msgPerSecond') / pick(pf, 'msgPerSecond');
    const ratios = {
      rate: ratio,
      p50: pick(pf, 'p50Ms') / pick(mf, 'p50Ms'),
      p99: pick(pf, 'p99Ms') / pick(mf, 'p99Ms'),
      mtaCpu: pick(pf, 'mtaCpuMsPerMessage') / pick(mf, 'mtaCpuMsPerMessage'),
      totalCpu: pick(pf, 'totalCpuMsPerMessage') / pick(mf, 'totalCpuMsPerMessage'),
    };
    const cost = (plain: Figures[], filtered: Figures[]) => ({
      ratePercent: (1 - pick(filtered, 'msgPerSecond') / pick(plain, 'msgPerSecond')) * 100,
      mtaCpuMsPerMessage: pick(filtered, 'mtaCpuMsPerMessage') - pick(plain, 'mtaCpuMsPerMessage'),
    });
    const filterCost = BASELINE ? { mailfleetd: cost(mfPlain, mf), postfix: cost(pfPlain, pf) } : undefined;
    if (filterCost)
      console.log(
        `without filtering: mailfleetd ${pick(mfPlain, 'msgPerSecond').toFixed(0)} msg/s, postfix ${pick(pfPlain, 'msgPerSecond').toFixed(0)} msg/s; ` +
          `filtering costs mailfleetd ${filterCost.mailfleetd.ratePercent.toFixed(0)} % of its rate and ${filterCost.mailfleetd.mtaCpuMsPerMessage.toFixed(2)} ms MTA CPU per message, ` +
          `postfix ${filterCost.postfix.ratePercent.toFixed(0)} % and ${filterCost.postfix.mtaCpuMsPerMessage.toFixed(2)} ms`,
      );
    console.log(
      `${ROUNDS > 1 ? `medians of ${ROUNDS} rounds: ` : ''}mailfleetd / postfix+milter: rate ${ratios.rate.toFixed(2)}x; latency p50 ${ratios.p50.toFixed(2)}x, p99 ${ratios.p99.toFixed(2)}x lower; ` +
        `CPU per message postfix / mailfleetd: MTA alone ${ratios.mtaCpu.toFixed(2)}x, with the filter ${ratios.totalCpu.toFixed(2)}x`,
    );
    const results = {
      bench: 'smtp-filter',
      date: new Date().toISOString(),
      cores: cpus().length,
      load: loadavg()[0],
      params: { messages: MESSAGES, sessions: SESSIONS, warmup: WARMUP, rounds: ROUNDS, mix: PATTERN, daemon: TSX ? 'tsx lib/daemon/main.ts' : 'bundle', filter: 'rspamd (1 scanning process) + clamd + dnsmasq' },
      mailfleetd: mf,
      postfix: pf,
      ...(BASELINE ? { unfiltered: { mailfleetd: mfPlain, postfix: pfPlain }, filterCost } : {}),
      ratios,
    };
    mkdirSync(join(REPO, 'bench/results'), { recursive: true });
    writeFileSync(join(REPO, 'bench/results/smtp-filter.json'), `${JSON.stringify(results, null, 2)}\n`);
    writePlot('smtp-filter', {
      title: 'SMTP with rspamd + ClamAV, same run',
      unit: 'msg/s',
      bars: [
        { label: 'mailfleetd (checkv2)', value: pick(mf, 'msgPerSecond') },
        { label: 'postfix (rspamd milter)', value: pick(pf, 'msgPerSecond') },
      ],
    });
  } finally {
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
