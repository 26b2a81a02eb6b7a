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
import { filteringBootstrap } from '../filter/node-setup.js';
import { ldapCaBootstrap } from './managed-ad-boot.js';
import { BUSY_TLS_PEM_FILE, CLOUD_HAPROXY_DIR } from './haproxy.js';
import { SELF_SIGNED_CERT_METRIC, STATSD_ADDRESS } from './cloudwatch-agent.js';
import { MAIL_DRAIN_SECONDS } from '../plan/reload.js';
import {
  BOOTSTRAP_LOG_PATH,
  DAEMON_ADMIN_PORT,
  DAEMON_DIR,
  DAEMON_NODE_PATH,
  HEALTH_FAILURES_BEFORE_UNHEALTHY,
  DISCOVERY,
  DRAIN,
  LAUNCH_HOOK_NAME,
  MAIL_UID,
  TERMINATE_HOOK_NAME,
  STORAGE_WAIT,
  auditBucketParameter,
  provisionsRedis,
  redisEndpointParameter,
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

/** Present while the mail node serves a certificate it generated (mail.sh writes it, the health timer reports it). */
export const SELF_SIGNED_MARKER = `${DAEMON_TLS_DIR}/SELF-SIGNED`;

/** Node.js major the daemon package ships (its runtime comes from the npm package node-linux-<arch>). */
export const NODE_MAJOR = 24;

/** User data of one node role (a shell script cloud-init runs once). */
export function userData(plan: Plan, role: NodeRole): string {
  return `#!/bin/bash
# mailfleet ${plan.platform}: ${role} node user data (rendered by \`mailfleet render cloud-init\`), Debian 12.
set -euo pipefail
mkdir -p "$(dirname ${BOOTSTRAP_LOG_PATH})"
exec >>${BOOTSTRAP_LOG_PATH} 2>&1
echo "mailfleet bootstrap: role ${role} starting at $(date -Is)"
token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
region=$(curl -fsS -H "X-aws-ec2-metadata-token: \${token}" http://169.254.169.254/latest/meta-data/placement/region)
export AWS_DEFAULT_REGION="\${region}" DEBIAN_FRONTEND=noninteractive
# Session Manager first, so operators get a shell even if anything below fails (there is no SSH). It is
# AWS's package, not Debian's: a node that cannot fetch it still boots (and says so).
arch=$(dpkg --print-architecture)
if curl -fsS -o /tmp/amazon-ssm-agent.deb "https://s3.\${region}.amazonaws.com/amazon-ssm-\${region}/latest/debian_\${arch}/amazon-ssm-agent.deb"; then
  dpkg -i /tmp/amazon-ssm-agent.deb && systemctl enable --now amazon-ssm-agent
else
  echo "mailfleet bootstrap: WARNING: no SSM agent (Session Manager unavailable on this node)"
fi
apt-get update -q
apt-get install -y -q --no-install-recommends awscli unzip ca-certificates curl python3
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
# Sourced by every mailfleet role script (Debian 12): IMDSv2, SSM parameters, secrets, packages, CloudWatch agent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
MAILFLEET_PREFIX=${shq(ssmPrefix(plan))}
MAILFLEET_FILES=${NODE_FILES_DIR}
export MAILFLEET_PREFIX MAILFLEET_FILES

imds() {
  local token
  token=$(curl -fsS --connect-timeout 2 -m 5 --retry 3 -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -fsS --connect-timeout 2 -m 5 --retry 3 -H "X-aws-ec2-metadata-token: \${token}" "http://169.254.169.254/latest/$1"
}

REGION=$(imds meta-data/placement/region)
INSTANCE_ID=$(imds meta-data/instance-id)
LOCAL_IPV4=$(imds meta-data/local-ipv4)
export AWS_DEFAULT_REGION="\${REGION}" REGION INSTANCE_ID LOCAL_IPV4

# An instance tag through IMDS (instance metadata tags are enabled by the engines).
tag() {
  imds "meta-data/tags/instance/$1"
}

param() {
  aws ssm get-parameter --name "\${MAILFLEET_PREFIX}/$1" --query Parameter.Value --output text
}

# A secret's value, or a loud failure: never an empty string. Assign it (v=$(secret x)) so that set -e
# stops the bootstrap; inside another command's arguments a failed substitution would pass unseen.
secret() {
  local v
  if ! v=$(aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text); then
    echo "mailfleet bootstrap: cannot read secret $1" >&2
    return 1
  fi
  if [ -z "\${v}" ] || [ "\${v}" = None ]; then
    echo "mailfleet bootstrap: secret $1 is empty" >&2
    return 1
  fi
  printf '%s' "\${v}"
}

# One field of a JSON secret (fails when the field is missing).
json_field() {
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

# Debian packages only, from the node's configured Debian mirror.
pkg_install() {
  apt-get install -y -q --no-install-recommends "$@"
}

# The CloudWatch agent is AWS's package (not in Debian): metrics and logs need it, serving mail does not.
install_cloudwatch_agent() {
  local deb=/tmp/amazon-cloudwatch-agent.deb arch
  arch=$(dpkg --print-architecture)
  if ! curl -fsS -o "\${deb}" "https://amazoncloudwatch-agent-\${REGION}.s3.\${REGION}.amazonaws.com/debian/\${arch}/latest/amazon-cloudwatch-agent.deb"; then
    echo "mailfleet bootstrap: WARNING: no CloudWatch agent (no metrics or logs shipped from this node)"
    return 0
  fi
  dpkg -i -E "\${deb}"
  install -d -m 0755 /opt/aws/amazon-cloudwatch-agent/etc
  install -m 0644 "\${MAILFLEET_FILES}/cloudwatch/prometheus.yaml" /opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml
  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\
    -c "file:\${MAILFLEET_FILES}/cloudwatch/$1.json"
}

install_units() {
  install -m 0644 "\${MAILFLEET_FILES}"/systemd/"$1" /etc/systemd/system/
  systemctl daemon-reload
}

# Kernel settings; vm.* / kernel.* may be read-only (containers), so one refused key does not stop the boot.
tune_kernel() {
  command -v sysctl >/dev/null || pkg_install procps
  install -m 0644 "\${MAILFLEET_FILES}/sysctl/60-mailfleet.conf" /etc/sysctl.d/60-mailfleet.conf
  sysctl --system >/dev/null || echo "mailfleet bootstrap: WARNING: some kernel settings were refused"
}

# This instance's Auto Scaling group ("None" outside one).
asg_name() {
  aws autoscaling describe-auto-scaling-instances --instance-ids "\${INSTANCE_ID}" \\
    --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text
}

# Completes the launch lifecycle hook: CONTINUE once the node serves, ABANDON when it cannot (the group
# replaces it); outside an Auto Scaling group there is nothing to signal.
signal_launch() {
  local asg
  asg=$(asg_name) || return 1
  [ "\${asg}" != None ] || return 0
  echo "mailfleet bootstrap: lifecycle $1 (\${asg})"
  aws autoscaling complete-lifecycle-action --lifecycle-hook-name ${LAUNCH_HOOK_NAME} \\
    --auto-scaling-group-name "\${asg}" --instance-id "\${INSTANCE_ID}" --lifecycle-action-result "$1"
}
`,
  };
}

