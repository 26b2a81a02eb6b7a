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

export function scopeLabel(key: ScopeKey): string {
  return `${key.kind}:${key.service}:${key.id}`;
}
