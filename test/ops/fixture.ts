/**
 * Daemons for the ops and flood tests: in-process (startDaemon) or as `mailfleet serve` child processes
 * (two nodes sharing a real redis-server), on 127.0.0.1 port 0, users alice/bob@example.com and
 * carol@example.org (password "password"), and a raw line client that records the first reply.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import type { DaemonConfig } from '../../lib/plan/types.js';
import { PROTOCOLS, specSchema, type Protocol } from '../../lib/spec/schema.js';
import { testCert } from '../daemon/mail-harness.js';
import { usersFileText } from '../daemon/smtp-harness.js';

export const TOKEN = 'test-admin-token-0123456789';

export async function tempDir(prefix = 'mf-ops-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await writeFile(join(dir, 'users.yaml'), await usersFileText());
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function configFor(spec: Record<string, unknown> = {}, redisUrl?: string): DaemonConfig {
  const s = specSchema.parse({
    platform: { name: 'ops-test', hostname: 'mx.test', adminToken: TOKEN },
    domains: [{ name: 'example.com' }, { name: 'example.org' }],
    smtp: { allowInsecureAuth: true },
    imap: { allowInsecureAuth: true, authFailureDelayMs: 10 },
    pop3: { allowInsecureAuth: true, authFailureDelayMs: 10 },
    ...(redisUrl ? { redis: { url: redisUrl, leaseSeconds: 2 } } : {}),
    // These floods send 10× a per-user or per-domain cap from one loopback address to test those caps; the
    // per-IP cap on password checks in flight (test/limits/login-race.test.ts) would answer first.
    auth: { concurrentChecksPerIp: 1000 },
    ...spec,
  });
  const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  return daemonConfig(buildPlan(s), { mode: 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
}

export interface TestDaemon {
  port(protocol: Protocol): number;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

export async function startInProcess(
  dir: string,
  config: DaemonConfig,
): Promise<TestDaemon & { daemon: RunningDaemon }> {
  const daemon = await startDaemon(config, {
    dataDir: dir,
    baseDir: dir,
    logger: silentLogger,
    tls: testCert(),
  });
  return {
    daemon,
    port: (p) => portOf(daemon.sockets, p),
    adminUrl: `http://127.0.0.1:${daemon.adminPort}`,
    stop: () => daemon.stop(1000),
  };
}

function portOf(
  sockets: ReadonlyArray<{ protocol: string; port: number; listener: string }>,
  p: Protocol,
): number {
  const s = sockets.find((x) => x.protocol === p && x.listener.startsWith('default-'));
  if (!s) throw new Error(`the daemon has no ${p} socket (is its protocol module registered?)`);
  return s.port;
}

/** `mailfleet serve --daemon-config` as a child process; resolves once it printed its ready line. */
export async function startProcess(
  dir: string,
  config: DaemonConfig,
): Promise<TestDaemon & { proc: ChildProcess }> {
  const file = join(dir, 'daemon-config.json');
  await writeFile(file, JSON.stringify(config));
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'bin/mailfleet.ts', 'serve', '--daemon-config', file, '--data-dir', dir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
    },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = await new Promise<{
    sockets: Array<{ protocol: string; port: number; listener: string }>;
    admin: { port: number };
  }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon did not start within 20 s: ${stderr}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(t);
      resolve(JSON.parse(line));
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`daemon exited with ${code}: ${stderr}`));
    });
  });
  return {
    proc,
    port: (p) => portOf(ready.sockets, p),
    adminUrl: `http://127.0.0.1:${ready.admin.port}`,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

import { RawClient } from '../harness/raw-client.js';
export { RawClient };

/** Opens an IMAP session on `d` (kept in `clients` for cleanup) and answers its `a1 LOGIN` reply line. */
export async function imapLogin(d: TestDaemon, user: string, clients: RawClient[]): Promise<string> {
  const c = await RawClient.open(d.port('imap'));
  clients.push(c);
  await c.waitFor(/^\* (OK|BYE)/, 10_000);
  return c.send(`a1 LOGIN ${user} password`, /^a1 /, 10_000);
}

/** The daemon's Prometheus text (GET /metrics, with the admin token). */
export async function metricsText(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!r.ok) throw new Error(`GET /metrics: ${r.status}`);
  return r.text();
}

export async function adminGet<T>(url: string, path: string): Promise<T> {
  const r = await fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export async function adminPut(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const r = await fetch(`${url}/v1/limits`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

/** Runs the CLI without blocking this process (an in-process daemon must keep answering). */
export function runCli(
  args: readonly string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
