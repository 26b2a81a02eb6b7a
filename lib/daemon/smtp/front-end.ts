/**
 * SMTP on smtp-server: the shared listener accepts (PROXY, TLS, caps, admission) and hands each socket
 * to `SMTPServer.connect()`; smtp-server speaks the protocol; these hooks decide:
 *   MX (smtp)      no AUTH; recipients only in local domains (else 550 5.7.1), checked against the
 *                  directory (550 5.1.1; 451 4.3.0 when it cannot answer); RCPT TO:<postmaster> goes to
 *                  smtp.postmaster
 *   submission     AUTH PLAIN/LOGIN required (530 5.7.0), 535 5.7.8 on bad credentials, STARTTLS,
 *                  AUTH only over TLS unless smtp.allowInsecureAuth (and then not offered before it);
 *                  admission for user, user+ip and domain at AUTH (421 4.7.0 and close when over); the
 *                  sender must be an address the user owns (553 5.7.1)
 *   submissions    the same, on an implicit-TLS socket
 * Hygiene as Postfix smtpd: smtp.hardErrorLimit error replies without a delivery end the session
 * (421 4.7.0), every RCPT (repeats too) counts toward smtp.maxRecipients, bare LF/CR in DATA follow
 * smtp.bareNewline. Every message is durable in every Maildir before the 250 (IMessageDelivery
 * contract), each copy headed by its Return-Path and Delivered-To, and, with audit.enabled, committed to
 * the audit journal (lib/journal).
 */
import { Readable, type Writable } from 'node:stream';
import { xoauth2ErrorChallenge } from '../../auth/oauth.js';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerAuthenticationResponse, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { DirectoryUser } from '../../directory/types.js';
import { isMailfleetError } from '../../errors.js';
import type { Lease } from '../../limits/types.js';
import type { IJournalRecord } from '../../journal/types.js';
import type { Logger } from '../../log.js';
import type { Protocol } from '../../spec/schema.js';
import type { DeliveryResult, DeliveryTarget } from '../../store/types.js';
import { storeError } from '../../store/maildir/deliver.js';
import { addressParts } from '../../store/maildir/paths.js';
import type { DaemonContext } from '../context.js';
import type { AcceptedConnection } from '../net/listener.js';
import { lockoutText } from '../login-gate.js';
import type { OutboundQueue } from '../../outbound/index.js';
import { createOutbound } from './outbound.js';
import { filterHealthOf } from '../../filter/health.js';
import { MessageFilter } from '../../filter/message-filter.js';
import { receivedHeader, traceHeaders } from './received.js';
import { smtpRateControl, type SmtpRateControl } from '../../limits/smtp-rates.js';
import { replyKeyOf, SMTP_REPLIES, SmtpReplyError, toReplyError, type SmtpReplyKey } from './replies.js';
import { afterQuotaDelivery, keepHead, quotaAtData, quotaAtRcpt } from './quota.js';

/** Per-transaction state: the mailboxes each accepted recipient resolved to. */
interface Transaction {
  readonly targets: DeliveryTarget[];
  /** Recipients in other domains, for the outbound queue (submission with smtp.relay only). */
  readonly remote: string[];
  /** RCPT addresses accepted (lower case), so a repeat costs no lookup and adds no copy. */
  readonly seen: Set<string>;
  /** RCPTs accepted, repeats included: what smtp.maxRecipients counts, as Postfix's smtpd_recipient_limit. */
  rcpts: number;
  /** RCPTs refused past smtp.maxRecipients so far. */
  overshoot: number;
  /** Whether the authenticated user owns MAIL FROM; asked once per transaction. */
  senderOwned?: Promise<boolean>;
}

function newTransaction(): Transaction {
  return { targets: [], remote: [], seen: new Set(), rcpts: 0, overshoot: 0 };
}

/** Per-connection state the hooks need beyond smtp-server's session. */
interface ConnState {
  readonly conn: AcceptedConnection;
  lease?: Lease;
  inData: boolean;
  shuttingDown: boolean;
  /** Error replies since the session's last delivery (smtp.hardErrorLimit). */
  errors: number;
  /** The next error reply is not counted (a 452 within smtp.recipientOvershootLimit). */
  uncountedError: boolean;
  /** smtp-server's connection, for the goodbye at shutdown. */
  smtp?: { send(code: number, text: string): void; close(): void };
}

interface InternalSmtpConnection {
  readonly id: string;
  readonly session?: SMTPServerSession;
  send(code: number, data?: string | string[], context?: string | false): void;
  close(): void;
  on(ev: string, fn: (...a: unknown[]) => void): void;
  connectionReady(): void;
  _setListeners(cb: () => void): void;
  _parser: Writable | false;
  _socket?: { isPaused(): boolean };
  _createParser(): Writable;
}

const ENHANCED_PREFIX = /^([245]\.\d{1,3}\.\d{1,3}) (.*)$/s;

