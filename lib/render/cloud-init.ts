/**
 * Node bootstrap: the user data every node boots with, and the role scripts it hands over to.
 *
 * The user data is deliberately tiny and the same for every node of a role in both regions (EC2 caps
 * user data at 16 KiB, and a 500-tenant haproxy.cfg is far larger): it installs the SSM agent first
 * (so Session Manager works even when a later step fails), fetches the role's node-files bundle whose
 * s3:// URI an engine stored in a regional SSM parameter, and runs bootstrap/<role>.sh from it.
 * Deploy-time values (bucket keys, zone ids, secrets) are read on the node, never pasted into the text,
 * so engines can compare bootstrap text hashes.
 */
import type { Plan } from '../plan/types.js';
import type { Renderer } from './types.js';
import {
  BOOTSTRAP_LOG_PATH,
  DAEMON_BUNDLE_PATH,
  DAEMON_CONFIG_PATH,
  DAEMON_ENV_PATH,
  DAEMON_LOG_PATH,
  DAEMON_TLS_DIR,
  MAIL_MOUNT,
  MAIL_MOUNT_UNIT,
  NODE_FILES_DIR,
  NODE_ROLES,
  joinFiles,
  mailNodesHost,
  nodeFilesParameter,
  nodePath,
  secretNames,
  shq,
  ssmPrefix,
  type NodeRole,
  type RenderedFile,
} from './node-layout.js';

/** Node.js major the daemon bundle targets (package.json engines: node >= 20.19). */
export const NODE_MAJOR = 20;

/** User data of one node role (a shell script cloud-init runs once). */
export function userData(plan: Plan, role: NodeRole): string {
  return `#!/bin/bash
# mailfleet ${plan.platform}: ${role} node user data (rendered by \`mailfleet render cloud-init\`).
set -euo pipefail
mkdir -p "$(dirname ${BOOTSTRAP_LOG_PATH})"
exec >>${BOOTSTRAP_LOG_PATH} 2>&1
echo "mailfleet bootstrap: role ${role} starting at $(date -Is)"
token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
region=$(curl -fsS -H "X-aws-ec2-metadata-token: \${token}" http://169.254.169.254/latest/meta-data/placement/region)
export AWS_DEFAULT_REGION="\${region}"
if command -v dnf >/dev/null 2>&1; then
  # Amazon Linux 2023 ships the SSM agent and AWS CLI.
  dnf install -y -q unzip python3
else
  # Debian: Session Manager first, so operators get a shell even if anything below fails (there is no SSH).
  export DEBIAN_FRONTEND=noninteractive
  arch=$(dpkg --print-architecture)
  curl -fsS -o /tmp/amazon-ssm-agent.deb "https://s3.\${region}.amazonaws.com/amazon-ssm-\${region}/latest/debian_\${arch}/amazon-ssm-agent.deb"
  dpkg -i /tmp/amazon-ssm-agent.deb
  systemctl enable --now amazon-ssm-agent
  apt-get update -q
  apt-get install -y -q --no-install-recommends awscli unzip ca-certificates curl python3
fi
files_uri=$(aws ssm get-parameter --name ${shq(nodeFilesParameter(plan, role))} --query Parameter.Value --output text)
mkdir -p ${NODE_FILES_DIR}
aws s3 cp "\${files_uri}" /tmp/mailfleet-node-files.zip
unzip -o -q /tmp/mailfleet-node-files.zip -d ${NODE_FILES_DIR}
chmod 0755 ${NODE_FILES_DIR}/bootstrap/*.sh
exec ${NODE_FILES_DIR}/bootstrap/${role}.sh
`;
}

