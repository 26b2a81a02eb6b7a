/**
 * One POP3 connection (RFC 1939, CAPA and response codes from RFC 2449, STLS from RFC 2595,
 * AUTH from RFC 5034: PLAIN, and SCRAM-SHA-256, OAUTHBEARER, XOAUTH2 through lib/auth/sasl.ts). The maildrop is INBOX, snapshotted at login; deletions apply at QUIT.
 * The maildrop lock is an O_EXCL file in the Maildir, so a second session gets -ERR [IN-USE] on any
 * node of a shared filesystem.
 */
import type { MailSessionDeps } from '../mail-session-deps.js';
import { lockoutText, type LoginOutcome } from '../login-gate.js';
import type { AttemptBase, ISaslExchange } from '../../auth/sasl.js';
import { SessionTimers } from '../session-timers.js';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { isMailfleetError } from '../../errors.js';
import type { Lease } from '../../limits/types.js';
import type { Logger } from '../../log.js';
import type { Spec } from '../../spec/schema.js';
import { FileLock } from '../../store/mailbox/lock.js';
import type { MailboxHandle, MessageRecord } from '../../store/mailbox/index.js';
import { errorReply, REPLY } from './replies.js';

export type Pop3Settings = Spec['pop3'];

export type Pop3Deps = MailSessionDeps<Pop3Settings>;

export interface Pop3Connection {
  readonly id: string;
  readonly socket: Duplex & { setTimeout(ms: number): unknown };
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly logger?: Logger;
  /** The planned listener the connection arrived on, for tenant binding (AcceptedConnection.listener). */
  readonly listener?: string;
  setUser?(address: string): void;
}

/** RFC 2449 §4: command lines are at most 255 octets; leave room for long AUTH responses. */
const MAX_LINE = 8192;
/** Unanswered pipelined input held before the socket is paused. */
const MAX_PENDING = 8 * MAX_LINE;
/** Stands in the queue for a line refused while it was still arriving (a client sending it verbatim gets the same -ERR). */
const TOO_LONG_MARK = '\u0000too-long\n';
export const POP3_LOCK_FILE = 'mailfleet-pop3.lock';

type State = 'authorization' | 'transaction';

export class Pop3Session {
  private state: State = 'authorization';
  private socket: Pop3Connection['socket'];
  private secure: boolean;
  private buf = '';
  /** Inside a line already refused as too long, until its LF. */
  private discarding = false;
  private busy = false;
  private closed = false;
  private pendingUser?: string;
  /** Where the next line goes while a SASL exchange waits for the client's response. */
  private saslNext?: (line: string) => Promise<void>;
  /** A lease taken by a SCRAM login still waiting for the client to accept the server-final message. */
  private pendingLease?: Lease;
  private badCount = 0;
  private unauthCount = 0;
  private lease?: Lease;
  private lock?: FileLock;
  private handle?: MailboxHandle;
  private messages: MessageRecord[] = [];
  private deleted = new Set<number>();
  private readonly log: Logger;
  private readonly timers: SessionTimers;

  constructor(
    readonly conn: Pop3Connection,
    readonly deps: Pop3Deps,
  ) {
    this.socket = conn.socket;
    this.secure = conn.secure;
    this.log = conn.logger ?? deps.logger;
    this.socket.on('data', this.onData);
    this.timers = new SessionTimers(conn.socket, deps.settings.preAuthTimeoutSeconds, () => this.socket.writable && this.bye(REPLY.idleTimeout));
    conn.socket.on('close', () => void this.cleanup(false));
    conn.socket.on('error', () => void this.cleanup(false));
    this.write(REPLY.greeting(deps.hostname));
  }

