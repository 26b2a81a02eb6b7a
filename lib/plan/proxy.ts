/**
 * The HAProxy tier's numbers, computed in one place: `mailfleet plan` prints them, the renderer writes them
 * into haproxy.cfg, and a live cap change (applyListenerLimits) recomputes them. Before, the plan summed the
 * caps while the renderer summed the frontends' maxconn (cap + busy headroom), so the two disagreed about
 * the global maxconn by about a factor of two.
 */
import type { PlannedListener } from './types.js';

/** Headroom above a listener's cap, for busy replies, never below this many connections. */
export const BUSY_HEADROOM_MIN = 10;
/** Connections kept beside the frontends in global maxconn (runtime API, stats, checks). */
export const GLOBAL_RESERVE = 100;

/**
 * The frontend's real maxconn: the cap plus as much again (at least BUSY_HEADROOM_MIN), so a live raise up to
 * about twice the cap is a variable change, and a flood past the cap is still answered rather than queued.
 */
export function frontendMaxconn(cap: number): number {
  return cap + Math.max(BUSY_HEADROOM_MIN, cap);
}

export interface ProxyNumbers {
  /** HAProxy global maxconn per proxy node. */
  readonly globalMaxConnections: number;
  /** Sum of the listeners' caps (what clients may hold at once, per proxy node). */
  readonly sumListenerConnections: number;
  /** Sum of the frontends' maxconn (caps plus busy headroom) plus GLOBAL_RESERVE: the global before clamping. */
  readonly wantedGlobalMaxConnections: number;
  /** Why the global is lower than wanted, if it is. */
  readonly clampedBy?: string;
  /** Per listener: its cap (the process variable) and its frontend's maxconn, clamped to the global. */
  readonly frontends: Readonly<Record<string, { readonly cap: number; readonly maxconn: number }>>;
}

/** Pure: the tier's numbers for these listeners under a per-node cap (tiers.proxyMaxConnectionsPerNode). */
export function proxyNumbers(listeners: readonly PlannedListener[], nodeCap: number): ProxyNumbers {
  const sumCaps = listeners.reduce((a, l) => a + l.limits.listenerConnections, 0);
  const wanted =
    listeners.reduce((a, l) => a + frontendMaxconn(l.limits.listenerConnections), 0) + GLOBAL_RESERVE;
  const global = Math.min(nodeCap, wanted);
  return {
    globalMaxConnections: global,
    sumListenerConnections: sumCaps,
    wantedGlobalMaxConnections: wanted,
    clampedBy: wanted > nodeCap ? 'tiers.proxyMaxConnectionsPerNode' : undefined,
    frontends: Object.fromEntries(
      listeners.map((l) => {
        const cap = l.limits.listenerConnections;
        return [l.name, { cap, maxconn: Math.min(frontendMaxconn(cap), global) }];
      }),
    ),
  };
}
