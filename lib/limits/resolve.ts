/**
 * Which number caps a scope. Pure: plan limits, then live overrides (lib/limits owner adds them),
 * then per-user overrides from the directory.
 */
import type { EffectiveServiceLimits } from '../spec/defaults.js';
import type { DaemonConfig } from '../plan/types.js';
import type { ScopeKey } from './types.js';

const FIELD: Record<ScopeKey['kind'], keyof EffectiveServiceLimits> = {
  port: 'portConnections',
  listener: 'perListener',
  ip: 'perIp',
  user: 'perUser',
  userip: 'perUserIp',
  domain: 'perDomain',
};

export function scopeField(kind: ScopeKey['kind']): keyof EffectiveServiceLimits {
  return FIELD[kind];
}

/** The domain a scope belongs to, when it has one (user, user+ip, domain). */
export function scopeDomain(key: ScopeKey): string | undefined {
  if (key.kind === 'domain') return key.id.toLowerCase();
  if (key.kind === 'user' || key.kind === 'userip') {
    const addr = key.id.split('|')[0]!;
    const at = addr.lastIndexOf('@');
    return at >= 0 ? addr.slice(at + 1).toLowerCase() : undefined;
  }
  return undefined;
}

/** The plan's limit for a scope: the listener's own limits, or the domain's, or the platform's. */
export function planLimit(config: Pick<DaemonConfig, 'limits' | 'listeners'>, key: ScopeKey): number {
  const field = FIELD[key.kind];
  if (key.kind === 'listener') {
    const l = config.listeners.find((x) => x.name === key.id);
    if (l) return l.limits[field];
  }
  const domain = scopeDomain(key);
  const byDomain = domain ? config.limits.domains[domain] : undefined;
  return (byDomain ?? config.limits.platform)[key.service][field];
}

/** The reply text of a refusal: which limit, its value, and for whom (the id of a user+IP pair split). */
export function refusalText(key: ScopeKey, limit: number): string {
  const who =
    key.kind === 'userip'
      ? `user ${key.id.split('|')[0]} from ${key.id.split('|')[1] ?? '?'}`
      : key.kind === 'port'
        ? `port ${key.id}`
        : `${key.kind} ${key.id}`;
  return `${key.service} ${FIELD[key.kind]} limit of ${limit} reached for ${who}`;
}

export function scopeLabel(key: ScopeKey): string {
  return `${key.kind}:${key.service}:${key.id}`;
}
