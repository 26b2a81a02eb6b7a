/**
 * The LDAP / Active Directory user store.
 *
 * authenticate: find the user's entry with the service account (search by login), then bind as that
 * DN with the password — or, with userDnTemplate and no service account, bind to the DN built from the
 * login and read the entry as the user. Passwords are never cached: every check is a bind. The
 * login → entry lookup is cached for cacheTtlSeconds (unknown logins for negativeCacheTtlSeconds); after a
 * successful bind on a cached entry the entry is read again (recheckOnLogin, default on), so an account
 * disabled in the directory is refused at its next login, not after the TTL. Active Directory and
 * OpenLDAP's ppolicy refuse binds of disabled / locked accounts by themselves.
 *
 * resolveRecipient: one search for mail or alias; disabled accounts receive nothing. Answers are cached
 * (cacheTtlSeconds; unknown recipients negativeCacheTtlSeconds), so a change in the directory reaches
 * RCPT checks within the TTL.
 *
 * Every value put into a filter is escaped; logins and addresses that are empty, longer than 256
 * characters or carry control characters are refused before any query. A directory that cannot answer
 * makes every method throw MailfleetError('DIRECTORY_UNAVAILABLE').
 */
import { InvalidCredentialsError, InappropriateAuthError, NoSuchObjectError, ResultCodeError, UnwillingToPerformError, type Client } from 'ldapts';
import { MailfleetError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LdapDirectorySpec } from '../../spec/schema.js';
import type { AuthenticateOptions, AuthResult, DirectoryUser, IDirectory, UserRecord } from '../types.js';
import { TtlCache } from './cache.js';
import { acceptableInput, escapeDnValue } from './escape.js';
import { LdapMapping, type MappedUser, type RawEntry } from './mapping.js';
import { LdapEndpoints, LdapPool, describeError } from './pool.js';
import { serviceCredentials, tlsOptions } from './settings.js';

/** Longest password sent in a bind; longer ones are refused without asking the directory. */
export const MAX_PASSWORD_LENGTH = 1024;
/** Most mailboxes one recipient address may fan out to. */
export const MAX_RECIPIENT_FANOUT = 1000;

export interface LdapDirectoryProps {
  /** The spec's `directory` section (kind: ldap), defaults applied. */
  readonly spec: LdapDirectorySpec;
  /** Folder that relative paths in the spec (bindPasswordFile, caFile) resolve against. */
  readonly baseDir: string;
  readonly logger: Logger;
  /** Where bindPasswordEnv is looked up. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

type BindOutcome = 'ok' | 'bad-credentials' | 'disabled';

export class LdapDirectory implements IDirectory {
  readonly spec: LdapDirectorySpec;
  readonly mapping: LdapMapping;
  readonly endpoints: LdapEndpoints;
  private readonly logger: Logger;
  private readonly service: LdapPool | undefined;
  private readonly auth: LdapPool;
  /** login (lower-case) → entry, or null for "no such login". */
  readonly loginCache = new TtlCache<MappedUser | null>();
  /** address (lower-case) → mailboxes; [] for unknown. */
  readonly recipientCache = new TtlCache<DirectoryUser[]>();
  private domainsCache: { at: number; domains: string[] } | undefined;

  constructor(props: LdapDirectoryProps) {
    const { spec } = props;
    this.spec = spec;
    this.logger = props.logger.child({ component: 'ldap' });
    this.mapping = new LdapMapping({ flavor: spec.flavor, attributes: spec.attributes, userFilter: spec.userFilter });
    this.endpoints = new LdapEndpoints({
      uris: spec.uris,
      timeoutMs: spec.timeoutMs,
      failbackMs: spec.failbackSeconds * 1000,
      startTls: spec.startTls,
      tlsOptions: tlsOptions(spec, props.baseDir),
    });
    const credentials = serviceCredentials(spec, props.baseDir, props.env);
    if (!credentials && !spec.userDnTemplate)
      throw new MailfleetError('SPEC_INVALID', 'LDAP directory: set bindDn (search then bind) or userDnTemplate (direct bind)');
    this.service = credentials
      ? new LdapPool({ endpoints: this.endpoints, size: spec.poolSize, bind: credentials, name: 'service', logger: this.logger })
      : undefined;
    this.auth = new LdapPool({ endpoints: this.endpoints, size: spec.poolSize, name: 'auth', logger: this.logger });
  }