function proxyScript(plan: Plan): RenderedFile {
  const BUSY_PEM = `${CLOUD_HAPROXY_DIR}/${BUSY_TLS_PEM_FILE}`;
  return {
    path: 'bootstrap/proxy.sh',
    executable: true,
    content: `#!/bin/bash
# HAProxy node: the flow-control tier (one frontend per tenant x protocol, PROXY v2 in and out).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
pkg_install haproxy openssl
tune_kernel
install -m 0644 "\${MAILFLEET_FILES}"/haproxy/* /etc/haproxy/
# Implicit-TLS listeners say their busy reply inside TLS (busy-tls-* frontends). Proxy nodes do not hold
# the platform certificate (mail nodes do), so a self-signed one for the hostname answers those refusals.
if [ ! -s ${BUSY_PEM} ]; then
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj ${shq(`/CN=${plan.hostname}`)} \
    -keyout /tmp/busy.key -out /tmp/busy.crt 2>/dev/null && cat /tmp/busy.crt /tmp/busy.key >${BUSY_PEM} && rm -f /tmp/busy.key /tmp/busy.crt)
  chown root:haproxy ${BUSY_PEM}
  chmod 0640 ${BUSY_PEM}
fi
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
  // Every secret is read into a variable first, so a failed or empty read stops the bootstrap.
  const reads: string[] = [`admin_token=$(secret ${shq(s.adminToken)})`];
  const envLines: string[] = [`  printf '%s=%s\\n' ${shq(plan.spec.platform.adminTokenEnv)} "\${admin_token}"`];
  const relay = plan.spec.smtp.relay;
  if (relay && (relay.usernameEnv || relay.passwordEnv)) {
    reads.push(`relay_json=$(secret ${shq(s.relay)})`);
    for (const [field, env] of [['username', relay.usernameEnv], ['password', relay.passwordEnv]] as const) {
      if (!env) continue;
      reads.push(`relay_${field}=$(json_field "\${relay_json}" ${field})`);
      envLines.push(`  printf '%s=%s\\n' ${shq(env)} "\${relay_${field}}"`);
    }
  }
  // The directory's service password goes where the spec says the daemon reads it: an env var or a file.
  if (d.kind === 'ldap' && d.bindPasswordEnv) {
    reads.push(`ldap_bind=$(secret ${shq(s.ldapBind)})`);
    envLines.push(`  printf '%s=%s\\n' ${shq(d.bindPasswordEnv)} "\${ldap_bind}"`);
  }
  // Files the daemon reads (resolved against its config folder, like the daemon does): readable by it only.
  const daemonFile = (secretName: string, specPath: string, v: string) => {
    const f = shq(nodePath(specPath));
    return `${v}=$(secret ${shq(secretName)})\ninstall -d -m 0750 -o root -g mailfleet "$(dirname ${f})"\nprintf '%s\\n' "\${${v}}" >${f}\nchgrp mailfleet ${f}\nchmod 0640 ${f}\n`;
  };
  const ldapBindFile = d.kind === 'ldap' && !d.bindPasswordEnv && d.bindPasswordFile ? daemonFile(s.ldapBind, d.bindPasswordFile, 'ldap_bind') : '';
  const ldapCaFile = ldapCaBootstrap(plan);
  // A static directory's users file comes from its secret (the daemon re-reads it when it changes).
  const usersFile = d.kind === 'static' ? daemonFile(s.staticUsers, d.file, 'users_yaml') : '';
  const tls = DAEMON_TLS_DIR;
  // The journal uploader (lib/journal/s3.ts) ships to this region's own archive bucket, named by the
  // region's SSM parameter; the SDK takes the region from AWS_REGION and the instance role's credentials.
  const audit = plan.spec.audit.enabled;
  const auditRead = audit
    ? `# >>> audit archive (docs/audit.md): this region's bucket, from this region's SSM parameter
audit_bucket=$(param ${shq(auditBucketParameter(plan).slice(ssmPrefix(plan).length + 1))})
if [ -z "\${audit_bucket}" ] || [ "\${audit_bucket}" = None ]; then
  echo "mailfleet bootstrap: no audit archive bucket in ${auditBucketParameter(plan)}" >&2
  exit 1
fi
# <<< audit archive
`
    : '';
  // The provisioned Redis (redis.provision elasticache): the daemon's redis.url becomes this region's
  // endpoint over TLS with the AUTH token; the token goes through the environment, never argv.
  const redisRead = provisionsRedis(plan)
    ? `# >>> fleet redis (docs/engines.md): this region's ElastiCache, TLS and AUTH
redis_endpoint=$(param ${shq(redisEndpointParameter(plan).slice(ssmPrefix(plan).length + 1))})
if [ -z "\${redis_endpoint}" ] || [ "\${redis_endpoint}" = None ]; then
  echo "mailfleet bootstrap: no Redis endpoint in ${redisEndpointParameter(plan)}" >&2
  exit 1
fi
redis_auth=$(secret ${shq(s.redisAuth)})
REDIS_ENDPOINT="\${redis_endpoint}" REDIS_AUTH="\${redis_auth}" python3 - ${DAEMON_CONFIG_PATH} <<'PY'
import json, os, sys, urllib.parse
path = sys.argv[1]
with open(path) as f:
    cfg = json.load(f)
auth = urllib.parse.quote(os.environ["REDIS_AUTH"], safe="")
cfg.setdefault("redis", {})["url"] = "rediss://:%s@%s" % (auth, os.environ["REDIS_ENDPOINT"])
with open(path + ".tmp", "w") as f:
    json.dump(cfg, f, indent=2)
os.replace(path + ".tmp", path)
PY
chgrp mailfleet ${DAEMON_CONFIG_PATH}
chmod 0640 ${DAEMON_CONFIG_PATH}
# <<< fleet redis
`
    : '';
  const auditEnv = audit ? `  printf 'MAILFLEET_AUDIT_BUCKET=%s\\nAWS_REGION=%s\\n' "\${audit_bucket}" "\${REGION}"
` : '';
  return {
    path: 'bootstrap/mail.sh',
    executable: true,
    content: `#!/bin/bash
# mailfleetd node: the storage client, the daemon package (with its own Node.js ${NODE_MAJOR}), secrets, then
# the daemon once ${MAIL_MOUNT} is mounted; completes the launch lifecycle hook when it serves.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
# Whatever fails below, the Auto Scaling group hears it now rather than after the hook's timeout.
launch_signalled=""
on_exit() {
  local rc=$?
  if [ "\${rc}" -ne 0 ] && [ -z "\${launch_signalled}" ]; then signal_launch ABANDON || true; fi
}
trap on_exit EXIT
pkg_install ${storagePkg} openssl
tune_kernel

# One UID/GID on every node: Maildirs are 0700 on the shared store.
getent group mailfleet >/dev/null || groupadd --system --gid ${MAIL_UID} mailfleet
id -u mailfleet >/dev/null 2>&1 || useradd --system --uid ${MAIL_UID} --gid ${MAIL_UID} --home-dir ${MAIL_MOUNT} --shell /usr/sbin/nologin mailfleet
if [ "$(id -u mailfleet):$(id -g mailfleet)" != "${MAIL_UID}:${MAIL_UID}" ]; then
  echo "mailfleet bootstrap: user mailfleet exists with another UID/GID than ${MAIL_UID}" >&2
  exit 1
fi

# The daemon package: the bundle and the Node.js runtime it was built and tested with, checksummed.
aws s3 cp "$(param daemon-bundle)" /tmp/mailfleetd.zip
rm -rf ${DAEMON_DIR}
install -d -m 0755 ${DAEMON_DIR}
unzip -q -o /tmp/mailfleetd.zip -d ${DAEMON_DIR}
(cd ${DAEMON_DIR} && sha256sum --quiet --strict -c SHA256SUMS)
${DAEMON_NODE_PATH} --version
ln -sf ${DAEMON_NODE_PATH} /usr/local/bin/mailfleet-node

install -d -m 0750 -o root -g mailfleet /etc/mailfleet ${tls}
install -d -m 0755 -o mailfleet -g mailfleet "$(dirname ${DAEMON_LOG_PATH})"
install -m 0640 -o root -g mailfleet "\${MAILFLEET_FILES}/mailfleetd.json" ${DAEMON_CONFIG_PATH}
${filteringBootstrap(plan)}
# Secrets stay on the node: environment file and TLS key readable by the daemon only.
umask 077
${reads.join('\n')}
${auditRead}${redisRead}{
${envLines.join('\n')}
  # The unit's --data-dir, so mailfleet commands run on the node find the daemon's data.
  printf 'MAILFLEET_DATA_DIR=%s\\n' ${MAIL_MOUNT}/maildir
  printf 'MAILFLEET_TLS_CERT=%s\\nMAILFLEET_TLS_KEY=%s\\n' ${tls}/cert.pem ${tls}/key.pem
${auditEnv}} >${DAEMON_ENV_PATH}
${ldapBindFile}${ldapCaFile}${usersFile}tls_json=$(secret ${shq(s.tls)})
tls_cert=$(json_field "\${tls_json}" cert)
tls_key=$(json_field "\${tls_json}" key)
if [ -n "\${tls_cert}" ] && [ -n "\${tls_key}" ]; then
  printf '%s\\n' "\${tls_cert}" >${tls}/cert.pem
  printf '%s\\n' "\${tls_key}" >${tls}/key.pem
  rm -f ${SELF_SIGNED_MARKER}
else
  # Never an empty certificate: until the operator stores one, a self-signed one for the platform's
  # hostname, flagged (the file and the log line) so it is replaced.
  echo "mailfleet bootstrap: WARNING: secret ${s.tls} holds no certificate; serving a self-signed one for ${plan.hostname}"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj ${shq(`/CN=${plan.hostname}`)} \\
    -addext ${shq(`subjectAltName=DNS:${plan.hostname}`)} -keyout ${tls}/key.pem -out ${tls}/cert.pem 2>/dev/null
  date -Is >${SELF_SIGNED_MARKER}
fi
openssl x509 -noout -in ${tls}/cert.pem
chgrp mailfleet ${DAEMON_ENV_PATH} ${tls}/cert.pem ${tls}/key.pem
chmod 0640 ${DAEMON_ENV_PATH} ${tls}/cert.pem ${tls}/key.pem
umask 022

# The Maildir root must be mounted before the daemon starts (the unit says RequiresMountsFor too). The
# store may not exist yet (storage node 1 forms the volume once its peers are up): bounded retries.
install_units ${MAIL_MOUNT_UNIT}
install_units mailfleetd.service
install_units mailfleet-register.service
install_units mailfleet-register-reconcile.service
install_units mailfleet-register.timer
install_units mailfleet-health.service
install_units mailfleet-health.timer
install_units mailfleet-drain.service
install_units mailfleet-drain.timer
param private-zone-id >/etc/mailfleet/private-zone-id
systemctl enable ${MAIL_MOUNT_UNIT}
mounted=""
for try in $(seq 1 ${STORAGE_WAIT.tries}); do
  if systemctl start ${MAIL_MOUNT_UNIT} && mountpoint -q ${MAIL_MOUNT}; then
    mounted=yes
    break
  fi
  echo "mailfleet bootstrap: Maildir store not mountable yet (try \${try}/${STORAGE_WAIT.tries})"
  systemctl reset-failed ${MAIL_MOUNT_UNIT} || true
  sleep ${STORAGE_WAIT.intervalSeconds}
done
if [ -z "\${mounted}" ]; then
  echo "mailfleet bootstrap: no Maildir store after ${STORAGE_WAIT.tries * STORAGE_WAIT.intervalSeconds} s" >&2
  exit 1
fi
install -d -m 0750 -o mailfleet -g mailfleet ${MAIL_MOUNT}/maildir ${MAIL_MOUNT}/.health
systemctl enable --now mailfleetd.service
# Serving means: the daemon answers its health endpoint and the store takes a write (the node check).
ready=""
for _ in $(seq 1 60); do
  if ${NODE_FILES_DIR}/bootstrap/health.sh; then
    ready=yes
    break
  fi
  sleep 2
done
if [ -z "\${ready}" ]; then
  echo "mailfleet bootstrap: the daemon did not become healthy" >&2
  exit 1
fi
systemctl enable --now mailfleet-register.service mailfleet-health.timer mailfleet-register.timer
# From now on a scale-in or replacement drains this node before it goes (bootstrap/drain.sh).
systemctl enable --now mailfleet-drain.timer
install_cloudwatch_agent mail
signal_launch CONTINUE
launch_signalled=yes
echo "mailfleet bootstrap: mail node ready"
`,
  };
}

/**
 * The mail node's own health check: the daemon answers /healthz and the Maildir store is mounted and
 * writable as the mail user. Run by the bootstrap (readiness) and by mailfleet-health.timer, which after
 * repeated failures marks the instance Unhealthy so its Auto Scaling group replaces it.
 */
function healthScript(): RenderedFile {
  return {
    path: 'bootstrap/health.sh',
    executable: true,
    content: `#!/bin/bash
# Exit 0 when this mail node serves: daemon up, store mounted and writable.
set -euo pipefail
mountpoint -q ${MAIL_MOUNT} || { echo "health: ${MAIL_MOUNT} is not mounted" >&2; exit 1; }
probe=${MAIL_MOUNT}/.health/$(hostname)
timeout 10 setpriv --reuid=mailfleet --regid=mailfleet --init-groups sh -c "date +%s >'\${probe}'" || {
  echo "health: the Maildir store takes no write" >&2
  exit 1
}
# A 503 is the daemon saying a dependency failed (storage, filter): report what it said, not "no answer".
body=$(mktemp)
trap 'rm -f "\${body}"' EXIT
code=$(curl -sS -m 5 -o "\${body}" -w '%{http_code}' http://127.0.0.1:${DAEMON_ADMIN_PORT}/healthz 2>/dev/null) || code=000
case "\${code}" in
  200) ;;
  000) echo "health: the daemon does not answer on 127.0.0.1:${DAEMON_ADMIN_PORT}" >&2; exit 1 ;;
  *) echo "health: the daemon reports unhealthy (HTTP \${code}): $(head -c 300 "\${body}" | tr -d '\n')" >&2; exit 1 ;;
