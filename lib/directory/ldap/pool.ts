/**
 * Connections to a set of LDAP servers with failover.
 *
 * LdapEndpoints knows the URIs in the spec's order: new connections go to the first URI that has not
 * failed within `failbackMs` (so after a failover the pool moves back to the provider once it has been
 * left alone that long, and idle connections elsewhere are retired), or, when every URI failed recently,
 * to the last one that answered. LdapPool lends out at most `size` connections at a time (a caller waits for a
 * free one): each is used by one operation at a time, so a pool of user-bind connections never mixes
 * identities. An operation that fails at the transport level (refused, reset, closed, timed out, TLS,
 * busy/unavailable) drops its connection and every idle one to the same server, and is retried on the
 * next URI; when every URI failed, the caller gets DIRECTORY_UNAVAILABLE. An LDAP result (no such entry,
 * invalid credentials, …) is an answer, not a failure, and is passed through.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { BusyError, Client, ResultCodeError, UnavailableError } from 'ldapts';
import { MailfleetError } from '../../errors.js';
import type { Logger } from '../../log.js';

export interface LdapEndpointsProps {
  readonly uris: readonly string[];
  /** Connect and per-operation timeout. */
  readonly timeoutMs: number;
  /**
   * How long a failed URI is skipped before it is tried again (fail-back to the earlier URIs).
   * @default 60000
   */
  readonly failbackMs?: number;
  /** Upgrade ldap:// connections with StartTLS before anything else. */
  readonly startTls: boolean;
  /** TLS options for ldaps:// and StartTLS (CA from the spec). @default - Node's CA store */
  readonly tlsOptions?: ConnectionOptions;
}

export class LdapEndpoints {
  readonly uris: readonly string[];
  readonly timeoutMs: number;
  readonly startTls: boolean;
  readonly tlsOptions: ConnectionOptions | undefined;
  readonly failbackMs: number;
  private preferred = 0;
  private readonly failedAt: number[];

  constructor(props: LdapEndpointsProps) {
    if (props.uris.length === 0) throw new MailfleetError('SPEC_INVALID', 'LDAP: at least one URI is needed');
    this.uris = props.uris;
    this.timeoutMs = props.timeoutMs;
    this.failbackMs = props.failbackMs ?? 60_000;
    this.startTls = props.startTls;
    this.tlsOptions = props.tlsOptions;
    this.failedAt = props.uris.map(() => 0);
  }

  /** When a server last failed (ms since epoch; 0 never): connections opened before then are suspect. */
  lastFailure(index: number): number {
    return this.failedAt[index] ?? 0;
  }

  /** Index of the URI new connections go to first: the first one not failed within failbackMs. */
  get current(): number {
    const now = Date.now();
    for (let i = 0; i < this.uris.length; i++) if (now - this.failedAt[i]! >= this.failbackMs) return i;
    return this.preferred;
  }

  answered(index: number): void {
    this.preferred = index;
  }

  failed(index: number): void {
    this.failedAt[index] = Date.now();
    if (this.preferred === index) this.preferred = (index + 1) % this.uris.length;
  }

  /** A client for one URI, connected lazily by its first operation (StartTLS first when configured). */
  async open(index: number): Promise<Client> {
    const url = this.uris[index]!;
    const client = new Client({
      url,
      timeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      strictDN: false,
      // ldapts speaks TLS from the first byte whenever tlsOptions is set: give them to ldaps:// only.
      ...(url.startsWith('ldaps://') ? { tlsOptions: this.tlsOptions ?? {} } : {}),
    });
    if (this.startTls && url.startsWith('ldap://')) {
      try {
        // ldapts hands these options to tls.connect and writes the socket into them: give it a copy,
        // and name the host, or Node would check the certificate against "localhost".
        const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
        await client.startTLS({ ...this.tlsOptions, host, ...(isIP(host) ? {} : { servername: host }) });
      } catch (e) {
        discard(client);
        throw e;
      }
    }
    return client;
  }
}

/** True when an error means "this server did not answer", so another server may. */
export function isTransportError(e: unknown): boolean {
  if (e instanceof BusyError || e instanceof UnavailableError) return true;
  return !(e instanceof ResultCodeError) && !(e instanceof MailfleetError);
}

/** ldapts result errors often carry no text (" Code: 0x31"): name the result too. */
export function describeError(e: unknown): string {
  if (e instanceof ResultCodeError) {
    const text = e.message.trim();
    return `${e.constructor.name.replace(/Error$/, '')} (LDAP result ${e.code})${text && !text.startsWith('Code:') ? `: ${text}` : ''}`;
  }
  return (e as Error | undefined)?.message || String(e);
}

function discard(client: Client): void {
  client.unbind().catch(() => undefined);
}

