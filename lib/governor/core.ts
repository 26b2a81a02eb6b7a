/**
 * The governor's decision core: one tick is a pure function of what the daemons report now, what the
 * governor remembers, and its settings. No I/O, no clock: the loop passes the time in the snapshot.
 *
 *   over  (any targeted signal above its target)      → lower the heaviest scope one step, at most every settleSeconds
 *   calm  (the mean over the last cooldownSeconds of   → after cooldownSeconds of calm, raise one lowered scope one step,
 *          each tick's worst signal / its target under  once its own refusals stayed ≤ releaseRefusalsPerSecond that long
 *          releaseRatio: one noisy reading, even one
 *          over the target, does not break it)
 *   band  (in between)                                → hold: the gap between the two thresholds is the hysteresis
 *
 * The heaviest scope is the one with the most sessions above its fair share (sessions of its kind and
 * service / active scopes of that kind); ties go to the narrower kind (user, ip, domain, listener). A scope
 * at or under its fair share is never lowered, and no step goes below max(floor, fair share).
 * Login scopes (one user's loginsPerMinutePerUser, counted in logins per minute) come after every session
 * scope: a user's login rate is lowered only when no session scope can go lower (a user capped at its fair
 * share of sessions who opens a new session, and hashes a password, per message). Their fair share is in
 * logins per minute among the users logging in; a user with no login rate is lowered from its current rate,
 * and given back no rate at all (the override dropped) at the end.
 */
import type { GovernorConfig, GovernedKind } from './config.js';
import { GOVERNOR_SIGNALS } from './config.js';
import type {
  Decision,
  GovernorSnapshot,
  GovernorState,
  LoadState,
  ManagedScope,
  ScopeLoad,
  SignalReading,
  TickResult,
} from './types.js';

/** Who the governor's changes are recorded as on the daemons (X-Mailfleet-Actor). */
export const GOVERNOR_ACTOR = 'mailfleet-governor';

export function isGovernorActor(by: string | undefined): boolean {
  return by !== undefined && by.startsWith(GOVERNOR_ACTOR);
}

/** Narrowest first: on equal excess the governor hurts the fewest sessions. */
const KIND_ORDER: Readonly<Record<GovernedKind, number>> = { user: 0, ip: 1, domain: 2, listener: 3, login: 4 };

/** Session scopes first; a rate scope (its `current` is a rate, not sessions) only when none of them can go lower. */
function isRateKind(kind: GovernedKind): boolean {
  return kind === 'login';
}

/** A flapping scope waits cooldown × 2^flaps before its next raise, up to this many doublings. */
export const MAX_FLAP_DOUBLINGS = 5;

export function readSignals(snap: GovernorSnapshot, cfg: GovernorConfig): SignalReading[] {
  const out: SignalReading[] = [];
  for (const name of GOVERNOR_SIGNALS) {
    const target = cfg.targets[name];
    const value = snap.signals[name];
    if (target === undefined || value === undefined || !Number.isFinite(value)) continue;
    out.push({ name, value, target });
  }
  return out;
}

/** A missing signal (no deliveries this interval, say) counts as no pressure; all missing is unknown. */
export function loadState(readings: readonly SignalReading[], releaseRatio: number): LoadState {
  if (readings.length === 0) return 'unknown';
  if (readings.some((r) => r.value > r.target)) return 'over';
  if (readings.every((r) => r.value < r.target * releaseRatio)) return 'calm';
  return 'band';
}

/**
 * The ticks calm is judged on: those of the last cooldownSeconds, this one included, each as its worst
 * signal's value / target. A tick with no reading (load unknown) empties it: nothing says the load is calm.
 */
export function quietWindow(state: GovernorState, readings: readonly SignalReading[], t: number, cfg: GovernorConfig): { at: number; worst: number }[] {
  if (readings.length === 0) return [];
  const worst = Math.max(...readings.map((r) => r.value / r.target));
  const from = t - cfg.cooldownSeconds * 1000;
  return [...(state.quiet ?? []).filter((q) => q.at > from && q.at < t), { at: t, worst }];
}

/** What calm is judged on: the window's mean worst signal / target (infinite for an empty window). */
export function quietMean(quiet: readonly { readonly worst: number }[]): number {
  return quiet.length > 0 ? quiet.reduce((sum, q) => sum + q.worst, 0) / quiet.length : Number.POSITIVE_INFINITY;
}

/** Fair share per kind and service: the sessions of that kind spread evenly over its active scopes. */
export function fairShares(scopes: readonly ScopeLoad[]): Map<string, number> {
  const sums = new Map<string, { total: number; active: number }>();
  for (const s of scopes) {
    if (s.current <= 0) continue;
    const k = `${s.kind}|${s.service}`;
    const x = sums.get(k) ?? { total: 0, active: 0 };
    x.total += s.current;
    x.active += 1;
    sums.set(k, x);
  }
  return new Map([...sums].map(([k, v]) => [k, v.total / v.active]));
}

