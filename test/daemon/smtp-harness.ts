/**
 * Test harness for mailfleetd SMTP: a real daemon (startDaemon) on 127.0.0.1 port 0 with a temp data dir,
 * a static users file (alice/bob@example.com, carol@example.org, password "password") and a spec built
 * from overrides. Also a tiny line-based SMTP client for tests that need exact control of the wire.
 */
import { createHash, randomBytes } from 'node:crypto';
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

export interface TaggedLoad {
  /** Ends the sessions' loops (call right after the kill), then resolves when every session is done. */
  stop(): Promise<void>;
}

/**
 * The crash tests' SMTP load: `sessions` connections each send messages to bob@example.com, one after
 * another, until stopped or refused. Every message carries `X-Test-Id` and `X-Body-Sha256` of a random
 * body, so the mailbox (or an archive) can be checked for exactly the acknowledged ones, whole.
 * `onSend` hears each message before its DATA, `onAck` each one answered 250. A daemon dying mid-command
 * ends a session quietly: what was not acknowledged may or may not be stored.
 */
export function taggedSmtpLoad(
  port: number,
  opts: {
    readonly sessions: number;
    readonly nextId: () => string;
    readonly onSend?: (id: string, sha: string) => void;
    readonly onAck: (id: string, sha: string) => void;
    /** Adds a Message-ID header (the journal indexes by it). */
    readonly messageId?: boolean;
  },
): TaggedLoad {
  let stopped = false;
  const session = async (): Promise<void> => {
    const c = await LineClient.open(port).catch(() => undefined);
    if (!c) return;
    try {
      if (!(await c.reply()).startsWith('220')) return;
      await c.cmd('EHLO crash.test');
      while (!stopped) {
        const id = opts.nextId();
        const lines = Array.from({ length: 1 + Math.floor(Math.random() * 600) }, () => randomBytes(38).toString('hex'));
        const body = `${lines.join('\r\n')}\r\n`;
        const sha = createHash('sha256').update(body).digest('hex');
        opts.onSend?.(id, sha);
        if (!(await c.cmd('MAIL FROM:<load@remote.test>')).startsWith('250')) return;
        if (!(await c.cmd('RCPT TO:<bob@example.com>')).startsWith('250')) return;
        if (!(await c.cmd('DATA')).startsWith('354')) return;
        const mid = opts.messageId ? `Message-ID: <${id}@crash.test>\r\n` : '';
        const reply = await c.cmd(`X-Test-Id: ${id}\r\nX-Body-Sha256: ${sha}\r\n${mid}Subject: crash\r\n\r\n${body}.`);
        if (reply.startsWith('250 ')) opts.onAck(id, sha);
        else return;
      }
    } catch {
      // the daemon died mid-command
    } finally {
      c.close();
    }
  };
  const running = Array.from({ length: opts.sessions }, session);
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
    },
  };
}
