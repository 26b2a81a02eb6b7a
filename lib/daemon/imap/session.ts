/**
 * One IMAP connection: the state machine between the stream parser and the commands. It pulls one
 * parser event at a time, checks state and arguments through the command registry, runs the
 * handler, sends pending untagged updates, then the tagged reply. Per-connection state is kept small
 * (2,000 idle sessions should cost little): the mailbox index is shared (MailStore), the parser holds
 * only unconsumed input, timers are the socket's own.
 */
import type { MailSessionDeps } from '../mail-session-deps.js';
import { lockoutText, type LoginOutcome } from '../login-gate.js';
import { SessionTimers } from '../session-timers.js';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Logger } from '../../log.js';
import type { Lease } from '../../limits/types.js';
import type { Spec } from '../../spec/schema.js';
import { COMMANDS } from './commands/index.js';
import type { Completion, ImapState } from './command.js';
import { DeflateSocket } from './compress.js';
import { LiteralBudget } from './literal-budget.js';
import { imapWorkLimits } from './work-limits.js';
import { withNameMode } from './args.js';
import { isRev2 } from './rev2.js';
import { ImapParser, type ParserEvent } from './parser.js';
import { errorReply, REPLY } from './replies.js';
import type { SelectedMailbox } from './selected.js';

export type ImapSettings = Spec['imap'];

/** What a session needs from the daemon; built once per daemon (see module.ts). */
export type ImapDeps = MailSessionDeps<ImapSettings>;

/** The accepted connection as the listener hands it over (a subset of AcceptedConnection). */
export interface ImapConnection {
  readonly id: string;
  readonly socket: Duplex & { setTimeout(ms: number): unknown; remoteAddress?: string };
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly logger?: Logger;
  /** The planned listener the connection arrived on, for tenant binding (AcceptedConnection.listener). */
  readonly listener?: string;
  setUser?(address: string): void;
}

/** One literal budget per daemon (its deps are built once per daemon context). */
const budgets = new WeakMap<ImapDeps, LiteralBudget>();
function literalBudget(deps: ImapDeps): LiteralBudget {
  let b = budgets.get(deps);
  if (!b) budgets.set(deps, (b = new LiteralBudget(imapWorkLimits(deps.settings).maxLiteralBytesInFlight)));
  return b;
}

/** Pause reading when this much input waits behind a running command. */
const HIGH_WATER_BYTES = 256 * 1024;

export class ImapSession {
  state: ImapState = 'not-authenticated';
  user?: string;
  selected?: SelectedMailbox;
  secure: boolean;
  /** Set while a command runs; the next one waits in the parser buffer. */
  private busy = false;
  private closed = false;
  private socket: ImapConnection['socket'];
  private parser: ImapParser;
  private lineWaiter?: (line: string | undefined) => void;
  private badCount = 0;
  private unauthCount = 0;
  private lease?: Lease;
  private readonly log: Logger;
  private readonly timers: SessionTimers;
  /** COMPRESS=DEFLATE: gives the session's zlib memory back to the budget (compress.ts). */
  private compressRelease?: () => void;

