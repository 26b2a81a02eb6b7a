/**
 * The content filter's part of the daemon's health (GET /healthz, which the mail node's health check and so
 * its Auto Scaling group act on). With `onUnavailable: tempfail`, a node whose rspamd is gone defers every
 * message, so it should not count as healthy; with `accept` it still delivers (unscanned) and the check is
 * reported but never fails the node. The rule (docs/filtering.md, "Health"):
 *
 * - failing: rspamd does not answer `GET /ping` with `pong` within FILTER_PING_TIMEOUT_MS, or the last
 *   `unhealthyAfterFailures` scans in a row got no verdict and the latest of them is under
 *   FILTER_FAILURE_MEMORY_MS old;
 * - degraded: fewer failed scans in a row than that (at least one, the latest under that age);
 * - ok: otherwise. A scan with a verdict ends the streak; so does a `pong` once the latest failure is older
 *   than FILTER_FAILURE_MEMORY_MS (a quiet node would otherwise stay failing until its next message).
 * - starting: until rspamd has answered once (a `pong` or a verdict), for up to FILTER_START_GRACE_MS after
 *   the daemon started, `failing` is reported as `degraded`: a new node's rspamd compiles its databases for
 *   minutes, and its launch must not be abandoned for it (node-setup.ts waits for it, then starts the daemon
 *   anyway). Past the grace, an rspamd that never came up fails the check like one that went away.
 *
 * `/ping` is asked at most once per FILTER_PING_CACHE_MS, however often /healthz and /metrics are read.
 */
import { request } from 'node:http';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';
import type { FilteringSpec } from '../spec/schema.js';

/** Longest wait for rspamd's `pong` (health checks run every 30 s with a 5 s curl budget). */
export const FILTER_PING_TIMEOUT_MS = 2000;
/** A `/ping` answer is reused this long. */
export const FILTER_PING_CACHE_MS = 1000;
/** Failed scans older than this no longer make the check fail once rspamd answers `/ping` again. */
export const FILTER_FAILURE_MEMORY_MS = 60_000;
/** How long after start an rspamd that has not answered yet is `degraded`, not `failing` (the mail group's grace). */
export const FILTER_START_GRACE_MS = 600_000;

export type FilterState = 'ok' | 'degraded' | 'failing';

/** The `filter` entry of /healthz's checks. */
export interface FilterCheck {
  readonly state: FilterState;
  /** Whether `failing` makes the node unhealthy (onUnavailable: tempfail). */
  readonly affectsHealth: boolean;
  readonly rspamd: string;
  /** 'pong', or why `/ping` failed. */
  readonly ping: string;
  readonly consecutiveFailures: number;
  readonly unhealthyAfterFailures: number;
  /** rspamd has not answered since the daemon started, within FILTER_START_GRACE_MS: not failing yet. */
  readonly starting: boolean;
  readonly lastError?: string;
  readonly lastFailureAt?: string;
  readonly lastVerdictAt?: string;
}

export interface FilterHealthProps {
  readonly filtering: FilteringSpec;
  readonly registry: Registry;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default FILTER_START_GRACE_MS */
  readonly startGraceMs?: number;
}

/** GET <url>/ping → 'pong', or the reason it did not come. */
export function pingRspamd(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const r = request(new URL('/ping', url), { timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'pong' ? 'pong' : `HTTP ${res.statusCode}: ${body.trim().slice(0, 80)}`));
      res.on('error', (e) => resolve(e.message));
    });
    const deadline = setTimeout(() => r.destroy(new Error(`no pong within ${timeoutMs} ms`)), timeoutMs);
    deadline.unref();
    r.on('timeout', () => r.destroy(new Error(`no pong within ${timeoutMs} ms`)));
    r.on('error', (e) => resolve(e.message));
    r.on('close', () => clearTimeout(deadline));
    r.end();
  });
}

export class FilterHealth {
  private streak = 0;
  private lastError?: string;
  private lastFailureAt?: number;
  private lastVerdictAt?: number;
  private ping?: { at: number; result: Promise<string> };
  private answered = false;
  private readonly now: () => number;
  private readonly startedAt: number;

  constructor(private readonly props: FilterHealthProps) {
    this.now = props.now ?? Date.now;
    this.startedAt = this.now();
    const check = () => this.check();
    const gauge = (name: string, help: string, value: (c: FilterCheck) => number) =>
      (props.registry.getSingleMetric(name) as Gauge | undefined) ??
      new Gauge({
        name,
        help,
        registers: [props.registry],
        // Read at scrape time, so the value is current without /healthz being asked.
        async collect() {
          this.set(value(await check()));
        },
      });
    gauge('mailfleetd_filter_up', 'rspamd answers and gives verdicts: 1, or 0 while the filter check fails (docs/filtering.md, "Health")', (c) =>
      c.state === 'failing' ? 0 : 1,
    );
    gauge('mailfleetd_filter_consecutive_failures', 'Scans in a row rspamd gave no verdict for', (c) => c.consecutiveFailures);
  }

  /** A scan got a verdict. */
  recordVerdict(): void {
    this.streak = 0;
    this.answered = true;
    this.lastVerdictAt = this.now();
  }

  /** A scan got none (refused, timed out, unreadable). */
  recordFailure(error: Error): void {
    this.streak += 1;
    this.lastError = error.message;
    this.lastFailureAt = this.now();
  }

  async check(): Promise<FilterCheck> {
    const { rspamd } = this.props.filtering;
    const now = this.now();
    if (!this.ping || now - this.ping.at >= FILTER_PING_CACHE_MS)
      this.ping = { at: now, result: pingRspamd(rspamd.url, Math.min(FILTER_PING_TIMEOUT_MS, rspamd.timeoutMs)) };
    const ping = await this.ping.result;
    const recent = this.lastFailureAt !== undefined && this.now() - this.lastFailureAt < FILTER_FAILURE_MEMORY_MS;
    if (ping === 'pong') this.answered = true;
    if (ping === 'pong' && !recent) this.streak = 0;
    const starting = !this.answered && this.now() - this.startedAt < (this.props.startGraceMs ?? FILTER_START_GRACE_MS);
    const failing = ping !== 'pong' || this.streak >= rspamd.unhealthyAfterFailures;
    const state: FilterState = failing && !starting ? 'failing' : failing || this.streak > 0 ? 'degraded' : 'ok';
    const iso = (t?: number) => (t === undefined ? undefined : new Date(t).toISOString());
    return {
      state,
      affectsHealth: rspamd.onUnavailable === 'tempfail',
      rspamd: rspamd.url,
      ping,
      consecutiveFailures: this.streak,
      unhealthyAfterFailures: rspamd.unhealthyAfterFailures,
      starting,
      lastError: this.lastError,
      lastFailureAt: iso(this.lastFailureAt),
      lastVerdictAt: iso(this.lastVerdictAt),
    };
  }
}

const perDaemon = new WeakMap<object, FilterHealth>();

/** The one FilterHealth of a daemon (its SMTP front-end records scans into it; /healthz reads it). */
export function filterHealthOf(ctx: { readonly config: { readonly filtering?: FilteringSpec }; readonly metrics: { readonly registry: Registry } }): FilterHealth | undefined {
  const filtering = ctx.config.filtering;
  if (!filtering) return undefined;
  let h = perDaemon.get(ctx);
  if (!h) {
    h = new FilterHealth({ filtering, registry: ctx.metrics.registry });
    perDaemon.set(ctx, h);
  }
  return h;
}
