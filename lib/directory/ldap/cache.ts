/**
 * A small TTL cache for directory lookups (never for password checks). Bounded: the oldest entry goes
 * when full. A TTL of 0 disables caching for that kind of answer.
 */
export interface TtlCacheProps {
  /** Most entries kept. @default 10000 */
  readonly maxEntries?: number;
  /** Clock, for tests. @default Date.now */
  readonly now?: () => number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  hits = 0;
  misses = 0;

  constructor(props: TtlCacheProps = {}) {
    this.maxEntries = props.maxEntries ?? 10_000;
    this.now = props.now ?? Date.now;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e && e.expires > this.now()) {
      this.hits++;
      return e.value;
    }
    if (e) this.entries.delete(key);
    this.misses++;
    return undefined;
  }

  set(key: string, value: V, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: this.now() + ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
