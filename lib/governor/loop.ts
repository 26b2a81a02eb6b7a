/**
 * The governor's loop: read the fleet, run the decision core, record every decision, and in enforce mode
 * apply it through setLimits — the code `mailfleet limit set` runs (every daemon, and HAProxy for
 * listener:<name>). The state is written before a change is sent (write-ahead) and the audit trail
 * brackets it ('applying', then 'applied' or 'failed'), so a governor killed at any point leaves the
 * limits as they were and, restarted, carries on from its state file.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { setLimits, type LimitReport } from '../ops/limit.js';
import type { Fleet } from '../ops/fleet.js';
import { GOVERNOR_SIGNALS, type GovernorConfig } from './config.js';
import { changesFor, commandFor, confirm, GOVERNOR_ACTOR, tick } from './core.js';
import { readFleet, type NodeSample } from './signals.js';
import { GovernorStore, type AppliedReport } from './store.js';
import type { Decision, GovernorState, TickResult } from './types.js';

export interface GovernorProps {
  readonly fleet: Fleet;
  readonly config: GovernorConfig;
  /** Where the audit trail, state, lock and metrics files live. */
  readonly stateDir: string;
  /** @default - silent */
  readonly logger?: Logger;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface TickOutcome {
  readonly result?: TickResult;
  /** Nodes that did not answer (with none answering, the tick decides nothing). */
  readonly failed: ReadonlyArray<{ node: string; error: string }>;
}

export class Governor {
  readonly store: GovernorStore;
  private state: GovernorState;
  private samples: ReadonlyMap<string, NodeSample> = new Map();
  private readonly fleet: Fleet;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly registry = new Registry();
  private readonly decisionsTotal: Counter<'mode' | 'action' | 'kind' | 'status'>;
  private readonly signalGauge: Gauge<'signal'>;
  private readonly targetGauge: Gauge<'signal'>;
  private readonly governedGauge: Gauge;
  private readonly loadGauge: Gauge<'load'>;

  constructor(private readonly props: GovernorProps) {
    this.store = new GovernorStore(props.stateDir);
    this.fleet = { ...props.fleet, actor: GOVERNOR_ACTOR };
    this.log = props.logger ?? silentLogger;
    this.now = props.now ?? Date.now;
    this.state = this.store.readState();
    const registers = [this.registry];
    this.decisionsTotal = new Counter({
      name: 'mailfleet_governor_decisions_total',
      help: 'Governor decisions by mode, action (lower, raise, release, reassert, yield), scope kind and outcome',
      labelNames: ['mode', 'action', 'kind', 'status'],
      registers,
    });
    this.signalGauge = new Gauge({ name: 'mailfleet_governor_signal', help: 'Load signals as the governor last read them', labelNames: ['signal'], registers });
    this.targetGauge = new Gauge({ name: 'mailfleet_governor_target', help: 'Targets of the load signals', labelNames: ['signal'], registers });
    this.governedGauge = new Gauge({ name: 'mailfleet_governor_governed_scopes', help: 'Scopes whose limit the governor holds lowered', registers });
    this.loadGauge = new Gauge({ name: 'mailfleet_governor_load', help: '1 for the load state of the last tick (over, band, calm, unknown)', labelNames: ['load'], registers });
    for (const s of GOVERNOR_SIGNALS) if (props.config.targets[s] !== undefined) this.targetGauge.set({ signal: s }, props.config.targets[s]!);
  }

  get current(): GovernorState {
    return this.state;
  }

  /** Takes the state dir and records the start (with what it resumes governing). */
  start(): void {
    this.store.lock();
    this.store.append({ at: new Date(this.now()).toISOString(), event: 'start', mode: this.props.config.mode, resumed: Object.keys(this.state.managed) });
  }

  stop(): void {
    this.store.unlock();
  }

