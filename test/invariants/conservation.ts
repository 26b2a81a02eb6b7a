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
      .map((u) => ({ scope: `${u.scope.service}:${u.scope.kind}:${u.scope.id}`, current: u.current })),
  };
}

export function isZero(r: Residue): boolean {
  return r.registry === 0 && r.sockets === 0 && r.scopes.length === 0;
}

/** Resolves once nothing is counted; throws with what is left after `timeoutMs`. */
export async function waitForZero(d: RunningDaemon | readonly RunningDaemon[], timeoutMs = 2000): Promise<void> {
  const daemons = Array.isArray(d) ? d : [d as RunningDaemon];
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rs = await Promise.all(daemons.map(residue));
    if (rs.every(isZero)) return;
    if (Date.now() > until) throw new Error(`counters did not return to zero within ${timeoutMs} ms: ${JSON.stringify(rs)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
