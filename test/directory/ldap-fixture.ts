/**
 * The directory the LDAP tests and the bench run against: two mail domains (example.com, example.org)
 * in an OpenLDAP-shaped subtree, an AD-shaped subtree (same domains, AD attributes) and a service account.
 */
import { ssha } from '../harness/slapd.js';

export const SUFFIX = 'dc=mailfleet,dc=test';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const AD_USERS = `ou=ad,${SUFFIX}`;
export const SERVICE_DN = `cn=mailfleet,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'svc-secret-9f2';
export const DOMAINS = ['example.com', 'example.org'];

/** Passwords by uid / sAMAccountName. */
export const PASSWORDS = {
  alice: 'alice-pw-1',
  bob: 'bob-pw-2',
  carol: 'carol-pw-3',
  dave: 'dave-pw-4',
  erin: 'erin-pw-5',
  frank: 'frank-pw-6',
} as const;

export function fixtureLdif(extraUsers = 0): string {
  const people = (uid: string, mail: string, extra: string[] = []) =>
    [
      `dn: uid=${uid},${PEOPLE}`,
      'objectClass: inetOrgPerson',
      'objectClass: mailfleetUser',
      `uid: ${uid}`,
      `cn: ${uid}`,
      `sn: ${uid}`,
      `mail: ${mail}`,
      `userPassword: ${ssha(PASSWORDS[uid as keyof typeof PASSWORDS] ?? `${uid}-pw`)}`,
      ...extra,
      '',
    ].join('\n');
  const ad = (sam: string, upn: string, proxies: string[], uac: number) =>
    [
      `dn: cn=${sam},${AD_USERS}`,
      'objectClass: inetOrgPerson',
      'objectClass: user',
      `cn: ${sam}`,
      `sn: ${sam}`,
      `sAMAccountName: ${sam}`,
      `userPrincipalName: ${upn}`,
      ...proxies.map((p) => `proxyAddresses: ${p}`),
      `userAccountControl: ${uac}`,
      `userPassword: ${ssha(PASSWORDS[sam as keyof typeof PASSWORDS])}`,
      '',
    ].join('\n');
  const blocks = [
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services\n`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: mailfleet\nuserPassword: ${ssha(SERVICE_PASSWORD)}\n`,
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n`,
    people('alice', 'alice@example.com', ['mailAlternateAddress: postmaster@example.com', 'mailAlternateAddress: sales@example.com']),
    people('bob', 'Bob@Example.com', ['mailAlternateAddress: sales@example.com', 'mailQuota: 1048576', 'mailfleetQuotaMessages: 5000', 'mailfleetMaxConnections: 3']),
    people('carol', 'carol@example.org', ['mailfleetMaxConnections: imap=7', 'mailfleetMaxConnections: pop3=1']),
    `dn: ${AD_USERS}\nobjectClass: organizationalUnit\nou: ad\n`,
    // 512 = NORMAL_ACCOUNT, 514 = NORMAL_ACCOUNT | ACCOUNTDISABLE
    ad('dave', 'dave@corp.example.com', ['SMTP:dave@example.com', 'smtp:d.smith@example.com', 'smtp:team@example.org', 'X500:/o=Org/cn=dave'], 512),
    ad('erin', 'erin@corp.example.com', ['SMTP:erin@example.org', 'smtp:team@example.org'], 512),
    ad('frank', 'frank@corp.example.com', ['SMTP:frank@example.com'], 514),
  ];
  for (let i = 0; i < extraUsers; i++) blocks.push(people(`user${i}`, `user${i}@example.com`));
  return blocks.join('\n');
}
