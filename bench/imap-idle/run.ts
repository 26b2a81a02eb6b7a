/**
 * bench/imap-idle: memory per authenticated IDLE connection, mailfleetd against Dovecot, in one run.
 *
 *   npx tsx bench/imap-idle/run.ts [--connections 2000] [--users 200]
 *
 * For each server: start it as a child process, open one warm-up session, read the PSS of the
 * server's processes (/proc/<pid>/smaps_rollup), open N sessions that LOGIN, SELECT INBOX and IDLE,
 * read PSS again; memory per connection = ΔPSS / N. Dovecot runs from a private config in a temp dir
 * (passwd-file auth, Maildir, one imap process per connection as shipped), started with
 * `dovecot -c <conf>` and stopped afterwards. Results: bench/results/imap-idle.json.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot } from '../lib/dovecot.js';
import { writePlot } from '../lib/plot.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('connections', 2000);
const USERS = arg('users', 200);
const PASSWORD = 'bench-password';
const DEADLINE = Date.now() + 10 * 60_000;
/** Run on every exit path, including the deadline: no server outlives the bench. */
const cleanups: Array<() => void> = [];
setTimeout(() => {
  console.error('bench/imap-idle: deadline reached, stopping servers');
  for (const c of cleanups) c();
  process.exit(1);
}, DEADLINE - Date.now() + 5000).unref();

function pss(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The process and all its descendants. */
function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      (children.get(ppid) ?? children.set(ppid, []).get(ppid)!).push(Number(d));
    } catch {
      /* exited */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

const treePss = (root: number) => tree(root).reduce((s, p) => s + pss(p), 0);

/** Opens one session: LOGIN, SELECT INBOX, IDLE; resolves once "+ idling" (or any "+") arrives. */
function idleSession(port: number, user: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    let step = 0;
    const timer = setTimeout(() => reject(new Error(`session ${user} timed out: ${buf.slice(-200)}`)), 60_000);
    s.setNoDelay(true);
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (step === 0 && /^\* OK/m.test(buf)) {
        step = 1;
        s.write(`a LOGIN ${user} ${PASSWORD}\r\n`);
      } else if (step === 1 && /^a OK/m.test(buf)) {
        step = 2;
        s.write('b SELECT INBOX\r\n');
      } else if (step === 2 && /^b OK/m.test(buf)) {
        step = 3;
        s.write('c IDLE\r\n');
      } else if (step === 3 && /^\+ /m.test(buf)) {
        step = 4;
        clearTimeout(timer);
        buf = '';
        resolve(s);
      } else if (/^[abc] (NO|BAD)/m.test(buf)) {
        clearTimeout(timer);
        reject(new Error(`session ${user}: ${buf.slice(-300)}`));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function openMany(port: number, n: number, offset = 0): Promise<Socket[]> {
  const out: Socket[] = [];
  const BATCH = 50;
  for (let i = 0; i < n; i += BATCH) {
    if (Date.now() > DEADLINE) throw new Error('bench deadline reached');
    const batch = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) batch.push(idleSession(port, `user${(offset + j) % USERS}@example.com`));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function settle(ms: number) {
  await new Promise((r) => setTimeout(r, ms));
}

interface Measurement {
  readonly server: string;
  readonly connections: number;
  readonly pssBeforeBytes: number;
  readonly pssAfterBytes: number;
  readonly bytesPerConnection: number;
  readonly processes: number;
}

async function measure(name: string, port: number, rootPid: number, gc?: () => void): Promise<Measurement> {
  const warm = await openMany(port, 1, 0);
  gc?.();
  await settle(1000);
  const before = treePss(rootPid);
  const t0 = Date.now();
  const socks = await openMany(port, N, 1);
  const openMs = Date.now() - t0;
  gc?.();
  await settle(2000);
  const after = treePss(rootPid);
  const processes = tree(rootPid).length;
  for (const s of [...warm, ...socks]) s.destroy();
  const m = { server: name, connections: N, pssBeforeBytes: before, pssAfterBytes: after, bytesPerConnection: Math.round((after - before) / N), processes };
  console.log(`${name.padEnd(10)} ${N} IDLE connections opened in ${openMs} ms; PSS ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MiB over ${processes} processes; ${(m.bytesPerConnection / 1024).toFixed(1)} KiB per connection`);
  return m;
}

async function benchMailfleet(work: string): Promise<Measurement> {
  const dataDir = join(work, 'mailfleet');
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'mailfleetd.ts'), dataDir, String(USERS), PASSWORD], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
  });
  cleanups.push(() => child.kill('SIGKILL'));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (code) => reject(new Error(`mailfleetd exited with ${code}`)));
    });
    // The tsx loader lives in the same process: its memory is in "before" and cancels out of the delta.
    return await measure('mailfleetd', port, child.pid!, () => child.kill('SIGUSR2'));
  } finally {
    child.kill('SIGKILL');
  }
}

async function benchDovecot(work: string): Promise<Measurement | undefined> {
  const dir = join(work, 'dovecot');
  mkdirSync(dir, { recursive: true });
  chmodSync(work, 0o755);
  let dovecot;
  try {
    dovecot = await startDovecot({ dir, users: Array.from({ length: USERS }, (_, i) => ({ address: `user${i}@example.com`, password: PASSWORD })) });
  } catch (e) {
    console.log((e as Error).message);
    return undefined;
  }
  cleanups.push(() => void dovecot.stop());
  try {
    return await measure('dovecot', dovecot.port, dovecot.masterPid);
  } finally {
    await dovecot.stop();
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'mf-bench-idle-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  try {
    const mf = process.argv.includes('--dovecot-only') ? undefined : await benchMailfleet(work);
    const dv = await benchDovecot(work);
    const result: Record<string, unknown> = { bench: 'imap-idle', date: new Date().toISOString(), connections: N, users: USERS, mailfleetd: mf, dovecot: dv };
    if (dv && mf) {
      const ratio = mf.bytesPerConnection / dv.bytesPerConnection;
      result.ratio = Number(ratio.toFixed(4));
      result.targetRatio = 1 / 25;
      console.log(`ratio mailfleetd/dovecot = ${ratio.toFixed(4)} (1/${(1 / ratio).toFixed(1)}); target ≤ 1/25 → ${ratio <= 1 / 25 ? 'met' : 'NOT met'}`);
    }
    mkdirSync(join(import.meta.dirname, '..', 'results'), { recursive: true });
    writeFileSync(join(import.meta.dirname, '..', 'results', 'imap-idle.json'), JSON.stringify(result, null, 2) + '\n');
    if (mf && dv) writePlot('imap-idle', { title: `Memory per idle IMAP connection (${N} connections)`, unit: 'KiB', bars: [{ label: 'mailfleetd', value: mf.bytesPerConnection / 1024 }, { label: 'dovecot', value: dv.bytesPerConnection / 1024 }] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
