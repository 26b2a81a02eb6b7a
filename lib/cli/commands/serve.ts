import { createLogger } from '../../log.js';
import { serveForeground, type DaemonSource } from '../../daemon/run.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerServe: RegisterCommand = (program) => {
  program
    .command('serve')
    .description('run mailfleetd (SMTP, submission, IMAP/POP3 when available, admin API) in the foreground')
    .option('-c, --config <file>', 'spec file')
    .option('--mode <mode>', 'local-direct | local-behind-proxy | cloud', 'local-direct')
    .option('--daemon-config <file>', 'rendered daemon config JSON (mailfleet render daemon-config); wins over --config')
    .option('--data-dir <dir>', 'data folder (default: MAILFLEET_DATA_DIR, else the spec local.dataDir)')
    .action((opts: DaemonSource) => runAction(() => serveForeground(opts, createLogger({ name: 'mailfleetd' }))));
};