esac
`,
  };
}

/** mailfleet-health.timer's job: counts consecutive failures and reports the node Unhealthy at the limit. */
function healthWatchScript(): RenderedFile {
  return {
    path: 'bootstrap/health-watch.sh',
    executable: true,
    content: `#!/bin/bash
# Called every 30 s by mailfleet-health.timer.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
state=/run/mailfleet-health-failures
# While the node serves its generated certificate, the agent's StatsD gets the flag the alarm watches.
if [ -e ${SELF_SIGNED_MARKER} ]; then
  echo "${SELF_SIGNED_CERT_METRIC}:1|g" >/dev/udp/${STATSD_ADDRESS.host}/${STATSD_ADDRESS.port} || true
fi
if "$(dirname "$0")/health.sh"; then
  echo 0 >"\${state}"
  exit 0
fi
failures=$(( $(cat "\${state}" 2>/dev/null || echo 0) + 1 ))
echo "\${failures}" >"\${state}"
if [ "\${failures}" -ge ${HEALTH_FAILURES_BEFORE_UNHEALTHY} ]; then
  echo "health: \${failures} failed checks, marking this instance Unhealthy" >&2
  # Not --should-respect-grace-period: this job starts only once the node has served, so a failure now is
  # real, and the group's grace period would hide it for 10 minutes.
  aws autoscaling set-instance-health --instance-id "\${INSTANCE_ID}" --health-status Unhealthy
