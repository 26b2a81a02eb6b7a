/**
 * The login gate bounds password checks only where the directory asks for it (IDirectory.concurrentChecks):
 * the static directory hashes with scrypt on libuv's thread pool, which the Maildir store shares, so at
 * most half the pool checks at once; an LDAP bind waits on the network, and bounding it to 2 would cap an
 * LDAP-backed node's logins per second (first shape of the bound: every directory, 2 at once).
 * Real directories (a static users file, a real slapd); the count of checks in flight is read around the
 * directory's own authenticate().
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LoginGate } from '../../lib/daemon/login-gate.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { hashPassword, StaticDirectory } from '../../lib/directory/static.js';
import type { IDirectory } from '../../lib/directory/types.js';
import { AuthFailureWindow } from '../../lib/limits/auth-failures.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { directorySchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
import { startSlapd, type SlapdServer } from '../harness/slapd.js';
import { PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, fixtureLdif } from '../directory/ldap-fixture.js';

let ldap: SlapdServer;
let dir: string;

before(async () => {
  ldap = await startSlapd({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'] });
  dir = mkdtempSync(join(tmpdir(), 'mf-check-conc-'));
  writeFileSync(join(dir, 'users.yaml'), `users:\n  - address: alice@example.com\n    passwordHash: ${await hashPassword(PASSWORDS.alice)}\n`);
});

after(async () => {
  await ldap?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `n` logins of alice at once through a gate on `directory`; the most checks that were in flight together. */
async function peakChecks(directory: IDirectory, n: number): Promise<number> {
  let inFlight = 0;
  let peak = 0;
  const auth = directory.authenticate.bind(directory);
  directory.authenticate = async (...a: Parameters<IDirectory['authenticate']>) => {
    peak = Math.max(peak, ++inFlight);
    try {
      return await auth(...a);
    } finally {
      inFlight--;
    }
  };
  const gate = new LoginGate({
    directory,
    admission: new LocalAdmission(() => 1000),
    failures: new AuthFailureWindow({ failuresPerIp: 1000, failuresPerUser: 1000 }),
    concurrentChecksPerIp: 1000,
    // Every attempt checks its password (no early admission from a remembered one).
    verifiedTtlSeconds: 0,
  });
  const outcomes = await Promise.all(
    Array.from({ length: n }, () => gate.login({ service: 'imap', login: 'alice@example.com', password: PASSWORDS.alice, remoteAddress: '127.0.0.1', failureDelayMs: 0 })),
  );
  for (const o of outcomes) {
    assert.equal(o.kind, 'ok');
    if (o.kind === 'ok') o.lease.release();
  }
  return peak;
}

describe('password checks in flight per directory kind', { timeout: 60_000 }, () => {
  it('GIVEN the static directory (scrypt on the thread pool) WHEN 8 logins arrive at once THEN at most its bound check together', async () => {
    const d = new StaticDirectory({ file: join(dir, 'users.yaml'), domains: ['example.com'], logger: silentLogger });
    assert.ok(d.concurrentChecks >= 1);
    assert.ok((await peakChecks(d, 8)) <= d.concurrentChecks);
  });

  it('GIVEN an LDAP directory (binds wait on the network) WHEN 8 logins arrive at once THEN the gate does not queue them to 2', async () => {
    const spec = directorySchema.parse({ kind: 'ldap', uris: [ldap.url], baseDn: PEOPLE, bindDn: SERVICE_DN, bindPasswordEnv: 'TEST_LDAP_PW', timeoutMs: 5000 }) as LdapDirectorySpec;
    const d = new LdapDirectory({ spec, baseDir: dir, logger: silentLogger, env: { TEST_LDAP_PW: SERVICE_PASSWORD } });
    try {
      assert.equal((d as IDirectory).concurrentChecks, undefined);
      const peak = await peakChecks(d, 8);
      assert.ok(peak > 2, `at most ${peak} LDAP checks were in flight together`);
    } finally {
      await d.close();
    }
  });
});
