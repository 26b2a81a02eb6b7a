/**
 * Flow control as one daemon wires it: a LimitTable (plan + live overrides persisted under dataDir),
 * admission (Redis when the config names it, else in-process), SMTP rate buckets, per-port caps that
 * follow live changes, and Prometheus metrics. server.ts calls createAdmission() and bindDaemonLimits();
 * admin routes reach the table through limitsOf(ctx.admission), so DaemonContext needs no new field.
 */
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import type { DaemonConfig, DaemonSocket } from '../plan/types.js';
import { AuthFailureWindow, type IAuthFailures } from './auth-failures.js';
import { RedisAuthFailures } from './auth-failures-redis.js';
import { LocalAdmission } from './local.js';
import { LocalRateLimiter, RedisRateLimiter, type IRateLimiter, type RateCheck } from './rates.js';
import { RedisAdmission } from './redis.js';
import { limitsStatePath } from './state-file.js';
import { LimitTable } from './table.js';
import type { IAdmission, ScopeKey } from './types.js';

export interface DaemonLimits {
  readonly table: LimitTable;
  readonly admission: IAdmission;
  readonly rates: IRateLimiter;
  readonly backend: 'local' | 'redis';
  /** Times admission fell back to in-process counters because Redis did not answer. */
  fallbacks(): number;
  /** Refusals by SMTP rate, since start. */
  readonly rateRefusals: Map<string, number>;
  /** The brute-force lockout window: fleet-wide in Redis when configured, else in process. */
  readonly authFailures: IAuthFailures;
  close(): Promise<void>;
}

export interface CreateAdmissionOptions {
  /** Overrides persist in <dataDir>/limits-state.json. @default - in memory only */
  readonly dataDir?: string;
  /** @default - silent */
  readonly logger?: Logger;
  /** Redis URL; wins over config.redis.url. */
  readonly redisUrl?: string;
}

const registry = new WeakMap<IAdmission, DaemonLimits>();

/** The flow-control parts behind an admission made by createAdmission (undefined for others). */
export function limitsOf(admission: IAdmission): DaemonLimits | undefined {
  return registry.get(admission);
}

/** Builds the daemon's admission: Redis-backed when a URL is configured, else in-process. */
export function createAdmission(config: DaemonConfig, opts: CreateAdmissionOptions = {}): IAdmission {
  return createDaemonLimits(config, opts).admission;
}

export function createDaemonLimits(config: DaemonConfig, opts: CreateAdmissionOptions = {}): DaemonLimits {
  const log = opts.logger ?? silentLogger;
  const table = new LimitTable({
    config,
    stateFile: opts.dataDir ? limitsStatePath(opts.dataDir) : undefined,
    logger: log.child({ component: 'limits' }),
  });
  const limitOf = (k: ScopeKey, user?: Parameters<LimitTable['limitOf']>[1]) => table.limitOf(k, user);
  // A bucket's id is an IP, a domain, or an address (a sender's or user's: its own override first).
  const rateOf = (c: RateCheck) =>
    c.rate === 'messagesPerMinutePerDomain'
      ? table.rateOf(c.rate, c.id)
      : c.id.includes('@')
        ? table.userRateOf(c.rate, c.id)
        : table.rateOf(c.rate);
  const localRates = new LocalRateLimiter(rateOf);
  const rateRefusals = new Map<string, number>();
  const url = opts.redisUrl ?? config.redis?.url;
  let limits: DaemonLimits;
  if (url) {
    const adm = new RedisAdmission({
      url,
      limitOf,
      leaseSeconds: config.redis?.leaseSeconds,
      logger: log.child({ component: 'admission' }),
    });
    const rates = new RedisRateLimiter({ redis: adm.client, limitOf: rateOf, fallback: localRates });
    const authFailures = new RedisAuthFailures({ redis: adm.client, ...config.auth, fallback: new AuthFailureWindow(config.auth) });
    limits = {
      table,
      admission: adm,
      rates: countRefusals(rates, rateRefusals),
      backend: 'redis',
      fallbacks: () => adm.fallbacks,
      rateRefusals,
      authFailures,
      close: async () => {
        localRates.close();
        await adm.close();
      },
    };
  } else {
    limits = {
      table,
      admission: LocalAdmission.fromTable(table),
      rates: countRefusals(localRates, rateRefusals),
      backend: 'local',
      fallbacks: () => 0,
      rateRefusals,
      authFailures: new AuthFailureWindow(config.auth),
      close: async () => localRates.close(),
    };
  }
  registry.set(limits.admission, limits);
  return limits;
}

function countRefusals(inner: IRateLimiter, counts: Map<string, number>): IRateLimiter {
  return {
    async take(checks) {
      const r = await inner.take(checks);
      if (!r.ok) counts.set(r.rate, (counts.get(r.rate) ?? 0) + 1);
      return r;
    },
  };
}

/** What bindDaemonLimits needs of a listener (DaemonListener has it). */
export interface PortCapped {
  setMaxConnections(n: number): void;
}

/**
 * Wires a running daemon: per-port caps follow `<service>.portConnections` overrides (a socket's own
 * plan cap otherwise), and limit metrics go on the daemon's registry. Returns a closer.
 */
