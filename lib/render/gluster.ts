/**
 * GlusterFS storage nodes: the role script (EBS data volume → XFS brick → glusterd), the volume
 * bootstrap node 1 runs (probe peers, create replica 3 or replica 3 arbiter 1, tune for Maildir), and
 * the geo-replication pair of scripts the DR runbook runs through SSM.
 */
import type { Plan } from '../plan/types.js';
import { MailfleetError } from '../errors.js';
import type { Renderer } from './types.js';
import {
  BRICK_DIR,
  BRICK_MOUNT,
  NODE_FILES_DIR,
  NODE_INDEX_TAG,
  joinFiles,
  shq,
  ssmPrefix,
  regionOf,
  storageHost,
  storageHosts,
  storageZoneName,
  type RegionRole,
  type RenderedFile,
} from './node-layout.js';

/** glusterd's state on the data volume, bind-mounted over /var/lib/glusterd (a replaced node keeps its identity). */
export const GLUSTERD_STATE = `${BRICK_MOUNT}/glusterd`;

/** Replica set size: three copies, or two plus an arbiter that holds metadata only. */
export const REPLICA = 3;

/**
 * Volume options for Maildir: many small files and frequent readdir/stat. Metadata caching with
 * upcall invalidation keeps IMAP folder scans local; quorum keeps a split node from taking writes.
 */
export const VOLUME_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['cluster.quorum-type', 'auto'],
  ['cluster.server-quorum-type', 'server'],
  ['network.ping-timeout', '10'],
  ['features.cache-invalidation', 'on'],
  ['features.cache-invalidation-timeout', '600'],
  ['performance.stat-prefetch', 'on'],
  ['performance.cache-invalidation', 'on'],
  ['performance.md-cache-timeout', '600'],
  ['network.inode-lru-limit', '200000'],
  ['performance.readdir-ahead', 'on'],
  ['performance.parallel-readdir', 'on'],
  ['performance.cache-size', '256MB'],
];

/**
 * How old (seconds since its rollover) a changelog of the Active brick may get without being synced,
 * while its worker holds nothing in hand, before the geo-replication watchdog restarts the session.
 * Two rollovers (15 s each): a notified worker takes a changelog within a second and keeps it in its
 * .processing folder until it is synced.
 * @default 30
 */
export const GEOREP_STALL_SECONDS = 30;

/**
 * How often the geo-replication watchdog looks (a systemd timer on every storage node of a platform with
 * a DR region).
 * @default 15
 */
export const GEOREP_WATCHDOG_INTERVAL_SECONDS = 15;

/** The watchdog's systemd service (a timer of the same name runs it). */
export const GEOREP_WATCHDOG_UNIT = 'mailfleet-georep-watchdog';

function glusterSpec(plan: Plan) {
  if (plan.storage.kind !== 'glusterfs')
    throw new MailfleetError('PLAN_INVALID', `the gluster renderer needs storage.kind glusterfs, got ${plan.storage.kind}`);
  if (plan.storage.nodes % REPLICA !== 0)
    throw new MailfleetError(
      'PLAN_INVALID',
      `storage.nodes must be a multiple of ${REPLICA} for replica ${REPLICA}${plan.storage.arbiter ? ' arbiter 1' : ''}, got ${plan.storage.nodes}`,
    );
  return plan.storage;
}

/** `gluster volume create` arguments of a region's volume: consecutive bricks form a replica set (nodes alternate AZs). */
export function volumeCreateArgs(plan: Plan, region: RegionRole): string[] {
  const g = glusterSpec(plan);
  const bricks = storageHosts(plan, region).map((h) => `${h}:${BRICK_DIR}/${g.volumeName}`);
  return [g.volumeName, 'replica', String(REPLICA), ...(g.arbiter ? ['arbiter', '1'] : []), 'transport', 'tcp', ...bricks];
}