fi
exit 1
`,
  };
}

/** Keeps this mail node in (UPSERT) or out of (DELETE) the mail tier's one A record, and drops dead members (RECONCILE). */
function registerScript(plan: Plan): RenderedFile {
  const D = DISCOVERY;
  return {
    path: 'bootstrap/register.sh',
    executable: true,
    content: `#!/bin/bash
# The mail tier's member list: ONE simple A record whose values are the mail nodes' addresses, which
# HAProxy's server-template resolves. (A multivalue record per node would answer at most 8 of them, and a
# node that died without its ExecStop would stay in it.)
#   UPSERT    add this node (mailfleet-register.service start)
#   DELETE    remove this node (service stop, in-place reload drain)
#   RECONCILE drop addresses that are no longer instances of this group (mailfleet-register.timer)
# Each change is a read-modify-write that Route 53 makes atomic: the batch DELETEs the exact set read and
# CREATEs the new one, so a concurrent change by another node fails it and it is retried on a fresh read.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
action=\${1:?usage: register.sh UPSERT|DELETE|RECONCILE}
zone_id=$(cat /etc/mailfleet/private-zone-id)
exec python3 - "\${action}" "\${zone_id}" ${shq(mailNodesHost(plan))} "\${LOCAL_IPV4}" "\${INSTANCE_ID}" <<'PY'
# One process for every call: botocore in-process (what the aws CLI runs on) instead of an aws CLI start
# per call, each call with connect/read timeouts; the loop is bounded by tries and a deadline.
import random, sys, time

