import { createLogger } from '../../log.js';
import { stopOnSignals } from '../../daemon/run.js';
import { formatPlatform, startLocalPlatform } from '../../platform/local.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerUp: RegisterCommand = (program) => {
  program
    .command('up')
    .description('run the local platform: HAProxy (when installed) in front of mailfleetd on loopback, from the given spec (npm start)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--data-dir <dir>', 'data folder (default: MAILFLEET_DATA_DIR, else the spec local.dataDir, ./var)')
    .action((opts: { config: string; dataDir?: string }) =>
      runAction(async () => {
        const logger = createLogger({ name: 'mailfleetd', level: process.env.MAILFLEET_LOG_LEVEL ?? 'warn' });
        const p = await startLocalPlatform({ specFile: opts.config, dataDir: opts.dataDir, logger });
        process.stdout.write(formatPlatform(p));
        await new Promise<void>((resolve) => stopOnSignals(p, logger, resolve));
        process.stdout.write(p.haproxy ? 'haproxy and mailfleetd stopped\n' : 'mailfleetd stopped\n');
      }),
    );
};
