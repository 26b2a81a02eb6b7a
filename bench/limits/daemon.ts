/**
 * The daemon bench/limits/run.ts measures, as its own process: `--admission off` injects an admission
 * that admits everything without counting (limits effectively off), `local` / `redis` use createAdmission.
 *   npx tsx bench/limits/daemon.ts <daemon-config.json> <dataDir> <off|local|redis>
 * Prints one ready line (JSON) with the SMTP port, then serves until SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { startDaemon } from '../../lib/daemon/server.js';
import type { IAdmission } from '../../lib/limits/types.js';
import { silentLogger } from '../../lib/log.js';
import type { DaemonConfig } from '../../lib/plan/types.js';

const [file, dataDir, mode] = process.argv.slice(2) as [string, string, string];
const config = JSON.parse(readFileSync(file, 'utf8')) as DaemonConfig;
const noop: IAdmission = {
  acquire: async () => ({ ok: true, release: () => undefined }),
  snapshot: async () => [],
};
const d = await startDaemon(mode === 'redis' ? config : { ...config, redis: undefined }, {
  dataDir,
  baseDir: dataDir,
  logger: silentLogger,
  admission: mode === 'off' ? noop : undefined,
});
process.stdout.write(
  `${JSON.stringify({ ready: true, smtp: d.sockets.find((s) => s.protocol === 'smtp')!.port, admin: d.adminPort })}\n`,
);
process.on('SIGTERM', () => void d.stop(1000).then(() => process.exit(0)));
