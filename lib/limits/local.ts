/**
 * In-process admission: exact counters for one daemon node. All-or-nothing across scopes; JavaScript's
 * single thread makes check-and-increment atomic without locks.
 */
import type { DaemonConfig } from '../plan/types.js';
import { planLimit, refusalText, scopeLabel } from './resolve.js';
import type { LimitTable } from './table.js';
import type { AcquireOptions, IAdmission, Lease, Refusal, ScopeKey, ScopeUse } from './types.js';

/** The limit of a scope; `user` is the directory entry when the caller passed one. */
export type LimitLookup = (key: ScopeKey, user?: AcquireOptions['user']) => number;

interface Counter {
  scope: ScopeKey;
  current: number;
  refused: number;
}

/**
 * Scopes with no session but with refusals are kept for `top` and metrics (the flooding client is often
 * one of them); above this many counters the idle ones go, oldest first, so a flood from many addresses
 * cannot grow memory without bound.
 */
export const MAX_COUNTERS = 50_000;

export class LocalAdmission implements IAdmission {
  private readonly counters = new Map<string, Counter>();

  constructor(private readonly limitOf: LimitLookup) {}

  static fromConfig(config: Pick<DaemonConfig, 'limits' | 'listeners'>): LocalAdmission {
    return new LocalAdmission((key) => planLimit(config, key));
  }

  /** Live limits: plan values, operator overrides and directory values from a LimitTable. */
  static fromTable(table: LimitTable): LocalAdmission {
    return new LocalAdmission((key, user) => table.limitOf(key, user));
  }

  async acquire(scopes: readonly ScopeKey[], opts?: AcquireOptions): Promise<Lease | Refusal> {
    return this.acquireSync(scopes, opts);
  }

  acquireSync(scopes: readonly ScopeKey[], opts?: AcquireOptions): Lease | Refusal {
    for (const scope of scopes) {
      const current = this.counters.get(scopeLabel(scope))?.current ?? 0;
      const limit = this.limitOf(scope, opts?.user);
      if (current >= limit) {
        this.counter(scope).refused++;
        if (this.counters.size > MAX_COUNTERS) this.dropIdle();
        return { ok: false, scope, limit, current, text: refusalText(scope, limit) };
      }
    }
    const taken = scopes.map((s) => this.counter(s));
    for (const c of taken) c.current++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        for (const c of taken) {
          c.current--;
          if (c.current === 0 && c.refused === 0) this.counters.delete(scopeLabel(c.scope));
        }
      },
    };
  }

  async snapshot(): Promise<ScopeUse[]> {
    return this.snapshotSync();
  }

  snapshotSync(): ScopeUse[] {
    return [...this.counters.values()].map((c) => ({
      scope: c.scope,
      current: c.current,
      limit: this.limitOf(c.scope),
      refused: c.refused,
      local: c.current,
    }));
  }

  /** This node's count in one scope. */
  count(scope: ScopeKey): number {
    return this.counters.get(scopeLabel(scope))?.current ?? 0;
  }

  private dropIdle(): void {
    for (const [k, c] of this.counters) {
      if (this.counters.size <= MAX_COUNTERS / 2) return;
      if (c.current === 0) this.counters.delete(k);
    }
  }

  private counter(scope: ScopeKey): Counter {
    const k = scopeLabel(scope);
    let c = this.counters.get(k);
    if (!c) {
      c = { scope, current: 0, refused: 0 };
      this.counters.set(k, c);
    }
    return c;
  }
}

/**
 * The answer of an in-process admission at once, without a promise hop: under a flood the refusal goes
 * out in the accept callback itself. Undefined for a backend that needs I/O (Redis): use acquire().
 */
export function acquireNow(
  admission: IAdmission,
  scopes: readonly ScopeKey[],
  opts?: AcquireOptions,
): Lease | Refusal | undefined {
  return admission instanceof LocalAdmission ? admission.acquireSync(scopes, opts) : undefined;
}
