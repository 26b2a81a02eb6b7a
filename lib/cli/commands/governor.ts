/** `mailfleet governor run|log`: the adaptive flow governor (docs/governor.md). */
import { resolve, join } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { governorConfig, type GovernorConfig } from '../../governor/config.js';
import { formatGovernorLog } from '../../governor/format.js';
import { Governor } from '../../governor/loop.js';
import { GovernorStore } from '../../governor/store.js';
import { GOVERNOR_MODES } from '../../spec/schema.js';
import { loadSpec } from '../../spec/load.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';
import { addFleetOptions, fleetFrom, type FleetCliOptions } from './fleet-options.js';

interface RunOptions extends FleetCliOptions {
  mode?: string;
  stateDir?: string;
  interval?: string;
  once?: boolean;
}

/** --state-dir, else <data dir>/governor (--data-dir, MAILFLEET_DATA_DIR, the spec's local.dataDir). */
function stateDirOf(opts: { stateDir?: string; dataDir?: string; config?: string }, specDataDir?: string): string {
  if (opts.stateDir) return resolve(opts.stateDir);
  const data = opts.dataDir ?? process.env.MAILFLEET_DATA_DIR ?? specDataDir ?? (opts.config ? loadSpec(opts.config).spec.local.dataDir : './var');
  return join(resolve(data), 'governor');
}

export const registerGovernor: RegisterCommand = (program) => {
  const governor = program
    .command('governor')
    .description('the adaptive flow governor: lowers the heaviest scope when load crosses the spec\'s governor targets, raises it back when calm (docs/governor.md)');
  addFleetOptions(governor.command('run').description('run the governor loop against every daemon of the fleet (one per region)'))
    .option('--mode <mode>', `override governor.mode: ${GOVERNOR_MODES.join(' | ')}`)
    .option('--state-dir <dir>', 'audit trail, state and metrics files (default: <data dir>/governor)')
    .option('--interval <seconds>', 'override governor.intervalSeconds')
    .option('--once', 'one tick, then exit')
    .action((opts: RunOptions) =>
      runAction(async () => {
        const fleet = fleetFrom(opts);
        let config: GovernorConfig = governorConfig(fleet.spec?.governor);
        if (opts.mode !== undefined) {
          if (!(GOVERNOR_MODES as readonly string[]).includes(opts.mode))
            throw new MailfleetError('BAD_REQUEST', `--mode must be one of ${GOVERNOR_MODES.join(', ')}`, { status: 400 });
          config = { ...config, mode: opts.mode as GovernorConfig['mode'] };
        }
        if (opts.interval !== undefined) {
          const s = Number(opts.interval);
          if (!(s > 0)) throw new MailfleetError('BAD_REQUEST', '--interval takes a positive number of seconds', { status: 400 });
          config = { ...config, intervalSeconds: s };
        }
        const stateDir = stateDirOf(opts, fleet.dataDir);
        const g = new Governor({ fleet, config, stateDir, logger: createLogger({ name: 'mailfleet-governor' }) });
        if (opts.once) {
          g.start();
          try {
            await g.tickOnce();
          } finally {
            g.stop();
          }
          return;
        }
        const ac = new AbortController();
        process.once('SIGTERM', () => ac.abort());
        process.once('SIGINT', () => ac.abort());
        process.stdout.write(`${JSON.stringify({ governor: 'running', mode: config.mode, stateDir, daemons: fleet.nodes.map((n) => n.url) })}\n`);
        await g.run(ac.signal);
      }),
    );
  governor
    .command('log')
    .description('the governor\'s audit trail: every decision with its signals, scope, before and after')
    .option('-c, --config <file>', 'spec file (its local.dataDir locates the state dir)')
    .option('--data-dir <dir>', 'data dir (the state dir is <data dir>/governor)')
    .option('--state-dir <dir>', 'the governor\'s state dir')
    .option('--rows <n>', 'last N entries', '50')
    .option('--json', 'every entry as one JSON line')
    .action((opts: { config?: string; dataDir?: string; stateDir?: string; rows?: string; json?: boolean }) =>
      runAction(() => {
        const entries = new GovernorStore(stateDirOf(opts)).readLog();
        const rows = Number(opts.rows ?? 50);
        process.stdout.write(opts.json ? entries.slice(-rows).map((e) => `${JSON.stringify(e)}\n`).join('') : `${formatGovernorLog(entries, { rows })}\n`);
      }),
    );
};
