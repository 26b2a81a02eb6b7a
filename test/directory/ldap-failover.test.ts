/**
 * Failover between a real slapd provider and its syncrepl consumer: lookups and logins move to the
 * consumer within the configured timeout when the provider hangs or dies, and back to the provider
 * once it has been left alone for failbackSeconds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../lib/log.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { directorySchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
import { startSlapdPair, type SlapdPair } from '../harness/slapd.js';
import { PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, fixtureLdif } from './ldap-fixture.js';

const TIMEOUT_MS = 800;
let pair: SlapdPair;
const open: LdapDirectory[] = [];

function directory(extra: Record<string, unknown> = {}): LdapDirectory {
  const spec = directorySchema.parse({
    ...extra,
    kind: 'ldap',
    uris: [pair.provider.url, pair.consumer.url],
    baseDn: PEOPLE,
    bindDn: SERVICE_DN,
    bindPasswordEnv: 'PW',
    timeoutMs: TIMEOUT_MS,
    // No cache: every call below must reach a server.
    cacheTtlSeconds: 0,
    negativeCacheTtlSeconds: 0,
  }) as LdapDirectorySpec;
  const d = new LdapDirectory({ spec, baseDir: '.', logger: silentLogger, env: { PW: SERVICE_PASSWORD } });
  open.push(d);
  return d;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

before(async () => {
  pair = await startSlapdPair({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'] });
});

after(async () => {
  for (const d of open) await d.close();
  await pair?.stop();
});

describe('LDAP failover, provider + syncrepl consumer', () => {
  it('GIVEN a hung provider WHEN looking up and logging in THEN the consumer answers within timeoutMs', async () => {
    const d = directory();
    assert.equal((await d.authenticate('alice@example.com', PASSWORDS.alice)).ok, true);
    assert.equal(d.endpoints.current, 0, 'provider first');
    pair.provider.pause();
    try {
      const lookup = await timed(() => d.resolveRecipient('sales@example.com'));
      assert.equal(lookup.value.length, 2);
      assert.ok(lookup.ms < TIMEOUT_MS + 400, `lookup took ${lookup.ms.toFixed(0)} ms`);
      assert.equal(d.endpoints.current, 1, 'consumer remembered');
      const login = await timed(() => d.authenticate('alice@example.com', PASSWORDS.alice));
      assert.equal(login.value.ok, true);
      assert.ok(login.ms < TIMEOUT_MS, `login after failover took ${login.ms.toFixed(0)} ms: stale provider connections must not be reused`);
      assert.deepEqual(await d.authenticate('alice@example.com', 'wrong'), { ok: false, reason: 'bad-credentials' });
    } finally {
      pair.provider.resume();
    }
  });

  it('GIVEN a failover WHEN the provider is back for failbackSeconds THEN connections move back to it (the consumer can then hang without delaying anything)', async () => {
    const d = directory({ failbackSeconds: 1 });
    assert.equal((await d.authenticate('alice@example.com', PASSWORDS.alice)).ok, true);
    pair.provider.pause();
    try {
      assert.equal((await d.resolveRecipient('alice@example.com')).length, 1);
      assert.equal(d.endpoints.current, 1, 'failed over to the consumer');
    } finally {
      pair.provider.resume();
    }
    // Within failbackSeconds the consumer keeps serving (no probe of the provider yet).
    assert.equal((await d.resolveRecipient('bob@example.com')).length, 1);
    assert.equal(d.endpoints.current, 1);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(d.endpoints.current, 0, 'provider preferred again');
    pair.consumer.pause();
    try {
      const lookup = await timed(() => d.resolveRecipient('sales@example.com'));
      assert.equal(lookup.value.length, 2);
      assert.ok(lookup.ms < TIMEOUT_MS, `lookup took ${lookup.ms.toFixed(0)} ms: an idle consumer connection was reused after fail-back`);
      const login = await timed(() => d.authenticate('carol', PASSWORDS.carol));
      assert.equal(login.value.ok, true);
      assert.ok(login.ms < TIMEOUT_MS, `login took ${login.ms.toFixed(0)} ms`);
    } finally {
      pair.consumer.resume();
    }
  });

  it('GIVEN a change on the provider WHEN the provider then dies THEN the consumer has it and answers at once', async () => {
    const d = directory();
    assert.equal((await d.authenticate('bob@example.com', PASSWORDS.bob)).ok, true);
    await pair.provider.modify(`dn: uid=bob,${PEOPLE}\nchangetype: modify\nreplace: mailfleetDisabled\nmailfleetDisabled: TRUE\n`);
    await pair.consumer.waitFor('(&(uid=bob)(mailfleetDisabled=TRUE))', { timeoutMs: 5000 });
    await pair.provider.kill();
    const lookup = await timed(() => d.resolveRecipient('alice@example.com'));
    assert.equal(lookup.value.length, 1);
    assert.ok(lookup.ms < TIMEOUT_MS, `lookup took ${lookup.ms.toFixed(0)} ms`);
    assert.deepEqual(await d.authenticate('bob@example.com', PASSWORDS.bob), { ok: false, reason: 'disabled' });
    assert.equal((await d.authenticate('carol', PASSWORDS.carol)).ok, true);
  });
});
