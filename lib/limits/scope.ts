/**
 * The grammar of live limit scopes (`mailfleet limit set <scope> <value>`, PUT /v1/limits), parsed here
 * and nowhere else. Most specific wins when the daemon resolves a limit (see table.ts):
 *
 *   <service>.<field>                 platform value, e.g. imap.perUser
 *   <service>.<field>@<domain>        one domain's value, e.g. imap.perUser@example.org
 *   listener:<name>                   one listener's connection cap (perListener; HAProxy: frontend cap)
 *   user:<address>:<service>          one user's session cap, e.g. user:alice@example.com:imap
 *   ip:<address>:<service>            one client IP's cap, e.g. ip:192.0.2.7:smtp
 *   rates.<rate>                      an SMTP rate, e.g. rates.messagesPerMinutePerSender
 *   rates.<rate>@<domain>             one domain's SMTP rate
 *   user:<address>:rates.<rate>       one user's rate (a per-user rate: see USER_RATES), e.g.
 *                                     user:alice@example.com:rates.loginsPerMinutePerUser
 *
 * <service> is smtp | submission | imap | pop3; <field> is portConnections | perListener | perIp |
 * perUser | perUserIp | perDomain. Values are positive integers; `default` removes an override.
 */
import { isIP } from 'node:net';
import { MailfleetError } from '../errors.js';
import type { EffectiveRates, EffectiveServiceLimits } from '../spec/defaults.js';
import { SERVICES, type Service } from '../spec/schema.js';

/** The daemon-enforced connection fields (listenerConnections / sourceConnections belong to HAProxy). */
export const DAEMON_FIELDS = [
  'portConnections',
  'perListener',
  'perIp',
  'perUser',
  'perUserIp',
  'perDomain',
] as const;
export type DaemonField = (typeof DAEMON_FIELDS)[number] & keyof EffectiveServiceLimits;

export const RATE_NAMES = [
  'messagesPerMinutePerIp',
  'messagesPerMinutePerSender',
  'messagesPerMinutePerDomain',
  'recipientsPerMessage',
  'recipientsPerHourPerSender',
  'loginsPerMinutePerUser',
] as const;
export type RateName = (typeof RATE_NAMES)[number] & keyof EffectiveRates;

/** The rates counted per user (or authenticated sender): only these take a user:<address>:rates.<rate> override. */
export const USER_RATES = ['messagesPerMinutePerSender', 'recipientsPerHourPerSender', 'loginsPerMinutePerUser'] as const satisfies readonly RateName[];

/** Highest value a limit may take: far above any real cap, low enough to catch a typo of extra digits. */
export const MAX_LIMIT_VALUE = 10_000_000;

export type LimitScope =
  | { readonly level: 'platform'; readonly service: Service; readonly field: DaemonField }
  | {
      readonly level: 'domain';
      readonly service: Service;
      readonly field: DaemonField;
      readonly domain: string;
    }
  | { readonly level: 'listener'; readonly listener: string }
  | { readonly level: 'user'; readonly service: Service; readonly user: string }
  | { readonly level: 'ip'; readonly service: Service; readonly ip: string }
  | { readonly level: 'rate'; readonly rate: RateName; readonly domain?: string; readonly user?: string };

function bad(scope: string, why: string): MailfleetError {
  return new MailfleetError('BAD_REQUEST', `limit scope "${scope}": ${why}`, {
    status: 400,
    details: { scope },
  });
}

function service(scope: string, s: string): Service {
  if (!(SERVICES as readonly string[]).includes(s))
    throw bad(scope, `unknown service "${s}" (expected ${SERVICES.join(', ')})`);
  return s as Service;
}

const DOMAIN_RE = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const LISTENER_RE = /^[a-z0-9][a-z0-9-]{0,99}$/;

function domain(scope: string, d: string): string {
  const x = d.toLowerCase();
  if (!DOMAIN_RE.test(x)) throw bad(scope, `"${d}" is not a domain name`);
  return x;
}