  async tickOnce(): Promise<TickOutcome> {
    const cfg = this.props.config;
    const reading = await readFleet(this.fleet, this.samples, Object.keys(this.state.managed), this.now);
    this.samples = reading.samples;
    if (reading.answered === 0) {
      this.log.warn({ failed: reading.failed }, 'governor: no daemon answered; nothing decided');
      return { failed: reading.failed };
    }
    const before = this.state;
    const result = tick(reading.snapshot, before, cfg);
    const at = new Date(reading.snapshot.at).toISOString();
    const base = { at, event: 'decision' as const, mode: cfg.mode, load: result.load, readings: result.readings };

    if (cfg.mode !== 'enforce') {
      this.state = result.proposed;
      this.store.writeState(this.state);
      for (const d of result.decisions) {
        this.store.append({ ...base, status: d.action === 'yield' ? 'noted' : 'proposed', decision: d, command: commandFor(d) });
        this.count(d, 'proposed');
      }
    } else {
      // Write-ahead: the state that includes these changes is on disk before any is sent.
      this.state = result.applied;
      this.store.writeState(this.state);
      for (const d of result.decisions.filter((x) => x.action === 'yield')) {
        this.store.append({ ...base, status: 'noted', decision: d });
        this.count(d, 'noted');
      }
      const changes = changesFor('enforce', result.decisions);
      const applying = result.decisions.filter((d) => d.action !== 'yield');
      if (changes.length > 0) {
        for (const d of applying) this.store.append({ ...base, status: 'applying', decision: d, command: commandFor(d) });
        let reports: LimitReport[] = [];
        let error: string | undefined;
        let refused = false;
        try {
          reports = await setLimits(this.fleet, changes);
        } catch (e) {
          error = (e as Error).message;
          refused = (e as { status?: number }).status === 400;
        }
        const done: string[] = [];
        for (const d of applying) {
          const mine = reports.filter((r) => r.scope === d.scope && !r.skipped);
          const ok = error === undefined && mine.length > 0 && mine.every((r) => r.ok);
          if (ok) done.push(d.scope);
          this.store.append({
            ...base,
            status: ok ? 'applied' : 'failed',
            decision: d,
            reports: mine.map(compact),
            ...(error ? { error } : !ok ? { error: mine.find((r) => !r.ok)?.error ?? 'no target took the change' } : {}),
          });
          this.count(d, ok ? 'applied' : 'failed');
        }
        this.state = confirm(this.state, done);
        // Refused by every daemon (a scope they do not know): forget it, or it would be retried forever.
        if (refused) this.state = forget(this.state, before, applying);
        this.store.writeState(this.state);
      }
    }
    for (const d of result.decisions) this.log.info({ mode: cfg.mode, action: d.action, scope: d.scope, from: d.from, to: d.to, why: d.why }, 'governor decision');
    this.metrics(result);
    return { result, failed: reading.failed };
  }

  /** Ticks every intervalSeconds until the signal aborts; a tick that throws is logged, not fatal. */
  async run(signal: AbortSignal): Promise<void> {
    this.start();
    try {
      while (!signal.aborted) {
        try {
          await this.tickOnce();
        } catch (e) {
          this.log.error({ err: e }, 'governor tick failed');
        }
        await new Promise<void>((r) => {
          // One listener per wait, removed when the wait ends: a long run must not pile them up on the signal.
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            r();
          };
          const t = setTimeout(done, this.props.config.intervalSeconds * 1000);
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      this.stop();
    }
  }

  private count(d: Decision, status: string): void {
    this.decisionsTotal.inc({ mode: this.props.config.mode, action: d.action, kind: d.kind, status });
  }

  private metrics(r: TickResult): void {
    for (const x of r.readings) this.signalGauge.set({ signal: x.name }, x.value);
    this.governedGauge.set(Object.keys(this.state.managed).length);
    for (const l of ['over', 'band', 'calm', 'unknown'] as const) this.loadGauge.set({ load: l }, r.load === l ? 1 : 0);
    this.registry
      .metrics()
      .then((text) => this.store.writeMetrics(text))
      .catch((e: unknown) => this.log.warn({ err: e }, 'governor: metrics file not written'));
  }
}

function compact(r: LimitReport): AppliedReport {
  return { target: r.applier === 'daemon' ? r.target : `${r.applier} (${r.target})`, ok: r.ok, before: r.before, after: r.after, ...(r.error ? { error: r.error } : {}) };
}

function forget(state: GovernorState, before: GovernorState, decisions: readonly Decision[]): GovernorState {
  const managed = { ...state.managed };
  for (const d of decisions) {
    const prev = before.managed[d.scope];
    if (prev) managed[d.scope] = prev;
    else delete managed[d.scope];
  }
  return { ...state, managed };
}
