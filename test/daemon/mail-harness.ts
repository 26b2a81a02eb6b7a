/**
 * Test harness for IMAP/POP3: the real daemon (startDaemon) on 127.0.0.1 port 0 with a temp data dir
 * and static users; helpers to run real clients (python, mbsync, fetchmail).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import selfsigned from 'selfsigned';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { hashPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { maildirPath } from '../../lib/store/maildir/paths.js';

export const PASSWORD = 'secret-pw';

export interface Harness {
  readonly root: string;
  readonly port: number;
  readonly pop3Port: number;
  readonly daemon: RunningDaemon;
  maildir(address: string): string;
  /** Delivers a message through the daemon's own delivery (new/, then the IDLE event). */
  deliver(address: string, message: string | Buffer): Promise<void>;
  close(): Promise<void>;
}

let certCache: { key: string; cert: string } | undefined;
export function testCert(): { key: string; cert: string } {
  if (!certCache) {
    const pems = selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { days: 2, keySize: 2048 });
    certCache = { key: pems.private, cert: pems.cert };
  }
  return certCache;
}

const DEFAULT_USERS = ['alice@example.com', 'bob@example.com'];

/**
 * A real daemon (startDaemon, port 0 everywhere) with a static users file (password PASSWORD) and the
 * given imap/pop3 settings; `perUser` sets the IMAP and POP3 per-user caps.
 */
export async function startImapHarness(opts: { imap?: Record<string, unknown>; pop3?: Record<string, unknown>; perUser?: number; users?: string[] } = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'mf-imap-'));
  const users = opts.users ?? DEFAULT_USERS;
  const lines = ['users:'];
  for (const u of users) lines.push(`  - address: ${u}`, `    passwordHash: ${await hashPassword(PASSWORD)}`);
  await writeFile(join(root, 'users.yaml'), `${lines.join('\n')}\n`);
  const perUser = opts.perUser === undefined ? {} : { perUser: opts.perUser, perUserIp: opts.perUser };
  const spec = specSchema.parse({
    platform: { name: 'test', hostname: 'mail.test' },
    domains: [{ name: 'example.com' }],
    limits: { imap: perUser, pop3: perUser },
    imap: { allowInsecureAuth: true, authFailureDelayMs: 10, ...opts.imap },
    pop3: { allowInsecureAuth: true, authFailureDelayMs: 10, ...opts.pop3 },
  });
  const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
  const daemon = await startDaemon(config, { dataDir: root, baseDir: root, logger: silentLogger, tls: testCert(), admin: false });
  const portOf = (p: string) => daemon.sockets.find((x) => x.protocol === p && x.listener.startsWith('default-'))!.port;
  return {
    root,
    port: portOf('imap'),
    pop3Port: portOf('pop3'),
    daemon,
    maildir: (address) => maildirPath(daemon.ctx.mailRoot, address),
    async deliver(address, message) {
      await daemon.ctx.delivery.deliver([{ address }], Buffer.isBuffer(message) ? message : Buffer.from(message));
    },
    async close() {
      await daemon.stop(1000);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs a Python script (stdin) with args; resolves stdout, rejects with stderr on failure. */
export function python(script: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  return run('python3', ['-', ...args], script, timeoutMs);
}

export function run(cmd: string, args: readonly string[], input?: string, timeoutMs = 20_000, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} could not start (${e.message}): install it (see scripts/install-system-deps.sh)`));
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${err}\n${out}`));
    });
    p.stdin.on('error', () => {}); // tools that never read stdin close it early
    p.stdin.end(input ?? '');
  });
}
