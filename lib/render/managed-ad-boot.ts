/**
 * The mail bootstrap's Managed AD step: the CA bundle the daemon verifies the domain controllers' LDAPS
 * (or StartTLS) certificates against, from the ldap-ca secret. The secret holds no CA until the operator
 * enables LDAPS (docs/ldap.md): the node then boots with an empty bundle, so binds fail closed (no
 * certificate verifies) rather than falling back to plaintext, and says so in the bootstrap log.
 */
import { managedAdOf } from '../plan/managed-ad.js';
import type { Plan } from '../plan/types.js';
import { nodePath, secretNames, shq } from './node-layout.js';

export function ldapCaBootstrap(plan: Plan): string {
  const ad = managedAdOf(plan.directory);
  if (!ad?.caFile) return '';
  const name = secretNames(plan).ldapCa;
  const f = shq(nodePath(ad.caFile));
  return `# >>> managed AD CA (docs/ldap.md): what the domain controllers' certificates chain to
ldap_ca_json=$(secret ${shq(name)})
ldap_ca=$(json_field "\${ldap_ca_json}" ca)
if [ -z "\${ldap_ca}" ]; then
  echo "mailfleet bootstrap: WARNING: secret ${name} holds no CA bundle; directory binds fail until LDAPS is enabled and its CA stored (docs/ldap.md)"
fi
printf '%s\\n' "\${ldap_ca}" >${f}
chgrp mailfleet ${f}
chmod 0640 ${f}
# <<< managed AD CA
`;
}
