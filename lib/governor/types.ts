/**
 * The governor's vocabulary: what one tick sees (signals and per-scope load), what it remembers between
 * ticks (GovernorState, persisted), and what it decides. The decision core (core.ts) is a pure function
 * of these; the loop (loop.ts) fills them from the daemons' admin API and applies decisions.
 */
import type { GovernedKind, GovernorSignal } from './config.js';

export type { GovernedKind, GovernorSignal } from './config.js';

/** One scope's load now, fleet-wide. */
export interface ScopeLoad {
  /** The canonical limit scope (`mailfleet limit set` syntax), e.g. user:alice@example.com:imap. */
  readonly scope: string;
  readonly kind: GovernedKind;
  /** The service the scope counts on (fair share is computed among scopes of one kind and service). */
  readonly service: string;
  /** Sessions now, summed over the daemons. */
  readonly current: number;
  /** The limit the daemons enforce now (undefined when no daemon reported one). */
  readonly limit?: number;
  /** The live override (null: the scope follows its plan value). */
  readonly override: number | null;
  /** Who set the live override (the X-Mailfleet-Actor of its change), when known. */
  readonly setBy?: string;
  /**
   * The scope's own refusals per second since the previous reading, all daemons (undefined on the first
   * reading, when there is no previous one to take a delta from).
   */
  readonly refusalsPerSecond?: number;
}

/** One tick's inputs. Signals absent from `signals` are unknown this tick (no deliveries, first sample). */
export interface GovernorSnapshot {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly signals: Partial<Record<GovernorSignal, number>>;
  readonly scopes: readonly ScopeLoad[];
}

/** A scope the governor has lowered and will raise back. */
export interface ManagedScope {
  readonly kind: GovernedKind;
  readonly service: string;
  /** The value the governor last set. */
  readonly value: number;
  /** What to put back when done: the override it found, or 'default' (drop the override). */
  readonly restoreTo: number | 'default';
  /** The value the scope had when first lowered: raising steps go back toward it. */
  readonly restoreValue: number;
  /** When the governor last changed it (ms). */
  readonly changedAt: number;
  /** False from the moment the change is decided until the daemons confirmed it (write-ahead). */
  readonly confirmed: boolean;
  /**
   * The last tick at which the scope's own refusals were above releaseRefusalsPerSecond (ms): its client
   * was still knocking. A raise waits for the cooldown after it.
   */
  readonly refusingAt?: number;
}

/** What the governor remembers between ticks (and across restarts: the state file). */
export interface GovernorState {
  /** Since when load has been calm (ms): the mean of the recent ticks under the release threshold (see `quiet`). */
  readonly calmSince?: number;
  /**
   * The ticks of the last cooldownSeconds: when, and the worst signal's value as a fraction of its target.
   * Calm is judged on their mean, so one noisy reading does not restart the cooldown, while a load that
   * stays in the band (or at the target) never becomes calm.
   */
  readonly quiet?: readonly { readonly at: number; readonly worst: number }[];
  /** Last lowering decision or proposal (ms): the next waits settleSeconds. */
  readonly lastLowerAt?: number;
  /** Last raising decision or proposal (ms): the next waits cooldownSeconds. */
  readonly lastRaiseAt?: number;
  readonly managed: Readonly<Record<string, ManagedScope>>;
  /**
   * Scopes lowered again soon after a raise (a flap): each such flap doubles how long that scope waits
   * before its next raise. Kept per scope after release, and forgotten once calm has lasted long.
   */
  readonly flaps: Readonly<Record<string, { readonly count: number; readonly at: number }>>;
}

export const EMPTY_STATE: GovernorState = Object.freeze({ managed: {}, flaps: {} });

/** The signal over (or under) its target that explains a decision. */
export interface SignalReading {
  readonly name: GovernorSignal;
  readonly value: number;
  readonly target: number;
}

export type DecisionAction =
  /** Lower a scope's limit one step. */
  | 'lower'
  /** Raise a lowered scope one step toward its value before. */
  | 'raise'
  /** Give the scope back its value before (drop the override, or restore the operator's). */
  | 'release'
  /** Put back a value the governor set that the daemons do not hold (its own change was lost). */
  | 'reassert'
  /** Someone else changed a governed scope: the governor lets go of it (no change made). */
  | 'yield';

export interface Decision {
  readonly action: DecisionAction;
  readonly scope: string;
  readonly kind: GovernedKind;
  /** The limit before (undefined when the daemons did not report one). */
  readonly from?: number;
  /** The limit after ('default': the override is dropped; the plan's value applies). */
  readonly to: number | 'default';
  /** The signals that crossed their targets (lower), or all of them (raise, release). */
  readonly signals: readonly SignalReading[];
  /** The scope's sessions, the fair share of its kind and the floor that bounded the step. */
  readonly current?: number;
  readonly fairShare?: number;
  readonly bound?: number;
  readonly why: string;
}

/** Where load stands relative to the targets this tick. */
export type LoadState = 'over' | 'calm' | 'band' | 'unknown';

export interface TickResult {
  readonly load: LoadState;
  /** The readings of every targeted signal this tick. */
  readonly readings: readonly SignalReading[];
  readonly decisions: readonly Decision[];
  /** The state after this tick, with the decisions taken as applied (enforce). */
  readonly applied: GovernorState;
  /** The state after this tick when nothing is applied (observe, advise): timers move, managed scopes do not. */
  readonly proposed: GovernorState;
}
