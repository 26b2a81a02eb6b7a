/**
 * The shared listener of every mail protocol (SMTP, IMAP, POP3): accept, PROXY v2, implicit TLS, the
 * per-port cap, connect-time admission (ip and listener scopes), the connection registry and graceful
 * close. Protocol sessions never see a connection that was refused here.
 *
 * Order for one connection:
 *   accept → [PROXY v2 header, short timeout] → [TLS handshake when tls === 'implicit']
 *          → port cap (DaemonSocket.maxConnections) → admission (ip, listener) → handle(conn)
 * A refusal after the TLS step is written by the protocol's `busy(socket, text)` (SMTP `421 4.7.0 …`,
 * IMAP `* BYE [UNAVAILABLE] …`, POP3 `-ERR [SYS/TEMP] …`), then the socket is closed. A missing or
 * malformed PROXY header, or a failed handshake, closes without a reply (there is no protocol yet).
 *
 * What a session gets — AcceptedConnection:
 *   id             short unique id, also the pino `cid` binding of `logger`
 *   socket         net.Socket, or tls.TLSSocket after implicit TLS; the session owns it from now on
 *   remoteAddress  the real client (from the PROXY header when there is one), remotePort likewise
 *   localPort      the port the client dialled (PROXY destination port, else the socket's port)
 *   listener       the planned listener name (tenant × protocol), protocol, service
 *   secure         true after implicit TLS (sessions flip their own flag after STARTTLS)
 *   setUser(a)     records the authenticated user for /v1/connections
 *   onClose(cb)    runs once when the connection is gone (admission lease and registry already released)
 *   ended()        the session says it is over (its socket closed): release now. Needed where a library
 *                  replaces the socket and drops our listeners on the plain one (smtp-server's STARTTLS
 *                  calls removeAllListeners() on it); idempotent, safe to call from any close path
 *   onShutdown(cb) runs when the daemon stops: finish the current transaction, say goodbye, close;
 *                  sessions still open at the deadline are destroyed
 */
