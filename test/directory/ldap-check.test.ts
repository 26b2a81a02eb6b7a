/** `mailfleet ldap check` as an operator runs it: the real CLI against a real slapd. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startSlapd, type SlapdServer } from '../harness/slapd.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, fixtureLdif } from './ldap-fixture.js';

let ldap: SlapdServer;
let dir: string;

function writeSpec(name: string, uris: string[], extra = ''): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'platform: { name: ldap-check }',
      'domains: [{ name: example.com }]',
      'directory:',
      '  kind: ldap',
      `  uris: [${uris.join(', ')}]`,
      `  baseDn: "${PEOPLE}"`,
      `  bindDn: "${SERVICE_DN}"`,
      '  bindPasswordFile: bind.pw',
      '  startTls: true',
      '  caFile: ca.pem',
      '  timeoutMs: 1000',
      extra,
    ].join('\n'),
  );
  return file;
}

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('close', (code) => resolve({ code: code ?? 1, out, err }));
  });
}

before(async () => {
  ldap = await startSlapd({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'], tls: true });
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-ldap-check-'));
  writeFileSync(join(dir, 'bind.pw'), SERVICE_PASSWORD + '\n');
  writeFileSync(join(dir, 'ca.pem'), readFileSync(ldap.caFile!));
});

after(async () => {
  await ldap?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('mailfleet ldap check', () => {
  it('prints the bind per URI and what one lookup found, and exits 0', async () => {
    const spec = writeSpec('ok.yaml', [ldap.url, ldap.ldapsUrl!]);
    const r = await cli(['ldap', 'check', '-c', spec, '--address', 'sales@example.com']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, new RegExp(`ok {3}${ldap.url}  StartTLS, service bind as ${SERVICE_DN}`));
    assert.match(r.out, new RegExp(`ok {3}${ldap.ldapsUrl!}  service bind`));
    assert.match(r.out, /dn: {7}uid=alice,ou=people/);
    assert.match(r.out, /aliases: {2}postmaster@example.com, sales@example.com/);
    assert.match(r.out, /quota: {4}1048576 bytes/);
    assert.match(r.out, /limits: {3}\{"imap":\{"perUser":3\}/);
    assert.match(r.out, /ldap check: ok/);
  });

  it('fails when a URI is down or the address is unknown, naming the reason', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}/`;
    const r = await cli(['ldap', 'check', '-c', writeSpec('dead.yaml', [ldap.url, dead]), '--address', 'nobody@example.com']);
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`FAIL ${dead}.*ECONNREFUSED`));
    assert.match(r.out, /problem: no entry for nobody@example.com/);
    assert.match(r.err, /ldap check failed/);
  });

  it('fails clearly on a wrong service password', async () => {
    writeFileSync(join(dir, 'bad.pw'), 'nope\n');
    const spec = writeSpec('bad.yaml', [ldap.url]);
    writeFileSync(spec, readFileSync(spec, 'utf8').replace('bind.pw', 'bad.pw'));
    const r = await cli(['ldap', 'check', '-c', spec]);
    assert.equal(r.code, 1);
    assert.match(r.out, /FAIL .*service bind as .*InvalidCredentials \(LDAP result 49\)/);
  });
});
