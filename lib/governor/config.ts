/** The governor's settings: the spec's governor block with every default filled in. */
import { DEFAULT_GOVERNOR } from '../spec/defaults.js';
import { GOVERNED_KINDS, governorSchema, type GovernorSpec } from '../spec/schema.js';

export type GovernedKind = (typeof GOVERNED_KINDS)[number];
export type GovernorMode = GovernorSpec['mode'];

/** The load signals a target may be set on, all "higher is worse". */
export const GOVERNOR_SIGNALS = ['eventLoopLagMs', 'storageLatencyMs', 'cpuPercent', 'connections', 'refusalsPerSecond'] as const;
export type GovernorSignal = (typeof GOVERNOR_SIGNALS)[number];

export interface GovernorConfig {
  readonly mode: GovernorMode;
  /** Only the signals with a target. */
  readonly targets: Readonly<Partial<Record<GovernorSignal, number>>>;
  readonly intervalSeconds: number;
  readonly settleSeconds: number;
  readonly cooldownSeconds: number;
  readonly stepPercent: number;
  readonly raiseStepPercent: number;
  readonly floor: number;
  readonly releaseRatio: number;
  readonly releaseRefusalsPerSecond: number;
  readonly scopes: readonly GovernedKind[];
}

/** Fills defaults; with no target at all, the event-loop lag and storage latency targets apply. */
export function governorConfig(spec: GovernorSpec | undefined): GovernorConfig {
  const g = spec ?? governorSchema.parse({});
  const given = Object.fromEntries(Object.entries(g.targets).filter(([, v]) => v !== undefined)) as Partial<Record<GovernorSignal, number>>;
  const targets =
    Object.keys(given).length > 0
      ? given
      : { eventLoopLagMs: DEFAULT_GOVERNOR.eventLoopLagMs, storageLatencyMs: DEFAULT_GOVERNOR.storageLatencyMs };
  return {
    mode: g.mode,
    targets,
    intervalSeconds: g.intervalSeconds,
    settleSeconds: g.settleSeconds,
    cooldownSeconds: g.cooldownSeconds,
    stepPercent: g.stepPercent,
    raiseStepPercent: g.raiseStepPercent,
    floor: g.floor,
    releaseRatio: g.releaseRatio,
    releaseRefusalsPerSecond: g.releaseRefusalsPerSecond,
    scopes: [...new Set(g.scopes)],
  };
}