try:
    import awscli  # noqa: F401  Debian's aws CLI v2 vendors botocore; importing awscli makes it importable
except ImportError:
    pass
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

action, zone, name, own, instance = sys.argv[1:6]
if action not in ("UPSERT", "DELETE", "RECONCILE"):
    sys.exit("usage: register.sh UPSERT|DELETE|RECONCILE")
TTL = ${D.ttlSeconds}
TRIES = ${D.changeTries}
DEADLINE = time.monotonic() + ${D.deadlineSeconds}
LIVE = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
# A batch on a set that changed since the read, or Route 53 still applying the previous change: read again.
CONFLICT = ("InvalidChangeBatch", "PriorRequestNotComplete", "Throttling", "ThrottlingException")

session = botocore.session.get_session()
config = Config(connect_timeout=${D.connectTimeoutSeconds}, read_timeout=${D.readTimeoutSeconds},
                retries={"max_attempts": ${D.apiAttempts}, "mode": "standard"})
route53 = session.create_client("route53", config=config)


def say(msg):
    print("register: " + msg, file=sys.stderr, flush=True)


def code_of(e):
    return e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else type(e).__name__


def record_sets():
    """Every A record set of the name: the simple one, and any per-node multivalue ones of older nodes."""
    out = route53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, StartRecordType="A", MaxItems="300")
    return [s for s in out["ResourceRecordSets"] if s["Name"].rstrip(".").lower() == name.lower() and s["Type"] == "A"]


