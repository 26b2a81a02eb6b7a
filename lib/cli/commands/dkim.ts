/**
 * `mailfleet dkim show <domain>`: the DNS TXT record that publishes a local domain's DKIM key. The key is
 * the one rspamd signs submission mail with (<dataDir>/dkim/<domain>.<selector>.key, lib/filter/dkim.ts),
 * generated here on first use, so the record can be published before the first message leaves.
 */
import { resolve } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { dkimKeyDir, dkimRecordName, dkimRecordValue, dkimZoneLine, ensureDkimKey } from '../../filter/dkim.js';
import { loadSpec } from '../../spec/load.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerDkim: RegisterCommand = (program) => {
  const dkim = program.command('dkim').description('DKIM keys of the local domains (signing through rspamd)');
  dkim
    .command('show <domain>')
    .description('print the DNS TXT record of a domain\'s DKIM key (the key is generated when missing)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--data-dir <dir>', 'data dir holding dkim/ (default: MAILFLEET_DATA_DIR, else the spec local.dataDir)')
    .option('--json', 'JSON output: name, value, selector, key file')
    .action((domain: string, opts: { config: string; dataDir?: string; json?: boolean }) =>
      runAction(() => {
        const { spec } = loadSpec(opts.config);
        const d = domain.toLowerCase();
        if (!spec.domains.some((x) => x.name.toLowerCase() === d))
          throw new MailfleetError('BAD_REQUEST', `${domain} is not a domain of ${opts.config} (domains: ${spec.domains.map((x) => x.name).join(', ')})`, { status: 400 });
        const selector = spec.filtering?.dkim.selector ?? 'mailfleet';
        const dir = dkimKeyDir(resolve(opts.dataDir ?? process.env.MAILFLEET_DATA_DIR ?? spec.local.dataDir));
        const pem = ensureDkimKey(dir, d, selector);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ name: dkimRecordName(d, selector), type: 'TXT', value: dkimRecordValue(pem), selector, keyDir: dir }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${dkimZoneLine(d, selector, pem)}\n`);
      }),
    );
};
