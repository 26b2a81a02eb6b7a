/**
 * Starts mailfleetd for a bench as its own process (so its CPU is readable from /proc) and waits for its
 * ready line. The benches each had their own copy of this (bench/smtp, bench/smtp-filter,
 * bench/imap-stress).
 *
 * By default it runs the esbuild bundle (scripts/bundle-daemon.mjs), what a mail node runs: under tsx
 * every function carries a name helper and every Error's stack is source-mapped, which shows in CPU per
 * message/command. `tsx: true` runs the sources instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const REPO = resolve(import.meta.dirname, '../..');

export interface DaemonStartOptions {
  /** The daemon config file (`--daemon-config`). */
  readonly configFile: string;
  /** `--data-dir`. */
  readonly dataDir: string;
  /** Where the bundle is built (once; reused when already there). */
  readonly work: string;
  /** Run lib/daemon/main.ts under tsx instead of the bundle. @default false */
  readonly tsx?: boolean;
  /**
   * A bundle built elsewhere (e.g. from another commit, to compare two builds in one run).
   * @default undefined (the bundle of this checkout, built in `work`)
   */
  readonly bundle?: string;
  /** Node flags before the entry (e.g. --cpu-prof: NODE_OPTIONS refuses it). @default [] */
  readonly nodeFlags?: readonly string[];
  /** Extra environment. @default {} */
  readonly env?: Readonly<Record<string, string>>;
  /** MAILFLEET_LOG_LEVEL. @default 'warn' */
  readonly logLevel?: string;
  /** Give up waiting for the ready line after this long. @default 90000 */
  readonly readyTimeoutMs?: number;
}

export interface BenchDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Listening port of a protocol ('smtp', 'imap', …) from the ready line. */
  port(protocol: string): number;
  /** SIGTERM (a normal exit, which is when V8 writes a --cpu-prof profile), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** The daemon bundle in `work`, built on first use. */
export function daemonBundle(work: string): string {
  const bundle = join(work, 'mailfleetd.mjs');
  if (existsSync(bundle)) return bundle;
  const b = spawnSync(process.execPath, [join(REPO, 'scripts/bundle-daemon.mjs'), '--outfile', bundle], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundle-daemon failed: ${b.stderr}`);
  return bundle;
}

export async function startBenchDaemon(o: DaemonStartOptions): Promise<BenchDaemon> {
  const entry = o.tsx ? ['--import', 'tsx', join(REPO, 'lib/daemon/main.ts')] : [o.bundle ?? daemonBundle(o.work)];
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), ...entry, 'serve', '--daemon-config', o.configFile, '--data-dir', o.dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILFLEET_LOG_LEVEL: o.logLevel ?? 'warn', ...o.env },
    cwd: REPO,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
    process.stderr.write(d);
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  try {
    const ready = await new Promise<{ sockets: Array<{ protocol: string; port: number }> }>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`mailfleetd did not start within ${o.readyTimeoutMs ?? 90_000} ms: ${stderr}`)), o.readyTimeoutMs ?? 90_000);
      // Log lines share stdout: the ready line is the JSON with ready: true.
      createInterface({ input: child.stdout! }).on('line', (l) => {
        if (!l.includes('"ready":true')) return;
        clearTimeout(t);
        res(JSON.parse(l) as { sockets: Array<{ protocol: string; port: number }> });
      });
      child.once('exit', (c) => (clearTimeout(t), rej(new Error(`mailfleetd exited ${c}: ${stderr}`))));
    });
    return {
      child,
      pid: child.pid!,
      port(protocol) {
        const s = ready.sockets.find((x) => x.protocol === protocol);
        if (!s) throw new Error(`mailfleetd has no ${protocol} listener`);
        return s.port;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
