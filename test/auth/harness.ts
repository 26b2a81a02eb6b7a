/**
 * A real daemon (startDaemon, port 0) with a static users file holding scrypt passwords, SCRAM secrets and
 * app passwords, the spec's `auth` section as given; plus a line client for raw IMAP/POP3 exchanges.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeScramSecret, scramSecretFromPassword } from '../../lib/auth/scram.js';
import { hashAppPassword, type AppPasswordRecord } from '../../lib/auth/app-passwords.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { hashPassword, writeUsersFile, type UsersFile } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { testCert } from '../daemon/mail-harness.js';

export const PASSWORD = 'main-secret-pw';
export const APP_PASSWORD = 'abcd-efgh-ijkm-npqr-stuv-wxyz';

export interface AuthDaemon {
  readonly root: string;
  readonly usersFile: string;
  readonly daemon: RunningDaemon;
  port(protocol: 'imap' | 'pop3' | 'submission'): number;
  close(): Promise<void>;
}

export interface AuthUser {
  readonly address: string;
  /** @default true */
  readonly scram?: boolean;
  readonly appPasswords?: ReadonlyArray<{ name: string; password: string; services?: AppPasswordRecord['services'] }>;
}

export async function usersFileData(users: readonly AuthUser[]): Promise<UsersFile> {
  const out: UsersFile = { users: [], aliases: {} };
  for (const u of users) {
    out.users.push({
      address: u.address,
      passwordHash: await hashPassword(PASSWORD),
      ...(u.scram === false ? {} : { scramSha256: encodeScramSecret(await scramSecretFromPassword(PASSWORD)) }),
      ...(u.appPasswords ? { appPasswords: u.appPasswords.map((a) => ({ name: a.name, hash: hashAppPassword(a.password), ...(a.services ? { services: a.services } : {}) })) } : {}),
    });
  }
  return out;
}

export async function startAuthDaemon(opts: { users: readonly AuthUser[]; auth?: Record<string, unknown> }): Promise<AuthDaemon> {
  const root = await mkdtemp(join(tmpdir(), 'mf-auth-'));
  const usersFile = join(root, 'users.yaml');
  writeUsersFile(usersFile, await usersFileData(opts.users));
  const spec = specSchema.parse({
    platform: { name: 'test', hostname: 'mail.test' },
    domains: [{ name: 'example.com' }],
    imap: { allowInsecureAuth: true, authFailureDelayMs: 0 },
    pop3: { allowInsecureAuth: true, authFailureDelayMs: 0 },
    smtp: { allowInsecureAuth: true, authFailureDelayMs: 0 },
    auth: opts.auth ?? {},
  });
  const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
  const daemon = await startDaemon(config, { dataDir: root, baseDir: root, logger: silentLogger, tls: testCert(), admin: false });
  return {
    root,
    usersFile,
    daemon,
    port: (p) => daemon.sockets.find((x) => x.protocol === p && x.listener.startsWith('default-'))!.port,
    async close() {
      await daemon.stop(1000);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A raw line client: send lines, read lines (CRLF stripped). */
export class LineClient {
  private buf = '';
  private waiters: Array<() => void> = [];
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number): Promise<LineClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new LineClient(socket);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  async line(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const l = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        return l;
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Lines up to and including the first one that starts with `prefix`. */
  async until(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line();
      out.push(l);
      if (l.startsWith(prefix)) return out;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export const b64 = (s: string) => Buffer.from(s).toString('base64');
export const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