  private readonly onData = (chunk: Buffer): void => {
    let text = chunk.toString('latin1');
    if (this.discarding) {
      // The rest of a line already refused as too long: drop it up to its LF.
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      this.discarding = false;
      text = text.slice(nl + 1);
    }
    this.buf += text;
    const tail = this.buf.length - (this.buf.lastIndexOf('\n') + 1);
    if (tail > MAX_LINE) {
      // An endless line: refuse it now, keep the complete lines before it, drop the rest of it as it comes.
      this.buf = this.buf.slice(0, this.buf.length - tail) + TOO_LONG_MARK;
      this.discarding = true;
    }
    // A client pipelining faster than we answer: stop reading until the queue drains.
    if (this.buf.length > MAX_PENDING) this.socket.pause();
    this.pump();
  };

  private pump(): void {
    while (!this.busy && !this.closed) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const raw = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (this.buf.length <= MAX_PENDING && this.socket.isPaused()) this.socket.resume();
      if (raw.length > MAX_LINE || raw === TOO_LONG_MARK.slice(0, -1)) {
        this.write(REPLY.lineTooLong);
        this.countBad();
        continue;
      }
      const line = raw.replace(/\r$/, '');
      this.busy = true;
      void this.onLine(line)
        .catch((e) => {
          const r = errorReply(e);
          if (r.internal) this.log.error({ err: e }, 'pop3 command failed');
          this.write(r.line);
        })
        .finally(() => {
          this.busy = false;
          this.pump();
        });
    }
  }

  private write(line: string): void {
    if (!this.closed) this.socket.write(`${line}\r\n`);
  }

  private countBad(): void {
    if (++this.badCount >= this.deps.settings.maxBadCommands) this.bye(REPLY.tooManyBad);
  }

  private authAllowed(): boolean {
    return this.secure || this.deps.settings.allowInsecureAuth;
  }

  private async onLine(line: string): Promise<void> {
    const next = this.saslNext;
    if (next) {
      this.saslNext = undefined;
      return next(line);
    }
    const sp = line.indexOf(' ');
    const cmd = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    if (this.state === 'authorization' && ++this.unauthCount > this.deps.settings.maxUnauthenticatedCommands) {
      return this.bye(REPLY.tooManyUnauth);
    }
    const handler = this.state === 'authorization' ? AUTHORIZATION.get(cmd) : TRANSACTION.get(cmd);
    if (!handler) {
      this.write(ANY_STATE.has(cmd) ? '-ERR Command not valid in this state' : '-ERR Unknown command');
      return this.countBad();
    }
    await handler(this, arg);
  }

  // ---- AUTHORIZATION state ----

  capa(): void {
    const lines = ['+OK Capability list follows', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'IMPLEMENTATION mailfleet'];
    // Where plaintext login is refused, USER and SASL appear only after STLS (RFC 2595 §4), so clients
    // do not send credentials in the clear (as IMAP's LOGINDISABLED, SMTP's hidden AUTH).
    if (this.authAllowed()) lines.splice(3, 0, 'USER', ['SASL PLAIN', ...(this.deps.sasl?.names() ?? [])].join(' '));
    if (this.state === 'authorization' && !this.secure && this.deps.tls) lines.push('STLS');
    lines.push('.');
    this.write(lines.join('\r\n'));
  }

  user(arg: string): void {
    if (!this.authAllowed()) return this.write('-ERR [AUTH] Use STLS before USER');
    if (!arg) return this.write('-ERR Missing user name');
    this.pendingUser = arg;
    this.write('+OK Send your password');
  }

  async pass(arg: string): Promise<void> {
    if (this.pendingUser === undefined) return this.write('-ERR USER first');
    const user = this.pendingUser;
    this.pendingUser = undefined;
    await this.login(user, arg);
  }

  async auth(arg: string): Promise<void> {
    const [mech, initial] = arg.split(' ');
    if (!mech) return this.write('-ERR Missing mechanism');
    const plain = mech.toUpperCase() === 'PLAIN';
    const exchange = plain ? undefined : this.deps.sasl?.start(mech, this.loginBase());
    if (!plain && !exchange) return this.write('-ERR Unsupported mechanism');
    if (!this.authAllowed()) return this.write('-ERR [AUTH] Use STLS before AUTH');
    const run = exchange ? (line: string) => this.saslStep(exchange, line) : (line: string) => this.plain(line);
    if (initial === undefined) return this.challenge('', run);
    await run(initial);
  }

  /** Sends a SASL challenge (RFC 5034 `+ base64`); the next line goes to `next`, `*` cancels. */
  private challenge(data: string, next: (line: string) => Promise<void>): void {
    this.saslNext = (line) => (line === '*' ? Promise.resolve(this.write('-ERR Authentication cancelled')) : next(line));
    this.write(`+ ${Buffer.from(data).toString('base64')}`);
  }

  /** One step of SCRAM-SHA-256, OAUTHBEARER or XOAUTH2 (lib/auth/sasl.ts). */
  private async saslStep(exchange: ISaslExchange, b64: string): Promise<void> {
    const step = await exchange.step(Buffer.from(b64 === '=' ? '' : b64, 'base64').toString('utf8'));
    if (step.kind === 'challenge') return this.challenge(step.data, (line) => this.saslStep(exchange, line));
    const { outcome, final, login } = step;
    if (final === undefined || outcome.kind !== 'ok') return this.complete(login, outcome);
    // SCRAM's server-final as a last challenge: an empty answer accepts it, anything else gives the lease back.
    this.pendingLease = outcome.lease;
    this.saslNext = async (line) => {
      this.pendingLease = undefined;
      if (line !== '') {
        outcome.lease.release();
        this.write(line === '*' ? '-ERR Authentication cancelled' : REPLY.authFailed);
        return this.countBad();
      }
      await this.complete(login, outcome);
    };
    this.write(`+ ${Buffer.from(final).toString('base64')}`);
  }

  private loginBase(): AttemptBase {
    return { service: 'pop3', remoteAddress: this.conn.remoteAddress, listener: this.conn.listener, failureDelayMs: this.deps.settings.authFailureDelayMs };
  }

  private async plain(b64: string): Promise<void> {
    const [, user, password] = Buffer.from(b64 === '=' ? '' : b64, 'base64').toString('utf8').split('\u0000');
    if (user === undefined || password === undefined) return this.write('-ERR [AUTH] Invalid SASL PLAIN response');
    await this.login(user, password);
  }

  stls(): void {
    if (this.secure || !this.deps.tls) return this.write('-ERR STLS not available');
    this.write('+OK Begin TLS negotiation');
    const raw = this.socket;
    raw.off('data', this.onData);
    this.buf = ''; // plaintext pipelined after STLS is dropped
    this.discarding = false;
    const secure = new TLSSocket(raw as never, { isServer: true, key: this.deps.tls.key, cert: this.deps.tls.cert });
    secure.on('error', () => void this.cleanup(false));
    this.socket = secure as unknown as Pop3Connection['socket'];
    this.secure = true;
    secure.on('data', this.onData);
  }

  private async login(login: string, password: string): Promise<void> {
    await this.complete(login, await this.deps.logins.login({ ...this.loginBase(), login, password }));
  }

  /** Maps the gate's outcome to the reply; on success locks and opens the maildrop. */
  private async complete(login: string, result: LoginOutcome): Promise<void> {
    const s = this.deps.settings;
    // The gate (login-gate.ts) authenticates, applies lockout and tenant binding, and takes the leases.
    switch (result.kind) {
      case 'unavailable':
        this.log.warn({ err: result.error }, 'directory unavailable');
        return this.write('-ERR [SYS/TEMP] Authentication temporarily unavailable');
      case 'busy':
      case 'rate':
        return this.write(`-ERR [SYS/TEMP] ${result.text}`);
      case 'locked':
        this.log.info({ login, lockout: result.lockout.scope }, 'login refused: lockout');
        this.write(`-ERR [SYS/TEMP] ${lockoutText(result.lockout)}`);
        return this.countBad();
      case 'failed':
        this.write(REPLY.authFailed);
        return this.countBad();
      case 'wrong-listener':
        this.log.info({ user: result.user.address, belongs: result.hint.listener }, 'login refused: tenant binding');
        // Permanent and not about the password (a client would ask for a new one on [AUTH]).
        return this.write(`-ERR [SYS/PERM] ${result.hint.text}`);
      case 'refused':
        return this.write(`-ERR [IN-USE] ${result.refusal.text}`);
    }
    const { user: u, lease: admitted } = result;
    if (this.closed) return admitted.release();
    const lock = new FileLock(join(this.deps.store.maildir(u.address), POP3_LOCK_FILE), { timeoutMs: 0 });
    try {
      await this.deps.store.ensureUser(u.address);
      await lock.acquire();
    } catch (e) {
      admitted.release();
      if (isMailfleetError(e, 'MAILBOX_LOCKED')) return this.write(REPLY.locked);
      throw e;
    }
    try {
      this.handle = await this.deps.store.openMailbox(u.address, 'INBOX');
    } catch (e) {
      await lock.release();
      admitted.release();
      throw e;
    }
    if (this.closed) {
      this.handle.release();
      await lock.release();
      return admitted.release();
    }
    this.lease = admitted;
    this.lock = lock;
    this.messages = [...this.handle.mailbox.messages];
    this.state = 'transaction';
    this.conn.setUser?.(u.address);
    this.timers.loggedIn(s.idleTimeoutSeconds);
    this.write(`+OK Logged in, ${this.messages.length} messages`);
  }

  // ---- TRANSACTION state ----

  private msg(arg: string): { n: number; r: MessageRecord } | undefined {
    if (!/^\d{1,9}$/.test(arg)) {
      this.write('-ERR Invalid message number');
      return undefined;
    }
    const n = Number(arg);
    const r = this.messages[n - 1];
    if (!r || this.deleted.has(n)) {
      this.write(`-ERR No such message${r ? ' (deleted)' : ''}`);
      return undefined;
    }
    return { n, r };
  }

  private uidl(r: MessageRecord): string {
    // Stable across sessions and nodes while UIDVALIDITY holds, as Dovecot's default %08Xu%08Xv.
    const h = (x: number) => x.toString(16).toUpperCase().padStart(8, '0');
    return `${h(r.uid)}${h(this.handle!.mailbox.uidValidity)}`;
  }

  stat(): void {
    let n = 0;
    let size = 0;
    this.messages.forEach((r, i) => {
      if (this.deleted.has(i + 1)) return;
      n++;
      size += r.size;
    });
    this.write(`+OK ${n} ${size}`);
  }

  listOrUidl(arg: string, uidl: boolean): void {
    const value = (r: MessageRecord) => (uidl ? this.uidl(r) : String(r.size));
    if (arg) {
      const m = this.msg(arg);
      if (m) this.write(`+OK ${m.n} ${value(m.r)}`);
      return;
    }
    const lines = ['+OK'];
    this.messages.forEach((r, i) => {
      if (!this.deleted.has(i + 1)) lines.push(`${i + 1} ${value(r)}`);
    });
    lines.push('.');
    this.write(lines.join('\r\n'));
  }

  async retr(arg: string, topLines?: number): Promise<void> {
    const m = this.msg(arg.split(' ')[0] ?? '');
    if (!m) return;
    let data = await this.handle!.mailbox.read(m.r);
    if (topLines !== undefined) {
      const i = data.indexOf('\r\n\r\n');
      if (i >= 0) {
        let end = i + 4;
        for (let k = 0; k < topLines && end < data.length; k++) {
          const nl = data.indexOf('\n', end);
          end = nl < 0 ? data.length : nl + 1;
        }
        data = data.subarray(0, end);
      }
    }
    let text = data.toString('latin1');
    if (!text.endsWith('\r\n')) text += '\r\n';
    // Byte-stuff lines that start with '.' (RFC 1939 §3).
    text = text.replace(/^\./gm, '..');
    const ok = Buffer.from(topLines === undefined ? `+OK ${m.r.size} octets\r\n` : '+OK\r\n');
    const ok2 = this.socket.write(Buffer.concat([ok, Buffer.from(text, 'latin1'), Buffer.from('.\r\n')]));
    if (!ok2) await new Promise((r) => this.socket.once('drain', r));
  }

  top(arg: string): Promise<void> | void {
    const [n, lines] = arg.split(' ');
    if (n === undefined || lines === undefined || !/^\d{1,9}$/.test(lines)) return this.write('-ERR Usage: TOP msg lines');
    return this.retr(n, Number(lines));
  }

  dele(arg: string): void {
    const m = this.msg(arg);
    if (!m) return;
    this.deleted.add(m.n);
    this.write(`+OK Message ${m.n} deleted`);
  }

  rset(): void {
    this.deleted.clear();
    this.write(`+OK ${this.messages.length} messages`);
  }

  noop(): void {
    this.write('+OK');
  }

  async quit(): Promise<void> {
    if (this.state === 'transaction') {
      try {
        await this.cleanup(true);
      } catch (e) {
        this.log.error({ err: e }, 'pop3 update failed');
        this.write('-ERR [SYS/TEMP] Some deleted messages were not removed');
        return this.close();
      }
    }
    this.write('+OK Bye');
    this.close();
  }

  /** Daemon shutdown: the session ends without applying DELE (RFC 1939 §6: only QUIT updates). */
  shutdown(line: string): void {
    this.bye(line);
  }

  private bye(line: string): void {
    this.write(line);
    this.close();
  }

  private close(): void {
    this.socket.end();
    void this.cleanup(false);
    setTimeout(() => this.conn.socket.destroy(), 2000).unref();
  }

  /** Releases the session; with `update` (QUIT) the deleted messages are expunged first. */
  private async cleanup(update: boolean): Promise<void> {
    if (this.closed && !update) return;
    const handle = this.handle;
    const lock = this.lock;
    const lease = this.lease;
    this.pendingLease?.release();
    this.pendingLease = undefined;
    this.handle = undefined;
    this.lock = undefined;
    this.lease = undefined;
    try {
      if (update && handle && this.deleted.size > 0) {
        await handle.mailbox.expunge([...this.deleted].map((n) => this.messages[n - 1]!.uid));
        handle.changed();
      }
    } finally {
      this.closed = this.closed || !update;
      handle?.release();
      await lock?.release();
      lease?.release();
    }
  }
}

type Handler = (s: Pop3Session, arg: string) => void | Promise<void>;

const AUTHORIZATION = new Map<string, Handler>([
  ['CAPA', (s) => s.capa()],
  ['USER', (s, a) => s.user(a)],
  ['PASS', (s, a) => s.pass(a)],
  ['AUTH', (s, a) => s.auth(a)],
  ['STLS', (s) => s.stls()],
  ['QUIT', (s) => s.quit()],
  ['NOOP', (s) => s.noop()],
]);

const TRANSACTION = new Map<string, Handler>([
  ['CAPA', (s) => s.capa()],
  ['STAT', (s) => s.stat()],
  ['LIST', (s, a) => s.listOrUidl(a, false)],
  ['UIDL', (s, a) => s.listOrUidl(a, true)],
  ['RETR', (s, a) => s.retr(a)],
  ['TOP', (s, a) => s.top(a)],
  ['DELE', (s, a) => s.dele(a)],
  ['RSET', (s) => s.rset()],
  ['NOOP', (s) => s.noop()],
  ['QUIT', (s) => s.quit()],
]);

const ANY_STATE = new Set([...AUTHORIZATION.keys(), ...TRANSACTION.keys()]);