  constructor(
    readonly conn: ImapConnection,
    readonly deps: ImapDeps,
  ) {
    this.socket = conn.socket;
    this.secure = conn.secure;
    this.log = conn.logger ?? deps.logger;
    this.parser = this.newParser();
    this.attach(this.socket);
    this.timers = new SessionTimers(this.conn.socket, deps.settings.preAuthTimeoutSeconds, () => this.bye(REPLY.idleTimeout));
    this.conn.socket.on('close', () => this.cleanup());
    this.conn.socket.on('error', () => this.cleanup());
    this.write(`${REPLY.greeting(deps.hostname, this.capabilities())}\r\n`);
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  get logger(): Logger {
    return this.log;
  }

  private newParser(): ImapParser {
    const s = this.deps.settings;
    // Before login only small literals (a LOGIN password) are read: a 50 MB one was buffered unauthenticated.
    const maxLiteralBytes = this.state === 'not-authenticated' ? Math.min(imapWorkLimits(s).maxPreAuthLiteralBytes, s.maxLiteralBytes) : s.maxLiteralBytes;
    return new ImapParser({ maxLineLengthBytes: s.maxLineLengthBytes, maxLiteralBytes, budget: literalBudget(this.deps) });
  }

  private readonly onData = (chunk: Buffer): void => {
    this.parser.push(chunk);
    this.pump();
  };

  private attach(s: Duplex): void {
    s.on('data', this.onData);
  }

  /** Capabilities for the current state (RFC 3501 §6.1.1). */
  capabilities(): string {
    // IMAP4rev2 (RFC 9051) beside rev1: a client turns it on with ENABLE IMAP4rev2 (rev2.ts).
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UIDPLUS', 'MOVE', 'UNSELECT', 'SPECIAL-USE', 'CHILDREN'];
    // Issue 21 (docs/imap-pop3.md "Extensions beyond RFC 3501"): LIST-EXTENDED, LIST-STATUS, STATUS=SIZE, MULTIAPPEND, BINARY,
    // COMPRESS=DEFLATE (until it is active).
    caps.push('LIST-EXTENDED', 'LIST-STATUS', 'STATUS=SIZE', 'MULTIAPPEND', 'BINARY');
    // RFC 8970: FETCH PREVIEW (fetch-preview.ts).
    caps.push('PREVIEW');
    if (!this.compressed) caps.push('COMPRESS=DEFLATE');
    if (this.state === 'not-authenticated') {
      if (!this.secure && this.deps.tls) caps.push('STARTTLS');
      if (this.authAllowed()) caps.push('AUTH=PLAIN', ...(this.deps.sasl?.names() ?? []).map((m) => `AUTH=${m}`));
      else caps.push('LOGINDISABLED');
    } else {
      caps.push(`APPENDLIMIT=${this.deps.settings.maxLiteralBytes}`);
      // RFC 9208, served by commands/getquota.ts, getquotaroot.ts, setquota.ts.
      caps.push('QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE');
      // RFC 7162, served by condstore.ts, qresync.ts and the SELECT/FETCH/STORE/STATUS/SEARCH/ENABLE commands.
      caps.push('CONDSTORE', 'QRESYNC');
      // RFC 4731, 5182, 5256, 5267: commands/search.ts, sort.ts, thread.ts.
      caps.push('ESEARCH', 'SEARCHRES', 'SORT', 'ESORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES');
    }
    return caps.join(' ');
  }

  authAllowed(): boolean {
    return this.secure || this.deps.settings.allowInsecureAuth;
  }

  write(data: string | Buffer): boolean {
    if (this.closed) return false;
    return this.socket.write(data);
  }

  /** Writes and waits for the socket to drain when its buffer is full (large FETCH responses). */
  async writeAsync(data: string | Buffer): Promise<void> {
    if (this.write(data) || this.closed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Waits for the next raw line (AUTHENTICATE continuation, IDLE's DONE); undefined on close. */
  readLine(): Promise<string | undefined> {
    this.parser.setLineMode(true);
    return new Promise((resolve) => {
      this.lineWaiter = (line) => {
        this.lineWaiter = undefined;
        this.parser.setLineMode(false);
        resolve(line);
      };
      queueMicrotask(() => this.pump());
    });
  }

  private pump(): void {
    while (!this.closed) {
      if (this.busy && !this.lineWaiter) break;
      const ev = this.parser.read();
      if (!ev) break;
      this.onEvent(ev);
    }
    if (this.closed) return;
    if (this.busy && this.parser.bufferedBytes > HIGH_WATER_BYTES) this.socket.pause();
    else this.socket.resume();
  }

  private onEvent(ev: ParserEvent): void {
    switch (ev.kind) {
      case 'line':
        if (this.lineWaiter) this.lineWaiter(ev.line);
        return;
      case 'continue':
        this.write('+ Ready for literal data\r\n');
        return;
      case 'error':
        if (ev.fatal) {
          this.write(`${ev.tag} BAD [${ev.code ?? 'TOOBIG'}] ${ev.text}\r\n`);
          this.bye(ev.code === 'LIMIT' ? REPLY.literalBudget : REPLY.literalTooBig);
          return;
        }
        if (ev.code === 'LIMIT') {
          // The server is short, not the client wrong: not counted as a bad command.
          this.write(`${ev.tag} NO [LIMIT] ${ev.text}\r\n`);
          return;
        }
        this.write(ev.code === 'TOOBIG' && ev.text.startsWith('Literal') ? `${ev.tag} NO [TOOBIG] ${ev.text}\r\n` : `${ev.tag} BAD ${ev.text}\r\n`);
        this.countBad();
        return;
      case 'command':
        this.busy = true;
        void this.run(ev.tag, ev.name, ev.args).finally(() => {
          this.busy = false;
          this.parser.releaseCommands();
          this.pump();
        });
        return;
    }
  }

  private countBad(): void {
    if (++this.badCount >= this.deps.settings.maxBadCommands) this.bye(REPLY.tooManyBad);
  }

  private async run(tag: string, name: string, tokens: Extract<ParserEvent, { kind: 'command' }>['args']): Promise<void> {
    const cmd = COMMANDS.get(name);
    if (this.state === 'not-authenticated' && ++this.unauthCount > this.deps.settings.maxUnauthenticatedCommands) {
      this.bye(REPLY.tooManyUnauth);
      return;
    }
    if (!cmd) {
      this.write(`${tag} BAD Unknown command\r\n`);
      this.countBad();
      return;
    }
    if (!cmd.states.includes(this.state)) {
      this.write(`${tag} BAD ${name} is not valid in the ${this.state} state\r\n`);
      this.countBad();
      return;
    }
    let completion: Completion | undefined;
    try {
      const handler = withNameMode(isRev2(this), () => cmd.bind(tokens, imapWorkLimits(this.deps.settings)));
      completion = await handler(this, tag);
    } catch (e) {
      const r = errorReply(tag, e);
      if (r.internal) this.log.error({ err: e, command: name }, 'imap command failed');
      await this.flushUpdates(cmd.expungeAfter, name.startsWith('UID '));
      this.write(`${r.line}\r\n`);
      if (r.bad) this.countBad();
      return;
    }
    if (!completion || this.closed) return;
    // The untagged updates and the tagged reply leave in one write (one segment, one syscall), not two.
    const socket = this.socket;
    socket.cork();
    try {
      if (cmd.flushAfter) await this.flushUpdates(cmd.expungeAfter, name.startsWith('UID '));
      const code = completion.code ? `[${completion.code}] ` : '';
      this.write(`${tag} ${completion.status ?? 'OK'} ${code}${completion.text}\r\n`);
    } finally {
      socket.uncork();
    }
  }

  /** Refreshes the selected mailbox from disk and sends what changed. */
  async flushUpdates(allowExpunge: boolean, withUid: boolean): Promise<void> {
    const sel = this.selected;
    if (!sel || this.closed) return;
    try {
      await sel.mailbox.refresh();
      await sel.claimRecent();
    } catch (e) {
      this.log.warn({ err: e }, 'mailbox refresh failed');
      return;
    }
    const lines = sel.sync(allowExpunge, withUid);
    if (lines.length > 0) this.write(lines.join('\r\n') + '\r\n');
  }

  /** Authenticates, takes the per-user admission lease, prepares the user's folders. */
  async login(login: string, password: string): Promise<Completion> {
    return this.completeLogin(login, await this.deps.logins.login({ ...this.loginBase(), login, password }));
  }

  /** Who logs in from where, for the login gate (lib/auth/sasl.ts adds the credential). */
  loginBase(): { service: 'imap'; remoteAddress: string; listener?: string; failureDelayMs: number } {
    return { service: 'imap', remoteAddress: this.remoteAddress, listener: this.conn.listener, failureDelayMs: this.deps.settings.authFailureDelayMs };
  }

  /**
   * Maps the gate's outcome to the reply; on success prepares the user's folders. `confirm` (SCRAM's
   * server-final) runs before the session is logged in: false gives the lease back and fails the login.
   */
  async completeLogin(login: string, result: LoginOutcome, confirm?: () => Promise<boolean>): Promise<Completion> {
    const s = this.deps.settings;
    // The gate (login-gate.ts) authenticates, applies lockout and tenant binding, and takes the leases.
    switch (result.kind) {
      case 'unavailable':
        this.log.warn({ err: result.error }, 'directory unavailable');
        return { status: 'NO', code: 'UNAVAILABLE', text: 'Authentication temporarily unavailable' };
      case 'busy':
      case 'rate':
        return { status: 'NO', code: 'UNAVAILABLE', text: result.text };
      case 'locked':
        this.log.info({ login, lockout: result.lockout.scope }, 'login refused: lockout');
        this.countBad();
        return { status: 'NO', code: 'UNAVAILABLE', text: lockoutText(result.lockout) };
      case 'failed':
        this.countBad();
        return { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication failed' };
      case 'wrong-listener':
        this.log.info({ user: result.user.address, belongs: result.hint.listener }, 'login refused: tenant binding');
        return { status: 'NO', code: 'UNAVAILABLE', text: result.hint.text };
      case 'refused':
        return { status: 'NO', code: 'UNAVAILABLE', text: result.refusal.text };
    }
    const { user, lease: admitted } = result;
    if (confirm && !(await confirm())) {
      admitted.release();
      return { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication cancelled' };
    }
    if (this.closed) {
      admitted.release();
      return { status: 'NO', text: 'Connection closed' };
    }
    this.lease = admitted;
    try {
      await this.deps.store.ensureUser(user.address);
    } catch (e) {
      this.lease.release();
      this.lease = undefined;
      this.log.error({ err: e }, 'cannot prepare mailbox');
      return { status: 'NO', code: 'UNAVAILABLE', text: 'Mailbox temporarily unavailable' };
    }
    this.user = user.address;
    this.state = 'authenticated';
    this.parser.setMaxLiteralBytes(s.maxLiteralBytes);
    this.conn.setUser?.(user.address);
    this.timers.loggedIn(s.idleTimeoutSeconds);
    return { code: `CAPABILITY ${this.capabilities()}`, text: 'Logged in' };
  }

  /** Upgrades the connection after "tag OK Begin TLS" has been written. */
  startTls(): void {
    const tlsOpts = this.deps.tls!;
    const raw = this.socket;
    raw.off('data', this.onData);
    // Anything pipelined after STARTTLS arrived in plaintext: drop it (CVE-2011-0411 class).
    this.parser.dispose();
    this.parser = this.newParser();
    const secure = new TLSSocket(raw as never, { isServer: true, key: tlsOpts.key, cert: tlsOpts.cert });
    secure.on('error', () => this.cleanup());
    this.socket = secure as unknown as ImapConnection['socket'];
    this.secure = true;
    this.attach(secure);
  }

  get compressed(): boolean {
    return this.compressRelease !== undefined;
  }

  /** Switches both directions to DEFLATE after "tag OK DEFLATE active" has been written (RFC 4978). */
  startCompress(release: () => void): void {
    const raw = this.socket;
    raw.off('data', this.onData);
    // The client sends nothing compressed before it has read the OK: anything pipelined is dropped.
    this.parser.dispose();
    this.parser = this.newParser();
    const z = new DeflateSocket(raw);
    z.on('error', () => this.cleanup());
    this.compressRelease = release;
    this.socket = z as unknown as ImapConnection['socket'];
    this.attach(z);
  }

  /** Leaves the selected state (CLOSE, UNSELECT, SELECT of another mailbox). */
  deselect(): void {
    this.selected?.handle.release();
    this.selected = undefined;
    if (this.state === 'selected') this.state = 'authenticated';
  }

  bye(line: string): void {
    if (this.closed) return;
    this.write(`${line}\r\n`);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.socket.end();
    this.cleanup();
    // A client that does not close its side is not waited for.
    setTimeout(() => this.conn.socket.destroy(), 2000).unref();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.parser.dispose();
    this.lineWaiter?.(undefined);
    this.deselect();
    this.lease?.release();
    this.lease = undefined;
    this.compressRelease?.();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
