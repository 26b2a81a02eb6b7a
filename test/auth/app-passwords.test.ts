/**
 * App passwords and auth.requireAppPasswords: the main password refused over IMAP, POP3 and SMTP, app
 * passwords (several, named, service-limited) accepted, added and revoked live with the CLI.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { buildCli } from '../../lib/cli/index.js';
import { RELOAD_CHECK_MS, StaticDirectory } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { APP_PASSWORD, LineClient, PASSWORD, startAuthDaemon, type AuthDaemon } from './harness.js';

const IMAP_ONLY = 'hjkm-npqr-stuv-wxyz-2345-6789';

async function imapLogin(port: number, user: string, pass: string): Promise<boolean> {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass }, logger: false });
  try {
    await client.connect();
    await client.logout();
    return true;
  } catch (e) {
    if ((e as { authenticationFailed?: boolean }).authenticationFailed) return false;
    throw e;
  }
}

async function pop3Login(port: number, user: string, pass: string): Promise<string> {
  const c = await LineClient.open(port);
  try {
    await c.line();
    c.send(`USER ${user}`);
    await c.line();
    c.send(`PASS ${pass}`);
    return await c.line();
  } finally {
    c.close();
  }
}

async function smtpLogin(port: number, user: string, pass: string): Promise<boolean> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, auth: { user, pass } });
  try {
    await t.verify();
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'EAUTH') return false;
    throw e;
  } finally {
    t.close();
  }
}

/** Runs the real CLI (buildCli) in this process, capturing what it prints: a spawned tsx takes seconds each. */
async function cli(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  const before = process.exitCode;
  try {
    await buildCli().parseAsync(['node', 'mailfleet', ...args]);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const status = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { status, stdout, stderr };
}

describe('app passwords with auth.requireAppPasswords', () => {
  let d: AuthDaemon;

  before(async () => {
    d = await startAuthDaemon({
      users: [
        {
          address: 'alice@example.com',
          appPasswords: [
            { name: 'phone', password: APP_PASSWORD },
            { name: 'mail-app', password: IMAP_ONLY, services: ['imap'] },
          ],
        },
      ],
      auth: { requireAppPasswords: true, failuresPerIp: 1000, failuresPerUser: 1000 },
    });
  });
  after(() => d?.close());

  it('refuses the main password over IMAP, POP3 and SMTP, and does not offer SCRAM (a proof of the main password)', async () => {
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', PASSWORD), false);
    assert.match(await pop3Login(d.port('pop3'), 'alice@example.com', PASSWORD), /^-ERR \[AUTH\]/);
    assert.equal(await smtpLogin(d.port('submission'), 'alice@example.com', PASSWORD), false);
    const c = await LineClient.open(d.port('imap'));
    const greeting = await c.line();
    c.close();
    assert.match(greeting, /AUTH=PLAIN/);
    assert.doesNotMatch(greeting, /SCRAM/);
  });

  it('accepts an app password over IMAP, POP3 and SMTP, typed with or without dashes', async () => {
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', APP_PASSWORD), true);
    assert.match(await pop3Login(d.port('pop3'), 'alice@example.com', APP_PASSWORD.replaceAll('-', '').toUpperCase()), /^\+OK/);
    assert.equal(await smtpLogin(d.port('submission'), 'alice@example.com', APP_PASSWORD), true);
  });

  it('an app password limited to IMAP works there and nowhere else', async () => {
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', IMAP_ONLY), true);
    assert.match(await pop3Login(d.port('pop3'), 'alice@example.com', IMAP_ONLY), /^-ERR \[AUTH\]/);
    assert.equal(await smtpLogin(d.port('submission'), 'alice@example.com', IMAP_ONLY), false);
  });

  it('mailfleet users app-password add, list and revoke act on running daemons (the file reloads live)', async () => {
    const added = await cli(['users', 'app-password', 'add', 'alice@example.com', 'laptop', '--services', 'imap,smtp', '--json', '-f', d.usersFile]);
    assert.equal(added.status, 0, added.stderr);
    const { password } = JSON.parse(added.stdout) as { password: string };
    const listed = await cli(['users', 'app-password', 'list', 'alice@example.com', '--json', '-f', d.usersFile]);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ name: string; services: string[] }>).map((r) => [r.name, r.services]),
      [
        ['phone', ['all']],
        ['mail-app', ['imap']],
        ['laptop', ['imap', 'submission']],
      ],
    );
    assert.ok(!(listed.stdout + (await cli(['users', 'list', '--json', '-f', d.usersFile])).stdout).includes(password), 'the secret is shown only once');
    await sleep(RELOAD_CHECK_MS + 100); // the daemon looks at the file at most once a second
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', password), true);
    const revoked = await cli(['users', 'app-password', 'revoke', 'alice@example.com', 'laptop', '-f', d.usersFile]);
    assert.equal(revoked.status, 0, revoked.stderr);
    await sleep(RELOAD_CHECK_MS + 100);
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', password), false);
    // The others still work.
    assert.equal(await imapLogin(d.port('imap'), 'alice@example.com', APP_PASSWORD), true);
  });
});

describe('static directory: app passwords beside the main password', () => {
  it('without the switch both work; with it only app passwords; service limits hold', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeUsersFile } = await import('../../lib/directory/static.js');
    const { usersFileData } = await import('./harness.js');
    const dir = await mkdtemp(join(tmpdir(), 'mf-app-'));
    const file = join(dir, 'users.yaml');
    writeUsersFile(file, await usersFileData([{ address: 'a@example.com', appPasswords: [{ name: 'p', password: APP_PASSWORD, services: ['pop3'] }] }]));
    const dirx = new StaticDirectory({ file, logger: silentLogger });
    assert.equal((await dirx.authenticate('a@example.com', PASSWORD, { service: 'imap' })).ok, true);
    assert.equal((await dirx.authenticate('a@example.com', PASSWORD, { service: 'imap', mainPassword: false })).ok, false);
    const app = await dirx.authenticate('a@example.com', APP_PASSWORD, { service: 'pop3', mainPassword: false });
    assert.ok(app.ok && app.via === 'app-password:p');
    assert.equal((await dirx.authenticate('a@example.com', APP_PASSWORD, { service: 'imap' })).ok, false);
    await rm(dir, { recursive: true, force: true });
  });
});
