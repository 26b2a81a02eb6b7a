/**
 * The LDAP backend against a real slapd (ldap:// and ldaps://, OpenLDAP- and AD-shaped entries).
 * Active Directory itself cannot run here: the AD mapping is exercised against slapd with an AD-shaped
 * schema (userPrincipalName, sAMAccountName, proxyAddresses, userAccountControl).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMailfleetError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { directorySchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
import { freePort, startSlapd, type SlapdServer } from '../harness/slapd.js';
import { AD_USERS, PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, SUFFIX, fixtureLdif } from './ldap-fixture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let ldap: SlapdServer;
let secrets: string;
const open: LdapDirectory[] = [];

function ldapSpec(over: Record<string, unknown> = {}): LdapDirectorySpec {
  const parsed = directorySchema.parse({
    kind: 'ldap',
    uris: [ldap.url],
    baseDn: PEOPLE,
    bindDn: SERVICE_DN,
    bindPasswordEnv: 'TEST_LDAP_PW',
    timeoutMs: 2000,
    ...over,
  });
  assert.equal(parsed.kind, 'ldap');
  return parsed as LdapDirectorySpec;
}

function directory(over: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = { TEST_LDAP_PW: SERVICE_PASSWORD }): LdapDirectory {
  const d = new LdapDirectory({ spec: ldapSpec(over), baseDir: secrets, logger: silentLogger, env });
  open.push(d);
  return d;
}

async function rejectsUnavailable(p: Promise<unknown>, why: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => isMailfleetError(e, 'DIRECTORY_UNAVAILABLE') && why.test((e as Error).message));
}

before(async () => {
  ldap = await startSlapd({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'], tls: true });
  secrets = mkdtempSync(join(tmpdir(), 'mailfleet-ldap-test-'));
  writeFileSync(join(secrets, 'bind.pw'), `${SERVICE_PASSWORD}\n`);
});

after(async () => {
  for (const d of open) await d.close();
  await ldap?.stop();
  if (secrets) rmSync(secrets, { recursive: true, force: true });
});

describe('LDAP backend, OpenLDAP flavor', () => {
  it('authenticates by address or uid and answers with the canonical mailbox', async () => {
    const d = directory();
    const byMail = await d.authenticate('alice@example.com', PASSWORDS.alice);
    assert.deepEqual(byMail, { ok: true, user: { address: 'alice@example.com', localPart: 'alice', domain: 'example.com' } });
    const byUid = await d.authenticate('bob', PASSWORDS.bob);
    assert.equal(byUid.ok && byUid.user.address, 'bob@example.com');
    assert.deepEqual(byUid.ok && byUid.user.limits, { imap: { perUser: 3 }, pop3: { perUser: 3 }, submission: { perUser: 3 } });
    assert.equal(byUid.ok && byUid.user.quotaBytes, 1048576);
    assert.equal(byUid.ok && byUid.user.quotaMessages, 5000, 'mailfleetQuotaMessages, from the mailfleet schema a real slapd loaded');
  });

  it('fails with bad-credentials on a wrong or empty password, unknown-user for nobody, also when cached', async () => {
    const d = directory();
    assert.deepEqual(await d.authenticate('alice@example.com', 'wrong'), { ok: false, reason: 'bad-credentials' });
    assert.deepEqual(await d.authenticate('alice@example.com', ''), { ok: false, reason: 'bad-credentials' }, 'empty = unauthenticated bind');
    assert.deepEqual(await d.authenticate('nobody@example.com', 'x'), { ok: false, reason: 'unknown-user' });
    assert.equal((await d.authenticate('alice@example.com', PASSWORDS.alice)).ok, true);
    assert.deepEqual(await d.authenticate('alice@example.com', 'wrong'), { ok: false, reason: 'bad-credentials' }, 'the cache never holds passwords');
  });

  it('resolves recipients by mail and alias, fans aliases out, and lists the domains it finds', async () => {
    const d = directory();
    assert.deepEqual((await d.resolveRecipient('alice@example.com')).map((u) => u.address), ['alice@example.com']);
    assert.deepEqual((await d.resolveRecipient('POSTMASTER@example.com')).map((u) => u.address), ['alice@example.com']);
    assert.deepEqual((await d.resolveRecipient('sales@example.com')).map((u) => u.address).sort(), ['alice@example.com', 'bob@example.com']);
    assert.deepEqual(await d.resolveRecipient('nobody@example.com'), []);
    const carol = await d.resolveRecipient('carol@example.org');
    assert.deepEqual(carol[0]?.limits, { imap: { perUser: 7 }, pop3: { perUser: 1 } });
    assert.deepEqual(await d.listDomains(), ['example.com', 'example.org']);
    assert.equal(await d.isLocalDomain('Example.ORG'), true);
    assert.equal(await d.isLocalDomain('example.net'), false);
    assert.deepEqual(await directory({ domains: ['example.net'] }).listDomains(), ['example.net'], 'spec domains win');
  });

  it('refuses filter-injection logins and addresses cleanly', async () => {
    const d = directory();
    // Unescaped, (uid=al*) would find alice and her password would log in.
    assert.deepEqual(await d.authenticate('al*', PASSWORDS.alice), { ok: false, reason: 'unknown-user' });
    for (const evil of ['*', '*)(uid=*', 'alice)(|(uid=*', 'alice\0', 'x'.repeat(10_000), '\\2a', 'ünïcødé@example.com']) {
      const r = await d.authenticate(evil, PASSWORDS.alice);
      assert.equal(r.ok, false, JSON.stringify(evil.slice(0, 40)));
      assert.equal(r.ok === false && r.reason, 'unknown-user');
    }
    for (const evil of ['*@example.com', 'ali*@example.com', '*)(mail=*@example.com', 'alice@example.com\0', `${'a'.repeat(300)}@example.com`, 'ö@example.com'])
      assert.deepEqual(await d.resolveRecipient(evil), [], JSON.stringify(evil.slice(0, 40)));
  });

  it('caches unknown recipients for negativeCacheTtlSeconds only', async () => {
    const d = directory({ negativeCacheTtlSeconds: 1 });
    assert.deepEqual(await d.resolveRecipient('newcomer@example.com'), []);
    await ldap.modify(`dn: uid=newcomer,${PEOPLE}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: newcomer\ncn: n\nsn: n\nmail: newcomer@example.com\n`);
    assert.deepEqual(await d.resolveRecipient('newcomer@example.com'), [], 'still the cached "unknown"');
    await sleep(1100);
    assert.deepEqual((await d.resolveRecipient('newcomer@example.com')).map((u) => u.address), ['newcomer@example.com']);
  });

  it('refuses a user disabled in LDAP at the next login, and drops their mail after the cache TTL', async () => {
    const d = directory({ cacheTtlSeconds: 1 });
    assert.equal((await d.authenticate('carol@example.org', PASSWORDS.carol)).ok, true);
    assert.equal((await d.resolveRecipient('carol@example.org')).length, 1);
    await ldap.modify(`dn: uid=carol,${PEOPLE}\nchangetype: modify\nreplace: mailfleetDisabled\nmailfleetDisabled: TRUE\n`);
    try {
      assert.deepEqual(await d.authenticate('carol@example.org', PASSWORDS.carol), { ok: false, reason: 'disabled' }, 'recheckOnLogin');
      assert.equal((await d.resolveRecipient('carol@example.org')).length, 1, 'recipient cache still warm');
      await sleep(1100);
      assert.deepEqual(await d.resolveRecipient('carol@example.org'), []);
    } finally {
      await ldap.modify(`dn: uid=carol,${PEOPLE}\nchangetype: modify\ndelete: mailfleetDisabled\n`);
    }
  });

  it('with recheckOnLogin off, a disabled user logs in until the cache TTL passes, then fails', async () => {
    const d = directory({ cacheTtlSeconds: 1, recheckOnLogin: false });
    assert.equal((await d.authenticate('bob@example.com', PASSWORDS.bob)).ok, true);
    await ldap.modify(`dn: uid=bob,${PEOPLE}\nchangetype: modify\nreplace: mailfleetDisabled\nmailfleetDisabled: TRUE\n`);
    try {
      assert.equal((await d.authenticate('bob@example.com', PASSWORDS.bob)).ok, true, 'cached entry within the TTL');
      await sleep(1100);
      assert.deepEqual(await d.authenticate('bob@example.com', PASSWORDS.bob), { ok: false, reason: 'disabled' });
    } finally {
      await ldap.modify(`dn: uid=bob,${PEOPLE}\nchangetype: modify\ndelete: mailfleetDisabled\n`);
    }
  });

  it('binds users directly with userDnTemplate, escaping the DN values', async () => {
    const d = directory({ bindDn: undefined, bindPasswordEnv: undefined, userDnTemplate: `uid={local},${PEOPLE}` }, {});
    const ok = await d.authenticate('alice@example.com', PASSWORDS.alice);
    assert.equal(ok.ok && ok.user.address, 'alice@example.com');
    assert.deepEqual(await d.authenticate('alice@example.com', 'wrong'), { ok: false, reason: 'bad-credentials' });
    assert.equal(d.userDn('a,uid=alice+x@example.com'), `uid=a\\,uid\\=alice\\+x,${PEOPLE}`);
    assert.equal((await d.authenticate('alice,ou=people@example.com', PASSWORDS.alice)).ok, false);
  });
});

describe('LDAP backend, Active Directory flavor (AD-shaped slapd)', () => {
  const adSpec = { flavor: 'active-directory', baseDn: AD_USERS };

  it('logs in by sAMAccountName, DOMAIN\\user, userPrincipalName or SMTP address', async () => {
    const d = directory(adSpec);
    for (const login of ['dave', 'CORP\\dave', 'dave@corp.example.com', 'dave@example.com', 'd.smith@example.com']) {
      const r = await d.authenticate(login, PASSWORDS.dave);
      assert.equal(r.ok && r.user.address, 'dave@example.com', login);
    }
    assert.deepEqual(await d.authenticate('dave', 'wrong'), { ok: false, reason: 'bad-credentials' });
  });

  it('routes SMTP:/smtp: proxy addresses, fans out shared aliases, and refuses disabled accounts', async () => {
    const d = directory(adSpec);
    assert.deepEqual((await d.resolveRecipient('D.Smith@example.com')).map((u) => u.address), ['dave@example.com']);
    assert.deepEqual((await d.resolveRecipient('team@example.org')).map((u) => u.address).sort(), ['dave@example.com', 'erin@example.org']);
    assert.deepEqual(await d.resolveRecipient('/o=Org/cn=dave'), [], 'X500 addresses are not mail routes');
    assert.deepEqual(await d.authenticate('frank', PASSWORDS.frank), { ok: false, reason: 'disabled' }, 'userAccountControl 514');
    assert.deepEqual(await d.resolveRecipient('frank@example.com'), []);
    assert.deepEqual(await d.listDomains(), ['example.com', 'example.org']);
  });
});

describe('LDAP backend, transport', () => {
  it('speaks ldaps:// and StartTLS with the CA from the spec, and refuses an unknown CA', async () => {
    const caFile = ldap.caFile!;
    const viaLdaps = directory({ uris: [ldap.ldapsUrl], caFile });
    assert.equal((await viaLdaps.authenticate('alice@example.com', PASSWORDS.alice)).ok, true);
    const viaStartTls = directory({ startTls: true, caFile, cacheTtlSeconds: 0, poolSize: 3 });
    // Several connections at once: each StartTLS must get its own TLS options.
    const found = await Promise.all(['alice@example.com', 'bob@example.com', 'sales@example.com', 'carol@example.org', 'postmaster@example.com'].map((a) => viaStartTls.resolveRecipient(a)));
    assert.deepEqual(found.map((f) => f.length), [1, 1, 2, 1, 1]);
    assert.equal((await viaStartTls.authenticate('carol', PASSWORDS.carol)).ok, true);
    await rejectsUnavailable(directory({ uris: [ldap.ldapsUrl] }).resolveRecipient('alice@example.com'), /certificate/i);
  });

  it('reads the service password from a file or the environment; a wrong one is unavailable, not "unknown user"', async () => {
    const fromFile = directory({ bindPasswordEnv: undefined, bindPasswordFile: 'bind.pw' }, {});
    assert.equal((await fromFile.resolveRecipient('bob@example.com')).length, 1);
    await rejectsUnavailable(directory({}, { TEST_LDAP_PW: 'wrong' }).resolveRecipient('bob@example.com'), /service bind .* refused/);
    assert.throws(() => directory({}, {}), /TEST_LDAP_PW is not set/);
  });

  it('fails with DIRECTORY_UNAVAILABLE when no server answers', async () => {
    const d = directory({ uris: [`ldap://127.0.0.1:${await freePort()}/`] });
    await rejectsUnavailable(d.authenticate('alice@example.com', PASSWORDS.alice), /no LDAP server answered/);
    await rejectsUnavailable(d.resolveRecipient('alice@example.com'), /no LDAP server answered/);
  });

  it('searches only under baseDn', async () => {
    const d = directory({ baseDn: `ou=services,${SUFFIX}` });
    assert.deepEqual(await d.resolveRecipient('alice@example.com'), []);
  });
});
