/** The bench's daemon: `mailfleet serve` as a child process on the slowed disk (bench/governor/slow-disk.ts). */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { configFor } from '../../test/ops/fixture.js';
import { cpuSeconds } from '../lib/proc.js';

/** The simulated disk's figures: operations so far, queue waits since the last call (ms), callers (BENCH_DISK_SITES=1). */
export interface DiskStats {
  ops: number;
  wait: { n: number; p50: number; p99: number; max: number };
  sites: Record<string, number>;
}

export interface BenchDaemon {
  port(protocol: string): number;
  readonly adminUrl: string;
  readonly pid: number;
  /** CPU seconds (user + system) the daemon process has used, from /proc. */
  cpuSeconds(): number;
  /** Durable operations the simulated disk has served so far, and by which code (with BENCH_DISK_SITES=1). */
  diskStats(): Promise<DiskStats>;
  stop(): Promise<void>;
}

/** Resolves once the daemon printed its ready line. */
export async function startDaemon(dir: string, config: ReturnType<typeof configFor>, fsyncMs: number): Promise<BenchDaemon> {
  const file = join(dir, 'daemon-config.json');
  await writeFile(file, JSON.stringify(config));
  const proc = spawn(
    process.execPath,
    [...(process.env.BENCH_DAEMON_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_DAEMON_CPU_PROF] : []), '--import', 'tsx', '--import', new URL('./slow-disk.ts', import.meta.url).href, 'bin/mailfleet.ts', 'serve', '--daemon-config', file, '--data-dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent', BENCH_FSYNC_MS: String(fsyncMs) } },
  );
  let stderr = '';
  const statsWaiters: Array<(s: DiskStats) => void> = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    if (line.startsWith('slow-disk ')) statsWaiters.shift()?.(JSON.parse(line.slice('slow-disk '.length)));
    else stderr += line + '\n';
  });
  const ready = await new Promise<{ sockets: Array<{ protocol: string; port: number; listener: string }>; admin: { port: number } }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon did not start within 120 s: ${stderr}`)), 120_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(t);
      resolve(JSON.parse(line));
    });
    proc.once('exit', (code) => reject(new Error(`daemon exited with ${code}: ${stderr}`)));
  });
  return {
    port: (p) => ready.sockets.find((s) => s.protocol === p && s.listener.startsWith('default-'))!.port,
    adminUrl: `http://127.0.0.1:${ready.admin.port}`,
    pid: proc.pid!,
    cpuSeconds() {
      const c = cpuSeconds(proc.pid!);
      return c.user + c.system;
    },
    diskStats() {
      return new Promise((resolve) => {
        statsWaiters.push(resolve);
        proc.kill('SIGUSR2');
      });
    },
    async stop() {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
