/**
 * The limits a daemon enforces right now: plan values (from DaemonConfig), live overrides on top
 * (persisted in the state file), and per-user values from the directory. Most specific wins:
 *
 *   user:<a>:<svc> override  >  directory per-user value  >  <svc>.<field>@<domain> override
 *   >  the domain's own plan value  >  <svc>.<field> override  >  the platform plan value
 *
 * (listener:<name> overrides a listener's cap; ip:<ip>:<svc> a client IP's.) Changing a value never
 * touches sessions already admitted: admission compares the count with the limit at the next attempt,
 * so a lowered cap refuses newcomers until the count falls under it.
 */
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { MailfleetError } from '../errors.js';
import type { DirectoryUser } from '../directory/types.js';
import type { DaemonConfig } from '../plan/types.js';
import type { EffectiveRates } from '../spec/defaults.js';
import type { Service } from '../spec/schema.js';
import { scopeDomain, scopeField } from './resolve.js';
import {
  DAEMON_FIELDS,
  formatScope,
  parseLimitValue,
  parseScope,
  type DaemonField,
  type LimitScope,
  type RateName,
} from './scope.js';
import {
  HISTORY_LENGTH,
  readLimitsState,
  writeLimitsState,
  type LimitsState,
  type RecordedChange,
} from './state-file.js';
import type { ScopeKey } from './types.js';

export type LimitTableConfig = Pick<DaemonConfig, 'limits' | 'listeners' | 'domains'>;

export interface LimitTableProps {
  readonly config: LimitTableConfig;
  /**
   * Where overrides persist. Loaded at construction (a corrupt file throws).
   * @default - overrides live in memory only (tests, one-shot tools)
   */
  readonly stateFile?: string;
  /** @default - silent */
  readonly logger?: Logger;
}

/** One requested change: a value, or null to remove the override (back to the plan). */
export interface LimitChangeRequest {
  readonly scope: string;
  readonly value: number | string | null;
}

/** What a change did, as the admin API and `mailfleet limit set` report it. */
export interface LimitChange {
  readonly scope: string;
  /** The override before and after (null: none). */
  readonly previousOverride: number | null;
  readonly override: number | null;
  /** The value the scope resolved to before and after. */
  readonly before: number;
  readonly after: number;
  readonly changed: boolean;
}

/** One row of GET /v1/limits. */
export interface EffectiveLimitRow {
  readonly scope: string;
  readonly value: number;
  readonly plan: number;
  readonly override: number | null;
}

/** Directory values a user may carry (DirectoryUser.limits). */
export type UserLimits = DirectoryUser['limits'];

export class LimitTable {
  private readonly config: LimitTableConfig;
  private readonly stateFile?: string;
  private readonly log: Logger;
  private overrides = new Map<string, number>();
  private history: RecordedChange[] = [];
  private readonly listeners = new Set<(changes: readonly LimitChange[]) => void>();

  constructor(props: LimitTableProps) {
    this.config = props.config;
    this.stateFile = props.stateFile;
    this.log = props.logger ?? silentLogger;
    if (this.stateFile) {
      const state = readLimitsState(this.stateFile);
      for (const [scope, value] of Object.entries(state.overrides)) {
        // Checked like a live change: a hand-edited file with a bad key stops the daemon, named.
        const parsed = parseScope(scope);
        parseLimitValue(scope, value);
        const problem = this.unknownEntity(parsed);
        if (problem)
          this.log.warn(
            { scope, problem },
            'limit override names something the plan no longer has; kept, not applied',
          );
        this.overrides.set(formatScope(parsed), value);
      }
      this.history = state.history;
      if (this.overrides.size > 0)
        this.log.info(
          { overrides: Object.fromEntries(this.overrides), file: this.stateFile },
          'live limit overrides loaded',
        );
    }
  }

