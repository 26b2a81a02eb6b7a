import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { MailfleetError } from '../../errors.js';
import { addAppPassword, parseServices, revokeAppPassword } from '../../auth/app-passwords.js';
import { encodeScramSecret, scramSecretFromPassword, SCRAM_ITERATIONS } from '../../auth/scram.js';
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
  const setPassword = (verb: string) =>
    users
      .command(`${verb} <address>`)
      .description(
        verb === 'add'
          ? 'add a user, or set the password of an existing one (scrypt hash, plus SCRAM-SHA-256 stored keys)'
          : 'set the password of an existing user (scrypt hash, plus SCRAM-SHA-256 stored keys)',
      )
      .option('--password-stdin', 'read the password from standard input (the only way: never on the command line)')
      .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
      .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
      .option('--alias <address...>', 'extra addresses delivered to this user')
      .option('--no-scram', 'store no SCRAM-SHA-256 keys (the user then cannot log in with SCRAM)')
      .option('--scram-iterations <n>', 'PBKDF2 rounds of the SCRAM keys', String(SCRAM_ITERATIONS))
      .action((address: string, opts: { passwordStdin?: boolean; file?: string; config: string; alias?: string[]; scram: boolean; scramIterations: string }) =>
        runAction(async () => {
          if (!opts.passwordStdin) throw new MailfleetError('BAD_REQUEST', 'pass the password on stdin with --password-stdin', { status: 400 });
          const iterations = Number(opts.scramIterations);
          if (!Number.isInteger(iterations) || iterations < 4096 || iterations > 1_000_000)
            throw new MailfleetError('BAD_REQUEST', '--scram-iterations: expected a whole number from 4096 (RFC 7677) to 1000000', { status: 400 });
          const canonical = addressParts(address).address;
          const password = await readStdin();
          if (password.length < 1) throw new MailfleetError('BAD_REQUEST', 'empty password', { status: 400 });
          const file = usersFile(opts);
          const data: UsersFile = existsSync(file) ? readUsersFile(file) : { users: [], aliases: {} };
          const passwordHash = await hashPassword(password);
          const scramSha256 = opts.scram ? encodeScramSecret(await scramSecretFromPassword(password, iterations)) : undefined;
          const existing = data.users.find((u) => u.address === canonical);
          if (verb === 'passwd' && !existing) throw new MailfleetError('NOT_FOUND', `${canonical}: no such user in ${file}`, { status: 404 });
          const aliases = opts.alias?.map((a) => addressParts(a).address);
          if (existing) {
            existing.passwordHash = passwordHash;
            existing.scramSha256 = scramSha256;
            if (aliases) existing.aliases = aliases;
          } else data.users.push({ address: canonical, passwordHash, ...(scramSha256 ? { scramSha256 } : {}), ...(aliases ? { aliases } : {}) });
          writeUsersFile(file, data);
          process.stdout.write(`${existing ? 'updated' : 'added'} ${canonical} in ${file}\n`);
        }),
      );
  setPassword('add');
  setPassword('passwd');
  registerAppPasswords(users);
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

type UsersCommand = ReturnType<Parameters<RegisterCommand>[0]['command']>;

/** `users app-password add|list|revoke`: named app passwords in the users file, live within a second. */
function registerAppPasswords(users: UsersCommand): void {
  const app = users.command('app-password').description('app passwords: several per user, named, revocable, optionally for some services only');
  const userOf = (data: UsersFile, address: string, file: string) => {
    const canonical = addressParts(address).address;
    const user = data.users.find((u) => u.address === canonical);
    if (!user) throw new MailfleetError('NOT_FOUND', `${canonical}: no such user in ${file}`, { status: 404 });
    return user;
  };
  app
    .command('add <address> <name>')
    .description('create an app password and print it (shown once; stored as a SHA-256 hash)')
    .option('--services <list>', 'comma-separated services it may be used for: imap, pop3, smtp (default: all)')
    .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--json', 'JSON output')
    .action((address: string, name: string, opts: { services?: string; file?: string; config: string; json?: boolean }) =>
      runAction(() => {
        const file = usersFile(opts);
        const data = readUsersFile(file);
        const user = userOf(data, address, file);
        let password: string;
        try {
          password = addAppPassword(user, name, parseServices(opts.services ? [opts.services] : []));
        } catch (e) {
          throw new MailfleetError('BAD_REQUEST', (e as Error).message, { status: 400, cause: e });
        }
        writeUsersFile(file, data);
        if (opts.json) process.stdout.write(`${JSON.stringify({ address: user.address, name, password })}\n`);
        else process.stdout.write(`app password ${name} for ${user.address} (shown once):\n${password}\n`);
      }),
    );
  app
    .command('list <address>')
    .description("list a user's app passwords (names, services, creation time; never the secrets)")
    .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--json', 'JSON output')
    .action((address: string, opts: { file?: string; config: string; json?: boolean }) =>
      runAction(() => {
        const file = usersFile(opts);
        const rows = (userOf(readUsersFile(file), address, file).appPasswords ?? []).map((r) => ({ name: r.name, services: r.services ?? ['all'], createdAt: r.createdAt ?? '' }));
        if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else process.stdout.write(`${table(['name', 'services', 'created'], rows.map((r) => [r.name, r.services.join(', '), r.createdAt]))}\n`);
      }),
    );
  app
    .command('revoke <address> <name>')
    .description('remove an app password: logins with it fail from the next reload of the file (within a second)')
    .option('-f, --file <users.yaml>', 'users file (default: the spec directory.file)')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .action((address: string, name: string, opts: { file?: string; config: string }) =>
      runAction(() => {
        const file = usersFile(opts);
        const data = readUsersFile(file);
        const user = userOf(data, address, file);
        if (!revokeAppPassword(user, name)) throw new MailfleetError('NOT_FOUND', `${user.address} has no app password named ${name}`, { status: 404 });
        writeUsersFile(file, data);
        process.stdout.write(`revoked app password ${name} of ${user.address}\n`);
      }),
    );
}