/**
 * smtp-server subclass; its changes are all in connect():
 * - the greeting waits `smtp.greetPauseMs` instead of smtp-server's fixed 100 ms (which would cap a client
 *   that opens one connection per message at 10 messages/s). Whatever the client sends before the
 *   greeting is refused: smtp-server answers such early talkers with 421 "You talk too soon"; we send
 *   Postfix's 554 5.5.1 protocol error instead (the client is broken or a spam bot: retrying is pointless)
 *   and close. With a pause of 0 the greeting still waits one turn of the event loop, so bytes that had
 *   already arrived are caught;
 * - the idle timeout (smtp.idleTimeoutSeconds, smtp-server's socketTimeout) answers 421 4.4.2 like Postfix;
 *   it restarts on every byte, so a slowloris trickling one byte at a time would never meet it: a line
 *   must also be complete within the same time from its first byte (Postfix's smtpd_per_record_deadline);
 * - replies whose text starts with an enhanced status code keep it, instead of smtp-server deriving one
 *   from the reply code (550 is not always 5.1.1: relaying denied is 5.7.1);
 * - every error reply (4xx/5xx but 421, which closes anyway) is told to `onErrorReply`; when it says the
 *   session has made too many, 421 4.7.0 follows and the connection closes (Postfix answers the next
 *   command so; a pipelining client sees the same);
 * - AUTH hidden until STARTTLS (session.disabledCommands, see createServer) is answered 538 5.7.0 as
 *   when it was offered, not smtp-server's 500 for an unknown command.
 */
class MailfleetSmtpServer extends SMTPServer {
  onConnection?: (c: InternalSmtpConnection, id: string) => void;
  onEarlyTalker?: (id: string) => void;
  /** Told of each counted error reply; true closes the session with 421 4.7.0. */
  onErrorReply?: (id: string) => boolean;
  /** Our host name, in front of the too-many-errors text as Postfix puts it. */
  hostName = '';
  greetPauseMs = 0;
  lineDeadlineMs = 300_000;

  override connect(socket: unknown, socketOptions: { id: string; remoteAddress: string; remotePort: number }): void {
    const self = this as unknown as {
      connections: Set<unknown>;
      _onError(e: unknown): void;
      _onClientConnect(d: unknown): void;
    };
    const connection = new (SMTPConnection as unknown as new (s: unknown, sock: unknown, o: unknown) => InternalSmtpConnection)(this, socket, socketOptions);
    self.connections.add(connection);
    connection.on('error', (err) => self._onError(err));
    connection.on('connect', (data) => self._onClientConnect(data));
    const send = connection.send.bind(connection);
    connection.send = (code, data, context) => {
      if (code === 421 && typeof data === 'string') {
        if (data.endsWith(' You talk too soon')) {
          this.onEarlyTalker?.(socketOptions.id);
          sendReply(send, 'PROTOCOL_SYNC');
          connection.close();
          return;
        }
        if (data === 'Timeout - closing connection') return sendReply(send, 'IDLE_TIMEOUT');
      }
      if (code === 500 && context === 'AUTH' && connection.session?.disabledCommands?.includes('AUTH')) sendReply(send, 'AUTH_NEEDS_TLS');
      else {
        const m = typeof data === 'string' ? ENHANCED_PREFIX.exec(data) : null;
        if (m) send(code, `${m[1]} ${m[2]}`, false);
        else send(code, data, context);
      }
      if (code >= 400 && code !== 421 && this.onErrorReply?.(socketOptions.id)) {
        const r = SMTP_REPLIES.TOO_MANY_ERRORS;
        send(r.code, `${r.enhanced} ${this.hostName} ${r.text}`, false);
        connection.close();
      }
    };
    this.onConnection?.(connection, socketOptions.id);
    lineDeadline(connection, this.lineDeadlineMs);
    const pause = this.greetPauseMs;
    connection._setListeners(() => {
      if (pause > 0) setTimeout(() => connection.connectionReady(), pause).unref();
      else setImmediate(() => connection.connectionReady());
    });
  }
}

/**
 * Closes the connection (421 4.4.2) when a command or DATA line stays incomplete for `ms` after its first
 * byte. Watches what the parser is fed (plaintext, also after STARTTLS, which makes a new parser).
 */
function lineDeadline(c: InternalSmtpConnection, ms: number): void {
  let timer: NodeJS.Timeout | undefined;
  // While we hold the socket paused (a slow delivery pushing back on DATA) the rest of the line may be
  // waiting in the kernel: that is our delay, not the client's.
  const fire = (): void => {
    if (c._socket?.isPaused()) timer = setTimeout(fire, ms).unref();
    else c.send(421, 'Timeout - closing connection');
  };
  const watch = (parser: Writable): Writable => {
    const write = parser.write.bind(parser) as (chunk: unknown, ...rest: unknown[]) => boolean;
    parser.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (Buffer.isBuffer(chunk) && chunk.length > 0) {
        if (chunk[chunk.length - 1] === 10) {
          clearTimeout(timer);
          timer = undefined;
        } else if (chunk.includes(10) || !timer) {
          // A new line started in this chunk: its clock starts now.
          clearTimeout(timer);
          timer = setTimeout(fire, ms).unref();
        }
      }
      return write(chunk, ...rest);
    }) as Writable['write'];
    parser.once('finish', () => clearTimeout(timer));
    return parser;
  };
  if (c._parser) watch(c._parser);
  const create = c._createParser.bind(c);
  c._createParser = () => watch(create());
  c.on('close', () => clearTimeout(timer));
}

