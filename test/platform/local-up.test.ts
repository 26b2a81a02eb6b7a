/**
 * `mailfleet up` end to end: the endpoint table, a delivery through the printed SMTP port, and a clean
 * stop on SIGINT. Ports are picked free at random (never the fixed local defaults).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../daemon/mail-harness.js';
import { usersFileText } from '../daemon/smtp-harness.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.once('error', reject);
  });
}

describe('mailfleet up', () => {
  let dir = '';
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('GIVEN a local spec WHEN `mailfleet up` runs THEN it prints its endpoints, delivers mail under the data dir and stops cleanly on SIGINT', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mf-up-'));
    const names = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'admin'] as const;
    const ports: Record<string, number> = {};
    for (const n of names) ports[n] = await freePort();
    await writeFile(join(dir, 'users.yaml'), await usersFileText());
    await writeFile(
      join(dir, 'local.yaml'),
      `version: 1\nplatform: { name: up-test, hostname: mail.localhost }\ndomains: [{ name: example.com }]\ndirectory: { kind: static, file: users.yaml }\nlocal:\n  haproxy: 'off'\n  ports: { ${names.map((n) => `${n}: ${ports[n]}`).join(', ')} }\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'up', '--config', join(dir, 'local.yaml'), '--data-dir', join(dir, 'var')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('Ctrl-C')) {
        assert.ok(Date.now() < deadline && child.exitCode === null, `up did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(out, new RegExp(`smtp +default-smtp +127\\.0\\.0\\.1:${ports.smtp} +STARTTLS`));
      assert.match(out, new RegExp(`submissions +default-submissions +127\\.0\\.0\\.1:${ports.submissions} +TLS`));
      assert.match(out, new RegExp(`admin API +http://127\\.0\\.0\\.1:${ports.admin}`));
      assert.match(out, /admin token .*admin\.token/);
      const swaks = await run('swaks', ['--server', `127.0.0.1:${ports.smtp}`, '--from', 'x@remote.test', '--to', 'alice@example.com']);
      assert.match(swaks, /250 2\.0\.0 Ok/);
      assert.equal((await readdir(join(dir, 'var/mail/example.com/alice/Maildir/new'))).length, 1);
      const health = await fetch(`http://127.0.0.1:${ports.admin}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      child.kill('SIGINT');
    }
    const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
    assert.equal(code, 0);
    assert.match(out, /mailfleetd stopped/);
  });
});