def group_addresses():
    """Private addresses of this group's live instances, or None when membership cannot be read in full
    (then nobody is dropped: a failed read must never empty the record)."""
    try:
        asc = session.create_client("autoscaling", config=config)
        me = asc.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        if not me:
            say("RECONCILE: %s is in no Auto Scaling group: nothing to reconcile against" % instance)
            return None
        asg = me[0]["AutoScalingGroupName"]
        groups = asc.describe_auto_scaling_groups(AutoScalingGroupNames=[asg])["AutoScalingGroups"]
        if not groups:
            say("RECONCILE: cannot describe group %s: not found" % asg)
            return None
        ids = sorted(i["InstanceId"] for i in groups[0]["Instances"] if i["LifecycleState"] in LIVE)
        if instance not in ids:
            say("RECONCILE: group %s does not list this instance as live: keeping every address" % asg)
            return None
        found = {}
        ec2 = session.create_client("ec2", config=config)
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                if i.get("PrivateIpAddress"):
                    found[i["InstanceId"]] = i["PrivateIpAddress"]
        if set(found) != set(ids):
            say("RECONCILE: no address for %s: keeping every address" % " ".join(sorted(set(ids) - set(found))))
            return None
        return asg, set(found.values())
    except (ClientError, BotoCoreError) as e:
        say("RECONCILE: cannot describe group membership (%s): keeping every address" % code_of(e))
        return None


