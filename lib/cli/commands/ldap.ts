import { checkLdap, formatLdapCheck } from '../../directory/ldap/check.js';
import { MAILFLEET_LDAP_SCHEMA } from '../../directory/ldap/schema.js';
import { MailfleetError } from '../../errors.js';
import { createLogger } from '../../log.js';
import { loadSpec } from '../../spec/index.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerLdap: RegisterCommand = (program) => {
  const ldap = program.command('ldap').description('LDAP / Active Directory user store tools');
  ldap
    .command('check')
    .description('connect to every directory URI, do the service bind and one lookup, print what was found; exit 1 on any failure')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('-a, --address <address>', 'address or login to look up (default: the first entry with a mail address)')
    .action((opts: { config: string; address?: string }) =>
      runAction(async () => {
        const { spec, dir } = loadSpec(opts.config);
        if (spec.directory.kind !== 'ldap')
          throw new MailfleetError('BAD_REQUEST', `${opts.config}: directory.kind is ${spec.directory.kind}, not ldap`);
        const report = await checkLdap(spec.directory, {
          baseDir: dir,
          address: opts.address,
          logger: createLogger({ level: process.env.MAILFLEET_LOG_LEVEL ?? 'error' }),
        });
        process.stdout.write(formatLdapCheck(report));
        if (!report.ok) throw new MailfleetError('DIRECTORY_UNAVAILABLE', `ldap check failed: ${report.problems[0]}`);
      }),
    );
  ldap
    .command('schema')
    .description('print the mailfleet OpenLDAP schema (slapd.conf format): the attributes the openldap flavor reads by default')
    .action(() => runAction(async () => void process.stdout.write(MAILFLEET_LDAP_SCHEMA)));
};