function raiseWaitMs(cfg: GovernorConfig, state: GovernorState, scope: string): number {
  const flaps = Math.min(MAX_FLAP_DOUBLINGS, state.flaps[scope]?.count ?? 0);
  return cfg.cooldownSeconds * 1000 * 2 ** flaps;
}

/** The lowering step for the heaviest scope over its fair share, or undefined when none can go lower. */
export function pickLowering(snap: GovernorSnapshot, cfg: GovernorConfig, readings: readonly SignalReading[]): Decision | undefined {
  const fair = fairShares(snap.scopes);
  const over = readings.filter((r) => r.value > r.target);
  const candidates: Array<Decision & { excess: number }> = [];
  for (const s of snap.scopes) {
    // A rate scope without a rate has no limit: it is lowered from what it does now.
    const limit = s.limit ?? (isRateKind(s.kind) ? Number.POSITIVE_INFINITY : undefined);
    if (!cfg.scopes.includes(s.kind) || limit === undefined) continue;
    const share = fair.get(`${s.kind}|${s.service}`) ?? 0;
    if (s.current <= share) continue;
    const bound = Math.max(cfg.floor, Math.ceil(share));
    const base = Math.min(limit, s.current);
    const to = Math.max(bound, Math.floor((base * (100 - cfg.stepPercent)) / 100));
    if (to >= limit) continue;
    const unit = isRateKind(s.kind) ? 'logins per minute' : 'sessions';
    candidates.push({
      action: 'lower',
      scope: s.scope,
      kind: s.kind,
      ...(s.limit !== undefined ? { from: s.limit } : {}),
      to,
      signals: over,
      current: s.current,
      fairShare: share,
      bound,
      why: `${over.map((r) => `${r.name} ${round(r.value)} > ${r.target}`).join(', ')}; ${s.scope} ${isRateKind(s.kind) ? 'makes' : 'holds'} ${s.current} ${unit}, fair share ${round(share)}`,
      excess: s.current - share,
    });
  }
  candidates.sort(
    (a, b) =>
      Number(isRateKind(a.kind)) - Number(isRateKind(b.kind)) ||
      b.excess - a.excess ||
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      a.scope.localeCompare(b.scope),
  );
  const best = candidates[0];
  if (!best) return undefined;
  const { excess: _excess, ...decision } = best;
  return decision;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** One tick. `applied` is the state when the decisions are carried out, `proposed` when they are not. */
export function tick(snap: GovernorSnapshot, state: GovernorState, cfg: GovernorConfig): TickResult {
  const t = snap.at;
  const readings = readSignals(snap, cfg);
  const load = loadState(readings, cfg.releaseRatio);
  const decisions: Decision[] = [];
  const managed: Record<string, ManagedScope> = { ...state.managed };
  const flaps: Record<string, { count: number; at: number }> = { ...state.flaps };

  // Reconcile what the governor set with what the daemons hold.
  for (const [scope, m] of Object.entries(state.managed)) {
    const live = snap.scopes.find((s) => s.scope === scope);
    if (!live) continue; // not reported this tick: decide nothing about it
    // A capped scope whose client still knocks is not raised until it has stopped for the cooldown.
    if ((live.refusalsPerSecond ?? 0) > cfg.releaseRefusalsPerSecond) managed[scope] = { ...managed[scope]!, refusingAt: t };
    if (live.override === m.value) {
      if (!m.confirmed) managed[scope] = { ...managed[scope]!, confirmed: true };
      continue;
    }
    if (!m.confirmed || isGovernorActor(live.setBy)) {
      // The governor's own change did not land (it died before, or a node missed it): put it back.
      decisions.push({ action: 'reassert', scope, kind: m.kind, from: live.limit, to: m.value, signals: readings, why: `the daemons hold ${live.override ?? 'no override'}, the governor set ${m.value}` });
    } else {
      // An operator changed or reset it: theirs wins, and the governor lets go of the scope.
      delete managed[scope];
      decisions.push({ action: 'yield', scope, kind: m.kind, from: m.value, to: live.override ?? 'default', signals: readings, why: `changed by ${live.setBy ?? 'someone else'} to ${live.override ?? 'its plan value'}` });
    }
  }

  // Calm is judged on the recent ticks' mean, not this tick alone: a p99 read from a few operations crosses
  // the release threshold (and now and then the target) by noise, and each crossing would restart the
  // cooldown. Lowering still answers each tick over a target: fast down, slow up.
  const quiet = quietWindow(state, readings, t, cfg);
  const mean = quietMean(quiet);
  const calm = mean < cfg.releaseRatio;
  const calmSince = calm ? (state.calmSince ?? t) : undefined;
  let lastLowerAt = state.lastLowerAt;
  let lastRaiseAt = state.lastRaiseAt;

  if (load === 'over' && (lastLowerAt === undefined || t - lastLowerAt >= cfg.settleSeconds * 1000)) {
    const d = pickLowering(snap, cfg, readings);
    if (d) {
      decisions.push(d);
      lastLowerAt = t;
      const before = managed[d.scope];
      const live = snap.scopes.find((s) => s.scope === d.scope)!;
      managed[d.scope] = {
        kind: d.kind,
        service: live.service,
        value: d.to as number,
        restoreTo: before ? before.restoreTo : (live.override ?? 'default'),
        // No limit before (a rate scope with no rate): raising steps go back toward what it did then.
        restoreValue: before ? before.restoreValue : (d.from ?? d.current!),
        changedAt: t,
        confirmed: false,
        ...(before?.refusingAt !== undefined ? { refusingAt: before.refusingAt } : {}),
      };
      const f = flaps[d.scope];
      if (f && t - f.at < 2 * raiseWaitMs(cfg, state, d.scope)) flaps[d.scope] = { count: f.count + 1, at: f.at };
    }
  } else if (load !== 'over' && calm && calmSince !== undefined) {
    // Never up on a tick over a target (one waiting out settleSeconds after a lowering, say).
    const order = Object.entries(managed).sort((a, b) => a[1].changedAt - b[1].changedAt || a[0].localeCompare(b[0]));
    for (const [scope, m] of order) {
      const wait = raiseWaitMs(cfg, state, scope);
      if (t - calmSince < wait || t - m.changedAt < wait || (lastRaiseAt !== undefined && t - lastRaiseAt < wait)) continue;
      if (m.refusingAt !== undefined && t - m.refusingAt < wait) continue;
      const next = m.value + Math.max(1, Math.ceil((m.restoreValue * cfg.raiseStepPercent) / 100));
      const knock = m.refusingAt === undefined ? 'no refusals of its own' : `its refusals at or under ${cfg.releaseRefusalsPerSecond}/s for ${round((t - m.refusingAt) / 1000)} s`;
      const why = `calm for ${round((t - calmSince) / 1000)} s: the last ${cfg.cooldownSeconds} s averaged ${round(mean)} of the targets (< ${cfg.releaseRatio}); now ${readings.map((r) => `${r.name} ${round(r.value)} (target ${r.target})`).join(', ')}; ${knock}`;
      if (next >= m.restoreValue) {
        delete managed[scope];
        decisions.push({ action: 'release', scope, kind: m.kind, from: m.value, to: m.restoreTo, signals: readings, why });
      } else {
        managed[scope] = { ...m, value: next, changedAt: t, confirmed: false };
        decisions.push({ action: 'raise', scope, kind: m.kind, from: m.value, to: next, signals: readings, why });
      }
      flaps[scope] = { count: flaps[scope]?.count ?? 0, at: t };
      lastRaiseAt = t;
      break;
    }
  }

  // Forget flap history of scopes no longer governed once calm has outlasted it.
  for (const [scope, f] of Object.entries(flaps))
    if (!managed[scope] && t - f.at > 8 * raiseWaitMs(cfg, state, scope)) delete flaps[scope];

  const timers = {
    ...(calmSince !== undefined ? { calmSince } : {}),
    ...(quiet.length > 0 ? { quiet } : {}),
    ...(lastLowerAt !== undefined ? { lastLowerAt } : {}),
    ...(lastRaiseAt !== undefined ? { lastRaiseAt } : {}),
  };
  return {
    load,
    readings,
    decisions,
    applied: { ...timers, managed, flaps },
    // Not applied: proposals are paced like actions, but nothing is governed.
    proposed: { ...timers, managed: state.managed, flaps: state.flaps },
  };
}

/** The limit changes a mode carries out: only enforce changes anything ('yield' is never a change). */
export function changesFor(mode: GovernorConfig['mode'], decisions: readonly Decision[]): Array<{ scope: string; value: number | 'default' }> {
  if (mode !== 'enforce') return [];
  return decisions.filter((d) => d.action !== 'yield').map((d) => ({ scope: d.scope, value: d.to }));
}

/** After the daemons confirmed changes: those scopes' values are known to be live. */
export function confirm(state: GovernorState, scopes: readonly string[]): GovernorState {
  const managed = { ...state.managed };
  for (const s of scopes) if (managed[s]) managed[s] = { ...managed[s]!, confirmed: true };
  return { ...state, managed };
}

/** The command a person runs to apply a decision (advise mode). */
export function commandFor(d: Decision): string {
  return `mailfleet limit set ${d.scope} ${d.to} --by ${GOVERNOR_ACTOR}`;
}
