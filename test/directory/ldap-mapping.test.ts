import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AndFilter, EqualityFilter, FilterParser, OrFilter } from 'ldapts';
import {
  LdapMapping,
  TtlCache,
  acceptableInput,
  escapeDnValue,
  escapeFilter,
  parseMaxConnections,
  parseQuota,
} from '../../lib/directory/ldap/index.js';

const openldap = new LdapMapping({ flavor: 'openldap' });
const ad = new LdapMapping({ flavor: 'active-directory' });

/** The equality clauses of a parsed filter, flattened: what the server will compare. */
function clauses(filter: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (f: unknown) => {
    if (f instanceof AndFilter || f instanceof OrFilter) f.filters.forEach(walk);
    else if (f instanceof EqualityFilter) out.push([f.attribute, String(f.value)]);
    else throw new Error(`unexpected filter node ${String(f)}`);
  };
  walk(FilterParser.parseString(filter));
  return out;
}

describe('LDAP filter escaping', () => {
  it('GIVEN any string WHEN escaped into a filter THEN the server sees exactly that string as one value', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (v) => {
        const parsed = FilterParser.parseString(`(mail=${escapeFilter`${v}`})`);
        assert.ok(parsed instanceof EqualityFilter);
        assert.equal(parsed.attribute, 'mail');
        assert.equal(String(parsed.value), v);
      }),
      { numRuns: 500 },
    );
  });

  it('turns injection attempts into literal values', () => {
    for (const evil of ['*)(uid=*', '*', 'al*', 'x)(|(objectClass=*)', 'a\\2a', 'nul\0byte', 'ünïcødé@exämple.com']) {
      // (AD reads a backslash as DOMAIN\user, so the AD login filter is checked on the others only.)
      const filters = [openldap.loginFilter(evil), openldap.recipientFilter(evil), ad.recipientFilter(evil)];
      if (!evil.includes('\\')) filters.push(ad.loginFilter(evil));
      for (const filter of filters) {
        const values = clauses(filter).filter(([a]) => a !== 'objectClass').map(([, v]) => v.replace(/^smtp:/, ''));
        assert.ok(values.length > 0);
        for (const v of values) assert.equal(v, evil);
      }
    }
    assert.equal(escapeFilter`${'*)(uid=*'}`, '\\2a\\29\\28uid=\\2a');
    assert.equal(escapeFilter`${'a\0b'}`, 'a\\00b');
  });

  it('refuses empty, over-long and control-character input before any query', () => {
    assert.equal(acceptableInput('alice@example.com'), true);
    assert.equal(acceptableInput('*)(uid=*'), true, 'metacharacters are escaped, not refused');
    for (const bad of ['', 'a'.repeat(257), 'a\0b', 'a\r\nb', ' alice', 'alice ', 'x\u007f']) assert.equal(acceptableInput(bad), false, JSON.stringify(bad));
  });
});

