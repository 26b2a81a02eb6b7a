/**
 * systemd units of the cloud nodes. The mail store is a mount unit and the daemon requires it, so
 * mailfleetd never starts on (and writes Maildirs into) an empty local directory when the mount failed.
 */
import type { Plan } from '../plan/types.js';
import type { Renderer } from './types.js';
import {
  DISCOVERY,
  DRAIN,
  TERMINATE_HOOK_TIMEOUT_SECONDS,
  DAEMON_BUNDLE_PATH,
  DAEMON_NODE_PATH,
  DAEMON_CONFIG_PATH,
  DAEMON_ENV_PATH,
  DAEMON_LOG_PATH,
  MAIL_MOUNT,
  MAIL_MOUNT_UNIT,
  NODE_FILES_DIR,
  efsHost,
  joinFiles,
  storageMountHosts,
  type RenderedFile,
} from './node-layout.js';

/** File descriptors per process: HAProxy and the daemon hold two sockets per proxied connection. */
export const NOFILE_LIMIT = 1048576;

/** The mount unit for the Maildir root: GlusterFS with backup volfile servers, or EFS over NFS 4.1. */
export function mailMountUnit(plan: Plan): RenderedFile {
  let what: string;
  let type: string;
  let options: string;
  if (plan.storage.kind === 'glusterfs') {
    const [first, ...rest] = storageMountHosts(plan);
    what = `${first}:/${plan.storage.volumeName}`;
    type = 'glusterfs';
    // Any listed server can hand out the volfile, so a node boots even when the first storage node is down.
    options = `_netdev,backup-volfile-servers=${rest.join(':')},log-level=WARNING`;
  } else {
    what = `${efsHost(plan)}:/`;
    type = 'nfs4';
    options = '_netdev,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport';
  }
  return {
    path: `systemd/${MAIL_MOUNT_UNIT}`,
    content: `[Unit]
Description=mailfleet Maildir store (${plan.storage.kind})
Wants=network-online.target
After=network-online.target

[Mount]
What=${what}
Where=${MAIL_MOUNT}
Type=${type}
Options=${options}
TimeoutSec=120

[Install]
WantedBy=multi-user.target
`,
  };
}

export function mailfleetdUnit(plan: Plan): RenderedFile {
  return {
    path: 'systemd/mailfleetd.service',
    content: `[Unit]
Description=mailfleetd (${plan.platform})
Wants=network-online.target
After=network-online.target ${MAIL_MOUNT_UNIT}
Requires=${MAIL_MOUNT_UNIT}
RequiresMountsFor=${MAIL_MOUNT}

[Service]
Type=simple
User=mailfleet
Group=mailfleet
EnvironmentFile=${DAEMON_ENV_PATH}
Environment=NODE_ENV=production
ExecStart=${DAEMON_NODE_PATH} ${DAEMON_BUNDLE_PATH} serve --daemon-config ${DAEMON_CONFIG_PATH} --data-dir ${MAIL_MOUNT}/maildir
# Ports below 1024 are not used (the daemon listens on 10000 + the standard port behind HAProxy).
Restart=always
RestartSec=2
LimitNOFILE=${NOFILE_LIMIT}
StandardOutput=append:${DAEMON_LOG_PATH}
StandardError=append:${DAEMON_LOG_PATH}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=${MAIL_MOUNT} /var/log/mailfleet
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
`,
  };
}

export function registerUnit(plan: Plan): RenderedFile {
  return {
    path: 'systemd/mailfleet-register.service',
    content: `[Unit]
Description=Publish this node under the mail tier's DNS name (${plan.platform})
After=mailfleetd.service
Requires=mailfleetd.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=${NODE_FILES_DIR}/bootstrap/register.sh UPSERT
ExecStop=${NODE_FILES_DIR}/bootstrap/register.sh DELETE
# register.sh gives up after its own deadline; this only bounds a hung interpreter.
TimeoutSec=${DISCOVERY.deadlineSeconds + 30}

[Install]
WantedBy=multi-user.target
`,
  };
}