function sendReply(send: InternalSmtpConnection['send'], key: SmtpReplyKey): void {
  const r = SMTP_REPLIES[key];
  send(r.code, `${r.enhanced} ${r.text}`, false);
}

/** The three SMTP personalities of one daemon. */
export class SmtpFrontEnd {
  private readonly servers = new Map<Protocol, MailfleetSmtpServer>();
  private readonly states = new Map<string, ConnState>();
  private readonly transactions = new WeakMap<object, Transaction>();
  private readonly log: Logger;
  /** SMTP rate buckets (lib/limits/smtp-rates.ts); undefined when the admission has no live limits. */
  private readonly rates?: SmtpRateControl;
  /** Relays submitted mail for other domains (smtp.relay); undefined without a relay. */
  private readonly outbound?: OutboundQueue;
  /** Content filter through rspamd (filtering in the spec); undefined: mail is not scanned. */
  private readonly filter?: MessageFilter;

  constructor(private readonly ctx: DaemonContext) {
    this.log = ctx.logger.child({ component: 'smtp' });
    this.rates = smtpRateControl(ctx.admission, ctx.config.smtp.rateLimitExceptions);
    this.outbound = createOutbound(ctx);
    this.outbound?.start();
    if (ctx.config.filtering)
      this.filter = new MessageFilter({ filtering: ctx.config.filtering, hostname: ctx.config.hostname, registry: ctx.metrics.registry, logger: this.log.child({ component: 'filter' }), health: filterHealthOf(ctx) });
    for (const p of ['smtp', 'submission', 'submissions'] as const) this.servers.set(p, this.createServer(p));
  }

  handle(conn: AcceptedConnection): void {
    const server = this.servers.get(conn.protocol);
    if (!server) {
      conn.socket.destroy();
      return;
    }
    const state: ConnState = { conn, inData: false, shuttingDown: false, errors: 0, uncountedError: false };
    this.states.set(conn.id, state);
    conn.onClose(() => {
      state.lease?.release();
      this.states.delete(conn.id);
    });
    conn.onShutdown(() => {
      state.shuttingDown = true;
      // Mid-DATA: the delivery finishes and the reply goes out first (onData says goodbye after it).
      if (!state.inData) state.smtp?.send(421, '4.3.2 server shutting down, try again later');
    });
    server.connect(conn.socket, { id: conn.id, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort });
  }

  async close(): Promise<void> {
    for (const s of this.servers.values()) s.connections.clear();
    await this.outbound?.stop();
    this.filter?.close();
  }

  private createServer(protocol: Protocol): MailfleetSmtpServer {
    const { config } = this.ctx;
    const submission = protocol !== 'smtp';
    // Plaintext AUTH off: AUTH is not offered before STARTTLS (Postfix smtpd_tls_auth_only), so clients never
    // send credentials in clear. smtp-server's public per-session disabledCommands hides it until onSecure.
    const authAfterTls = protocol === 'submission' && !config.smtp.allowInsecureAuth;
    const opts: SMTPServerOptions = {
      name: config.hostname,
      banner: config.smtp.banner ?? 'mailfleetd ready',
      size: config.smtp.maxMessageSizeBytes,
      key: this.ctx.tls.key,
      cert: this.ctx.tls.cert,
      secure: protocol === 'submissions',
      // smtp-server runs only its built-in mechanisms (PLAIN, LOGIN, XOAUTH2, CRAM-MD5): SCRAM-SHA-256 and
      // OAUTHBEARER would need its private handlers, so submission offers XOAUTH2 for tokens (docs/auth.md).
      authMethods: ['PLAIN', 'LOGIN', ...(this.ctx.sasl.tokens ? ['XOAUTH2'] : [])],
      authOptional: !submission,
      disabledCommands: submission ? [] : ['AUTH'],
      allowInsecureAuth: config.smtp.allowInsecureAuth,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      maxClients: 0,
      // smtp-server's limit on command lines; DATA lines are checked in onData.
      maxCommandLength: config.smtp.maxLineLengthBytes,
      // Idle timeout while the client owes us input (slowloris); smtp-server re-arms it while we work.
      socketTimeout: config.smtp.idleTimeoutSeconds * 1000,
      logger: false,
      onConnect: (session, cb) => {
        if (authAfterTls) session.disabledCommands = ['AUTH'];
        cb();
      },
      onSecure: (_socket, session, cb) => {
        session.disabledCommands = undefined;
        cb();
      },
      onAuth: (auth, session, cb) => {
        this.onAuth(auth, session).then(
          (response) => cb(null, response),
          (e: unknown) => cb(e as Error),
        );
      },
      onMailFrom: (address, session, cb) => {
        this.transactions.set(session.envelope, newTransaction());
        const state = this.states.get(session.id);
        // smtp-server asks for AUTH itself only while it offers AUTH; before STARTTLS it does not (authAfterTls).
        if (submission && !session.user) return cb(this.reject(state, 'auth-required', 'AUTH_REQUIRED'));
        // Flow control: over a message rate the sender gets 450 4.7.1 and retries later (lib/limits/smtp-rates.ts).
        if (!this.rates || !state) return cb();
        this.rates.onMailFrom({ submission, remoteAddress: state.conn.remoteAddress, sender: submission ? String(session.user ?? '') : address.address }).then(
          (r) => cb(r ? this.reject(state, `rate-${r.rate}`, 'RATE_LIMITED', r.text) : undefined),
          (e: unknown) => cb(toReplyError(e)),
        );
      },
      onRcptTo: (address, session, cb) => {
        this.onRcptTo(address, session).then(
          () => cb(),
          (e: unknown) => cb(toReplyError(e)),
        );
      },
      // smtp-server's public close hook: after STARTTLS it has dropped our listeners on the plain socket,
      // so this is how the listener learns that an upgraded session is over (its leases and registry entry).
      onClose: (session) => this.states.get(session.id)?.conn.ended(),
      onData: (stream, session, cb) => {
        this.onData(protocol, stream, session).then(
          (text) => cb(null, text),
          (e: unknown) => cb(toReplyError(e)),
        );
      },
    };
    const server = new MailfleetSmtpServer(opts);
    server.greetPauseMs = config.smtp.greetPauseMs;
    server.hostName = config.hostname;
    server.onErrorReply = (id) => this.countError(id);
    server.lineDeadlineMs = config.smtp.idleTimeoutSeconds * 1000;
    server.onConnection = (c, id) => {
      const st = this.states.get(id);
      if (st) st.smtp = { send: (code, text) => c.send(code, text), close: () => c.close() };
    };
    server.onEarlyTalker = (id) => {
      const st = this.states.get(id);
      st?.conn.logger.info('client spoke before the greeting');
      this.reject(st, 'early-talker', 'PROTOCOL_SYNC');
    };
    server.on('error', (e) => this.log.debug({ err: e }, 'smtp connection error'));
    return server;
  }

