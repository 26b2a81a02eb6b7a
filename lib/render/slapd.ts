/**
 * OpenLDAP for `directory.provision: openldap-pair`: slapd.conf for the provider (syncprov) and for
 * consumers (syncrepl refreshAndPersist; the DR consumer uses the same file), the base entries, the
 * mailfleet schema (so entries can carry the attributes the backend reads: aliases, quotas, caps), and
 * the role script. Passwords never appear in the rendered text: the node hashes its secrets at boot
 * into small include files.
 */
import type { Plan } from '../plan/types.js';
import type { LdapDirectorySpec } from '../spec/schema.js';
import { MailfleetError } from '../errors.js';
import { MAILFLEET_LDAP_SCHEMA } from '../directory/ldap/schema.js';
import type { Renderer } from './types.js';
import { LDAP_ROLE_TAG, joinFiles, ldapProviderHost, secretNames, shq, type RenderedFile } from './node-layout.js';

export const SLAPD_CONF = '/etc/ldap/slapd.conf';
export const ROOTPW_INCLUDE = '/etc/ldap/mailfleet-rootpw.conf';
export const SYNCREPL_INCLUDE = '/etc/ldap/mailfleet-syncrepl.conf';
export const LDAP_DB_DIR = '/var/lib/ldap';
/** Where nodes install the mailfleet schema (the backend's default attributes: aliases, quotas, caps). */
export const MAILFLEET_SCHEMA_PATH = '/etc/ldap/schema/mailfleet.schema';

function ldapSpec(plan: Plan): LdapDirectorySpec {
  const d = plan.directory;
  if (d.kind !== 'ldap' || d.provision !== 'openldap-pair')
    throw new MailfleetError('PLAN_INVALID', 'the slapd renderer needs directory.kind ldap with provision openldap-pair');
  return d;
}

/** DNs the pair uses, all under the spec's baseDn. */
export function ldapDns(plan: Plan) {
  const d = ldapSpec(plan);
  return {
    base: d.baseDn,
    admin: `cn=admin,${d.baseDn}`,
    replicator: `cn=replicator,${d.baseDn}`,
    service: d.bindDn ?? `cn=mailfleet,ou=services,${d.baseDn}`,
    people: `ou=people,${d.baseDn}`,
    services: `ou=services,${d.baseDn}`,
  };
}

function slapdConf(plan: Plan, role: 'provider' | 'consumer'): string {
  const dn = ldapDns(plan);
  const common = `# slapd.conf for the mailfleet ${role} (rendered by \`mailfleet render slapd\`).
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include ${MAILFLEET_SCHEMA_PATH}
pidfile /run/slapd/slapd.pid
argsfile /run/slapd/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
sizelimit 1000

database mdb
maxsize 4294967296
suffix "${dn.base}"
rootdn "${dn.admin}"
include ${ROOTPW_INCLUDE}
directory ${LDAP_DB_DIR}
index objectClass eq
index mail,uid,cn,mailAlternateAddress eq
index entryCSN,entryUUID eq
# Passwords: users change their own, anyone may bind, the replicator copies them, nobody else reads them.
access to attrs=userPassword
  by self write
  by dn.exact="${dn.replicator}" read
  by anonymous auth
  by * none
access to *
  by dn.exact="${dn.replicator}" read
  by dn.exact="${dn.service}" read
  by self read
  by * none
`;
  if (role === 'provider')
    return `${common}overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
`;
  return `${common}# The syncrepl directive carries the replicator password, so the node writes it at boot.
include ${SYNCREPL_INCLUDE}
updateref ldap://${ldapProviderHost(plan)}
`;
}

function baseLdif(plan: Plan): string {
  const dn = ldapDns(plan);
  const dc = /^dc=([^,]+)/i.exec(dn.base)?.[1] ?? plan.platform;
  const rdn = (d: string) => /^[^=]+=([^,]+)/.exec(d)?.[1] ?? d;
  return `dn: ${dn.base}
objectClass: dcObject
objectClass: organization
dc: ${dc}
o: ${plan.platform}

dn: ${dn.people}
objectClass: organizationalUnit
ou: people

dn: ${dn.services}
objectClass: organizationalUnit
ou: services

dn: ${dn.service}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: ${rdn(dn.service)}
userPassword: @@SERVICE_PASSWORD_HASH@@

dn: ${dn.replicator}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: replicator
userPassword: @@REPLICATOR_PASSWORD_HASH@@
`;
}