  /** The limit of a counted scope; `user` carries the directory's per-user values. */
  limitOf(key: ScopeKey, user?: { readonly limits?: UserLimits }): number {
    const svc = key.service;
    switch (key.kind) {
      case 'port':
        return (
          this.overrides.get(`${svc}.portConnections`) ?? this.config.limits.platform[svc].portConnections
        );
      case 'listener': {
        const o = this.overrides.get(`listener:${key.id}`);
        if (o !== undefined) return o;
        const l = this.config.listeners.find((x) => x.name === key.id);
        if (!l) return this.chain(svc, 'perListener', undefined);
        return this.chain(
          svc,
          'perListener',
          l.tenant === 'default' ? undefined : l.tenant,
          l.limits.perListener,
        );
      }
      case 'ip':
        return this.overrides.get(`ip:${key.id.toLowerCase()}:${svc}`) ?? this.chain(svc, 'perIp', undefined);
      case 'user': {
        const o = this.overrides.get(`user:${key.id.toLowerCase()}:${svc}`);
        if (o !== undefined) return o;
        return user?.limits?.[svc]?.perUser ?? this.chain(svc, 'perUser', scopeDomain(key));
      }
      case 'userip':
        return user?.limits?.[svc]?.perUserIp ?? this.chain(svc, 'perUserIp', scopeDomain(key));
      case 'domain':
        return this.chain(svc, scopeField('domain') as DaemonField, scopeDomain(key));
    }
  }

  /**
   * A rate for a domain (its own rates, else the platform's), live overrides applied; with `user`, that
   * user's own override (user:<address>:rates.<rate>) first.
   */
  rateOf(rate: RateName, domain?: string, user?: string): number {
    if (user !== undefined) {
      const o = this.overrides.get(`user:${user.toLowerCase()}:rates.${rate}`);
      if (o !== undefined) return o;
    }
    const d = domain?.toLowerCase();
    if (d !== undefined) {
      const o = this.overrides.get(`rates.${rate}@${d}`);
      if (o !== undefined) return o;
      const own = this.config.limits.domainRates[d]?.[rate];
      if (own !== undefined && own !== this.config.limits.rates[rate]) return own;
    }
    return this.overrides.get(`rates.${rate}`) ?? this.config.limits.rates[rate];
  }

  /** A rate of one user (or sender) address: its own override, then its domain's rate, then the platform's. */
  userRateOf(rate: RateName, address: string): number {
    return this.rateOf(rate, address.slice(address.lastIndexOf('@') + 1), address);
  }

  rates(domain?: string): EffectiveRates {
    const names = Object.keys(this.config.limits.rates) as RateName[];
    return Object.fromEntries(names.map((n) => [n, this.rateOf(n, domain)])) as unknown as EffectiveRates;
  }

  /** The value a limit scope resolves to now (what `limit list` shows). */
  effective(scope: LimitScope): number {
    switch (scope.level) {
      case 'platform':
        return this.chain(scope.service, scope.field, undefined);
      case 'domain':
        return this.chain(scope.service, scope.field, scope.domain);
      case 'listener': {
        const l = this.config.listeners.find((x) => x.name === scope.listener);
        return this.limitOf({ kind: 'listener', service: l?.service ?? 'imap', id: scope.listener });
      }
      case 'user':
        return this.limitOf({ kind: 'user', service: scope.service, id: scope.user });
      case 'ip':
        return this.limitOf({ kind: 'ip', service: scope.service, id: scope.ip });
      case 'rate':
        return scope.user !== undefined
          ? this.userRateOf(scope.rate, scope.user)
          : this.rateOf(scope.rate, scope.domain);
    }
  }

  /** The value a scope would have without any live override. */
  planValue(scope: LimitScope): number {
    const saved = this.overrides;
    this.overrides = new Map();
    try {
      return this.effective(scope);
    } finally {
      this.overrides = saved;
    }
  }

