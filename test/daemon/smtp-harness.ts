/**
 * Test harness for mailfleetd SMTP: a real daemon (startDaemon) on 127.0.0.1 port 0 with a temp data dir,
 * a static users file (alice/bob@example.com, carol@example.org, password "password") and a spec built
 * from overrides. Also a tiny line-based SMTP client for tests that need exact control of the wire.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type RunningDaemon, type StartDaemonOptions } from '../../lib/daemon/server.js';
import { hashPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import type { DaemonMode } from '../../lib/plan/types.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { RawClient } from '../harness/raw-client.js';
import { testCert } from './mail-harness.js';

export const USERS = ['alice@example.com', 'bob@example.com', 'carol@example.org'] as const;
export const PASSWORD = 'password';

let usersYaml: Promise<string> | undefined;
/** Hashing costs ~50 ms per user: once per test process. */
export function usersFileText(): Promise<string> {
  usersYaml ??= (async () => {
    const lines = ['users:'];
    for (const u of USERS) lines.push(`  - address: ${u}`, `    passwordHash: ${await hashPassword(PASSWORD)}`);
    lines.push('  - address: dave@example.com', `    passwordHash: ${await hashPassword(PASSWORD)}`, '    disabled: true');
    lines.push('aliases:', '  team@example.com: [alice@example.com, bob@example.com]', '  postmaster@example.com: [alice@example.com]');
    return `${lines.join('\n')}\n`;
  })();
  return usersYaml;
}

export interface SmtpHarness {
  readonly dir: string;
  readonly daemon: RunningDaemon;
  port(protocol: 'smtp' | 'submission' | 'submissions'): number;
  readonly adminPort: number;
  readonly adminToken: string;
  maildir(address: string): string;
  /** Files in a user's new/ (names). */
  newMessages(address: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startSmtpHarness(
  opts: { spec?: Record<string, unknown>; mode?: DaemonMode; daemon?: Partial<StartDaemonOptions> } = {},
): Promise<SmtpHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-smtp-'));
  await writeFile(join(dir, 'users.yaml'), await usersFileText());
  const spec = specSchema.parse({
    platform: { name: 'test', hostname: 'mx.test' },
    domains: [{ name: 'example.com' }, { name: 'example.org' }],
    smtp: { allowInsecureAuth: false },
    ...opts.spec,
  });
  const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const config = daemonConfig(buildPlan(spec), { mode: opts.mode ?? 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
  const daemon = await startDaemon(config, { dataDir: dir, baseDir: dir, logger: silentLogger, tls: testCert(), ...opts.daemon });
  const maildir = (address: string) => join(dir, 'mail', address.split('@')[1]!, address.split('@')[0]!, 'Maildir');
  return {
    dir,
    daemon,
    port: (protocol) => {
      const s = daemon.sockets.find((x) => x.protocol === protocol);
      if (!s) throw new Error(`no ${protocol} socket`);
      return s.port;
    },
    adminPort: daemon.adminPort!,
    adminToken: daemon.adminToken,
    maildir,
    newMessages: async (address) => (await readdir(join(maildir(address), 'new')).catch(() => [])).sort(),
    async close() {
      await daemon.stop(2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal SMTP client on RawClient: send a line, read one (possibly multi-line) reply. */
export class LineClient {
  private next = 0;
  private constructor(private readonly raw: RawClient) {}

  get socket(): Socket {
    return this.raw.socket;
  }

  get closed(): boolean {
    return this.raw.closed;
  }

  /** prefix: bytes written right after connecting (a PROXY header). */
  static async open(port: number, prefix?: Buffer): Promise<LineClient> {
    const raw = await RawClient.open(port);
    if (prefix) raw.socket.write(prefix);
    return new LineClient(raw);
  }

  /** Reads one full reply (its last line has a space, or nothing, after the code); '' when the server closed. */
  async reply(timeoutMs = 5000): Promise<string> {
    const r = await this.raw.readUntil(/^\d{3}(?: |$)/, timeoutMs, this.next);
    if (!r) return '';
    this.next = r.next;
    return r.lines.join('\r\n');
  }

  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.raw.close();
  }
}