/** Helpers every role script sources. */
export function commonScript(plan: Plan): RenderedFile {
  return {
    path: 'bootstrap/common.sh',
    executable: true,
    content: `#!/bin/bash
# Sourced by every mailfleet role script: IMDSv2, SSM parameters, secrets, packages, CloudWatch agent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
MAILFLEET_PREFIX=${shq(ssmPrefix(plan))}
MAILFLEET_FILES=${NODE_FILES_DIR}
export MAILFLEET_PREFIX MAILFLEET_FILES

imds() {
  local token
  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -fsS -H "X-aws-ec2-metadata-token: \${token}" "http://169.254.169.254/latest/$1"
}

REGION=$(imds meta-data/placement/region)
INSTANCE_ID=$(imds meta-data/instance-id)
LOCAL_IPV4=$(imds meta-data/local-ipv4)
export AWS_DEFAULT_REGION="\${REGION}" REGION INSTANCE_ID LOCAL_IPV4
if command -v dnf >/dev/null 2>&1; then PKG=dnf; else PKG=apt; fi
export PKG

# An instance tag through IMDS (instance metadata tags are enabled by the engines).
tag() {
  imds "meta-data/tags/instance/$1"
}

param() {
  aws ssm get-parameter --name "\${MAILFLEET_PREFIX}/$1" --query Parameter.Value --output text
}

secret() {
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text
}

# Packages by their Debian names; mapped to Amazon Linux 2023 names where they differ.
pkg_install() {
  if [ "\${PKG}" = apt ]; then
    apt-get install -y -q --no-install-recommends "$@"
    return
  fi
  local names=() p
  for p in "$@"; do
    case "\${p}" in
      glusterfs-client) names+=(glusterfs-fuse) ;;
      nfs-common) names+=(nfs-utils) ;;
      slapd) names+=(openldap-servers) ;;
      ldap-utils) names+=(openldap-clients) ;;
      nodejs) names+=(nodejs20) ;;
      gnupg) names+=(gnupg2) ;;
      *) names+=("\${p}") ;;
    esac
  done
  dnf install -y -q "\${names[@]}"
}

# GlusterFS is not in Amazon Linux 2023: use the CentOS Storage SIG build for EL9.
gluster_repo() {
  [ "\${PKG}" = dnf ] || return 0
  cat >/etc/yum.repos.d/mailfleet-glusterfs.repo <<'REPO'
[mailfleet-glusterfs]
name=GlusterFS 10 (CentOS Storage SIG, EL9)
baseurl=https://mirror.stream.centos.org/SIGs/9-stream/storage/$basearch/gluster-10/
gpgcheck=1
gpgkey=https://www.centos.org/keys/RPM-GPG-KEY-CentOS-SIG-Storage
REPO
}

install_cloudwatch_agent() {
  if [ "\${PKG}" = dnf ]; then
    dnf install -y -q amazon-cloudwatch-agent
  else
    local deb=/tmp/amazon-cloudwatch-agent.deb arch
    arch=$(dpkg --print-architecture)
    curl -fsS -o "\${deb}" "https://amazoncloudwatch-agent-\${REGION}.s3.\${REGION}.amazonaws.com/debian/\${arch}/latest/amazon-cloudwatch-agent.deb"
    dpkg -i -E "\${deb}"
  fi
  install -d -m 0755 /opt/aws/amazon-cloudwatch-agent/etc
  install -m 0644 "\${MAILFLEET_FILES}/cloudwatch/prometheus.yaml" /opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\
    -c "file:\${MAILFLEET_FILES}/cloudwatch/$1.json"
}

install_units() {
  install -m 0644 "\${MAILFLEET_FILES}"/systemd/"$1" /etc/systemd/system/
  systemctl daemon-reload
}

tune_kernel() {
  install -m 0644 "\${MAILFLEET_FILES}/sysctl/60-mailfleet.conf" /etc/sysctl.d/60-mailfleet.conf
  sysctl --system >/dev/null
}
`,
  };
}

function proxyScript(): RenderedFile {
  return {
    path: 'bootstrap/proxy.sh',
    executable: true,
    content: `#!/bin/bash
# HAProxy node: the flow-control tier (one frontend per tenant x protocol, PROXY v2 in and out).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
pkg_install haproxy
tune_kernel
install -m 0644 "\${MAILFLEET_FILES}"/haproxy/* /etc/haproxy/
haproxy -c -q -f /etc/haproxy/haproxy.cfg
install -d -m 0755 /etc/systemd/system/haproxy.service.d
install -m 0644 "\${MAILFLEET_FILES}/systemd/haproxy-limits.conf" /etc/systemd/system/haproxy.service.d/mailfleet.conf
systemctl daemon-reload
systemctl enable haproxy
systemctl restart haproxy
install_cloudwatch_agent proxy
echo "mailfleet bootstrap: proxy ready"
`,
  };
}