  getOverrides(): Record<string, number> {
    return Object.fromEntries([...this.overrides.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  getHistory(): readonly RecordedChange[] {
    return this.history;
  }

  /**
   * Every platform and domain field, every listener, and every entity override, with plan and live
   * values: the body of GET /v1/limits.
   */
  describe(): EffectiveLimitRow[] {
    const scopes: LimitScope[] = [];
    const services = Object.keys(this.config.limits.platform) as Service[];
    const fields: readonly DaemonField[] = DAEMON_FIELDS;
    for (const service of services)
      for (const field of fields) scopes.push({ level: 'platform', service, field });
    for (const domain of this.config.domains)
      for (const service of services)
        for (const field of fields)
          if (field !== 'portConnections' && field !== 'perIp')
            scopes.push({ level: 'domain', service, field, domain });
    for (const l of this.config.listeners) scopes.push({ level: 'listener', listener: l.name });
    for (const rate of Object.keys(this.config.limits.rates) as RateName[])
      scopes.push({ level: 'rate', rate });
    const seen = new Set(scopes.map(formatScope));
    for (const k of this.overrides.keys()) if (!seen.has(k)) scopes.push(parseScope(k));
    return (
      scopes
        .map((s) => {
          const scope = formatScope(s);
          return {
            scope,
            value: this.effective(s),
            plan: this.planValue(s),
            override: this.overrides.get(scope) ?? null,
          };
        })
        // Domain rows only when they differ from the platform or carry an override: keeps the list readable.
        .filter(
          (r) =>
            !r.scope.includes('@') ||
            r.override !== null ||
            r.value !== this.effective(parseScope(r.scope.split('@')[0]!)),
        )
    );
  }

  /**
   * Applies changes all or nothing: every scope and value is checked first, the new state is written to
   * the state file, and only then do the limits change in memory. If the write fails nothing changes.
   */
  apply(requests: readonly LimitChangeRequest[], source = 'api'): LimitChange[] {
    if (requests.length === 0)
      throw new MailfleetError('BAD_REQUEST', 'no limit changes given', { status: 400 });
    const parsed = requests.map((r) => {
      const s = parseScope(r.scope);
      const scope = formatScope(s);
      const problem = this.unknownEntity(s);
      if (problem)
        throw new MailfleetError('BAD_REQUEST', `limit scope "${r.scope}": ${problem}`, {
          status: 400,
          details: { scope: r.scope },
        });
      const value = r.value === null || r.value === 'default' ? null : parseLimitValue(r.scope, r.value);
      return { s, scope, value };
    });
    const next = new Map(this.overrides);
    const before = new Map(parsed.map((p) => [p.scope, this.effective(p.s)]));
    const previous = new Map(parsed.map((p) => [p.scope, this.overrides.get(p.scope) ?? null]));
    for (const p of parsed) {
      if (p.value === null) next.delete(p.scope);
      else next.set(p.scope, p.value);
    }
    const at = new Date().toISOString();
    const recorded: RecordedChange[] = parsed.map((p) => ({
      at,
      scope: p.scope,
      previous: previous.get(p.scope)!,
      value: p.value,
      source,
    }));
    const history = [...this.history, ...recorded].slice(-HISTORY_LENGTH);
    if (this.stateFile) {
      const state: LimitsState = { version: 1, overrides: Object.fromEntries(next), history };
      try {
        writeLimitsState(this.stateFile, state);
      } catch (e) {
        throw new MailfleetError(
          'INTERNAL',
          `limit change not applied: cannot write ${this.stateFile} (${(e as Error).message})`,
          { cause: e },
        );
      }
    }
    this.overrides = next;
    this.history = history;
    const changes = parsed.map((p) => {
      const after = this.effective(p.s);
      const b = before.get(p.scope)!;
      const prev = previous.get(p.scope)!;
      return {
        scope: p.scope,
        previousOverride: prev,
        override: p.value,
        before: b,
        after,
        changed: prev !== p.value,
      };
    });
    for (const c of changes)
      this.log.info(
        { scope: c.scope, before: c.before, after: c.after, override: c.override, source },
        'limit changed',
      );
    for (const fn of this.listeners) fn(changes);
    return changes;
  }

  /** Called after every applied change (metrics, HAProxy hooks). */
  onChange(fn: (changes: readonly LimitChange[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Resolves a field for a service at domain level, then platform level. */
  private chain(
    service: Service,
    field: DaemonField,
    domain: string | undefined,
    ownPlanValue?: number,
  ): number {
    const platformPlan = this.config.limits.platform[service][field];
    if (domain !== undefined) {
      const o = this.overrides.get(`${service}.${field}@${domain}`);
      if (o !== undefined) return o;
      // A domain's plan value counts as its own only where it differs from the platform's: otherwise
      // it merely inherited it and follows a platform override.
      const domainPlan = ownPlanValue ?? this.config.limits.domains[domain]?.[service]?.[field];
      if (domainPlan !== undefined && domainPlan !== platformPlan) return domainPlan;
    }
    return this.overrides.get(`${service}.${field}`) ?? platformPlan;
  }

  private unknownEntity(s: LimitScope): string | undefined {
    if (s.level === 'listener' && !this.config.listeners.some((l) => l.name === s.listener))
      return `no listener "${s.listener}" in the plan (have: ${this.config.listeners.map((l) => l.name).join(', ')})`;
    const d = s.level === 'domain' || s.level === 'rate' ? s.domain : undefined;
    if (d !== undefined && !this.config.domains.includes(d))
      return `"${d}" is not a domain of this platform (have: ${this.config.domains.join(', ')})`;
    return undefined;
  }
}