  /** One error reply of a session (smtp.hardErrorLimit): true when it was one too many. */
  private countError(id: string): boolean {
    const st = this.states.get(id);
    if (!st) return false;
    if (st.uncountedError) {
      st.uncountedError = false;
      return false;
    }
    if (++st.errors < this.ctx.config.smtp.hardErrorLimit) return false;
    st.conn.logger.info({ errors: st.errors }, 'too many errors: closing');
    this.ctx.metrics.messagesRejected.inc({ listener: st.conn.listener, protocol: st.conn.protocol, reason: 'too-many-errors' });
    return true;
  }

  private reject(state: ConnState | undefined, reason: string, key: SmtpReplyKey, text?: string): SmtpReplyError {
    if (state) this.ctx.metrics.messagesRejected.inc({ listener: state.conn.listener, protocol: state.conn.protocol, reason });
    return new SmtpReplyError(key, text);
  }

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<SMTPServerAuthenticationResponse> {
    const state = this.states.get(session.id);
    const login = auth.username ?? '';
    const base = {
      service: 'submission' as const,
      remoteAddress: state?.conn.remoteAddress ?? session.remoteAddress,
      listener: state?.conn.listener,
      failureDelayMs: this.ctx.config.smtp.authFailureDelayMs,
    };
    const xoauth2 = auth.method === 'XOAUTH2';
    const result = xoauth2 ? await this.ctx.sasl.checkToken(base, login, auth.accessToken) : await this.ctx.logins.login({ ...base, login, password: auth.password ?? '' });
    // The gate (login-gate.ts) authenticates, applies lockout and tenant binding, and takes the leases.
    switch (result.kind) {
      case 'unavailable':
        state?.conn.logger.warn({ err: result.error, login }, 'AUTH: directory failed');
        throw this.reject(state, 'auth-unavailable', 'AUTH_TEMPORARY');
      case 'busy':
        state?.conn.logger.info({ login }, 'AUTH refused: too many checks in flight from this IP');
        throw this.reject(state, 'auth-busy', 'AUTH_TEMPORARY', result.text);
      case 'rate':
        state?.conn.logger.info({ user: result.user.address }, 'AUTH refused: login rate');
        throw this.reject(state, 'auth-rate', 'AUTH_TEMPORARY', result.text);
      case 'locked':
        state?.conn.logger.info({ login, lockout: result.lockout.scope }, 'AUTH refused: lockout');
        throw this.reject(state, 'auth-locked', 'AUTH_LOCKED', lockoutText(result.lockout));
      case 'failed':
        state?.conn.logger.info({ login, reason: result.reason, method: auth.method }, 'AUTH failed');
        // XOAUTH2: the error challenge (334 + JSON); smtp-server answers the client's next line with 535.
        if (xoauth2) {
          if (state) this.ctx.metrics.messagesRejected.inc({ listener: state.conn.listener, protocol: state.conn.protocol, reason: 'auth-failed' });
          return { data: JSON.parse(xoauth2ErrorChallenge()) as object };
        }
        throw this.reject(state, 'auth-failed', 'AUTH_FAILED');
      case 'wrong-listener':
        state?.conn.logger.info({ user: result.user.address, belongs: result.hint.listener }, 'AUTH refused: tenant binding');
        throw this.reject(state, 'wrong-listener', 'WRONG_LISTENER', result.hint.text);
      case 'refused':
        state?.conn.logger.info({ user: result.user.address, limit: result.refusal.text }, 'AUTH refused by admission');
        throw this.reject(state, `limit-${result.refusal.scope.kind}`, 'LIMIT_EXCEEDED', result.refusal.text);
    }
    const user = result.user;
    // Closed while the gate worked (onClose already ran): the lease would have no one to release it.
    if (!state || this.states.get(session.id) !== state) {
      result.lease.release();
      return { user: user.address };
    }
    state.lease?.release();
    state.lease = result.lease;
    state.conn.setUser(user.address);
    return { user: user.address };
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const state = this.states.get(session.id);
    const txn = this.transactions.get(session.envelope) ?? newTransaction();
    this.transactions.set(session.envelope, txn);
    const { maxRecipients, recipientOvershootLimit } = this.ctx.config.smtp;
    // Repeats count too (Postfix smtpd_recipient_limit): one address 10,000 times is not 10,000 free RCPTs.
    // Past the limit, 452 (the client sends the rest in another transaction); only the overshoot beyond
    // smtp.recipientOvershootLimit counts toward smtp.hardErrorLimit (Postfix smtpd_recipient_overshoot_limit).
    if (txn.rcpts >= maxRecipients) {
      if (state && ++txn.overshoot <= recipientOvershootLimit) state.uncountedError = true;
      throw this.reject(state, 'too-many-recipients', 'TOO_MANY_RECIPIENTS', `too many recipients (at most ${maxRecipients})`);
    }
    const key = address.address.toLowerCase();
    // A repeat: 250 without a lookup, and one copy (smtp-server keeps one envelope entry per address; Postfix's
    // cleanup drops duplicate recipients the same way).
    if (txn.seen.has(key)) {
      txn.rcpts++;
      return;
    }
    // RFC 5321 4.5.1: <postmaster> without a domain must be accepted.
    const rcpt = key === 'postmaster' ? this.postmaster() : address.address;
    let parts;
    try {
      parts = addressParts(rcpt);
    } catch {
      throw this.reject(state, 'bad-address', 'BAD_ADDRESS');
    }
    // An authenticated user sends only as an address they own (their own, or an alias of theirs), to local
    // recipients as well as relayed ones (Postfix reject_sender_login_mismatch).
    if (session.user) {
      const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '';
      txn.senderOwned ??= this.ownsSender(String(session.user), sender);
      let owned;
      try {
        owned = await txn.senderOwned;
      } catch (e) {
        // The directory could not answer: temporary (451 4.3.0), asked again at the next RCPT.
        txn.senderOwned = undefined;
        state?.conn.logger.warn({ err: e, sender }, 'RCPT: directory failed on the sender');
        throw this.reject(state, 'directory-unavailable', replyKeyOf(e) === 'INTERNAL' ? 'DIRECTORY_UNAVAILABLE' : replyKeyOf(e));
      }
      if (!owned) throw this.reject(state, 'sender-not-owned', 'SENDER_NOT_OWNED', `<${sender}>: sender address not owned by ${String(session.user)}`);
    }
    let users: DirectoryUser[] = [];
    // Other domains: only authenticated submission, and only with a relay to hand them to.
    let remote = false;
    try {
      if (!(await this.ctx.directory.isLocalDomain(parts.domain))) {
        if (!this.outbound || state?.conn.protocol === 'smtp' || !session.user)
          throw this.reject(state, 'relay-denied', 'RELAY_DENIED', `relaying denied: ${parts.domain} is not a local domain`);
        remote = true;
      } else users = await this.ctx.directory.resolveRecipient(parts.address);
    } catch (e) {
      if (e instanceof SmtpReplyError) throw e;
      state?.conn.logger.warn({ err: e, rcpt: parts.address }, 'RCPT: directory failed');
      throw this.reject(state, 'directory-unavailable', replyKeyOf(e) === 'INTERNAL' ? 'DIRECTORY_UNAVAILABLE' : replyKeyOf(e));
    }
    if (!remote && users.length === 0) throw this.reject(state, 'unknown-user', 'UNKNOWN_USER', `<${parts.address}>: no such user here`);
    if (!remote) {
      try {
        const from = session.envelope.mailFrom;
        users = await quotaAtRcpt(this.ctx, users, from && from.args ? (from.args as { SIZE?: unknown }).SIZE : undefined);
      } catch (e) {
        if (e instanceof SmtpReplyError) throw this.reject(state, 'over-quota', e.key, e.message.slice(6));
        // The usage file is on the mail store: failing to read it is the store's temporary failure
        // (451 4.3.0), never a verdict on the recipient.
        state?.conn.logger.warn({ err: e, rcpt: parts.address }, 'RCPT: quota check failed');
        throw this.reject(state, 'store-unavailable', replyKeyOf(storeError(e)));
      }
    }
    // Flow control (lib/limits/smtp-rates.ts): recipients per message (452 4.5.3) and per hour, messages per domain (450 4.7.1).
    if (this.rates && state) {
      const submission = state.conn.protocol !== 'smtp';
      const r = await this.rates.onRcptTo({
        submission,
        remoteAddress: state.conn.remoteAddress,
        sender: submission ? String(session.user ?? '') : (session.envelope.mailFrom ? session.envelope.mailFrom.address : ''),
        accepted: session.envelope.rcptTo.length,
        recipientDomain: parts.domain,
        firstForDomain: !session.envelope.rcptTo.some((a) => a.address.toLowerCase().endsWith(`@${parts.domain}`)),
      });
      if (r) throw this.reject(state, `rate-${r.rate}`, r.code === 452 ? 'TOO_MANY_RECIPIENTS' : 'RATE_LIMITED', r.text);
    }
    txn.seen.add(key);
    txn.rcpts++;
    if (remote) {
      if (!txn.remote.includes(parts.address)) txn.remote.push(parts.address);
      return;
    }
    for (const u of users) if (!txn.targets.some((t) => t.address === u.address)) txn.targets.push({ address: u.address });
  }