for attempt in range(TRIES):
    try:
        sets = record_sets()
    except (ClientError, BotoCoreError) as e:
        sys.exit("register: cannot read %s: %s" % (name, e))
    current = {v["Value"] for s in sets for v in s.get("ResourceRecords", [])}
    simple = len(sets) <= 1 and all("SetIdentifier" not in s for s in sets)
    if action == "UPSERT":
        new = current | {own}
    elif action == "DELETE":
        new = current - {own}
    else:
        if not simple:
            sys.exit(0)  # older nodes' per-node records: left to their own DELETE and to the next UPSERT
        new = current
        if current - {own}:
            # Read after the record: every address in it belongs to an instance already in the group.
            members = group_addresses()
            if members is None:
                sys.exit(1)
            asg, alive = members
            new = current & (alive | {own})
            if current - new:
                say("dropping %s (not live instances of %s)" % (" ".join(sorted(current - new)), asg))
    if new == current and simple:
        sys.exit(0)
    changes = [{"Action": "DELETE", "ResourceRecordSet": s} for s in sets]
    if new:
        changes.append({"Action": "CREATE", "ResourceRecordSet": {
            "Name": name, "Type": "A", "TTL": TTL, "ResourceRecords": [{"Value": ip} for ip in sorted(new)]}})
    try:
        route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
        say("%s %s: %d address(es)" % (action, name, len(new)))
        sys.exit(0)
    except (ClientError, BotoCoreError) as e:
        code = code_of(e)
        if isinstance(e, ClientError) and code not in CONFLICT:
            sys.exit("register: %s %s refused: %s" % (action, name, e))
        say("attempt %d: %s" % (attempt + 1, code))
    # Full jitter: concurrent writers spread out instead of colliding again in step.
    pause = random.uniform(0, min(${D.backoffCapSeconds}, ${D.backoffBaseSeconds} * 2 ** attempt))
    if time.monotonic() + pause > DEADLINE:
        break
    time.sleep(pause)
