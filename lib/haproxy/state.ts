/**
 * Listener caps changed live (`mailfleet limit set listener:<name> N`) are recorded in a small JSON file so
 * the next render, reload and deploy keep them: the plan is built from the spec, then these values are laid
 * over it (applyListenerLimits, pure). Locally the file is <dataDir>/haproxy/listener-limits.json; for a
 * cloud deploy, keep it beside the spec and pass it to `mailfleet render --limits-state`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';
import { proxyNumbers } from '../plan/proxy.js';
import type { Plan } from '../plan/types.js';
import { writeJsonDurably } from '../state-json.js';

export const LISTENER_LIMITS_FILE = 'listener-limits.json';

export interface ListenerLimitRecord {
  readonly listenerConnections: number;
  /** ISO time of the change. */
  readonly setAt: string;
  /** Who made it (the CLI's --by, else its OS user). */
  readonly setBy?: string;
}

export interface ListenerLimitsState {
  readonly version: 1;
  readonly listeners: Readonly<Record<string, ListenerLimitRecord>>;
}

export function listenerLimitsPath(dataDir: string): string {
  return join(dataDir, 'haproxy', LISTENER_LIMITS_FILE);
}

export function readListenerLimitsState(file: string): ListenerLimitsState {
  if (!existsSync(file)) return { version: 1, listeners: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MailfleetError('SPEC_IO', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const listeners = (parsed as { listeners?: unknown }).listeners;
  if (typeof listeners !== 'object' || listeners === null) throw new MailfleetError('SPEC_INVALID', `${file}: expected { "listeners": { … } }`);
  for (const [name, rec] of Object.entries(listeners)) {
    const n = (rec as { listenerConnections?: unknown }).listenerConnections;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)
      throw new MailfleetError('SPEC_INVALID', `${file}: listeners.${name}.listenerConnections must be a positive integer`);
  }
  return { version: 1, listeners: listeners as Record<string, ListenerLimitRecord> };
}

/** name → recorded cap. */
export function readListenerLimits(file: string): Record<string, number> {
  return Object.fromEntries(Object.entries(readListenerLimitsState(file).listeners).map(([k, v]) => [k, v.listenerConnections]));
}

/** Records one listener's cap (atomic replace, so a crash never leaves half a file). */
export function recordListenerLimit(file: string, listener: string, cap: number, now = new Date(), by?: string): void {
  const state = readListenerLimitsState(file);
  const next: ListenerLimitsState = {
    version: 1,
    listeners: { ...state.listeners, [listener]: { listenerConnections: cap, setAt: now.toISOString(), ...(by ? { setBy: by } : {}) } },
  };
  writeJsonDurably(file, next);
}

/** Forgets a listener's recorded cap (`limit set listener:<name> default`): the spec's value applies again. */
export function clearListenerLimit(file: string, listener: string): void {
  const state = readListenerLimitsState(file);
  if (!(listener in state.listeners)) return;
  const listeners = { ...state.listeners };
  delete listeners[listener];
  writeJsonDurably(file, { version: 1, listeners });
}

/**
 * The plan with recorded listener caps laid over it. Pure. Names the plan does not know are ignored (a
 * listener removed from the spec); the per-source cap is clamped to the new listener cap, and the proxy
 * totals are recomputed by the plan's own proxyNumbers.
 */
export function applyListenerLimits(plan: Plan, caps: Readonly<Record<string, number>>): Plan {
  if (Object.keys(caps).length === 0) return plan;
  const listeners = plan.listeners.map((l) => {
    const cap = caps[l.name];
    if (cap === undefined || cap === l.limits.listenerConnections) return l;
    return { ...l, limits: { ...l.limits, listenerConnections: cap, sourceConnections: Math.min(l.limits.sourceConnections, cap) } };
  });
  return { ...plan, listeners, proxy: proxyNumbers(listeners, plan.spec.tiers.proxyMaxConnectionsPerNode) };
}