  /** Where RCPT TO:<postmaster> goes: smtp.postmaster, else postmaster@ of the first domain. */
  private postmaster(): string {
    return this.ctx.config.smtp.postmaster ?? `postmaster@${this.ctx.config.domains[0]}`;
  }

  private async ownsSender(user: string, sender: string): Promise<boolean> {
    if (sender === '') return false;
    if (sender === user.toLowerCase()) return true;
    let local;
    try {
      local = await this.ctx.directory.isLocalDomain(addressParts(sender).domain);
    } catch (e) {
      if (replyKeyOf(e) === 'BAD_ADDRESS') return false;
      throw e;
    }
    return local && (await this.ctx.directory.resolveRecipient(sender)).some((u) => u.address.toLowerCase() === user.toLowerCase());
  }

  /**
   * A message with recipients in other domains: local copies delivered, then the rest queued for the
   * relay, both durable before the 250 (if queueing fails the client retries, and local recipients may
   * get the message twice: the usual MTA trade, never a loss).
   */
  private async deliverAndQueue(session: SMTPServerSession, txn: Transaction, targets: readonly DeliveryTarget[], chunks: AsyncGenerator<Buffer>): Promise<{ size: number; id: string; queued: string }> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(c);
    const message = Buffer.concat(parts);
    const local = targets.length > 0 ? await this.deliverLocal(session, targets, message) : undefined;
    const queued = await this.outbound!.enqueue(session.envelope.mailFrom ? session.envelope.mailFrom.address : '', txn.remote, message);
    return { size: message.length, id: local?.ids[0] ?? queued, queued };
  }

  /**
   * The content filter's hook (lib/filter): the message is read whole and scanned by rspamd; refused
   * (550 5.7.1), deferred (451 4.7.1), or passed on with its header edits and each copy's folder (Junk).
   */
  private async scan(filter: MessageFilter, session: SMTPServerSession, state: ConnState | undefined, txn: Transaction, chunks: AsyncGenerator<Buffer>): Promise<{ chunks: AsyncGenerator<Buffer>; targets: readonly DeliveryTarget[] }> {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(c);
    const r = await filter.scan({
      user: typeof session.user === 'string' ? session.user : undefined,
      remoteAddress: state?.conn.remoteAddress ?? session.remoteAddress,
      helo: session.hostNameAppearsAs || undefined,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((a) => a.address),
      queueId: `${session.id}.${session.transaction}`,
      targets: txn.targets,
      message: Buffer.concat(parts),
    });
    if (r.kind === 'reject') throw new SmtpReplyError('FILTER_REJECTED', r.text);
    if (r.kind === 'tempfail') throw new SmtpReplyError('FILTER_DEFERRED', r.text);
    const message = r.message;
    return { chunks: (async function* () { yield message; })(), targets: r.targets };
  }

  /**
   * Local delivery with the quota hooks (quota.ts): mailboxes this message would push over quota are
   * dropped and reported to the sender; every one over is 552 5.2.2 (thrown) unless `orQueued`.
   */
  private async deliverLocal(session: SMTPServerSession, targets: readonly DeliveryTarget[], message: Buffer | Readable, orQueued = true): Promise<DeliveryResult | undefined> {
    const arrival = new Date();
    const kept = Buffer.isBuffer(message) ? undefined : keepHead(message);
    const body = kept ? Readable.from(kept.chunks, { objectMode: false }) : message;
    const head = () => (Buffer.isBuffer(message) ? message : kept!.head());
    let result;
    try {
      // The fair gate on durable writes queues this delivery's writes with its sender's: the user on
      // submission, else the client address.
      const owner = typeof session.user === 'string' ? session.user : `ip:${this.states.get(session.id)?.conn.remoteAddress ?? session.remoteAddress}`;
      result = await this.ctx.delivery.deliver(withTraceHeaders(session, targets), body, { ...quotaAtData(this.ctx, targets), owner });
    } catch (e) {
      // Local mailboxes all full but relayed recipients remain: those still get the message.
      if (!(orQueued && isMailfleetError(e, 'OVER_QUOTA'))) throw e;
      result = { ids: [], size: head().length, refused: targets.map((_, i) => i) };
    }
    await afterQuotaDelivery(this.ctx, { targets, result, sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', head: head(), arrival, outbound: this.outbound });
    return result.ids.length > 0 ? result : undefined;
  }

  private async onData(protocol: Protocol, stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const state = this.states.get(session.id);
    const txn = this.transactions.get(session.envelope);
    const maxLine = this.ctx.config.smtp.maxLineLengthBytes;
    const started = process.hrtime.bigint();
    if (state) state.inData = true;
    let lineTooLong = false;
    let tooBig = false;
    let bare: 'LF' | 'CR' | undefined;
    const normalize = this.ctx.config.smtp.bareNewline === 'normalize';
    let journal: IJournalRecord | undefined;
    try {
      const header = Buffer.from(
        receivedHeader({
          helo: session.hostNameAppearsAs,
          remoteAddress: state?.conn.remoteAddress ?? session.remoteAddress,
          hostname: this.ctx.config.hostname,
          transmissionType: session.transmissionType,
          id: `${session.id}.${session.transaction}`,
          recipient: session.envelope.rcptTo.length === 1 ? session.envelope.rcptTo[0]!.address : undefined,
          user: typeof session.user === 'string' ? session.user : undefined,
        }),
      );
      // Bytes since the last LF of the previous chunk: a line may span chunks.
      let lineLength = 0;
      // The byte before this chunk (bare CR/LF checks span chunks); the data starts as after a line end.
      let prev = 10;
      // Over a limit: stop passing bytes on, but keep reading to the final dot, then fail the delivery
      // (its spool file is removed) and answer.
      let failed = false;
      const checked = async function* (): AsyncGenerator<Buffer> {
        yield header;
        for await (let chunk of readWithoutDestroy(stream)) {
          if (failed) continue;
          if (stream.sizeExceeded) {
            tooBig = failed = true;
            continue;
          }
          // smtp.bareNewline: a lone LF or CR would let one message look different to different readers
          // (SMTP smuggling); refuse it (Postfix smtpd_forbid_bare_newline = reject) or store it as CRLF.
          const found = bareNewline(chunk, prev);
          if (found) {
            if (!normalize) {
              bare = found;
              failed = true;
              continue;
            }
            chunk = normalizeNewlines(chunk, prev);
          }
          prev = chunk[chunk.length - 1] ?? prev;
          let from = 0;
          for (;;) {
            const nl = chunk.indexOf(10, from);
            const seg = (nl < 0 ? chunk.length : nl) - from;
            if (lineLength + seg > maxLine) {
              lineTooLong = failed = true;
              break;
            }
            if (nl < 0) {
              lineLength += seg;
              break;
            }
            lineLength = 0;
            from = nl + 1;
          }
          if (!failed) yield chunk;
        }
        if (stream.sizeExceeded) tooBig = failed = true;
        if (failed) throw new SmtpReplyError(tooBig ? 'MESSAGE_TOO_BIG' : bare ? `BARE_${bare}` : 'LINE_TOO_LONG');
      };
      if (!txn || (txn.targets.length === 0 && txn.remote.length === 0)) throw new SmtpReplyError('INTERNAL', 'no valid recipients');
      let chunks = checked();
      let targets: readonly DeliveryTarget[] = txn.targets;
      if (this.filter) ({ chunks, targets } = await this.scan(this.filter, session, state, txn, chunks));
      // Audit journal (lib/journal): the bytes (as filtered) are spooled on their way to delivery, and the
      // entry is committed before the 250, so no message is acknowledged without it.
      journal = this.ctx.journal?.begin({
        protocol,
        listener: state?.conn.listener,
        clientIp: state?.conn.remoteAddress ?? session.remoteAddress,
        helo: session.hostNameAppearsAs,
        user: typeof session.user === 'string' ? session.user : undefined,
        sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        recipients: session.envelope.rcptTo.map((a) => a.address),
        transaction: `${session.id}.${session.transaction}`,
      });
      const body = journal ? journal.tee(chunks) : chunks;
      let done: { size: number; id: string; queued?: string };
      if (txn.remote.length > 0) done = await this.deliverAndQueue(session, txn, targets, body);
      else {
        const result = (await this.deliverLocal(session, targets, await smallAsBuffer(body), false))!;
        done = { size: result.size, id: result.ids[0]! };
      }
      await journal?.commit();
      this.ctx.metrics.deliverySeconds.observe({ protocol }, Number(process.hrtime.bigint() - started) / 1e9);
      if (state) {
        this.ctx.metrics.messagesAccepted.inc({ listener: state.conn.listener, protocol });
        // smtp.hardErrorLimit counts errors made without delivering mail, as Postfix does.
        state.errors = 0;
      }
      if (done.queued) state?.conn.logger.info({ tx: session.transaction, size: done.size, rcpts: txn.targets.length, relay: txn.remote.length, id: done.id, queued: done.queued }, 'delivered and queued');
      else state?.conn.logger.info({ tx: session.transaction, size: done.size, rcpts: txn.targets.length, id: done.id }, 'delivered');
      return `2.0.0 Ok: queued as ${done.id}`;
    } catch (e) {
      await journal?.abort();
      // smtp-server needs the stream consumed before the reply.
      if (!stream.readableEnded && !stream.destroyed) {
        stream.resume();
        await new Promise<void>((r) => {
          stream.once('end', () => r());
          stream.once('close', () => r());
        });
      }
      // The size and line checks throw inside the stream, so delivery sees (and wraps) them: flags first.
      const err = tooBig
        ? new SmtpReplyError('MESSAGE_TOO_BIG')
        : bare
          ? new SmtpReplyError(`BARE_${bare}`)
          : lineTooLong
            ? new SmtpReplyError('LINE_TOO_LONG', `line longer than ${maxLine} bytes`)
            : e instanceof SmtpReplyError
              ? e
              : new SmtpReplyError(replyKeyOf(e));
      const reason = tooBig ? 'size' : bare ? `bare-${bare.toLowerCase()}` : lineTooLong ? 'line-length' : err.key.toLowerCase().replace(/_/g, '-');
      if (state) this.ctx.metrics.messagesRejected.inc({ listener: state.conn.listener, protocol, reason });
      if (!tooBig && !bare && !lineTooLong && !(e instanceof SmtpReplyError)) state?.conn.logger.error({ err: e }, 'delivery failed');
      throw err;
    } finally {
      if (state) {
        state.inData = false;
        if (state.shuttingDown) {
          const s = state.smtp;
          // After smtp-server has written the DATA reply.
          setImmediate(() => s?.send(421, '4.3.2 server shutting down, try again later'));
        }
      }
    }
  }
}

/** Each mailbox's copy starts with Return-Path: <MAIL FROM> and its own Delivered-To (received.ts). */
function withTraceHeaders(session: SMTPServerSession, targets: readonly DeliveryTarget[]): DeliveryTarget[] {
  const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
  return targets.map((t) => ({ ...t, headers: traceHeaders(sender, t.address) }));
}

/**
 * The first bare newline in `chunk`: an LF not after a CR, or a CR not before an LF (`prev` is the byte
 * before the chunk). A CR that ends the chunk is judged with the next one (its first byte, after `prev`).
 * indexOf does the scanning: this runs on every DATA chunk.
 */
export function bareNewline(chunk: Buffer, prev: number): 'LF' | 'CR' | undefined {
  if (prev === 13 && chunk.length > 0 && chunk[0] !== 10) return 'CR';
  for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) if ((i > 0 ? chunk[i - 1] : prev) !== 13) return 'LF';
  for (let i = chunk.indexOf(13); i >= 0 && i < chunk.length - 1; i = chunk.indexOf(13, i + 1)) if (chunk[i + 1] !== 10) return 'CR';
  return undefined;
}