function ldapScript(plan: Plan): string {
  const dn = ldapDns(plan);
  const s = secretNames(plan);
  const provider = `ldap://${ldapProviderHost(plan)}`;
  return `#!/bin/bash
# OpenLDAP node: provider or consumer by the ${LDAP_ROLE_TAG} instance tag.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
pkg_install slapd ldap-utils
# The packaged unit wants cn=config; mailfleet runs slapd from the rendered slapd.conf instead.
systemctl disable --now slapd 2>/dev/null || true
role=$(tag ${LDAP_ROLE_TAG})
case "\${role}" in provider | consumer) ;; *) echo "unknown LDAP role \${role}" >&2; exit 1 ;; esac
install -d -m 0755 /etc/ldap
install -m 0644 "\${MAILFLEET_FILES}/ldap/mailfleet.schema" ${MAILFLEET_SCHEMA_PATH}
install -m 0644 "\${MAILFLEET_FILES}/ldap/slapd-\${role}.conf" ${SLAPD_CONF}
install -d -m 0700 -o openldap -g openldap ${LDAP_DB_DIR}

umask 077
# Secrets into variables first: a failed read stops the bootstrap (set -e) instead of writing an empty value.
admin_password=$(secret ${shq(s.ldapAdmin)})
admin_hash=$(slappasswd -s "\${admin_password}")
printf 'rootpw %s\\n' "\${admin_hash}" >${ROOTPW_INCLUDE}
replicator_password=$(secret ${shq(s.ldapReplicator)})
if [ "\${role}" = consumer ]; then
  printf '%s\\n' "syncrepl rid=001 provider=${provider} type=refreshAndPersist retry=\\"5 10 60 +\\" searchbase=\\"${dn.base}\\" bindmethod=simple binddn=\\"${dn.replicator}\\" credentials=\${replicator_password}" >${SYNCREPL_INCLUDE}
else
  : >${SYNCREPL_INCLUDE}
fi
chown openldap ${ROOTPW_INCLUDE} ${SYNCREPL_INCLUDE}
chmod 0600 ${ROOTPW_INCLUDE} ${SYNCREPL_INCLUDE}

# The provider loads the base entries once; consumers get everything through syncrepl.
if [ "\${role}" = provider ] && [ ! -f ${LDAP_DB_DIR}/data.mdb ]; then
  service_password=$(secret ${shq(s.ldapBind)})
  service_hash=$(slappasswd -s "\${service_password}")
  replicator_hash=$(slappasswd -s "\${replicator_password}")
  sed -e "s|@@SERVICE_PASSWORD_HASH@@|\${service_hash}|" -e "s|@@REPLICATOR_PASSWORD_HASH@@|\${replicator_hash}|" \\
    "\${MAILFLEET_FILES}/ldap/base.ldif" >/tmp/mailfleet-base.ldif
  slapadd -q -f ${SLAPD_CONF} -l /tmp/mailfleet-base.ldif
  rm -f /tmp/mailfleet-base.ldif
  chown -R openldap:openldap ${LDAP_DB_DIR}
fi
umask 022
install_units mailfleet-slapd.service
systemctl enable --now mailfleet-slapd.service
install_cloudwatch_agent ldap
echo "mailfleet bootstrap: ldap \${role} ready"
`;
}

/** Every file an LDAP node needs (both roles; the tag picks one at boot). */
export function slapdFiles(plan: Plan): RenderedFile[] {
  return [
    { path: 'ldap/slapd-provider.conf', content: slapdConf(plan, 'provider') },
    { path: 'ldap/slapd-consumer.conf', content: slapdConf(plan, 'consumer') },
    { path: 'ldap/base.ldif', content: baseLdif(plan) },
    { path: 'ldap/mailfleet.schema', content: MAILFLEET_LDAP_SCHEMA },
    { path: 'bootstrap/ldap.sh', content: ldapScript(plan), executable: true },
  ];
}

export const slapdRenderer: Renderer = {
  kind: 'slapd',
  description: 'OpenLDAP provider/consumer slapd.conf (syncprov/syncrepl), base entries and node bootstrap',
  fileName: 'slapd.txt',
  render(plan) {
    const d = plan.directory;
    if (d.kind !== 'ldap' || d.provision !== 'openldap-pair')
      return `# directory is ${d.kind}${d.kind === 'ldap' ? ` (provision ${d.provision})` : ''}: no OpenLDAP nodes\n`;
    return joinFiles(slapdFiles(plan));
  },
};
