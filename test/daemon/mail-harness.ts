/**
 * Test harness for the IMAP/POP3 front-ends: a Maildir root in a temp dir, a MailStore, in-process
 * admission, and a small in-memory directory; servers on 127.0.0.1:0.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import selfsigned from 'selfsigned';
import { silentLogger } from '../../lib/log.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import type { AuthResult, IDirectory } from '../../lib/directory/types.js';
import { LocalMailboxEvents, MailStore, uniqueName } from '../../lib/store/mailbox/index.js';
import { ImapSession, type ImapDeps } from '../../lib/daemon/imap/index.js';
import { Pop3Session, type Pop3Deps } from '../../lib/daemon/pop3/index.js';
import { specSchema } from '../../lib/spec/schema.js';

export const PASSWORD = 'secret-pw';

export function testDirectory(users: readonly string[]): IDirectory {
  return {
    async authenticate(login, password): Promise<AuthResult> {
      const address = login.toLowerCase();
      if (!users.includes(address) || password !== PASSWORD) return { ok: false, reason: 'bad-credentials' };
      const [localPart, domain] = address.split('@') as [string, string];
      return { ok: true, user: { address, localPart, domain } };
    },
    async resolveRecipient() {
      return [];
    },
    async isLocalDomain() {
      return true;
    },
    async listDomains() {
      return ['example.com'];
    },
    async close() {},
  };
}

export interface Harness {
  readonly root: string;
  readonly port: number;
  readonly pop3Port: number;
  readonly store: MailStore;
  readonly events: LocalMailboxEvents;
  readonly admission: LocalAdmission;
  maildir(address: string): string;
  /** Writes a message into a user's new/ (as delivery does) and publishes the event. */
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

export async function startImapHarness(opts: { imap?: Record<string, unknown>; pop3?: Record<string, unknown>; perUser?: number; users?: string[] } = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'mf-imap-'));
  const events = new LocalMailboxEvents();
  const maildir = (address: string) => join(root, address.split('@')[1]!, address.split('@')[0]!, 'Maildir');
  const store = new MailStore({ maildirOf: maildir, events, pollIntervalMs: 60_000 });
  const admission = new LocalAdmission((k) => (k.kind === 'user' ? (opts.perUser ?? 100) : 1000));
  const spec = specSchema.parse({ platform: { name: 'test' }, domains: [{ name: 'example.com' }], imap: { allowInsecureAuth: true, authFailureDelayMs: 10, ...opts.imap }, pop3: { allowInsecureAuth: true, authFailureDelayMs: 10, ...opts.pop3 } });
  const deps: ImapDeps = {
    hostname: 'mail.test',
    settings: spec.imap,
    directory: testDirectory(opts.users ?? ['alice@example.com', 'bob@example.com']),
    admission,
    store,
    tls: testCert(),
    logger: silentLogger,
  };
  const sockets = new Set<Socket>();
  let n = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    new ImapSession({ id: `c${++n}`, socket, remoteAddress: socket.remoteAddress ?? '127.0.0.1', secure: false }, deps);
  });
  const pop3Deps: Pop3Deps = { ...deps, settings: spec.pop3 };
  const pop3: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    new Pop3Session({ id: `p${++n}`, socket, remoteAddress: socket.remoteAddress ?? '127.0.0.1', secure: false }, pop3Deps);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => pop3.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const pop3Port = (pop3.address() as { port: number }).port;
  return {
    root,
    port,
    pop3Port,
    store,
    events,
    admission,
    maildir,
    async deliver(address, message) {
      const dir = maildir(address);
      await mkdir(join(dir, 'new'), { recursive: true });
      await mkdir(join(dir, 'cur'), { recursive: true });
      await mkdir(join(dir, 'tmp'), { recursive: true });
      await writeFile(join(dir, 'new', uniqueName()), message);
      events.publish(address);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => pop3.close(() => r()));
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
