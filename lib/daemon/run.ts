/**
 * Running mailfleetd as a process: where its settings come from (a spec + mode, or a rendered
 * daemon-config JSON), where its data goes, and a clean stop on SIGINT/SIGTERM (in-flight deliveries
 * finish, sessions get the protocol's goodbye). The certificate comes from MAILFLEET_TLS_CERT/KEY when
 * set (cloud nodes), else startDaemon's cached self-signed one. Shared by `mailfleet serve`, `mailfleet up` and the
 * bundled dist/mailfleetd.mjs (lib/daemon/main.ts), so it must not import engine code.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MailfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { buildPlan } from '../plan/build.js';
import { daemonConfig, type DaemonConfigOptions } from '../plan/daemon-config.js';
import type { DaemonConfig, DaemonMode } from '../plan/types.js';
import { loadSpec } from '../spec/load.js';
import { startDaemon, type RunningDaemon, type StartDaemonOptions } from './server.js';
import { certificateFromEnv } from './tls.js';

export const DAEMON_MODES: readonly DaemonMode[] = ['local-direct', 'local-behind-proxy', 'cloud'];
/** How long a stop waits for sessions (and their deliveries) before closing them. */
export const STOP_DEADLINE_MS = 10_000;

export interface DaemonSource {
  /** The spec file (mailfleet.yaml). */
  readonly config?: string;
  /** A rendered daemon config (JSON, `mailfleet render daemon-config`); wins over config. */
  readonly daemonConfig?: string;
  /** @default 'local-direct' */
  readonly mode?: DaemonMode;
  /** --data-dir; else MAILFLEET_DATA_DIR; else the spec's local.dataDir; else ./var. */
  readonly dataDir?: string;
  readonly portOverrides?: DaemonConfigOptions['portOverrides'];
  readonly adminPort?: number;
}

export interface LoadedDaemonConfig {
  readonly config: DaemonConfig;
  /** Folder the directory file (users.yaml) resolves against. */
  readonly baseDir: string;
  readonly dataDir: string;
}

export function loadDaemonConfig(src: DaemonSource): LoadedDaemonConfig {
  const envDataDir = process.env.MAILFLEET_DATA_DIR;
  if (src.daemonConfig) {
    const file = resolve(src.daemonConfig);
    let config: DaemonConfig;
    try {
      config = JSON.parse(readFileSync(file, 'utf8')) as DaemonConfig;
    } catch (e) {
      throw new MailfleetError('SPEC_IO', `${src.daemonConfig}: cannot read daemon config: ${(e as Error).message}`, { status: 400, cause: e });
    }
    if (!Array.isArray(config.sockets) || !config.admin) throw new MailfleetError('SPEC_INVALID', `${src.daemonConfig}: not a daemon config (no sockets/admin)`, { status: 400 });
    return { config, baseDir: dirname(file), dataDir: resolve(src.dataDir ?? envDataDir ?? './var') };
  }
  if (!src.config) throw new MailfleetError('BAD_REQUEST', 'give --config <spec.yaml> or --daemon-config <file.json>', { status: 400 });
  const mode = src.mode ?? 'local-direct';
  if (!DAEMON_MODES.includes(mode)) throw new MailfleetError('BAD_REQUEST', `--mode must be one of ${DAEMON_MODES.join(', ')}`, { status: 400 });
  const { spec, dir } = loadSpec(src.config);
  const plan = buildPlan(spec);
  const config = daemonConfig(plan, { mode, portOverrides: src.portOverrides, adminPort: src.adminPort });
  return { config, baseDir: dir, dataDir: resolve(src.dataDir ?? envDataDir ?? spec.local.dataDir) };
}

/** Stops the daemon on SIGINT/SIGTERM (a second signal exits at once). Returns a remover. */
export function stopOnSignals(daemon: Pick<RunningDaemon, 'stop'>, logger: Logger, onStopped?: () => void): () => void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal: sig }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal: sig }, 'stopping: in-flight deliveries finish first');
    daemon.stop(STOP_DEADLINE_MS).then(
      () => onStopped?.(),
      (e: unknown) => {
        logger.error({ err: e }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

export async function startFromSource(src: DaemonSource, opts: Omit<StartDaemonOptions, 'dataDir' | 'baseDir'> = {}): Promise<RunningDaemon & { loaded: LoadedDaemonConfig }> {
  const loaded = loadDaemonConfig(src);
  const tls = opts.tls ?? certificateFromEnv();
  const d = await startDaemon(loaded.config, { ...opts, ...(tls ? { tls } : {}), dataDir: loaded.dataDir, baseDir: loaded.baseDir });
  return Object.assign(d, { loaded });
}

/** Starts mailfleetd in the foreground and resolves once it stopped after SIGINT/SIGTERM. */
export async function serveForeground(src: DaemonSource, logger: Logger): Promise<void> {
  const d = await startFromSource(src, { logger });
  // One machine-readable line for supervisors and tests: what is bound where.
  process.stdout.write(
    `${JSON.stringify({ ready: true, pid: process.pid, sockets: d.sockets, skipped: d.skipped, admin: { host: d.adminHost, port: d.adminPort }, dataDir: d.loaded.dataDir })}\n`,
  );
  await new Promise<void>((resolve) => stopOnSignals(d, logger, resolve));
}