  async authenticate(login: string, password: string, opts: AuthenticateOptions = {}): Promise<AuthResult> {
    if (!acceptableInput(login)) return { ok: false, reason: 'unknown-user' };
    // No app passwords in LDAP: with the main password refused, nothing here can pass.
    if (opts.mainPassword === false) return { ok: false, reason: 'bad-credentials' };
    // An empty password is an unauthenticated bind (RFC 4513 5.1.2): most servers "accept" it.
    if (password.length === 0 || password.length > MAX_PASSWORD_LENGTH) return { ok: false, reason: 'bad-credentials' };
    if (this.spec.userDnTemplate) return this.authenticateDirect(login, password);

    const key = login.toLowerCase();
    const cached = this.loginCache.get(key);
    let entry = cached === undefined ? await this.findLogin(login) : cached;
    let fresh = cached === undefined;
    if (entry === null) return { ok: false, reason: 'unknown-user' };

    let outcome = await this.bind(entry.dn, password);
    if (outcome === 'bad-credentials' && !fresh) {
      // The cached entry may be stale (renamed or moved DN): look again before saying no.
      this.loginCache.delete(key);
      const again = await this.findLogin(login);
      if (again === null) return { ok: false, reason: 'unknown-user' };
      fresh = true;
      if (again.dn !== entry.dn) outcome = await this.bind(again.dn, password);
      entry = again;
    }
    if (outcome !== 'ok') return { ok: false, reason: outcome };
    if (!fresh && this.spec.recheckOnLogin) {
      const now = await this.readEntry(entry.dn);
      if (now === null) {
        this.loginCache.delete(key);
        return { ok: false, reason: 'unknown-user' };
      }
      entry = now;
      this.loginCache.set(key, now, this.spec.cacheTtlSeconds * 1000);
    }
    if (entry.disabled) return { ok: false, reason: 'disabled' };
    return { ok: true, user: entry.user };
  }

  /**
   * The entry a login names, read fresh with the service account (SCRAM and bearer tokens need it; a login
   * without a password cannot bind as the user). Without a service account: unsupported (undefined).
   */
  async findUser(login: string): Promise<UserRecord | undefined> {
    if (!acceptableInput(login) || !this.service) return undefined;
    const entry = await this.findLogin(login);
    if (entry === null) return undefined;
    return { user: entry.user, disabled: entry.disabled, ...(entry.scramSha256 ? { scramSha256: entry.scramSha256 } : {}) };
  }

  /** SCRAM only where the spec names the attribute holding the secrets, and a service account may read it. */
  supportsScram(): boolean {
    return this.mapping.names.scramSha256 !== undefined && this.service !== undefined;
  }

  async resolveRecipient(address: string): Promise<DirectoryUser[]> {
    if (!acceptableInput(address) || !address.includes('@')) return [];
    const key = address.toLowerCase();
    const cached = this.recipientCache.get(key);
    if (cached) return cached;
    const entries = await this.search(this.mapping.recipientFilter(address), MAX_RECIPIENT_FANOUT);
    const byAddress = new Map<string, DirectoryUser>();
    for (const e of entries) {
      const m = this.mapping.map(e);
      if (m && !m.disabled) byAddress.set(m.user.address, m.user);
    }
    const users = [...byAddress.values()];
    this.recipientCache.set(key, users, (users.length > 0 ? this.spec.cacheTtlSeconds : this.spec.negativeCacheTtlSeconds) * 1000);
    return users;
  }

  async isLocalDomain(domain: string): Promise<boolean> {
    return (await this.listDomains()).includes(domain.toLowerCase().replace(/\.$/, ''));
  }

  async listDomains(): Promise<string[]> {
    if (this.spec.domains) return [...new Set(this.spec.domains.map((d) => d.toLowerCase()))].sort();
    const ttl = this.spec.cacheTtlSeconds * 1000;
    if (this.domainsCache && Date.now() - this.domainsCache.at < ttl) return this.domainsCache.domains;
    const entries = await this.search(this.mapping.addressHoldersFilter(), 0, true);
    const domains = new Set<string>();
    for (const e of entries) for (const a of this.mapping.addressesOf(e)) domains.add(a.slice(a.lastIndexOf('@') + 1));
    const list = [...domains].sort();
    this.domainsCache = { at: Date.now(), domains: list };
    return list;
  }

  async close(): Promise<void> {
    await this.service?.close();
    await this.auth.close();
  }