function storageScript(plan: Plan, region: RegionRole): RenderedFile {
  // The node's own name is its brick host (storageHost): gluster-<index tag>.<storage zone>.
  const zoneSuffix = storageZoneName(plan, region);
  return {
    path: 'bootstrap/storage.sh',
    executable: true,
    content: `#!/bin/bash
# GlusterFS storage node: EBS data volume as an XFS brick, glusterd, and on node 1 the volume itself.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
pkg_install glusterfs-server xfsprogs
index=$(tag ${NODE_INDEX_TAG})
hostnamectl set-hostname "gluster-\${index}.${zoneSuffix}"

# The data volume is attached after the instance starts: wait for a second disk. A brick volume that is
# mounted already (its fstab line on a reboot, or one the image mounts) is used as it is.
if ! mountpoint -q ${BRICK_MOUNT}; then
  root_disk=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
  data_disk=""
  for _ in $(seq 1 60); do
    data_disk=$(lsblk -dpno NAME,TYPE | awk -v root="/dev/\${root_disk}" '$2 == "disk" && $1 != root { print $1; exit }')
    [ -n "\${data_disk}" ] && break
    sleep 5
  done
  if [ -z "\${data_disk}" ]; then
    echo "mailfleet bootstrap: no EBS data volume attached" >&2
    exit 1
  fi
  # Never format a disk that already holds a file system: a replaced instance keeps its brick.
  if ! blkid "\${data_disk}" >/dev/null 2>&1; then
    mkfs.xfs -q -i size=512 -L mailfleet-brick "\${data_disk}"
  fi
  install -d -m 0755 ${BRICK_MOUNT}
  grep -q 'LABEL=mailfleet-brick' /etc/fstab || echo 'LABEL=mailfleet-brick ${BRICK_MOUNT} xfs defaults,noatime,nofail 0 2' >>/etc/fstab
  mount ${BRICK_MOUNT} 2>/dev/null || mountpoint -q ${BRICK_MOUNT}
fi
install -d -m 0755 ${BRICK_DIR}

# The pool identity (glusterd.info's UUID, the peers, the volume definitions) lives on the data volume
# beside the brick, bind-mounted over /var/lib/glusterd. An instance that replaces this one (same hostname,
# same data volume) starts glusterd as the same peer with the same brick: nothing is re-probed or
# replace-brick'ed, and self-heal brings the brick up to date (docs/storage.md).
state=${GLUSTERD_STATE}
if ! mountpoint -q /var/lib/glusterd; then
  systemctl stop glusterd 2>/dev/null || true
  if [ ! -f "\${state}/glusterd.info" ]; then
    install -d -m 0755 "\${state}"
    cp -a /var/lib/glusterd/. "\${state}/" 2>/dev/null || true
  fi
  install -d -m 0755 /var/lib/glusterd
  grep -q ' /var/lib/glusterd ' /etc/fstab || echo "\${state} /var/lib/glusterd none bind,nofail,x-systemd.requires-mounts-for=${BRICK_MOUNT} 0 0" >>/etc/fstab
  mount /var/lib/glusterd
fi
printf '[Unit]\\nRequiresMountsFor=/var/lib/glusterd ${BRICK_MOUNT}\\n' | install -D -m 0644 /dev/stdin /etc/systemd/system/glusterd.service.d/mailfleet-state.conf
systemctl daemon-reload
systemctl enable --now glusterd
# A returning peer (its state came with the volume): ask for a heal of what it missed while away.
if [ -d "\${state}/vols/"${shq(glusterSpec(plan).volumeName)} ]; then
  gluster volume heal ${shq(glusterSpec(plan).volumeName)} >/dev/null 2>&1 || true
fi
install_cloudwatch_agent storage
${plan.regions?.dr ? watchdogInstall() : ''}if [ "\${index}" = 1 ]; then
  "\${MAILFLEET_FILES}/bootstrap/gluster-volume.sh"
fi
echo "mailfleet bootstrap: storage node \${index} ready"
`,
  };
}

