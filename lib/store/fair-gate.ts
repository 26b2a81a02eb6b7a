/**
 * The storage inner loop (issue 24, docs/governor.md): a fair gate in front of durable writes.
 *
 * A disk serves one queue. With no gate a heavy sender's deliveries fill it, and a light user's write waits
 * behind every one of them (the governor bench measured disk queue waits p99 47–71 ms under a flood against
 * 12–21 ms unloaded, with the heavy user already capped at 2 sessions). The gate keeps the work it lets
 * through to the disk small and picks who goes next:
 *
 *   - **Adaptive limit** on operations in flight (gradient, as Netflix's concurrency-limits and TCP Vegas):
 *     while an operation takes longer than `latencyTolerance` × the fastest one seen in the last two
 *     windows (+ `latencySlackMs` for timer noise), the limit shrinks in proportion; while operations are as
 *     fast as that and the gate is full, it grows by one per limit's worth of completions. On a disk that
 *     serves one write at a time it settles at 1–2; on one that serves many at once (NVMe, GlusterFS over
 *     the network) latency does not rise with concurrency and the limit climbs to `maxInFlight`.
 *   - **Fair order** among who waits: one FIFO per owner (the session's principal: the authenticated user,
 *     else the client address), served round-robin; an owner that had nothing waiting goes ahead of the
 *     round (fq_codel's new flows), so a light user's write waits for at most what is in flight.
 *
 * Nothing waits while the gate has room: with the disk keeping up, an operation starts at once.
 *
 * The cost, measured (bench/durable-gate): a disk that batches concurrent fsyncs (ext4's journal commit)
 * also answers slower as more are in flight, so the latency signal shrinks the limit there too and
 * throughput falls (×0.47 at 64 concurrent deliveries on this machine's ext4 in one run). Hence off by
 * default; on for volumes that serve one write at a time, where it is what keeps a light user's write
 * from queueing behind a heavy one's (docs/governor.md).
 */
import { DEFAULT_DURABLE_WRITES } from '../spec/defaults.js';

export interface FairGateProps {
  /**
   * Most durable operations in flight at once (the adaptive limit's ceiling). 0 turns the gate off: every
   * operation starts at once, in arrival order at the disk, as before the gate.
   * @default 0 (off; see DEFAULT_DURABLE_WRITES for why)
   */
  readonly maxInFlight?: number;
  /**
   * The limit shrinks while an operation takes longer than this × the fastest recently seen.
   * @default 1.5
   */
  readonly latencyTolerance?: number;
  /**
   * Added to that bound, so timer and event-loop noise on a fast disk (sub-millisecond fsyncs) does not read
   * as queueing.
   * @default 2
   */
  readonly latencySlackMs?: number;
  /**
   * How long the fastest latency is remembered: the floor is the fastest of this window and the one
   * before, so a disk that got slower for good raises it within two windows.
   * @default 10000
   */
  readonly windowMs?: number;
  /** The clock (ms); tests pass their own. @default performance.now */
  readonly now?: () => number;
}

export const FAIR_GATE_DEFAULTS = DEFAULT_DURABLE_WRITES;

export interface FairGateStats {
  /** The adaptive limit now (whole operations). */
  readonly limit: number;
  readonly inFlight: number;
  readonly waiting: number;
  /** Operations that had to wait, and their total wait (ms), since start. */
  readonly waited: number;
  readonly waitedMs: number;
}

export class FairGate {
  private readonly max: number;
  private readonly tolerance: number;
  private readonly slack: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private limit: number;
  private inFlight = 0;
  private waiting = 0;
  private waited = 0;
  private waitedMs = 0;
  private readonly queues = new Map<string, Array<() => void>>();
  /** Owners whose queue was empty when their operation came: served first. */
  private readonly fresh: string[] = [];
  /** Owners with operations still waiting after their turn: round-robin. */
  private readonly round: string[] = [];
  private minNow = Infinity;
  private minBefore = Infinity;
  private windowStart: number;

  constructor(props: FairGateProps = {}) {
    this.max = props.maxInFlight ?? FAIR_GATE_DEFAULTS.maxInFlight;
    this.tolerance = props.latencyTolerance ?? FAIR_GATE_DEFAULTS.latencyTolerance;
    this.slack = props.latencySlackMs ?? FAIR_GATE_DEFAULTS.latencySlackMs;
    this.windowMs = props.windowMs ?? FAIR_GATE_DEFAULTS.windowMs;
    this.now = props.now ?? (() => performance.now());
    if (!Number.isInteger(this.max) || this.max < 0) throw new RangeError(`maxInFlight must be a whole number ≥ 0, got ${this.max}`);
    if (!(this.tolerance >= 1)) throw new RangeError(`latencyTolerance must be ≥ 1, got ${this.tolerance}`);
    // Start open: a fresh node learns its disk from the first operations.
    this.limit = this.max;
    this.windowStart = this.now();
  }

  /** Runs `op` when the gate lets `owner` through. */
  run<T>(owner: string, op: () => Promise<T>): Promise<T> {
    if (this.max === 0) return op();
    if (this.waiting === 0 && this.inFlight < Math.floor(this.limit)) return this.start(op);
    const asked = this.now();
    return new Promise<T>((resolve, reject) => {
      let q = this.queues.get(owner);
      if (!q) {
        q = [];
        this.queues.set(owner, q);
        this.fresh.push(owner);
      }
      this.waiting++;
      q.push(() => {
        this.waited++;
        this.waitedMs += this.now() - asked;
        this.start(op).then(resolve, reject);
      });
    });
  }

  stats(): FairGateStats {
    return { limit: Math.floor(this.limit), inFlight: this.inFlight, waiting: this.waiting, waited: this.waited, waitedMs: this.waitedMs };
  }

  private start<T>(op: () => Promise<T>): Promise<T> {
    const full = this.inFlight + 1 >= Math.floor(this.limit);
    this.inFlight++;
    const t0 = this.now();
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(() => {
      this.inFlight--;
      this.learn(this.now() - t0, full);
      this.next();
    });
  }

  private learn(ms: number, full: boolean): void {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.minBefore = this.minNow;
      this.minNow = Infinity;
      this.windowStart = t;
    }
    this.minNow = Math.min(this.minNow, ms);
    const floor = Math.min(this.minNow, this.minBefore);
    const bound = this.tolerance * floor + this.slack;
    if (ms > bound) this.limit = Math.max(1, this.limit * Math.max(0.5, bound / ms));
    else if (full || this.waiting > 0) this.limit = Math.min(this.max, this.limit + 1 / Math.max(1, this.limit));
  }

  private next(): void {
    while (this.waiting > 0 && this.inFlight < Math.floor(this.limit)) {
      const owner = this.fresh.shift() ?? this.round.shift()!;
      const q = this.queues.get(owner)!;
      const job = q.shift()!;
      this.waiting--;
      if (q.length > 0) this.round.push(owner);
      else this.queues.delete(owner);
      job();
    }
  }
}
