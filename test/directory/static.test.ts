import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, StaticDirectory, verifyPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { run } from '../daemon/mail-harness.js';

describe('static directory', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('GIVEN a scrypt hash WHEN verified THEN only the right password matches', async () => {
    const h = await hashPassword('pässword');
    assert.match(h, /^scrypt\$16384\$8\$1\$[^$]+\$[^$]+$/);
    assert.equal(await verifyPassword('pässword', h), true);
    assert.equal(await verifyPassword('password', h), false);
    assert.equal(await verifyPassword('pässword', 'scrypt$1$1$1$x$y'), false);
  });

  it('GIVEN a users file WHEN queried THEN logins, aliases, disabled accounts and domains resolve; edits are picked up without restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-static-'));
    dirs.push(dir);
    const file = join(dir, 'users.yaml');
    const h = await hashPassword('pw');
    await writeFile(
      file,
      `users:\n  - address: Alice@Example.com\n    passwordHash: ${h}\n    aliases: [a.smith@example.com]\n  - address: dave@example.com\n    passwordHash: ${h}\n    disabled: true\naliases:\n  team@example.com: [alice@example.com, dave@example.com, list@example.com]\n  list@example.com: [alice@example.com]\n  loop@example.com: [loop@example.com]\n`,
    );
    const d = new StaticDirectory({ file, domains: ['example.net'], logger: silentLogger });
    const ok = await d.authenticate('ALICE@example.com', 'pw');
    assert.ok(ok.ok && ok.user.address === 'alice@example.com' && ok.user.domain === 'example.com');
    assert.ok((await d.authenticate('a.smith@example.com', 'pw')).ok, 'an alias logs in as its owner');
    assert.deepEqual(await d.authenticate('alice@example.com', 'nope'), { ok: false, reason: 'bad-credentials' });
    assert.deepEqual(await d.authenticate('nobody@example.com', 'pw'), { ok: false, reason: 'bad-credentials' });
    assert.deepEqual(await d.authenticate('dave@example.com', 'pw'), { ok: false, reason: 'disabled' });
    assert.deepEqual((await d.resolveRecipient('team@example.com')).map((u) => u.address), ['alice@example.com']);
    assert.deepEqual(await d.resolveRecipient('loop@example.com'), []);
    assert.deepEqual(await d.resolveRecipient('dave@example.com'), []);
    assert.equal(await d.isLocalDomain('EXAMPLE.com'), true);
    assert.equal(await d.isLocalDomain('example.net'), true);
    assert.equal(await d.isLocalDomain('gmail.com'), false);

    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(file, `users:\n  - address: bob@example.org\n    passwordHash: ${h}\n`);
    assert.ok((await d.authenticate('bob@example.org', 'pw')).ok);
    assert.equal((await d.authenticate('alice@example.com', 'pw')).ok, false);
    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(file, 'users: [ broken');
    assert.ok((await d.authenticate('bob@example.org', 'pw')).ok, 'a broken edit keeps the last good file');
  });

  it('GIVEN `mailfleet users add --password-stdin` WHEN run twice THEN the user is added then updated, and `users list` shows it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-users-'));
    dirs.push(dir);
    const file = join(dir, 'users.yaml');
    await writeFile(file, '# header kept\nusers: []\naliases: {}\n');
    const cli = (args: string[], input?: string) => run(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'users', ...args], input, 30_000);
    assert.match(await cli(['add', 'Eve@Example.com', '--password-stdin', '--file', file], 'first\n'), /added eve@example\.com/);
    assert.match(await cli(['add', 'eve@example.com', '--password-stdin', '--file', file], 'second\n'), /updated eve@example\.com/);
    const text = await readFile(file, 'utf8');
    assert.match(text, /^# header kept\n/);
    const d = new StaticDirectory({ file, logger: silentLogger });
    assert.ok((await d.authenticate('eve@example.com', 'second')).ok);
    assert.equal((await d.authenticate('eve@example.com', 'first')).ok, false);
    assert.match(await cli(['list', '--file', file]), /eve@example\.com/);
    await assert.rejects(cli(['add', '../x@example.com', '--password-stdin', '--file', file], 'pw'), /unsafe mailbox address/);
  });
});