function volumeScript(plan: Plan, region: RegionRole): RenderedFile {
  const g = glusterSpec(plan);
  const [, ...peers] = storageHosts(plan, region);
  const args = volumeCreateArgs(plan, region);
  return {
    path: 'bootstrap/gluster-volume.sh',
    executable: true,
    content: `#!/bin/bash
# Node 1 forms the trusted pool and creates the volume once; re-running it changes nothing.
set -euo pipefail
volume=${shq(g.volumeName)}
peers=(${peers.map(shq).join(' ')})

for peer in "\${peers[@]}"; do
  # Peers boot in parallel: keep probing until each answers (up to 15 minutes).
  for _ in $(seq 1 90); do
    if gluster peer probe "\${peer}" >/dev/null 2>&1; then
      break
    fi
    sleep 10
  done
done
for _ in $(seq 1 60); do
  connected=$(gluster pool list | grep -c Connected || true)
  [ "\${connected}" -ge ${g.nodes} ] && break
  sleep 5
done
if [ "\${connected}" -lt ${g.nodes} ]; then
  echo "mailfleet bootstrap: only \${connected} of ${g.nodes} storage nodes joined the pool" >&2
  exit 1
fi

if ! gluster volume info "\${volume}" >/dev/null 2>&1; then
  gluster --mode=script volume create ${args.map(shq).join(' ')}
${VOLUME_OPTIONS.map(([k, v]) => `  gluster volume set "\${volume}" ${k} ${shq(v)}`).join('\n')}
  gluster volume start "\${volume}"
fi
gluster volume status "\${volume}"
`,
  };
}

/**
 * Geo-replication is set up after both regions run (and their networks are linked): the DR node
 * trusts the primary's key, then the primary creates and starts the session. Its transport is SSH
 * between storage nodes only; operators never use SSH (Session Manager instead).
 */
function geoReplicationScripts(plan: Plan): RenderedFile[] {
  const g = glusterSpec(plan);
  const dr = plan.regions?.dr;
  if (!dr) return [];
  const keyParam = `${ssmPrefix(plan)}/geo-replication/public-key`;
  // DR node 1 by its brick host: the session's target, resolvable from the primary VPC.
  const drHost = storageHost(plan, 'dr', 1);
  return [
    {
      path: 'bootstrap/geo-replication-primary.sh',
      executable: true,
      content: `#!/bin/bash
# Primary storage node 1: publish the geo-replication key to the DR region, then (after the DR side ran
# geo-replication-dr.sh) create and start the session. Usage: geo-replication-primary.sh publish|start
set -euo pipefail
volume=${shq(g.volumeName)}
dr_region=${shq(dr.name)}
dr_host=${shq(drHost)}
dr_target="\${dr_host}::\${volume}"
case "\${1:-}" in
  publish)
    gluster system:: execute gsec_create
    [ -f /root/.ssh/id_rsa ] || ssh-keygen -q -t rsa -b 4096 -N '' -f /root/.ssh/id_rsa
    aws ssm put-parameter --region "\${dr_region}" --name ${shq(keyParam)} --type String --overwrite \\
      --value "$(cat /root/.ssh/id_rsa.pub)" >/dev/null
    ;;
  start)
    gluster volume geo-replication "\${volume}" "\${dr_target}" create push-pem force
    # push-pem installs the session key on the DR node from a hook that finishes after \`create\` returns:
    # a session started before that fails its first SSH login and stays "Created" for good. Wait until
    # the DR node accepts the key (the command is the one gsyncd's monitor runs first).
    ok=0
    for _ in $(seq 1 60); do
      if ssh -oBatchMode=yes -oStrictHostKeyChecking=no -i /var/lib/glusterd/geo-replication/secret.pem "\${dr_host}" \\
        /usr/sbin/gluster --xml --remote-host=localhost volume info "\${volume}" >/dev/null 2>&1; then
        ok=1
        break
      fi
      sleep 2
    done
    if [ "\${ok}" != 1 ]; then
      echo "mailfleet: \${dr_host} did not accept the geo-replication session key in 120 s" >&2
      exit 1
    fi
    gluster volume geo-replication "\${volume}" "\${dr_target}" config sync-jobs 3
    # Data over tar+ssh, not rsync: Debian 12's rsync (3.5.0+ds1-0+deb12u1) writes --inplace data through
    # the DR side's .gfid/<gfid> paths into nothing, so every file arrives empty while rsync reports
    # success (test/dr/georep.serial.test.ts). Maildir messages are written once, so whole-file copies lose nothing.
    gluster volume geo-replication "\${volume}" "\${dr_target}" config sync-method tarssh
    gluster volume geo-replication "\${volume}" "\${dr_target}" start
    gluster volume geo-replication "\${volume}" "\${dr_target}" status
    ;;
  *)
    echo "usage: $0 publish|start" >&2
    exit 2
    ;;
esac
`,
    },
    {
      path: 'bootstrap/geo-replication-dr.sh',
      executable: true,
      content: `#!/bin/bash
# DR storage node 1: trust the primary's geo-replication key (root, from the primary VPC only).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"
key=$(param geo-replication/public-key)
install -d -m 0700 /root/.ssh
touch /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
grep -qxF "\${key}" /root/.ssh/authorized_keys || echo "\${key}" >>/root/.ssh/authorized_keys
systemctl enable --now ssh
`,
    },
  ];
}

