/**
 * Day-2 changes in place: an SSM Command document per stateless node kind and a State Manager association
 * that runs it on the kind's nodes whenever the content hash it carries changes (State Manager applies an
 * association again when its parameters change). Proxy nodes fetch the new node files and reload HAProxy
 * through its master socket (the old worker keeps its connections until they close); mail nodes withdraw
 * their DNS name, let HAProxy drain them, then restart the daemon. Engine-neutral and pure: every engine
 * translates `reloadsOf`; the engine supplies the hash of what it ships.
 */
import { DAEMON_CONFIG_PATH, NODE_FILES_DIR, nodeFilesParameter, shq } from '../render/node-layout.js';
import type { RegionRole } from '../render/node-layout.js';
import { regionPrefix } from './network.js';
import type { Plan } from './types.js';

/** Debian's haproxy.service starts HAProxy with `-S /run/haproxy-master.sock` (the master CLI). */
export const HAPROXY_MASTER_SOCKET = '/run/haproxy-master.sock';
/**
 * How long a mail node waits between withdrawing its DNS name and restarting the daemon: the record's TTL
 * (10 s) plus HAProxy's resolver hold, so new sessions go to the other nodes first.
 * @default 30
 */
export const MAIL_DRAIN_SECONDS = 30;
/** Name of the association parameter whose change makes State Manager run the document again. */
export const RELOAD_TRIGGER_PARAMETER = 'contentHash';

export type ReloadKind = 'proxy' | 'mail';

export interface ReloadModel {
  readonly kind: ReloadKind;
  /** SSM document name (Command, schema 2.2). */
  readonly documentName: string;
  /** The document content (JSON-serializable): the script runs as root through aws:runShellScript. */
  readonly document: Record<string, unknown>;
  readonly associationName: string;
  /** Instances the association targets: by tags, as the FIS drills select them. */
  readonly targetTags: Readonly<Record<string, string>>;
  /** One node at a time, and stop at the first failure: a bad change never reaches the whole tier. */
  readonly maxConcurrency: string;
  readonly maxErrors: string;
}

/**
 * The proxy node's reload: fetch the node files (or take `MAILFLEET_NEW_FILES`), install the HAProxy
 * files, check the configuration (restore the old files when it fails), then `reload` on the master CLI
 * and wait until a new worker runs. Paths can be pointed elsewhere (tests run it against a local HAProxy).
 */
export function proxyReloadScript(plan: Plan): string {
  return `#!/bin/bash
# mailfleet ${plan.platform}: reload HAProxy in place with the current node files (State Manager runs this).
set -euo pipefail
master=\${MAILFLEET_HAPROXY_MASTER:-${HAPROXY_MASTER_SOCKET}}
conf=\${MAILFLEET_HAPROXY_DIR:-/etc/haproxy}
files=\${MAILFLEET_NEW_FILES:-}
if [ -z "\${files}" ]; then
  files=$(mktemp -d)
  uri=$(aws ssm get-parameter --name ${shq(nodeFilesParameter(plan, 'proxy'))} --query Parameter.Value --output text)
  aws s3 cp "\${uri}" "\${files}/node-files.zip"
  unzip -o -q "\${files}/node-files.zip" -d "\${files}"
  # The next boot and the next reload start from these files too.
  cp -a "\${files}"/. ${NODE_FILES_DIR}/
fi
cli() { printf '%s\\n' "$1" | socat -t 5 stdio "unix-connect:\${master}"; }
workers() { cli 'show proc' | awk '$2 == "worker" { print $1 }' | sort; }
backup=$(mktemp -d)
cp -a "\${conf}"/. "\${backup}"/
install -m 0644 "\${files}"/haproxy/* "\${conf}"/
if ! haproxy -c -q -f "\${conf}/haproxy.cfg"; then
  cp -a "\${backup}"/. "\${conf}"/
  echo "mailfleet reload: the new HAProxy configuration does not check; the old one stays" >&2
  exit 1
fi
before=$(workers)
# The master starts a new worker on the new configuration; the old one keeps its sessions until they end.
cli reload >/dev/null
for _ in $(seq 1 100); do
  # The master re-executes itself: its socket refuses connections for a moment.
  if after=$(workers 2>/dev/null) && [ -n "$(comm -13 <(printf '%s\\n' "\${before}") <(printf '%s\\n' "\${after}"))" ]; then
    echo "mailfleet reload: HAProxy reloaded (workers: $(echo "\${after}" | tr '\\n' ' '))"
    exit 0
  fi
  sleep 0.1
done
echo "mailfleet reload: no new HAProxy worker after the reload" >&2
exit 1
`;
}

/**
 * The mail node's restart with drain: fetch the node files, install the daemon configuration, withdraw the
 * node's name (register.sh DELETE) and wait while HAProxy moves new sessions elsewhere, restart the daemon
 * (systemd stops it with SIGTERM: open sessions end cleanly), check health, publish the name again.
 */
export function mailReloadScript(plan: Plan): string {
  return `#!/bin/bash
# mailfleet ${plan.platform}: restart mailfleetd in place with the current node files, drained (State Manager runs this).
set -euo pipefail
files=$(mktemp -d)
uri=$(aws ssm get-parameter --name ${shq(nodeFilesParameter(plan, 'mail'))} --query Parameter.Value --output text)
aws s3 cp "\${uri}" "\${files}/node-files.zip"
unzip -o -q "\${files}/node-files.zip" -d "\${files}"
cp -a "\${files}"/. ${NODE_FILES_DIR}/
chmod 0755 ${NODE_FILES_DIR}/bootstrap/*.sh
install -m 0640 -o root -g mailfleet ${NODE_FILES_DIR}/mailfleetd.json ${DAEMON_CONFIG_PATH}
${NODE_FILES_DIR}/bootstrap/register.sh DELETE
sleep ${MAIL_DRAIN_SECONDS}
systemctl restart mailfleetd.service
for _ in $(seq 1 60); do
  if ${NODE_FILES_DIR}/bootstrap/health.sh; then
    ${NODE_FILES_DIR}/bootstrap/register.sh UPSERT
    echo "mailfleet reload: mailfleetd restarted and published"
    exit 0
  fi
  sleep 2
done
echo "mailfleet reload: mailfleetd is not healthy after the restart; the node stays withdrawn (its health timer reports it and the group replaces it)" >&2
exit 1
`;
}

/** The in-place reloads of a region: one per stateless node kind. */
export function reloadsOf(plan: Plan, region: RegionRole): ReloadModel[] {
  const prefix = regionPrefix(plan, region);
  return (['proxy', 'mail'] as const).map((kind) => ({
    kind,
    documentName: `${prefix}-reload-${kind}`,
    document: {
      schemaVersion: '2.2',
      description: kind === 'proxy' ? 'mailfleet: reload HAProxy in place with the current node files' : 'mailfleet: restart mailfleetd in place, drained',
      parameters: {
        [RELOAD_TRIGGER_PARAMETER]: { type: 'String', description: 'Hash of the node files (and daemon bundle): a new value runs the document again', default: '' },
      },
      mainSteps: [
        {
          action: 'aws:runShellScript',
          name: `reload${kind === 'proxy' ? 'Proxy' : 'Mail'}`,
          inputs: { timeoutSeconds: '900', runCommand: (kind === 'proxy' ? proxyReloadScript(plan) : mailReloadScript(plan)).split('\n') },
        },
      ],
    },
    associationName: `${prefix}-reload-${kind}`,
    targetTags: { 'mailfleet:role': kind, 'mailfleet:platform': plan.platform },
    maxConcurrency: '1',
    maxErrors: '0',
  }));
}
