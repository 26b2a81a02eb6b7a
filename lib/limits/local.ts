/**
 * In-process admission: exact counters for one daemon node. All-or-nothing across scopes; JavaScript's
 * single thread makes check-and-increment atomic without locks.
 */
import type { DaemonConfig } from '../plan/types.js';
import { planLimit, scopeField, scopeLabel } from './resolve.js';
import type { IAdmission, Lease, Refusal, ScopeKey } from './types.js';

export type LimitLookup = (key: ScopeKey) => number;

interface Counter {
  scope: ScopeKey;
  current: number;
  refused: number;
}

export class LocalAdmission implements IAdmission {
  private readonly counters = new Map<string, Counter>();

  constructor(private readonly limitOf: LimitLookup) {}

  static fromConfig(config: Pick<DaemonConfig, 'limits' | 'listeners'>): LocalAdmission {
    return new LocalAdmission((key) => planLimit(config, key));
  }

  async acquire(scopes: readonly ScopeKey[]): Promise<Lease | Refusal> {
    return this.acquireSync(scopes);
  }

  acquireSync(scopes: readonly ScopeKey[]): Lease | Refusal {
    for (const scope of scopes) {
      const c = this.counter(scope);
      const limit = this.limitOf(scope);
      if (c.current >= limit) {
        c.refused++;
        return {
          ok: false,
          scope,
          limit,
          current: c.current,
          text: `${scope.service} ${scopeField(scope.kind)} limit of ${limit} reached for ${scope.kind} ${scope.id}`,
        };
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

  async snapshot() {
    return [...this.counters.values()].map((c) => ({
      scope: c.scope,
      current: c.current,
      limit: this.limitOf(c.scope),
      refused: c.refused,
    }));
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
