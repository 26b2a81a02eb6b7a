/**
 * How a directory flavor stores mail users: which attributes to read, which filters find a login or a
 * recipient, and how an entry becomes a DirectoryUser. Pure: no I/O, so every rule is unit-tested.
 *
 *   openldap          login: mail or uid; recipient: mail or mailAlternateAddress;
 *                     disabled: mailfleetDisabled TRUE (any "true/1/yes/disabled/locked" value of the
 *                     configured attribute) or a ppolicy pwdAccountLockedTime.
 *   active-directory  login: userPrincipalName, mail or SMTP address (anything with @), sAMAccountName or
 *                     DOMAIN\sAMAccountName; recipient: mail or proxyAddresses (SMTP: primary, smtp:
 *                     aliases, other address types ignored); disabled: userAccountControl bit 0x2.
 */
import { MailfleetError } from '../../errors.js';
import type { LdapDirectorySpec, ServiceLimits } from '../../spec/schema.js';
import type { DirectoryUser } from '../types.js';
import { escapeFilter } from './escape.js';

export type LdapFlavor = LdapDirectorySpec['flavor'];

/** The attribute names one flavor reads, after spec overrides. */
export interface LdapAttributeNames {
  readonly mail: string;
  readonly alias: string;
  readonly login: string;
  readonly quota: string | undefined;
  /** Message-count quota (an integer). */
  readonly quotaMessages: string | undefined;
  readonly maxConnections: string | undefined;
  readonly disabled: string | undefined;
  /** SCRAM-SHA-256 secrets (lib/auth/scram.ts formats); undefined: the directory holds none. */
  readonly scramSha256: string | undefined;
}

export const FLAVOR_DEFAULTS: Record<LdapFlavor, LdapAttributeNames & { readonly userFilter: string }> = {
  openldap: {
    userFilter: '(objectClass=inetOrgPerson)',
    mail: 'mail',
    alias: 'mailAlternateAddress',
    login: 'uid',
    quota: 'mailQuota',
    quotaMessages: 'mailfleetQuotaMessages',
    maxConnections: 'mailfleetMaxConnections',
    disabled: 'mailfleetDisabled',
    scramSha256: undefined,
  },
  'active-directory': {
    userFilter: '(objectClass=user)',
    mail: 'mail',
    alias: 'proxyAddresses',
    login: 'sAMAccountName',
    quota: undefined,
    quotaMessages: undefined,
    maxConnections: undefined,
    disabled: 'userAccountControl',
    scramSha256: undefined,
  },
};

/** userAccountControl ACCOUNTDISABLE. */
export const UAC_ACCOUNT_DISABLE = 0x2;
const UPN = 'userPrincipalName';
/** RFC 4512 attribute description: a name or a numeric OID (names go into filters unescaped). */
const ATTRIBUTE_NAME = /^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/;
const PPOLICY_LOCKED = 'pwdAccountLockedTime';
const TRUTHY = new Set(['true', '1', 'yes', 'disabled', 'locked', 'inactive']);
/** Services a bare per-user cap ("5") applies to: the ones users log in to. */
const CAPPED_SERVICES = ['imap', 'pop3', 'submission'] as const;
type CappedService = 'smtp' | 'submission' | 'imap' | 'pop3';

/** An entry as ldapts returns it: `dn` plus attributes in the server's spelling. */
export type RawEntry = { dn: string } & Record<string, unknown>;

export interface MappedUser {
  readonly dn: string;
  readonly user: DirectoryUser;
  /** Every address that delivers to this mailbox, primary first, lower-case. */
  readonly addresses: readonly string[];
  readonly disabled: boolean;
  /** The first value of the SCRAM attribute, when one is configured and set. */
  readonly scramSha256?: string;
}

export interface LdapMappingProps {
  readonly flavor: LdapFlavor;
  readonly attributes?: Partial<Record<keyof LdapAttributeNames, string>>;
  /** Filter every user search is ANDed with. @default - the flavor's (objectClass=…) */
  readonly userFilter?: string;
}