describe('LDAP DN escaping (RFC 4514)', () => {
  it('escapes specials, a leading # or space, a trailing space and NUL', () => {
    assert.equal(escapeDnValue('alice'), 'alice');
    assert.equal(escapeDnValue('a,b+c"d\\e<f>g;h=i'), 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i');
    assert.equal(escapeDnValue('#x'), '\\#x');
    assert.equal(escapeDnValue('x#'), 'x#');
    assert.equal(escapeDnValue(' x '), '\\ x\\ ');
    assert.equal(escapeDnValue('a\0b'), 'a\\00b');
    assert.equal(escapeDnValue('jörg'), 'jörg');
  });
});

describe('OpenLDAP mapping', () => {
  it('finds logins by mail or uid and recipients by mail or mailAlternateAddress', () => {
    assert.deepEqual(clauses(openldap.loginFilter('alice@example.com')), [
      ['objectClass', 'inetOrgPerson'],
      ['mail', 'alice@example.com'],
      ['uid', 'alice@example.com'],
    ]);
    assert.deepEqual(clauses(openldap.loginFilter('alice')), [['objectClass', 'inetOrgPerson'], ['uid', 'alice']]);
    assert.deepEqual(clauses(openldap.recipientFilter('sales@example.com')), [
      ['objectClass', 'inetOrgPerson'],
      ['mail', 'sales@example.com'],
      ['mailAlternateAddress', 'sales@example.com'],
    ]);
  });

  it('maps an entry to a mailbox owner with quota, limits and the disabled flag', () => {
    const m = openldap.map({
      dn: 'uid=bob,ou=people,dc=x',
      mail: 'Bob@Example.com',
      mailAlternateAddress: ['sales@example.com'],
      mailQuota: '1048576',
      mailfleetQuotaMessages: '5000',
      mailfleetMaxConnections: '3',
    });
    assert.ok(m);
    assert.deepEqual(m.user, {
      address: 'bob@example.com',
      localPart: 'bob',
      domain: 'example.com',
      quotaBytes: 1048576,
      quotaMessages: 5000,
      limits: { imap: { perUser: 3 }, pop3: { perUser: 3 }, submission: { perUser: 3 } },
    });
    assert.deepEqual(m.addresses, ['bob@example.com', 'sales@example.com']);
    assert.equal(m.disabled, false);
    assert.equal(openldap.isDisabled({ dn: 'x', mailfleetDisabled: 'TRUE' }), true);
    assert.equal(openldap.isDisabled({ dn: 'x', mailfleetDisabled: 'FALSE' }), false);
    assert.equal(openldap.isDisabled({ dn: 'x', pwdAccountLockedTime: '20250101000000Z' }), true);
    assert.equal(openldap.map({ dn: 'x', uid: 'nomail' }), undefined, 'an entry without an address is no mailbox');
  });

  it('honours attribute overrides and rejects names that are not attribute names', () => {
    const custom = new LdapMapping({ flavor: 'openldap', attributes: { alias: 'mailLocalAddress', disabled: 'accountStatus' }, userFilter: '(memberOf=cn=mail,dc=x)' });
    assert.deepEqual(clauses(custom.recipientFilter('a@b.c')), [['memberOf', 'cn=mail,dc=x'], ['mail', 'a@b.c'], ['mailLocalAddress', 'a@b.c']]);
    assert.equal(custom.isDisabled({ dn: 'x', accountStatus: 'disabled' }), true);
    assert.equal(custom.isDisabled({ dn: 'x', accountStatus: 'active' }), false);
    assert.throws(() => new LdapMapping({ flavor: 'openldap', attributes: { mail: 'mail)(uid=*' } }), /not an LDAP attribute name/);
  });
});

describe('Active Directory mapping', () => {
  it('finds logins by sAMAccountName, DOMAIN\\user, userPrincipalName, mail or SMTP proxy address', () => {
    assert.deepEqual(clauses(ad.loginFilter('dave')), [['objectClass', 'user'], ['sAMAccountName', 'dave']]);
    assert.deepEqual(clauses(ad.loginFilter('CORP\\dave')), [['objectClass', 'user'], ['sAMAccountName', 'dave']]);
    assert.deepEqual(clauses(ad.loginFilter('dave@corp.example.com')), [
      ['objectClass', 'user'],
      ['userPrincipalName', 'dave@corp.example.com'],
      ['mail', 'dave@corp.example.com'],
      ['proxyAddresses', 'smtp:dave@corp.example.com'],
    ]);
  });

  it('takes SMTP: as primary, smtp: as aliases, ignores other address types and reads userAccountControl', () => {
    const m = ad.map({
      dn: 'cn=dave',
      userPrincipalName: 'dave@corp.example.com',
      proxyAddresses: ['smtp:d.smith@example.com', 'SMTP:Dave@Example.com', 'X500:/o=Org/cn=dave', 'sip:dave@example.com'],
      userAccountControl: '512',
    });
    assert.ok(m);
    assert.equal(m.user.address, 'dave@example.com');
    assert.deepEqual(m.addresses, ['dave@example.com', 'd.smith@example.com']);
    assert.equal(m.disabled, false);
    assert.equal(ad.isDisabled({ dn: 'x', userAccountControl: '514' }), true);
    assert.equal(ad.isDisabled({ dn: 'x', userAccountControl: '66048' }), false, '0x10200: normal, password never expires');
    assert.equal(ad.map({ dn: 'x', userPrincipalName: 'Eve@Corp.example.com' })?.user.address, 'eve@corp.example.com', 'UPN when no mail');
  });

  it('reads the AD bind sub-codes for disabled, locked and expired accounts', () => {
    const msg = (code: string) => `80090308: LdapErr: DSID-0C090447, comment: AcceptSecurityContext error, data ${code}, v3839`;
    assert.equal(LdapMapping.bindRefusal(msg('533')), 'disabled');
    assert.equal(LdapMapping.bindRefusal(msg('775')), 'disabled');
    assert.equal(LdapMapping.bindRefusal(msg('52e')), undefined, '52e is a wrong password');
    assert.equal(LdapMapping.bindRefusal('Invalid credentials'), undefined);
  });
});

describe('attribute value parsing', () => {
  it('parses quotas in bytes or binary units', () => {
    assert.equal(parseQuota('1048576'), 1048576);
    assert.equal(parseQuota('512M'), 512 * 2 ** 20);
    assert.equal(parseQuota('2GiB'), 2 * 2 ** 30);
    assert.equal(parseQuota('lots'), undefined);
    assert.equal(parseQuota('0'), undefined);
  });

  it('parses per-user caps, bare or per service', () => {
    assert.deepEqual(parseMaxConnections(['imap=7', 'pop3:1']), { imap: { perUser: 7 }, pop3: { perUser: 1 } });
    assert.equal(parseMaxConnections(['many', '0']), undefined);
  });
});

describe('TtlCache', () => {
  it('expires entries, skips TTL 0 and evicts the oldest when full', () => {
    let now = 1000;
    const c = new TtlCache<number>({ maxEntries: 2, now: () => now });
    c.set('a', 1, 100);
    c.set('z', 9, 0);
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('z'), undefined);
    c.set('b', 2, 100);
    c.set('c', 3, 100);
    assert.equal(c.get('a'), undefined, 'evicted');
    now += 101;
    assert.equal(c.get('b'), undefined, 'expired');
  });
});