  /**
   * The entry a login names, fresh from the directory (and cached). null: nobody, or more than one entry
   * (an ambiguous login is refused rather than guessed).
   */
  async findLogin(login: string): Promise<MappedUser | null> {
    const key = login.toLowerCase();
    const entries = await this.search(this.mapping.loginFilter(login), 2);
    let found: MappedUser | null = null;
    if (entries.length > 1) this.logger.warn({ login, dns: entries.map((e) => e.dn) }, 'LDAP login matches several entries; refused');
    else if (entries.length === 1) found = this.mapping.map(entries[0]!) ?? null;
    this.loginCache.set(key, found, (found ? this.spec.cacheTtlSeconds : this.spec.negativeCacheTtlSeconds) * 1000);
    return found;
  }

  /** Search under baseDn with the service account (or anonymously when there is none). */
  async search(filter: string, sizeLimit: number, paged = false): Promise<RawEntry[]> {
    const pool = this.service ?? this.auth;
    const { searchEntries } = await pool.use((c) =>
      c.search(this.spec.baseDn, {
        scope: 'sub',
        filter,
        attributes: this.mapping.attributes,
        sizeLimit,
        timeLimit: Math.max(1, Math.ceil(this.spec.timeoutMs / 1000)),
        ...(paged ? { paged: { pageSize: 500 } } : {}),
      }),
    );
    return searchEntries as RawEntry[];
  }

  private async readEntry(dn: string, client?: Client): Promise<MappedUser | null> {
    const read = async (c: Client) => {
      try {
        const r = await c.search(dn, { scope: 'base', filter: this.mapping.userFilter, attributes: this.mapping.attributes });
        return (r.searchEntries[0] as RawEntry | undefined) ?? null;
      } catch (e) {
        if (e instanceof NoSuchObjectError) return null;
        throw e;
      }
    };
    const entry = client ? await read(client) : await (this.service ?? this.auth).use(read);
    return entry ? (this.mapping.map(entry) ?? null) : null;
  }

  private async bind(dn: string, password: string): Promise<BindOutcome> {
    try {
      await this.auth.use((c) => c.bind(dn, password));
      return 'ok';
    } catch (e) {
      return this.bindFailure(e);
    }
  }

  private bindFailure(e: unknown): BindOutcome {
    if (e instanceof InvalidCredentialsError || e instanceof InappropriateAuthError || e instanceof UnwillingToPerformError || e instanceof NoSuchObjectError)
      return LdapMapping.bindRefusal(e.message) ?? 'bad-credentials';
    if (e instanceof ResultCodeError)
      throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP bind failed: ${describeError(e)}`, { cause: e });
    throw e;
  }

  /** userDnTemplate: bind to the DN built from the login, then read the entry on that connection. */
  private async authenticateDirect(login: string, password: string): Promise<AuthResult> {
    const dn = this.userDn(login);
    if (dn === undefined) return { ok: false, reason: 'unknown-user' };
    let outcome: BindOutcome = 'ok';
    let entry: MappedUser | null = null;
    try {
      entry = await this.auth.use(async (c) => {
        await c.bind(dn, password);
        return this.service ? null : this.readEntry(dn, c);
      });
    } catch (e) {
      outcome = this.bindFailure(e);
    }
    if (outcome !== 'ok') return { ok: false, reason: outcome };
    if (this.service) entry = await this.readEntry(dn);
    if (entry?.disabled) return { ok: false, reason: 'disabled' };
    if (entry) return { ok: true, user: entry.user };
    // The user may not read their own entry: the login itself is the address.
    const at = login.lastIndexOf('@');
    if (at <= 0) return { ok: false, reason: 'unknown-user' };
    const address = login.toLowerCase();
    return { ok: true, user: { address, localPart: address.slice(0, at), domain: address.slice(at + 1) } };
  }

  /** The DN for a login from userDnTemplate; each placeholder value is escaped per RFC 4514. */
  userDn(login: string): string | undefined {
    const template = this.spec.userDnTemplate!;
    const at = login.lastIndexOf('@');
    const needsDomain = /\{(domain|domainDc)\}/.test(template);
    if (needsDomain && at <= 0) return undefined;
    const local = at > 0 ? login.slice(0, at) : login;
    const domain = at > 0 ? login.slice(at + 1).toLowerCase() : '';
    const values: Record<string, string> = {
      address: escapeDnValue(login),
      local: escapeDnValue(local),
      domain: escapeDnValue(domain),
      domainDc: domain
        .split('.')
        .map((label) => `dc=${escapeDnValue(label)}`)
        .join(','),
    };
    return template.replace(/\{(address|local|domain|domainDc)\}/g, (_, k: string) => values[k]!);
  }
}