export function bindDaemonLimits(props: {
  readonly admission: IAdmission;
  readonly registry?: Registry;
  readonly listeners?: ReadonlyArray<{
    readonly socket: DaemonSocket | undefined;
    readonly listener: PortCapped;
  }>;
}): { close(): Promise<void> } {
  const limits = limitsOf(props.admission);
  if (!limits) return { close: async () => undefined };
  const applyPortCaps = () => {
    const o = limits.table.getOverrides();
    for (const { socket, listener } of props.listeners ?? [])
      if (socket) listener.setMaxConnections(o[`${socket.service}.portConnections`] ?? socket.maxConnections);
  };
  applyPortCaps();
  const off = limits.table.onChange(applyPortCaps);
  if (props.registry) registerLimitMetrics(props.registry, limits);
  return {
    close: async () => {
      off();
      await limits.close();
    },
  };
}

/** Scope kinds whose ids are few (listeners, ports): labelled one by one in metrics. */
const PER_ID_KINDS = new Set<ScopeKey['kind']>(['listener', 'port']);

/**
 * Metrics, collected from snapshot() at scrape time:
 *   mailfleetd_limit_current{kind,service}          sessions counted in scopes of the kind (sum)
 *   mailfleetd_limit_heaviest_ratio{kind,service}   the fullest scope's current/limit (alert on ≥ 0.9)
 *   mailfleetd_limit_refused{kind,service}    refusals on this node
 *   mailfleetd_limit_scope_current / _limit{kind,service,id}  per listener and per port
 *   mailfleetd_limit_value{scope}                   platform value of every <service>.<field>
 *   mailfleetd_rate_refused{rate}, mailfleetd_admission_fallbacks, mailfleetd_admission_backend{backend}
 */
export function registerLimitMetrics(reg: Registry, limits: DaemonLimits): void {
  const registers = [reg];
  const snap = () => limits.admission.snapshot();
  new Gauge({
    name: 'mailfleetd_limit_current',
    help: 'Sessions counted per scope kind and service (fleet-wide with Redis)',
    labelNames: ['kind', 'service'],
    registers,
    async collect() {
      this.reset();
      for (const u of await snap()) this.inc({ kind: u.scope.kind, service: u.scope.service }, u.current);
    },
  });
  new Gauge({
    name: 'mailfleetd_limit_heaviest_ratio',
    help: 'current/limit of the fullest scope of each kind and service',
    labelNames: ['kind', 'service'],
    registers,
    async collect() {
      this.reset();
      const max = new Map<string, { kind: string; service: string; r: number }>();
      for (const u of await snap()) {
        const k = `${u.scope.kind}|${u.scope.service}`;
        const r = u.limit > 0 ? u.current / u.limit : 1;
        if ((max.get(k)?.r ?? -1) < r) max.set(k, { kind: u.scope.kind, service: u.scope.service, r });
      }
      for (const m of max.values()) this.set({ kind: m.kind, service: m.service }, m.r);
    },
  });
  new Gauge({
    name: 'mailfleetd_limit_refused',
    help: 'Admission refusals on this node per scope kind and service',
    labelNames: ['kind', 'service'],
    registers,
    async collect() {
      this.reset();
      for (const u of await snap()) this.inc({ kind: u.scope.kind, service: u.scope.service }, u.refused);
    },
  });
  // Current use and cap per listener and port: one gauge each, read from the same snapshot fields.
  const perId = (name: string, help: string, pick: (u: Awaited<ReturnType<typeof snap>>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['kind', 'service', 'id'],
      registers,
      async collect() {
        this.reset();
        for (const u of await snap())
          if (PER_ID_KINDS.has(u.scope.kind)) this.set({ kind: u.scope.kind, service: u.scope.service, id: u.scope.id }, pick(u));
      },
    });
  perId('mailfleetd_limit_scope_current', 'Sessions per listener and per port', (u) => u.current);
  perId('mailfleetd_limit_scope_limit', 'Effective cap per listener and per port', (u) => u.limit);
  new Gauge({
    name: 'mailfleetd_limit_value',
    help: 'Effective value of each platform limit and listener cap (plan + live overrides)',
    labelNames: ['scope'],
    registers,
    collect() {
      this.reset();
      for (const r of limits.table.describe())
        if (!r.scope.includes('@') && !r.scope.startsWith('user:') && !r.scope.startsWith('ip:'))
          this.set({ scope: r.scope }, r.value);
    },
  });
  new Gauge({
    name: 'mailfleetd_rate_refused',
    help: 'SMTP messages or recipients deferred by a rate limit',
    labelNames: ['rate'],
    registers,
    collect() {
      this.reset();
      for (const [rate, n] of limits.rateRefusals) this.set({ rate }, n);
    },
  });
  new Gauge({
    name: 'mailfleetd_admission_fallbacks',
    help: 'Admissions counted in-process because Redis did not answer',
    registers,
    collect() {
      this.set(limits.fallbacks());
    },
  });
  const backend = new Gauge({
    name: 'mailfleetd_admission_backend',
    help: 'Admission backend in use (1)',
    labelNames: ['backend'],
    registers,
  });
  backend.set({ backend: limits.backend }, 1);
}