function mailScript(plan: Plan): RenderedFile {
  const s = secretNames(plan);
  const d = plan.directory;
  const storagePkg = plan.storage.kind === 'glusterfs' ? 'glusterfs-client' : 'nfs-common';
  // Relay AUTH credentials into the env vars the spec names, from one JSON secret.
  const relay = plan.spec.smtp.relay;
  const relayEnv = (field: 'username' | 'password', env: string | undefined) =>
    env ? `  printf '%s=%s\\n' ${shq(env)} "$(secret ${shq(s.relay)} | python3 -c 'import json,sys; print(json.load(sys.stdin)["${field}"])')"\n` : '';
  const relayCredentials = relay ? relayEnv('username', relay.usernameEnv) + relayEnv('password', relay.passwordEnv) : '';
  // The directory's service password goes where the spec says the daemon reads it: an env var or a file.
  const ldapBindEnv =
    d.kind === 'ldap' && d.bindPasswordEnv
      ? `  printf '%s=%s\\n' ${shq(d.bindPasswordEnv)} "$(secret ${shq(s.ldapBind)})"\n`
      : '';
  // Files the daemon reads (resolved against its config folder, like the daemon does): readable by it only.
  const daemonFile = (secretName: string, specPath: string) => {
    const f = shq(nodePath(specPath));
    return `install -d -m 0750 -o root -g mailfleet "$(dirname ${f})"\nsecret ${shq(secretName)} >${f}\nchgrp mailfleet ${f}\nchmod 0640 ${f}\n`;
  };
  const ldapBindFile = d.kind === 'ldap' && !d.bindPasswordEnv && d.bindPasswordFile ? daemonFile(s.ldapBind, d.bindPasswordFile) : '';
  // A static directory's users file comes from its secret (the daemon re-reads it when it changes).
  const usersFile = d.kind === 'static' ? daemonFile(s.staticUsers, d.file) : '';
  return {
    path: 'bootstrap/mail.sh',
    executable: true,
    content: `#!/bin/bash
# mailfleetd node: Node.js ${NODE_MAJOR}, the storage client, secrets, then the daemon once ${MAIL_MOUNT} is mounted.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
${plan.storage.kind === 'glusterfs' ? 'gluster_repo\n' : ''}pkg_install ${storagePkg}
tune_kernel

# Node.js ${NODE_MAJOR}: Amazon Linux 2023 packages it; on Debian 12 (which ships 18) it comes from NodeSource.
if [ "\${PKG}" = apt ]; then
  pkg_install gnupg
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" >/etc/apt/sources.list.d/nodesource.list
  apt-get update -q
fi
pkg_install nodejs
# One fixed path for the unit, whatever the distribution calls the binary.
ln -sf "$(command -v node-${NODE_MAJOR} || command -v node)" /usr/local/bin/mailfleet-node

id -u mailfleet >/dev/null 2>&1 || useradd --system --home-dir ${MAIL_MOUNT} --shell /usr/sbin/nologin mailfleet
aws s3 cp "$(param daemon-bundle)" ${DAEMON_BUNDLE_PATH}
install -d -m 0750 -o root -g mailfleet /etc/mailfleet ${DAEMON_TLS_DIR}
install -d -m 0755 -o mailfleet -g mailfleet "$(dirname ${DAEMON_LOG_PATH})"
install -m 0640 -o root -g mailfleet "\${MAILFLEET_FILES}/mailfleetd.json" ${DAEMON_CONFIG_PATH}

# Secrets stay on the node: environment file and TLS key readable by the daemon only.
umask 077
{
  printf '%s=%s\\n' ${shq(plan.spec.platform.adminTokenEnv)} "$(secret ${shq(s.adminToken)})"
  # The unit's --data-dir, so mailfleet commands run on the node find the daemon's data.
  printf 'MAILFLEET_DATA_DIR=%s\\n' ${MAIL_MOUNT}/maildir
  printf 'MAILFLEET_TLS_CERT=%s\\nMAILFLEET_TLS_KEY=%s\\n' ${DAEMON_TLS_DIR}/cert.pem ${DAEMON_TLS_DIR}/key.pem
${ldapBindEnv}${relayCredentials}} >${DAEMON_ENV_PATH}
${ldapBindFile}${usersFile}secret ${shq(s.tls)} | python3 -c '
import json, sys
tls = json.load(sys.stdin)
open(sys.argv[1], "w").write(tls["cert"])
open(sys.argv[2], "w").write(tls["key"])
' ${DAEMON_TLS_DIR}/cert.pem ${DAEMON_TLS_DIR}/key.pem
chgrp mailfleet ${DAEMON_ENV_PATH} ${DAEMON_TLS_DIR}/cert.pem ${DAEMON_TLS_DIR}/key.pem
chmod 0640 ${DAEMON_ENV_PATH} ${DAEMON_TLS_DIR}/cert.pem ${DAEMON_TLS_DIR}/key.pem
umask 022

# The Maildir root must be mounted before the daemon starts (the unit says RequiresMountsFor too).
install_units ${MAIL_MOUNT_UNIT}
install_units mailfleetd.service
install_units mailfleet-register.service
param private-zone-id >/etc/mailfleet/private-zone-id
systemctl enable --now ${MAIL_MOUNT_UNIT}
install -d -m 0750 -o mailfleet -g mailfleet ${MAIL_MOUNT}/maildir
systemctl enable --now mailfleetd.service mailfleet-register.service
install_cloudwatch_agent mail
echo "mailfleet bootstrap: mail node ready"
`,
  };
}