/**
 * Installs the geo-replication watchdog's service and timer. Both regions get it: the fail-back session
 * runs DR → primary. On a node without an Active worker it does nothing.
 */
function watchdogInstall(): string {
  return `# Geo-replication watchdog (docs/dr.md, "live-changelog stall"): restarts a session whose Active worker
# is no longer notified of its brick's changelogs.
install -D -m 0644 /dev/stdin /etc/systemd/system/${GEOREP_WATCHDOG_UNIT}.service <<'UNIT'
[Unit]
Description=mailfleet: restart a geo-replication session whose live changelog stalled
After=glusterd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 ${NODE_FILES_DIR}/bootstrap/geo-replication-watchdog.py
UNIT
install -D -m 0644 /dev/stdin /etc/systemd/system/${GEOREP_WATCHDOG_UNIT}.timer <<'UNIT'
[Unit]
Description=mailfleet: geo-replication watchdog every ${GEOREP_WATCHDOG_INTERVAL_SECONDS} s

[Timer]
OnBootSec=60
OnUnitActiveSec=${GEOREP_WATCHDOG_INTERVAL_SECONDS}
AccuracySec=1

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now ${GEOREP_WATCHDOG_UNIT}.timer
`;
}

/**
 * The watchdog (Python 3, which geo-replication's gsyncd needs on the node anyway). GlusterFS 10.3's
 * changelog translator can leave a worker that registered for changelog notifications off the list of
 * consumers it notifies (docs/dr.md): the worker stays Active in Changelog Crawl while the brick rolls
 * changelogs holding new mail, and nothing more reaches DR. A restarted worker's history crawl reads the
 * brick's changelog files itself (no notification) from the session's stime on, so restarting the
 * session ships what the live path missed. The environment can point its two state paths elsewhere for
 * the script's own test.
 */
