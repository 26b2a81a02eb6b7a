/**
 * The local tier as `mailfleet up` runs it, in-process: a real mailfleetd in local-behind-proxy mode (PROXY
 * v2 on port + internalOffset) and a real HAProxy rendered from the same temp spec on free ports.
 * Shared by the HAProxy tests and bench/proxy.
 */
import { join } from 'node:path';
import { hashPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import type { Plan } from '../../lib/plan/types.js';
import { loadSpec } from '../../lib/spec/index.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { startLocalHaproxy, type LocalHaproxy } from '../../lib/platform/haproxy.js';
import { writeTempSpec, type TempSpec } from './harness.js';

export const PASSWORD = 'proxy-test-pw';

export interface ProxiedDaemon {
  readonly spec: TempSpec;
  readonly plan: Plan;
  readonly daemon: RunningDaemon;
  readonly haproxy: LocalHaproxy;
  /** GET on the daemon's admin API with its token. */
  admin<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

export async function startProxiedDaemon(over: Record<string, unknown> = {}, users: readonly string[] = ['alice@example.com']): Promise<ProxiedDaemon> {
  const hash = await hashPassword(PASSWORD);
  const spec = await writeTempSpec(over, users.map((address) => ({ address, passwordHash: hash })));
  let daemon: RunningDaemon | undefined;
  try {
    const loaded = loadSpec(spec.file);
    const plan = buildPlan(loaded.spec);
    const dataDir = join(spec.dir, 'var');
    daemon = await startDaemon(daemonConfig(plan, { mode: 'local-behind-proxy' }), { dataDir, baseDir: spec.dir, logger: silentLogger });
    const haproxy = await startLocalHaproxy({ plan, dataDir, specFile: spec.file });
    const d = daemon;
    return {
      spec,
      plan,
      daemon: d,
      haproxy,
      async admin<T>(path: string): Promise<T> {
        const r = await fetch(`http://127.0.0.1:${d.adminPort}${path}`, { headers: { authorization: `Bearer ${d.adminToken}` } });
        if (!r.ok) throw new Error(`admin ${path}: HTTP ${r.status} ${await r.text()}`);
        return (await r.json()) as T;
      },
      async stop() {
        await haproxy.stop();
        await d.stop(1000);
        spec.cleanup();
      },
    };
  } catch (e) {
    await daemon?.stop(0);
    spec.cleanup();
    throw e;
  }
}
