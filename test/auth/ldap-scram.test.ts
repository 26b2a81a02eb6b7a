/**
 * SCRAM with LDAP: offered only when the spec names the attribute holding SCRAM secrets (and a service
 * account may read it); the mapping picks the SCRAM value out of a multi-valued attribute.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SaslMechanisms } from '../../lib/auth/sasl.js';
import { LoginGate } from '../../lib/daemon/login-gate.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { LdapMapping } from '../../lib/directory/ldap/mapping.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { directorySchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';

const SECRET = '{SCRAM-SHA-256}4096,8YtULx9WxMMWkG3jXZUnRw==,wLax2BFHHwZtjp6W83QxCCkktwPQl+7/dlkQjciWZJg=,nBKmpi+RbIINCYnRrH7s/CJwQePGjKamJ4cGcYxPUz0=';

function ldap(attributes: Record<string, string> = {}): LdapDirectory {
  const spec = directorySchema.parse({
    kind: 'ldap',
    uris: ['ldap://127.0.0.1:9'],
    baseDn: 'dc=mailfleet,dc=test',
    bindDn: 'cn=svc,dc=mailfleet,dc=test',
    bindPasswordEnv: 'SVC_PW',
    attributes,
  }) as LdapDirectorySpec;
  return new LdapDirectory({ spec, baseDir: '.', logger: silentLogger, env: { SVC_PW: 'x' } });
}

function mechanisms(directory: LdapDirectory): string[] {
  return new SaslMechanisms({ gate: new LoginGate({ directory, admission: new LocalAdmission(() => 10) }), directory }).names();
}

describe('SCRAM-SHA-256 with LDAP', () => {
  it('is not advertised unless directory.attributes.scramSha256 names where the secrets are', async () => {
    const without = ldap();
    assert.deepEqual(mechanisms(without), []);
    const withAttr = ldap({ scramSha256: 'userPassword' });
    assert.deepEqual(mechanisms(withAttr), ['SCRAM-SHA-256']);
    await without.close();
    await withAttr.close();
  });

  it('reads the SCRAM value among the attribute values (userPassword also holds the bind hash)', () => {
    const m = new LdapMapping({ flavor: 'openldap', attributes: { scramSha256: 'userPassword' } });
    assert.ok(m.attributes.includes('userPassword'));
    const mapped = m.map({ dn: 'uid=a,dc=x', mail: 'a@example.com', userPassword: ['{SSHA}abcdef', SECRET] });
    assert.equal(mapped?.scramSha256, SECRET);
    const none = new LdapMapping({ flavor: 'openldap' }).map({ dn: 'uid=a,dc=x', mail: 'a@example.com', userPassword: SECRET });
    assert.equal(none?.scramSha256, undefined);
  });
});