import { createServer, isIPv4, type BlockList, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../log.js';
import type { IAdmission, Lease, Refusal } from '../../limits/types.js';
import { acquireNow } from '../../limits/local.js';
import { networkList } from '../../limits/networks.js';
import { RefusalLog } from '../../limits/refusal-log.js';
import type { DaemonSocket } from '../../plan/types.js';
import type { Protocol, Service } from '../../spec/schema.js';
import type { DaemonMetrics } from '../metrics.js';
import { parseProxyV2 } from './proxy-v2.js';
import type { ConnectionRegistry } from './registry.js';

export interface AcceptedConnection {
  readonly id: string;
  readonly socket: Socket | TLSSocket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  readonly listener: string;
  readonly protocol: Protocol;
  readonly service: Service;
  readonly secure: boolean;
  readonly logger: Logger;
  setUser(address: string): void;
  onClose(cb: () => void): void;
  onShutdown(cb: () => void): void;
  ended(): void;
}

/** Writes the protocol's "server busy" reply on a socket that is about to be closed. */
export type BusyWriter = (socket: Socket | TLSSocket, text: string) => void;

export interface DaemonListenerProps {
  readonly socket: DaemonSocket;
  readonly busy: BusyWriter;
  readonly handle: (conn: AcceptedConnection) => void;
  readonly admission: IAdmission;
  readonly registry: ConnectionRegistry;
  readonly logger: Logger;
  readonly metrics?: DaemonMetrics;
  /** Key and certificate for implicit TLS. Required when socket.tls === 'implicit'. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /**
   * How long a client behind the proxy has to deliver the PROXY header.
   * @default 5000
   */
  readonly proxyHeaderTimeoutMs?: number;
  /**
   * How long an implicit-TLS handshake may take.
   * @default 10000
   */
  readonly tlsHandshakeTimeoutMs?: number;
  /**
   * How often the listener checks its counted connections against their sockets and releases those whose
   * socket is closed (a close path that never ran): logged, counted in
   * mailfleetd_connection_drift_repaired_total. 0 turns the audit off.
   * @default 30000
   */
  readonly auditIntervalMs?: number;
}

interface Peer {
  readonly address: string;
  readonly port: number;
  readonly localPort: number;
  readonly listener: string;
}

const ID_PREFIX = randomBytes(3).toString('hex');
let idSeq = 0;
/** Short, unique within a process and distinguishable across restarts. */
export function newConnectionId(): string {
  return `${ID_PREFIX}${(++idSeq).toString(36)}`;
}

export class DaemonListener {
  readonly name: string;
  private server?: Server;
  private readonly secureContext?: SecureContext;
  /** Every socket from accept to close, including those still in the PROXY/TLS phase. */
  private readonly sockets = new Set<Socket>();
  private readonly shutdownHooks = new Map<Socket, Array<() => void>>();
  /** Sockets answered with a busy reply and about to close: they do not count against the cap. */
  private readonly refused = new Set<Socket>();
  /** Per raw socket: what to release once it is gone (the session's lease and registry entry, when started). */
  private readonly releasers = new Map<Socket, () => void>();
  private auditTimer?: NodeJS.Timeout;
  /** Who may send a PROXY header (socket.proxyTrustedNetworks); undefined: anyone (no list configured). */
  private readonly trustedProxies?: BlockList;
  private maxConnections: number;
  /** A flood's refusals are logged once per reason, then counted (lib/limits/refusal-log.ts). */
  private readonly refusalLog: RefusalLog;
  private closing = false;
  private boundPort = 0;

  constructor(private readonly props: DaemonListenerProps) {
    this.name = props.socket.listener ?? `${props.socket.protocol}:${props.socket.port}`;
    this.maxConnections = props.socket.maxConnections;
    this.refusalLog = new RefusalLog({ logger: props.logger });
    if (props.socket.tls !== 'none' && !props.tls) throw new Error(`listener ${this.name}: tls ${props.socket.tls} needs a key and certificate`);
    if (props.socket.proxyProtocol && props.socket.proxyTrustedNetworks) this.trustedProxies = networkList(props.socket.proxyTrustedNetworks);
    if (props.tls && props.socket.tls === 'implicit') this.secureContext = createSecureContext({ key: props.tls.key, cert: props.tls.cert });
  }

  /** Binds the socket; resolves the bound port (port 0 asks the OS). */
  async listen(): Promise<number> {
    const server = createServer({ pauseOnConnect: false, noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.props.socket.host, port: this.props.socket.port, backlog: 511 }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.props.logger.error({ err: e, listener: this.name }, 'listener error'));
    this.boundPort = (server.address() as { port: number }).port;
    const every = this.props.auditIntervalMs ?? 30_000;
    if (every > 0) this.auditTimer = setInterval(() => this.audit(), every).unref();
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /**
   * The self-audit: every socket still counted must be open. One that is closed had its close missed (a
   * library removed our listener, say); release it now and say so. Returns how many were repaired.
   */
  audit(): number {
    let repaired = 0;
    for (const s of [...this.sockets]) {
      if (!s.closed) continue;
      repaired++;
      const started = this.releasers.has(s);
      this.forget(s);
      if (started) this.props.metrics?.connectionDriftRepaired.inc({ listener: this.name, protocol: this.props.socket.protocol });
    }
    if (repaired > 0) this.props.logger.warn({ listener: this.name, repaired }, 'released connections whose close was missed');
    return repaired;
  }

  /** Everything the listener holds for one raw socket, released once (close event, ended(), or the audit). */
  private forget(raw: Socket): void {
    this.sockets.delete(raw);
    this.shutdownHooks.delete(raw);
    this.refused.delete(raw);
    const release = this.releasers.get(raw);
    this.releasers.delete(raw);
    release?.();
  }

  /** Live change of the per-port cap (existing connections are kept). */
  setMaxConnections(n: number): void {
    this.maxConnections = n;
  }

  /**
   * Stops accepting, asks sessions to finish (onShutdown), waits until every connection is closed or the
   * deadline passes, then destroys what is left.
   */
  async close(deadlineMs = 10_000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = this.server ? new Promise<void>((r) => this.server!.close(() => r())) : Promise.resolve();
    for (const [s, hooks] of this.shutdownHooks) {
      if (!this.sockets.has(s)) continue;
      for (const h of hooks) safely(h, this.props.logger);
    }
    // Sockets still in the PROXY/TLS phase have no session to finish.
    for (const s of this.sockets) if (!this.shutdownHooks.has(s)) s.destroy();
    const start = Date.now();
    while (this.sockets.size > 0 && Date.now() - start < deadlineMs) await sleep(20);
    for (const s of this.sockets) s.destroy();
    clearInterval(this.auditTimer);
    this.refusalLog.close();
    await closed;
  }

  private accept(raw: Socket): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    const { socket: spec, logger, metrics } = this.props;
    this.sockets.add(raw);
    raw.on('error', (e) => logger.debug({ err: e, listener: this.name }, 'socket error'));
    raw.once('close', () => this.forget(raw));
    const refuse = (reason: string, listener: string) => {
      metrics?.connectionsRefused.inc({ listener, protocol: spec.protocol, reason });
      raw.destroy();
    };

    const afterProxy = (peer: Peer) => {
      if (spec.tls !== 'implicit') {
        this.admit(raw, raw, peer, false);
        return;
      }
      const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
      tlsSocket.on('error', (e) => logger.debug({ err: e, listener: peer.listener }, 'TLS error'));
      tlsSocket.setTimeout(this.props.tlsHandshakeTimeoutMs ?? 10_000, () => refuseTls('tls-timeout'));
      const refuseTls = (reason: string) => {
        tlsSocket.destroy();
        refuse(reason, peer.listener);
      };
      tlsSocket.once('_tlsError', () => refuseTls('tls-failed'));
      tlsSocket.once('secure', () => {
        tlsSocket.setTimeout(0);
        tlsSocket.removeAllListeners('timeout');
        this.admit(raw, tlsSocket, peer, true);
      });
    };

    const direct = {
      address: normaliseAddress(raw.remoteAddress ?? ''),
      port: raw.remotePort ?? 0,
      localPort: raw.localPort ?? 0,
      listener: this.name,
    };
    if (!spec.proxyProtocol) {
      afterProxy(direct);
      return;
    }
    // A PROXY header names the client: believed only from the proxy tier, else any host that reaches the
    // port could pick the address its limits and logs are charged to.
    if (this.trustedProxies && !this.trustedProxies.check(direct.address, isIPv4(direct.address) ? 'ipv4' : 'ipv6')) {
      this.refusalLog.note({ listener: this.name, remote: direct.address, reason: 'proxy-untrusted' }, 'PROXY header from an untrusted address');
      refuse('proxy-untrusted', this.name);
      return;
    }
    // PROXY v2: read exactly the header, leave the rest (maybe a TLS ClientHello) in the socket.
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      cleanup();
      refuse('proxy-timeout', this.name);
    }, this.props.proxyHeaderTimeoutMs ?? 5_000);
    timer.unref();
    const cleanup = () => {
      clearTimeout(timer);
      raw.removeListener('readable', onReadable);
      raw.removeListener('end', onEnd);
    };
    const onEnd = () => {
      cleanup();
      refuse('proxy-eof', this.name);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = raw.read() as Buffer | null) !== null) {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const r = parseProxyV2(buf);
        if (r.kind === 'incomplete') continue;
        cleanup();
        if (r.kind === 'invalid') {
          logger.info({ listener: this.name, remote: direct.address, reason: r.reason }, 'PROXY header refused');
          refuse('proxy-invalid', this.name);
          return;
        }
        const rest = buf.subarray(r.length);
        if (rest.length > 0) raw.unshift(rest);
        const h = r.header;
        const dstPort = h.destination?.port;
        const listener = (dstPort !== undefined ? spec.listenerByDestinationPort?.[dstPort] : undefined) ?? spec.listener ?? this.name;
        afterProxy(
          h.source && h.destination
            ? { address: normaliseAddress(h.source.address), port: h.source.port, localPort: h.destination.port, listener }
            : { ...direct, listener },
        );
        return;
      }
    };
    raw.on('readable', onReadable);
    raw.once('end', onEnd);
  }

  private admit(raw: Socket, socket: Socket | TLSSocket, peer: Peer, secure: boolean): void {
    const { socket: spec, logger, metrics, admission } = this.props;
    const labels = { listener: peer.listener, protocol: spec.protocol };
    const busy = (reason: string, text: string) => {
      metrics?.connectionsRefused.inc({ ...labels, reason });
      this.refused.add(raw);
      this.refusalLog.note({ listener: peer.listener, remote: peer.address, reason }, text);
      try {
        this.props.busy(socket, text);
      } catch (e) {
        logger.debug({ err: e }, 'busy writer failed');
      }
      socket.end();
      // A client that never reads must not keep the slot: force the close shortly after.
      setTimeout(() => socket.destroy(), 2_000).unref();
    };
    if (this.closing) {
      busy('shutdown', 'server shutting down');
      return;
    }
    if (this.sockets.size - this.refused.size > this.maxConnections) {
      busy('port-full', `${spec.protocol} port ${this.boundPort || spec.port} is full (${this.maxConnections} connections), try again later`);
      return;
    }
    const scopes = [
      { kind: 'ip' as const, service: spec.service, id: peer.address },
      { kind: 'listener' as const, service: spec.service, id: peer.listener },
    ];
    const decided = (r: Lease | Refusal) => {
      if (!r.ok) {
        busy(`limit-${r.scope.kind}`, r.text);
        return;
      }
      if (raw.destroyed || socket.destroyed) {
        r.release();
        return;
      }
      this.start(raw, socket, peer, secure, r);
    };
    // In-process counters answer at once (no promise hop before a refusal); Redis needs its round trip.
    const now = acquireNow(admission, scopes);
    if (now) {
      decided(now);
      return;
    }
    admission.acquire(scopes).then(decided, (e: unknown) => {
      logger.error({ err: e }, 'admission failed');
      busy('admission-error', 'service temporarily unavailable');
    });
  }

  private start(raw: Socket, socket: Socket | TLSSocket, peer: Peer, secure: boolean, lease: Lease): void {
    const { socket: spec, logger, metrics, registry } = this.props;
    const id = newConnectionId();
    const labels = { listener: peer.listener, protocol: spec.protocol };
    const closeHooks: Array<() => void> = [];
    const log = logger.child({ cid: id, listener: peer.listener, remote: peer.address });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      lease.release();
      registry.remove(id);
      metrics?.connections.dec(labels);
      for (const h of closeHooks) safely(h, log);
    };
    this.releasers.set(raw, finish);
    // The raw socket's close reaches forget() (accept's listener); the TLS socket's close is watched too.
    // Libraries that swap the socket (STARTTLS) may drop both: the session then calls ended().
    if (socket !== raw) socket.once('close', () => this.forget(raw));
    this.shutdownHooks.set(raw, []);
    registry.add({
      id,
      protocol: spec.protocol,
      service: spec.service,
      listener: peer.listener,
      remoteAddress: peer.address,
      remotePort: peer.port,
      localPort: peer.localPort,
      secure,
      since: new Date().toISOString(),
    });
    metrics?.connections.inc(labels);
    metrics?.connectionsTotal.inc(labels);
    const conn: AcceptedConnection = {
      id,
      socket,
      remoteAddress: peer.address,
      remotePort: peer.port,
      localPort: peer.localPort,
      listener: peer.listener,
      protocol: spec.protocol,
      service: spec.service,
      secure,
      logger: log,
      setUser: (address) => registry.setUser(id, address),
      onClose: (cb) => (done ? safely(cb, log) : closeHooks.push(cb)),
      onShutdown: (cb) => {
        this.shutdownHooks.get(raw)?.push(cb);
        if (this.closing) safely(cb, log);
      },
      ended: () => {
        if (!raw.destroyed) raw.destroy();
        this.forget(raw);
      },
    };
    try {
      this.props.handle(conn);
    } catch (e) {
      log.error({ err: e }, 'session failed to start');
      socket.destroy();
    }
  }
}

/** '::ffff:1.2.3.4' → '1.2.3.4', so limits and logs see one spelling per client. */
export function normaliseAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function safely(fn: () => void, logger: Logger): void {
  try {
    fn();
  } catch (e) {
    logger.error({ err: e }, 'hook failed');
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
