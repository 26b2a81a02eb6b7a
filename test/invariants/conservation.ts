/**
 * The conservation invariant (issue 15): once every client has gone, a daemon counts nothing. Reads what the
 * daemon itself reports — its admission snapshot (in-process or Redis), its connection registry (the data
 * behind /v1/connections) and its listeners' socket sets — never a count the test kept.
 */
import type { RunningDaemon } from '../../lib/daemon/server.js';

export interface Residue {
  readonly registry: number;
  readonly sockets: number;
  readonly scopes: ReadonlyArray<{ scope: string; current: number }>;
}

export async function residue(d: RunningDaemon): Promise<Residue> {
  const snap = await d.ctx.admission.snapshot();
  return {
    registry: d.ctx.connections.size,
    sockets: d.listeners.reduce((n, l) => n + l.connectionCount, 0),
    scopes: snap
      .filter((u) => u.current !== 0 || (u.local ?? 0) !== 0)
      .map((u) => ({ scope: `${u.scope.service}:${u.scope.kind}:${u.scope.id}`, current: u.current }))
      .sort((a, b) => a.scope.localeCompare(b.scope)),
  };
}

export const ZERO: Residue = { registry: 0, sockets: 0, scopes: [] };

const same = (a: Residue, b: Residue) => JSON.stringify(a) === JSON.stringify(b);

/** Resolves once the daemon counts exactly `expected` (what long-lived sessions hold); throws with the difference. */
export async function waitForResidue(d: RunningDaemon, expected: Residue, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await residue(d);
    if (same(r, expected)) return;
    if (Date.now() > until)
      throw new Error(`counters did not return within ${timeoutMs} ms: expected ${JSON.stringify(expected)}, have ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** Resolves once nothing is counted; throws with what is left after `timeoutMs`. */
export function waitForZero(d: RunningDaemon, timeoutMs = 2000): Promise<void> {
  return waitForResidue(d, ZERO, timeoutMs);
}