/** An equality clause; attribute names come from the validated spec, values are always escaped. */
function eq(attribute: string, value: string): string {
  return `(${attribute}=${escapeFilter`${value}`})`;
}

function values(entry: RawEntry, name: string | undefined): string[] {
  if (!name) return [];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k.toLowerCase() !== lower || k === 'dn') continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x))).filter((x) => x.length > 0);
  }
  return [];
}

/** Bytes from "1048576", "512M", "2G" (binary units); undefined when not a size. */
export function parseQuota(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*(\d+)\s*([kmgt])?i?b?\s*$/i.exec(raw);
  if (!m) return undefined;
  const unit = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A positive message count ("5000"); anything else is ignored (the spec's limits apply). */
export function parseCount(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim();
  if (t.length === 0 || t.length > 15 || ![...t].every((c) => c >= '0' && c <= '9')) return undefined;
  const n = Number(t);
  return n > 0 ? n : undefined;
}

/** Per-user session caps from values like "5" (imap, pop3, submission) or "imap=7". */
export function parseMaxConnections(raws: readonly string[]): DirectoryUser['limits'] {
  const out: Partial<Record<CappedService, Partial<ServiceLimits>>> = {};
  for (const raw of raws) {
    const m = /^\s*(?:(smtp|submission|imap|pop3)\s*[=:]\s*)?(\d{1,7})\s*$/i.exec(raw);
    if (!m || Number(m[2]) <= 0) continue;
    const services = m[1] ? [m[1].toLowerCase() as CappedService] : CAPPED_SERVICES;
    for (const s of services) out[s] = { ...out[s], perUser: Number(m[2]) };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function splitAddress(address: string): { localPart: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { localPart: address.slice(0, at), domain: address.slice(at + 1) };
}

export class LdapMapping {
  readonly flavor: LdapFlavor;
  readonly names: LdapAttributeNames;
  readonly userFilter: string;
  private readonly proxyStyle: boolean;

  constructor(props: LdapMappingProps) {
    const d = FLAVOR_DEFAULTS[props.flavor];
    this.flavor = props.flavor;
    const a = props.attributes ?? {};
    this.names = {
      mail: a.mail ?? d.mail,
      alias: a.alias ?? d.alias,
      login: a.login ?? d.login,
      quota: a.quota ?? d.quota,
      quotaMessages: a.quotaMessages ?? d.quotaMessages,
      maxConnections: a.maxConnections ?? d.maxConnections,
      disabled: a.disabled ?? d.disabled,
      scramSha256: a.scramSha256 ?? d.scramSha256,
    };
    for (const [k, v] of Object.entries(this.names))
      if (v !== undefined && !ATTRIBUTE_NAME.test(v))
        throw new MailfleetError('SPEC_INVALID', `directory.attributes.${k}: "${v}" is not an LDAP attribute name`);
    this.userFilter = props.userFilter ?? d.userFilter;
    // AD keeps addresses as "type:address"; an alias attribute named proxyAddresses is read that way.
    this.proxyStyle = this.names.alias.toLowerCase() === 'proxyaddresses';
  }

  /** Attributes to request for a user entry. */
  get attributes(): string[] {
    const n = this.names;
    const list = [n.mail, n.alias, n.login, n.quota, n.quotaMessages, n.maxConnections, n.disabled, n.scramSha256];
    if (this.flavor === 'active-directory') list.push(UPN);
    else list.push(PPOLICY_LOCKED);
    return [...new Set(list.filter((x): x is string => x !== undefined))];
  }

  private aliasClause(address: string): string {
    return eq(this.names.alias, this.proxyStyle ? `smtp:${address}` : address);
  }

  /** The filter finding the entry for a login. Values are escaped; attribute names come from the spec. */
  loginFilter(login: string): string {
    const n = this.names;
    let clause: string;
    if (this.flavor === 'active-directory') {
      const slash = login.indexOf('\\');
      if (slash > 0) clause = eq(n.login, login.slice(slash + 1));
      else if (login.includes('@')) clause = `(|${eq(UPN, login)}${eq(n.mail, login)}${this.aliasClause(login)})`;
      else clause = eq(n.login, login);
    } else if (login.includes('@')) clause = `(|${eq(n.mail, login)}${eq(n.login, login)})`;
    else clause = eq(n.login, login);
    return `(&${this.userFilter}${clause})`;
  }

  /** The filter finding every mailbox an envelope recipient delivers to (aliases may match several). */
  recipientFilter(address: string): string {
    return `(&${this.userFilter}(|${eq(this.names.mail, address)}${this.aliasClause(address)}))`;
  }

  /** The filter listing entries that carry mail addresses (for domain discovery). */
  addressHoldersFilter(): string {
    return `(&${this.userFilter}(|(${this.names.mail}=*)(${this.names.alias}=*)))`;
  }

  /** Every address that delivers to this entry, primary first, lower-case. */
  addressesOf(entry: RawEntry): string[] {
    const n = this.names;
    const mails = values(entry, n.mail).map((x) => x.toLowerCase());
    const primary: string[] = [];
    const aliases: string[] = [];
    if (this.proxyStyle) {
      for (const v of values(entry, n.alias)) {
        const m = /^(smtp):(.+)$/i.exec(v);
        if (!m) continue; // X500:, SIP:, … are not mail routes
        (m[1] === 'SMTP' ? primary : aliases).push(m[2]!.toLowerCase());
      }
    } else aliases.push(...values(entry, n.alias).map((x) => x.toLowerCase()));
    const upn = this.flavor === 'active-directory' ? values(entry, UPN).map((x) => x.toLowerCase()) : [];
    const all = [...primary, ...mails, ...(primary.length + mails.length === 0 ? upn : []), ...aliases];
    return [...new Set(all)].filter((a) => splitAddress(a) !== undefined);
  }

  isDisabled(entry: RawEntry): boolean {
    const n = this.names;
    if (this.flavor === 'active-directory') {
      const uac = Number(values(entry, n.disabled)[0] ?? '0');
      return Number.isInteger(uac) && (uac & UAC_ACCOUNT_DISABLE) !== 0;
    }
    if (values(entry, PPOLICY_LOCKED).length > 0) return true;
    return values(entry, n.disabled).some((v) => TRUTHY.has(v.trim().toLowerCase()));
  }

  /** The entry as a mailbox owner, or undefined when it has no usable mail address. */
  map(entry: RawEntry): MappedUser | undefined {
    const addresses = this.addressesOf(entry);
    const primary = addresses[0];
    const parts = primary === undefined ? undefined : splitAddress(primary);
    if (!primary || !parts) return undefined;
    const limits = parseMaxConnections(values(entry, this.names.maxConnections));
    const quotaBytes = parseQuota(values(entry, this.names.quota)[0]);
    const quotaMessages = parseCount(values(entry, this.names.quotaMessages)[0]);
    const user: DirectoryUser = {
      address: primary,
      localPart: parts.localPart,
      domain: parts.domain,
      ...(limits ? { limits } : {}),
      ...(quotaBytes !== undefined ? { quotaBytes } : {}),
      ...(quotaMessages !== undefined ? { quotaMessages } : {}),
    };
    const scram = values(entry, this.names.scramSha256).find((v) => /^(scram-sha-256\$|\{SCRAM-SHA-256\})/i.test(v));
    return { dn: entry.dn, user, addresses, disabled: this.isDisabled(entry), ...(scram ? { scramSha256: scram } : {}) };
  }

  /**
   * Why a directory refused a bind, when it says: Active Directory puts a "data NNN" sub-code in the
   * diagnostic message of result 49 (533 disabled, 775 locked out, 701 account expired).
   */
  static bindRefusal(message: string): 'disabled' | undefined {
    const m = /\bdata ([0-9a-f]{3})\b/i.exec(message);
    return m && ['533', '775', '701'].includes(m[1]!) ? 'disabled' : undefined;
  }
}
