import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { hashPassword, readUsersFile, writeUsersFile, type UsersFile } from '../../directory/static.js';
import { addressParts } from '../../store/maildir/paths.js';
import { loadSpec } from '../../spec/load.js';
import { table } from '../../plan/format.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

/** The users file: --file, else the spec's static directory file (next to the spec). */
function usersFile(opts: { file?: string; config: string }): string {
  if (opts.file) return resolve(opts.file);
  const { spec, dir } = loadSpec(opts.config);
  if (spec.directory.kind !== 'static')
    throw new MailfleetError('BAD_REQUEST', `${opts.config}: directory.kind is ${spec.directory.kind}; users are managed in the directory itself`, { status: 400 });
  return resolve(dir, spec.directory.file);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const registerUsers: RegisterCommand = (program) => {
  const users = program.command('users').description('users of the static directory (users.yaml)');
  users
    .command('add <address>')
    .description('add a user, or set the password of an existing one (scrypt hash)')
    .option('--password-stdin', 'read the password from standard input (the only way: never on the command line)')
    .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--alias <address...>', 'extra addresses delivered to this user')
    .action((address: string, opts: { passwordStdin?: boolean; file?: string; config: string; alias?: string[] }) =>
      runAction(async () => {
        if (!opts.passwordStdin) throw new MailfleetError('BAD_REQUEST', 'pass the password on stdin with --password-stdin', { status: 400 });
        const canonical = addressParts(address).address;
        const password = await readStdin();
        if (password.length < 1) throw new MailfleetError('BAD_REQUEST', 'empty password', { status: 400 });
        const file = usersFile(opts);
        const data: UsersFile = existsSync(file) ? readUsersFile(file) : { users: [], aliases: {} };
        const passwordHash = await hashPassword(password);
        const existing = data.users.find((u) => u.address === canonical);
        const aliases = opts.alias?.map((a) => addressParts(a).address);
        if (existing) {
          existing.passwordHash = passwordHash;
          if (aliases) existing.aliases = aliases;
        } else data.users.push({ address: canonical, passwordHash, ...(aliases ? { aliases } : {}) });
        writeUsersFile(file, data);
        process.stdout.write(`${existing ? 'updated' : 'added'} ${canonical} in ${file}\n`);
      }),
    );
  users
    .command('list')
    .description('list users and aliases')
    .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--json', 'JSON output')
    .action((opts: { file?: string; config: string; json?: boolean }) =>
      runAction(() => {
        const data = readUsersFile(usersFile(opts));
        const rows = data.users.map((u) => ({ address: u.address, aliases: u.aliases ?? [], disabled: u.disabled ?? false }));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ users: rows, aliases: data.aliases }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${table(['address', 'aliases', 'disabled'], rows.map((r) => [r.address, r.aliases.join(', '), r.disabled ? 'yes' : '']))}\n`);
        const al = Object.entries(data.aliases);
        if (al.length) process.stdout.write(`\n${table(['alias', 'delivers to'], al.map(([a, t]) => [a, t.join(', ')]))}\n`);
      }),
    );
};