interface PooledConnection {
  readonly client: Client;
  readonly index: number;
  readonly openedAt: number;
}

export interface LdapPoolProps {
  readonly endpoints: LdapEndpoints;
  /** Most connections open at once. */
  readonly size: number;
  /** Bind every new connection as this account (the service account); undefined: stay anonymous. */
  readonly bind?: { readonly dn: string; readonly password: string };
  /** Name in logs and errors: "service" or "auth". */
  readonly name: string;
  readonly logger: Logger;
}

export class LdapPool {
  private readonly props: LdapPoolProps;
  private readonly idle: PooledConnection[] = [];
  private open = 0;
  private readonly waiters: Array<() => void> = [];
  private closed = false;

  constructor(props: LdapPoolProps) {
    this.props = props;
  }

  /**
   * Runs one operation on a pooled connection, failing over to the next URI on transport errors.
   * @throws MailfleetError DIRECTORY_UNAVAILABLE when no server answered
   */
  async use<T>(fn: (client: Client, uri: string) => Promise<T>): Promise<T> {
    const { endpoints } = this.props;
    const tried = new Set<number>();
    let lastError: unknown;
    while (tried.size < endpoints.uris.length) {
      if (this.closed) throw new MailfleetError('DIRECTORY_UNAVAILABLE', 'LDAP directory is closed');
      await this.slot();
      let conn: PooledConnection | undefined;
      try {
        conn = this.takeIdle() ?? (await this.connect(this.nextIndex(tried)));
        const result = await fn(conn.client, endpoints.uris[conn.index]!);
        endpoints.answered(conn.index);
        this.release(conn);
        return result;
      } catch (e) {
        if (conn && !isTransportError(e)) {
          endpoints.answered(conn.index);
          this.release(conn);
          throw e;
        }
        if (e instanceof MailfleetError) {
          this.free();
          throw e;
        }
        const index = conn?.index ?? (e as { ldapIndex?: number }).ldapIndex ?? endpoints.current;
        tried.add(index);
        lastError = e;
        this.props.logger.warn({ uri: endpoints.uris[index], pool: this.props.name, err: describeError(e) }, 'LDAP server failed; trying the next one');
        if (conn) discard(conn.client);
        this.dropIdle(index);
        endpoints.failed(index);
        this.free();
      }
    }
    throw new MailfleetError(
      'DIRECTORY_UNAVAILABLE',
      `no LDAP server answered (${endpoints.uris.join(', ')}): ${describeError(lastError)}`,
      { cause: lastError },
    );
  }

  /** Closes idle connections; operations in flight finish, later ones fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) await c.client.unbind().catch(() => undefined);
    for (const w of this.waiters.splice(0)) w();
  }

  private nextIndex(tried: Set<number>): number {
    const n = this.props.endpoints.uris.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.props.endpoints.current + i) % n;
      if (!tried.has(idx)) return idx;
    }
    return this.props.endpoints.current;
  }

  private async connect(index: number): Promise<PooledConnection> {
    const { endpoints, bind } = this.props;
    let client: Client;
    try {
      client = await endpoints.open(index);
    } catch (e) {
      throw Object.assign(e as Error, { ldapIndex: index });
    }
    if (bind) {
      try {
        await client.bind(bind.dn, bind.password);
      } catch (e) {
        discard(client);
        if (isTransportError(e)) throw Object.assign(e as Error, { ldapIndex: index });
        // The server answered but refused the service account: a configuration problem, not a user's.
        throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP service bind as ${bind.dn} refused by ${endpoints.uris[index]}: ${describeError(e)}`, {
          cause: e,
        });
      }
    }
    return { client, index, openedAt: Date.now() };
  }

  /** Waits until fewer than `size` connections are lent out, then counts this one. */
  private async slot(): Promise<void> {
    while (this.open >= this.props.size) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.open++;
  }

  private free(): void {
    this.open--;
    this.waiters.shift()?.();
  }

  private takeIdle(): PooledConnection | undefined {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      // A connection the server closed (idle timeout) would reconnect unbound, and one to a server that
      // failed since (seen by another pool) would cost a timeout: open a fresh one instead.
      const stale = c.openedAt <= this.props.endpoints.lastFailure(c.index);
      // After a fail-back, connections to a later URI are retired as they come up for reuse.
      const superseded = c.index > this.props.endpoints.current;
      if (!stale && !superseded && c.client.isConnected && (!this.props.bind || c.client.isBound)) return c;
      discard(c.client);
    }
    return undefined;
  }

  private release(conn: PooledConnection): void {
    if (this.closed) discard(conn.client);
    else this.idle.push(conn);
    this.free();
  }

  private dropIdle(index: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i]!.index === index) discard(this.idle.splice(i, 1)[0]!.client);
    }
  }
}