export function parseScope(raw: string): LimitScope {
  const scope = raw.trim();
  if (scope.startsWith('listener:')) {
    const name = scope.slice('listener:'.length);
    if (!LISTENER_RE.test(name)) throw bad(scope, `"${name}" is not a listener name (see mailfleet plan)`);
    return { level: 'listener', listener: name };
  }
  if (scope.startsWith('user:') || scope.startsWith('ip:')) {
    const kind = scope.startsWith('user:') ? 'user' : 'ip';
    const rest = scope.slice(kind.length + 1);
    const i = rest.lastIndexOf(':');
    if (i < 0) throw bad(scope, `expected ${kind}:<${kind === 'user' ? 'address' : 'ip'}>:<service>`);
    const tail = rest.slice(i + 1);
    const id = rest.slice(0, i);
    if (kind === 'user') {
      const at = id.lastIndexOf('@');
      if (at < 1) throw bad(scope, `"${id}" is not a mail address`);
      const user = `${id.slice(0, at).toLowerCase()}@${domain(scope, id.slice(at + 1))}`;
      if (tail.startsWith('rates.')) {
        const rate = tail.slice('rates.'.length);
        if (!(USER_RATES as readonly string[]).includes(rate))
          throw bad(scope, `"${rate}" is not a per-user rate (expected ${USER_RATES.join(', ')})`);
        return { level: 'rate', rate: rate as RateName, user };
      }
      return { level: 'user', service: service(scope, tail), user };
    }
    const svc = service(scope, tail);
    if (isIP(id) === 0) throw bad(scope, `"${id}" is not an IP address`);
    return { level: 'ip', service: svc, ip: id.toLowerCase() };
  }
  const m = /^([a-zA-Z0-9]+)\.([a-zA-Z]+)(?:@(.+))?$/.exec(scope);
  if (!m)
    throw bad(
      scope,
      'expected <service>.<field>[@domain], listener:<name>, user:<address>:<service>, user:<address>:rates.<rate>, ip:<ip>:<service> or rates.<rate>[@domain]',
    );
  const [, head, field, dom] = m as unknown as [string, string, string, string | undefined];
  if (head === 'rates') {
    if (!(RATE_NAMES as readonly string[]).includes(field))
      throw bad(scope, `unknown rate "${field}" (expected ${RATE_NAMES.join(', ')})`);
    return dom === undefined
      ? { level: 'rate', rate: field as RateName }
      : { level: 'rate', rate: field as RateName, domain: domain(scope, dom) };
  }
  const svc = service(scope, head);
  if (!(DAEMON_FIELDS as readonly string[]).includes(field)) {
    const hint =
      field === 'listenerConnections' || field === 'sourceConnections'
        ? ' (an HAProxy setting: use listener:<name>)'
        : '';
    throw bad(scope, `unknown field "${field}"${hint} (expected ${DAEMON_FIELDS.join(', ')})`);
  }
  const f = field as DaemonField;
  if (dom === undefined) return { level: 'platform', service: svc, field: f };
  if (f === 'portConnections' || f === 'perIp')
    throw bad(scope, `${f} is per node or per client, not per domain`);
  return { level: 'domain', service: svc, field: f, domain: domain(scope, dom) };
}

/** The canonical text of a scope (lower-case names): the key in the state file and in replies. */
export function formatScope(s: LimitScope): string {
  switch (s.level) {
    case 'platform':
      return `${s.service}.${s.field}`;
    case 'domain':
      return `${s.service}.${s.field}@${s.domain}`;
    case 'listener':
      return `listener:${s.listener}`;
    case 'user':
      return `user:${s.user}:${s.service}`;
    case 'ip':
      return `ip:${s.ip}:${s.service}`;
    case 'rate':
      if (s.user !== undefined) return `user:${s.user}:rates.${s.rate}`;
      return s.domain === undefined ? `rates.${s.rate}` : `rates.${s.rate}@${s.domain}`;
  }
}

/** Checks a limit value: a positive integer up to MAX_LIMIT_VALUE; the error names the scope. */
export function parseLimitValue(scope: string, raw: unknown): number {
  const n = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
    throw bad(scope, `value must be a positive integer, got ${JSON.stringify(raw)}`);
  if (n > MAX_LIMIT_VALUE) throw bad(scope, `value ${n} is above the maximum of ${MAX_LIMIT_VALUE}`);
  return n;
}