function watchdogScript(): RenderedFile {
  return {
    path: 'bootstrap/geo-replication-watchdog.py',
    executable: true,
    content: `#!/usr/bin/python3
# Geo-replication watchdog: restart a session whose Active worker on this node is no longer notified of
# its brick's changelogs (docs/dr.md, "live-changelog stall"). Run by ${GEOREP_WATCHDOG_UNIT}.timer.
import glob
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

STALL_SECONDS = ${GEOREP_STALL_SECONDS}
GLUSTERD_INFO = os.environ.get('MAILFLEET_GLUSTERD_INFO', '/var/lib/glusterd/glusterd.info')
GSYNCD_WORKDIR = os.environ.get('MAILFLEET_GSYNCD_WORKDIR', '/var/lib/misc/gluster/gsyncd')


def gluster(*args):
    return subprocess.run(['gluster', *args], capture_output=True, text=True, timeout=120)


def local_uuid():
    with open(GLUSTERD_INFO) as f:
        for line in f:
            if line.startswith('UUID='):
                return line.strip().split('=', 1)[1]
    return None


def changelog_times(brick):
    # Non-empty changelogs only (the brick drops empty ones at rollover); the suffix is the rollover time.
    times = []
    for path in glob.glob(os.path.join(brick, '.glusterfs/changelogs/*/*/*/CHANGELOG.*')):
        suffix = path.rsplit('.', 1)[1]
        if suffix.isdigit():
            times.append(int(suffix))
    return times


def stalled(volume, pair, now):
    # (target, oldest unsynced changelog's time, stime) when this pair's live changelog stalled, else None.
    if pair.findtext('status') != 'Active' or pair.findtext('crawl_status') != 'Changelog Crawl':
        return None
    synced = pair.findtext('last_synced') or 'N/A'
    if synced == 'N/A':
        return None
    # gsyncd prints the stime in the node's local time: read it back the same way.
    stime = time.mktime(time.strptime(synced, '%Y-%m-%d %H:%M:%S'))
    brick = pair.findtext('primary_brick')
    # A synced changelog leaves the stime one second before its rollover time.
    behind = [t for t in changelog_times(brick) if t > stime + 1]
    if not behind or now - min(behind) < STALL_SECONDS:
        return None
    host, secondary_volume = pair.findtext('secondary').replace('ssh://', '', 1).split('::')
    host = host.split('@')[-1]
    # A notified worker keeps the changelog in .processing until it is synced: busy, not stalled.
    processing = os.path.join(GSYNCD_WORKDIR, f'{volume}_{host}_{secondary_volume}', brick.strip('/').replace('/', '-'), '.processing')
    if os.path.isdir(processing) and os.listdir(processing):
        return None
    return f'{host}::{secondary_volume}', min(behind), stime


def main():
    status = gluster('volume', 'geo-replication', 'status', '--xml')
    if status.returncode != 0 or '<geoRep>' not in status.stdout:
        return 0  # no session on this node yet, or glusterd not answering: nothing to watch
    me = local_uuid()
    now = time.time()
    code = 0
    for volume in ET.fromstring(status.stdout).iter('volume'):
        name = volume.findtext('name')
        for pair in volume.iter('pair'):
            if pair.findtext('primary_node_uuid') != me:
                continue
            hit = stalled(name, pair, now)
            if hit is None:
                continue
            target, oldest, stime = hit
            print(f'mailfleet: geo-replication {name} -> {target}: changelog {oldest} not synced {int(now - oldest)} s after its rollover '
                  f'(stime {int(stime)}), nothing in hand: restarting the session', flush=True)
            for step in ('stop', 'start'):
                r = gluster('volume', 'geo-replication', name, target, step, 'force')
                if r.returncode != 0:
                    print(f'mailfleet: geo-replication {name} -> {target}: {step} failed: {(r.stderr or r.stdout).strip()}', file=sys.stderr, flush=True)
                    code = 1
                    break
    return code


if __name__ == '__main__':
    sys.exit(main())
`,
  };
}

/** Storage-node files for one region. */
export function glusterFiles(plan: Plan, region: RegionRole): RenderedFile[] {
  return [storageScript(plan, region), volumeScript(plan, region), ...geoReplicationScripts(plan), ...(plan.regions?.dr ? [watchdogScript()] : [])];
}

export const glusterRenderer: Renderer = {
  kind: 'gluster',
  description: 'GlusterFS storage node bootstrap: brick on the EBS data volume, peer probing, volume creation, geo-replication',
  fileName: 'gluster-bootstrap.sh',
  render(plan, opts) {
    if (plan.storage.kind !== 'glusterfs') return `# storage.kind is ${plan.storage.kind}: no GlusterFS nodes\n`;
    return joinFiles(glusterFiles(plan, regionOf(opts)));
  },
};
