import type { Logger } from '../../log.js';
import { createLogger } from '../../log.js';
import { STOP_DEADLINE_MS } from '../../daemon/run.js';
import { formatPlatform, startLocalPlatform, type LocalPlatform } from '../../platform/local.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

/**
 * One Ctrl-C reaches `up` more than once: the terminal signals the whole group and npm/tsx relay it too
 * (tsx when its child's acknowledgement takes over 30 ms on a busy machine). Repeats this close to the
 * first are the same keypress; a later one is the user's second Ctrl-C.
 */
const SAME_SIGNAL_WINDOW_MS = 1000;

/**
 * Signals for the whole life of `up`: one during start-up is kept and honoured once started (HAProxy runs
 * in its own process group, so exiting at once would leave it behind); the first afterwards stops the
 * platform gracefully; a second Ctrl-C (not a relayed copy) exits at once with 130, and the 'exit' hooks
 * stop HAProxy and drop the pidfile.
 */
class UpSignals {
  private first?: number;
  private platform?: LocalPlatform;
  private resolveStopped?: () => void;
  private readonly handler = (sig: NodeJS.Signals) => this.onSignal(sig);

  constructor(private readonly logger: Logger) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** Resolves once the platform stopped after a signal (at once if one came during start-up). */
  serve(platform: LocalPlatform): Promise<void> {
    this.platform = platform;
    const stopped = new Promise<void>((r) => (this.resolveStopped = r));
    if (this.first !== undefined) this.stop();
    return stopped.finally(() => this.dispose());
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }

  private onSignal(sig: NodeJS.Signals): void {
    if (this.first === undefined) {
      this.first = Date.now();
      this.logger.info({ signal: sig }, 'stopping: in-flight deliveries finish first');
      if (this.platform) this.stop();
      return;
    }
    if (Date.now() - this.first < SAME_SIGNAL_WINDOW_MS) return;
    this.logger.warn({ signal: sig }, 'second signal: exiting now');
    process.exit(130);
  }

  private stop(): void {
    this.platform!.stop(STOP_DEADLINE_MS).then(
      () => this.resolveStopped?.(),
      (e: unknown) => {
        this.logger.error({ err: e }, 'stop failed');
        process.exit(1);
      },
    );
  }
}

/**
 * Exit codes (docs/local-platform.md): 0 stopped cleanly; 1 could not start (another `up` owns the data
 * dir, a port is taken, HAProxy failed); 2 bad spec or arguments; 130 a second Ctrl-C while stopping.
 */
export const registerUp: RegisterCommand = (program) => {
  program
    .command('up')
    .description('run the local platform: HAProxy (when installed) in front of mailfleetd on loopback, from the given spec (npm start)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--data-dir <dir>', 'data folder (default: MAILFLEET_DATA_DIR, else the spec local.dataDir, ./var)')
    .action((opts: { config: string; dataDir?: string }) =>
      runAction(async () => {
        const logger = createLogger({ name: 'mailfleetd', level: process.env.MAILFLEET_LOG_LEVEL ?? 'warn' });
        const signals = new UpSignals(logger);
        let platform: LocalPlatform;
        try {
          platform = await startLocalPlatform({ specFile: opts.config, dataDir: opts.dataDir, logger });
        } catch (e) {
          signals.dispose();
          throw e;
        }
        process.stdout.write(formatPlatform(platform));
        await signals.serve(platform);
        process.stdout.write(platform.haproxy ? 'haproxy and mailfleetd stopped\n' : 'mailfleetd stopped\n');
      }),
    );
};