sys.exit("register: %s %s failed %d times" % (action, name, attempt + 1))
PY
`,
  };
}

/**
 * The mail node's side of the terminate lifecycle hook (TERMINATE_HOOK_NAME), run every DRAIN.pollSeconds by
 * mailfleet-drain.timer: once IMDS says the group is terminating this instance, withdraw its address from
 * the mail tier's record (HAProxy stops sending new sessions once the record and its resolver hold expire),
 * stop the daemon (SIGTERM: sessions end with their protocol's goodbye; the journal spool it leaves on the
 * shared store is adopted by the other nodes' sweepers), then complete the hook with CONTINUE. Each step
 * has its own bound and a failed one does not stop the rest: the hook is completed whatever happened.
 */
function drainScript(plan: Plan): RenderedFile {
  return {
    path: 'bootstrap/drain.sh',
    executable: true,
    content: `#!/bin/bash
# mailfleet ${plan.platform}: drains this mail node when its Auto Scaling group terminates it (mailfleet-drain.timer).
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=common.sh
. "\${here}/common.sh"
# Outside an Auto Scaling group (or before IMDS knows) there is no such path: nothing to do.
target=$(imds meta-data/autoscaling/target-lifecycle-state 2>/dev/null) || exit 0
[ "\${target}" = Terminated ] || exit 0
echo "drain: the group is terminating \${INSTANCE_ID}: draining"
set +e
# Runs one step within its bound; a failure is logged, and the drain goes on.
step() {
  local bound=$1 rc
  shift
  timeout "\${bound}" "$@"
  rc=$?
  [ "\${rc}" -eq 0 ] || echo "drain: '$*' failed (exit \${rc}); going on" >&2
  return 0
}
# A daemon stopped on purpose is not a node to report Unhealthy.
step ${DRAIN.completeTimeoutSeconds} systemctl stop mailfleet-health.timer
step ${DRAIN.withdrawTimeoutSeconds} "\${here}/register.sh" DELETE
# The record's TTL and HAProxy's resolver hold: new sessions go to the other nodes first.
sleep ${MAIL_DRAIN_SECONDS}
step ${DRAIN.stopTimeoutSeconds} systemctl stop mailfleetd.service
for try in $(seq 1 ${DRAIN.completeTries}); do
  asg=$(timeout ${DRAIN.completeTimeoutSeconds} aws autoscaling describe-auto-scaling-instances --instance-ids "\${INSTANCE_ID}" \\
    --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text)
  if [ -n "\${asg}" ] && [ "\${asg}" != None ] &&
    timeout ${DRAIN.completeTimeoutSeconds} aws autoscaling complete-lifecycle-action --lifecycle-hook-name ${TERMINATE_HOOK_NAME} \\
      --auto-scaling-group-name "\${asg}" --instance-id "\${INSTANCE_ID}" --lifecycle-action-result CONTINUE; then
    echo "drain: lifecycle CONTINUE (\${asg})"
    # Done: the next tick must not drain again.
    systemctl stop mailfleet-drain.timer
    exit 0
  fi
  echo "drain: completing the lifecycle hook failed (try \${try}/${DRAIN.completeTries})" >&2
  sleep 5
done
# The timer tries again; past the hook's heartbeat the group goes on without us (default result CONTINUE).
exit 1
`,
  };
}

/** The role scripts this renderer owns (storage and LDAP scripts come from the gluster and slapd renderers). */
export function roleScripts(plan: Plan): RenderedFile[] {
  return [commonScript(plan), proxyScript(plan), mailScript(plan), registerScript(plan), healthScript(), healthWatchScript(), drainScript(plan)];
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