/** `chunk` with every bare LF and bare CR made CRLF (smtp.bareNewline: normalize); `prev` as in bareNewline. */
export function normalizeNewlines(chunk: Buffer, prev: number): Buffer {
  const out: number[] = [];
  let p = prev;
  for (const b of chunk) {
    if (p === 13 && b !== 10) out.push(10);
    if (b === 10 && p !== 13) out.push(13);
    out.push(b);
    p = b;
  }
  return Buffer.from(out);
}

/** Messages up to this size reach delivery as one Buffer; bigger ones are streamed. */
const BUFFERED_MESSAGE_BYTES = 65536;

/**
 * Most messages are small: read up to BUFFERED_MESSAGE_BYTES ahead and hand delivery one Buffer, which
 * saves a stream and two async-iterator layers per message; a bigger message is streamed (what was read
 * ahead first), so memory per message stays bounded. Errors of `chunks` always reach delivery as a
 * failing stream.
 */
async function smallAsBuffer(chunks: AsyncGenerator<Buffer>): Promise<Buffer | Readable> {
  const head: Buffer[] = [];
  let bytes = 0;
  try {
    while (bytes < BUFFERED_MESSAGE_BYTES) {
      const r = await chunks.next();
      if (r.done) return head.length === 1 ? head[0]! : Buffer.concat(head, bytes);
      head.push(r.value);
      bytes += r.value.length;
    }
  } catch (e) {
    // Delivery sees the failure as before, as a failing stream (and answers and counts it the same way).
    return new Readable({
      read() {
        this.destroy(e as Error);
      },
    });
  }
  return Readable.from(
    (async function* () {
      yield* head;
      yield* chunks;
    })(),
    { objectMode: false },
  );
}

/**
 * Chunks of smtp-server's DATA stream. Unlike `for await` on the stream itself, leaving early does not
 * destroy it (smtp-server would never answer): the rest is read and dropped.
 */
async function* readWithoutDestroy(stream: Readable): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let ended = false;
  let error: unknown;
  let wake: (() => void) | undefined;
  const onData = (c: Buffer) => {
    queue.push(c);
    if (queue.length > 16) stream.pause();
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  const onError = (e: unknown) => {
    error = e;
    wake?.();
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('error', onError);
  try {
    for (;;) {
      const c = queue.shift();
      if (c) {
        if (queue.length <= 4 && stream.isPaused()) stream.resume();
        yield c;
        continue;
      }
      if (error) throw error;
      if (ended) return;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onError);
    if (!ended) stream.resume();
  }
}