/** Drops mail tier members that are no longer instances of the group (nodes that died without ExecStop). */
export function registerReconcileUnits(plan: Plan): RenderedFile[] {
  return [
    {
      path: 'systemd/mailfleet-register-reconcile.service',
      content: `[Unit]
Description=Drop dead mail nodes from the mail tier's DNS name (${plan.platform})

[Service]
Type=oneshot
ExecStart=${NODE_FILES_DIR}/bootstrap/register.sh RECONCILE
TimeoutSec=${DISCOVERY.deadlineSeconds + 30}
`,
    },
    {
      path: 'systemd/mailfleet-register.timer',
      content: `[Unit]
Description=Drop dead mail nodes from the mail tier's DNS name every ${DISCOVERY.reconcileSeconds} s

[Timer]
OnActiveSec=${DISCOVERY.reconcileSeconds}
OnUnitActiveSec=${DISCOVERY.reconcileSeconds}
RandomizedDelaySec=${Math.round(DISCOVERY.reconcileSeconds / 3)}
Unit=mailfleet-register-reconcile.service

[Install]
WantedBy=timers.target
`,
    },
  ];
}

/** Runs the mail node's health check every 30 s (bootstrap/health-watch.sh); see HEALTH_FAILURES_BEFORE_UNHEALTHY. */
export function healthUnits(): RenderedFile[] {
  return [
    {
      path: 'systemd/mailfleet-health.service',
      content: `[Unit]
Description=mailfleet mail node health check (daemon and Maildir store)
After=mailfleetd.service

[Service]
Type=oneshot
ExecStart=${NODE_FILES_DIR}/bootstrap/health-watch.sh
`,
    },
    {
      path: 'systemd/mailfleet-health.timer',
      content: `[Unit]
Description=mailfleet mail node health check every 30 s

[Timer]
OnActiveSec=30
OnUnitActiveSec=30
AccuracySec=5

[Install]
WantedBy=timers.target
`,
    },
  ];
}

/** Polls for the group terminating this mail node and drains it (bootstrap/drain.sh, TERMINATE_HOOK_NAME). */
export function drainUnits(plan: Plan): RenderedFile[] {
  return [
    {
      path: 'systemd/mailfleet-drain.service',
      content: `[Unit]
Description=Drain this mail node when its Auto Scaling group terminates it (${plan.platform})

[Service]
Type=oneshot
ExecStart=${NODE_FILES_DIR}/bootstrap/drain.sh
# drain.sh bounds each step itself; this only bounds the whole within the lifecycle hook's heartbeat.
TimeoutStartSec=${TERMINATE_HOOK_TIMEOUT_SECONDS - DRAIN.pollSeconds}
`,
    },
    {
      path: 'systemd/mailfleet-drain.timer',
      content: `[Unit]
Description=Ask every ${DRAIN.pollSeconds} s whether the Auto Scaling group is terminating this mail node

[Timer]
OnActiveSec=${DRAIN.pollSeconds}
OnUnitActiveSec=${DRAIN.pollSeconds}
AccuracySec=1

[Install]
WantedBy=timers.target
`,
    },
  ];
}

export function haproxyLimits(): RenderedFile {
  return {
    path: 'systemd/haproxy-limits.conf',
    content: `[Service]
LimitNOFILE=${NOFILE_LIMIT}
Restart=always
`,
  };
}

/** slapd from the rendered slapd.conf (Debian's packaged unit expects cn=config in slapd.d). */
export function slapdUnit(): RenderedFile {
  return {
    path: 'systemd/mailfleet-slapd.service',
    content: `[Unit]
Description=OpenLDAP for mailfleet (rendered slapd.conf)
Wants=network-online.target
After=network-online.target

[Service]
Type=forking
User=openldap
Group=openldap
# Port 389 without running as root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
PIDFile=/run/slapd/slapd.pid
RuntimeDirectory=slapd
ExecStartPre=/usr/sbin/slaptest -Q -u -f /etc/ldap/slapd.conf
ExecStart=/usr/sbin/slapd -f /etc/ldap/slapd.conf -h "ldap:/// ldapi:///"
Restart=on-failure
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`,
  };
}

/** Every unit for a region; engines pick the ones a role needs. */
export function systemdUnits(plan: Plan): RenderedFile[] {
  return [mailMountUnit(plan), mailfleetdUnit(plan), registerUnit(plan), ...registerReconcileUnits(plan), ...healthUnits(), ...drainUnits(plan), haproxyLimits(), slapdUnit()];
}

export const systemdRenderer: Renderer = {
  kind: 'systemd',
  description: 'systemd units: the Maildir mount, mailfleetd (requires the mount), DNS registration, HAProxy limits, slapd',
  fileName: 'systemd-units.txt',
  render(plan) {
    return joinFiles(systemdUnits(plan));
  },
};