/** Publishes (UPSERT) or withdraws (DELETE) this mail node's A record, so HAProxy finds the mail tier. */
function registerScript(plan: Plan): RenderedFile {
  return {
    path: 'bootstrap/register.sh',
    executable: true,
    content: `#!/bin/bash
# Called by mailfleet-register.service: UPSERT at start, DELETE at stop.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
action=\${1:?usage: register.sh UPSERT|DELETE}
zone_id=$(cat /etc/mailfleet/private-zone-id)
batch=$(printf '{"Changes":[{"Action":"%s","ResourceRecordSet":{"Name":"%s","Type":"A","SetIdentifier":"%s","MultiValueAnswer":true,"TTL":10,"ResourceRecords":[{"Value":"%s"}]}}]}' \\
  "\${action}" ${shq(mailNodesHost(plan))} "\${INSTANCE_ID}" "\${LOCAL_IPV4}")
if ! aws route53 change-resource-record-sets --hosted-zone-id "\${zone_id}" --change-batch "\${batch}" >/dev/null; then
  # Withdrawing a record that is already gone is fine; failing to publish is not.
  [ "\${action}" = DELETE ] || exit 1
fi
`,
  };
}

/** The role scripts this renderer owns (storage and LDAP scripts come from the gluster and slapd renderers). */
export function roleScripts(plan: Plan): RenderedFile[] {
  return [commonScript(plan), proxyScript(), mailScript(plan), registerScript(plan)];
}

/** Kernel settings for nodes that hold many long-lived connections (IMAP IDLE, HAProxy). */
export function sysctlConf(): RenderedFile {
  return {
    path: 'sysctl/60-mailfleet.conf',
    content: `# mailfleet: many long-lived connections per node.
fs.file-max = 2097152
fs.nr_open = 2097152
net.core.somaxconn = 65535
net.ipv4.tcp_max_syn_backlog = 65535
net.ipv4.ip_local_port_range = 10240 65535
net.ipv4.tcp_keepalive_time = 300
`,
  };
}

export const cloudInitRenderer: Renderer = {
  kind: 'cloud-init',
  description: 'node user data for every role (proxy, mail, storage, ldap) plus the proxy and mail role scripts',
  fileName: 'user-data.sh',
  render(plan, opts) {
    // Engines ask for one role's user data; without a role the document shows every role.
    const role = opts?.role as NodeRole | undefined;
    if (role !== undefined && (NODE_ROLES as readonly string[]).includes(role)) return userData(plan, role);
    const files: RenderedFile[] = [
      ...NODE_ROLES.map((role) => ({ path: `user-data/${role}.sh`, content: userData(plan, role), executable: true })),
      ...roleScripts(plan),
      sysctlConf(),
    ];
    return joinFiles(files);
  },
};
