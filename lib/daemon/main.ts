/**
 * mailfleetd entry point: what scripts/bundle-daemon.mjs bundles into dist/mailfleetd.mjs, the only
 * artifact the engines ship to mail nodes. Same `serve` options as `mailfleet serve`.
 *   node dist/mailfleetd.mjs serve --daemon-config /etc/mailfleet/mailfleetd.json --data-dir /srv/mail
 */
// No UV_THREADPOOL_SIZE here: Node starts the libuv pool while loading an ES module entry (it reads the
// file asynchronously), so a value set in code is ignored. The default 4 threads measured as fast as 16
// for SMTP delivery (bench/smtp, docs/daemon.md); an operator can still set it in the environment.
import { Command } from 'commander';
import { MailfleetError } from '../errors.js';
import { createLogger } from '../log.js';
import { serveForeground, type DaemonSource } from './run.js';

const program = new Command('mailfleetd').description('mailfleet mail daemon: SMTP, submission, IMAP, POP3, admin API');
program
  .command('serve', { isDefault: true })
  .description('run in the foreground; SIGINT/SIGTERM stop cleanly')
  .option('-c, --config <file>', 'spec file')
  .option('--mode <mode>', 'local-direct | local-behind-proxy | cloud', 'local-direct')
  .option('--daemon-config <file>', 'rendered daemon config JSON; wins over --config')
  .option('--data-dir <dir>', 'data folder (default: MAILFLEET_DATA_DIR, else the spec local.dataDir)')
  .action(async (opts: DaemonSource) => {
    try {
      await serveForeground(opts, createLogger({ name: 'mailfleetd' }));
    } catch (e) {
      if (!(e instanceof MailfleetError)) throw e;
      process.stderr.write(`mailfleetd: ${e.message}\n`);
      process.exitCode = 2;
    }
  });

await program.parseAsync(process.argv);
