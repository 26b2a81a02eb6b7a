/**
 * Where things live on a cloud node and how nodes find each other: names every node bootstrap renderer
 * and every engine (CDK, Terraform, Pulumi) must agree on. Pure: derived from the plan only, so the
 * rendered bootstrap text is the same whichever engine deploys it.
 */
import { posix } from 'node:path';
import type { Plan } from '../plan/types.js';
import { MailfleetError } from '../errors.js';
import { cloudMailDiscoveryName } from './haproxy.js';
import { managedAdOf } from '../plan/managed-ad.js';

/** Node roles that get a bootstrap of their own. */
export const NODE_ROLES = ['proxy', 'mail', 'storage', 'ldap'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

export type RegionRole = 'primary' | 'dr';

/** One file of a node's bootstrap bundle (unpacked under NODE_FILES_DIR). */
export interface RenderedFile {
  /** Path relative to NODE_FILES_DIR. */
  readonly path: string;
  readonly content: string;
  /** True for scripts (mode 0755 on the node, checked by shellcheck in the tests). */
  readonly executable?: boolean;
}

/** The node-files bundle is unpacked here; role scripts run from its bootstrap/ folder. */
export const NODE_FILES_DIR = '/opt/mailfleet';
/**
 * The daemon package (zip: mailfleetd.mjs, the Node.js runtime under node/, SHA256SUMS) is unpacked here;
 * the node runs the daemon with the runtime it shipped with, never a distribution's Node.js.
 */
export const DAEMON_DIR = '/opt/mailfleet/daemon';
export const DAEMON_BUNDLE_PATH = `${DAEMON_DIR}/mailfleetd.mjs`;
export const DAEMON_NODE_PATH = `${DAEMON_DIR}/node/bin/node`;
/** Maildir root on mail nodes: the GlusterFS volume or EFS is mounted here before the daemon starts. */
export const MAIL_MOUNT = '/srv/mail';
/** systemd names a mount unit after its path. */
export const MAIL_MOUNT_UNIT = 'srv-mail.mount';
/** GlusterFS brick directory on each storage node's EBS data volume. */
export const BRICK_MOUNT = '/data/glusterfs';
export const BRICK_DIR = '/data/glusterfs/brick1';
/** Daemon settings and secrets on mail nodes. */
export const DAEMON_CONFIG_PATH = '/etc/mailfleet/mailfleetd.json';
export const DAEMON_ENV_PATH = '/etc/mailfleet/mailfleetd.env';
export const DAEMON_TLS_DIR = '/etc/mailfleet/tls';

/**
 * Where a path from the spec lives on a node. The daemon resolves relative paths (users file, LDAP
 * bindPasswordFile, caFile) against its config file's folder, so the bootstrap writes them there too.
 */
export function nodePath(specPath: string): string {
  return posix.resolve(posix.dirname(DAEMON_CONFIG_PATH), specPath);
}
export const DAEMON_LOG_PATH = '/var/log/mailfleet/mailfleetd.log';
export const BOOTSTRAP_LOG_PATH = '/var/log/mailfleet/bootstrap.log';
/** Admin API (and /metrics) port of the daemon on cloud nodes; matches the 'cloud' daemon config. */
export const DAEMON_ADMIN_PORT = 9025;

/**
 * Instance tags the bootstrap reads through IMDS (instance metadata tags must be enabled): they let
 * every node of a role share one user data text. IMDS exposes no tag key containing '/' or ':'.
 */
export const NODE_INDEX_TAG = 'MailfleetNodeIndex';
export const LDAP_ROLE_TAG = 'MailfleetLdapRole';

/**
 * Nodes run Debian 12, the OS the tests and the fleet harness run (haproxy 2.6, glusterfs 10.3, slapd 2.5,
 * redis 7 from Debian's own archive); the engines resolve the Debian project's AMI from its public SSM parameter.
 */
export const NODE_OS = 'debian-12';

/** Public SSM parameter of the Debian project's latest Debian 12 AMI for an instance type's architecture. */
export function debianAmiParameter(instanceType: string): string {
  const arm = /^[a-z]+\d+g[a-z]*\./.test(instanceType);
  return `/aws/service/debian/release/12/latest/${arm ? 'arm64' : 'amd64'}`;
}

/**
 * The mail user has one fixed UID/GID on every mail node: Maildirs are 0700 on shared storage, so a node
 * whose dynamic UID differed could read none of them.
 */
export const MAIL_UID = 5025;

/** register.sh gives up on a change of the mail tier's record after this many seconds (DISCOVERY.deadlineSeconds). */
const DISCOVERY_DEADLINE_SECONDS = 90;
/** Lifecycle hook (autoscaling:EC2_INSTANCE_LAUNCHING) a mail node completes once it serves, or abandons. */
export const LAUNCH_HOOK_NAME = 'mailfleet-ready';
/** Seconds the hook waits for the node; above STORAGE_WAIT (storage node 1 forms the volume in up to 15 min). */
export const LAUNCH_HOOK_TIMEOUT_SECONDS = 30 * 60;
/**
 * Lifecycle hook (autoscaling:EC2_INSTANCE_TERMINATING) a mail node completes once it has drained (scale-in,
 * instance refresh, replacement of an unhealthy node): bootstrap/drain.sh withdraws its address, stops the
 * daemon and says CONTINUE.
 */
export const TERMINATE_HOOK_NAME = 'mailfleet-drain';
/**
 * How the drain (bootstrap/drain.sh, run by mailfleet-drain.timer) is paced and bounded: how often the node
 * asks IMDS whether its group is terminating it; how long each step may take before the next runs anyway
 * (withdrawing the address: register.sh's own deadline plus its interpreter; stopping the daemon: its
 * unit's TimeoutStopSec plus a margin; each complete-lifecycle-action call); and how many times completing
 * is tried. The wait between withdrawing and stopping is MAIL_DRAIN_SECONDS (lib/plan/reload.ts).
 * @default { pollSeconds: 10, withdrawTimeoutSeconds: 120, stopTimeoutSeconds: 45, completeTimeoutSeconds: 20, completeTries: 3 }
 */
export const DRAIN = {
  pollSeconds: 10,
  withdrawTimeoutSeconds: DISCOVERY_DEADLINE_SECONDS + 30,
  stopTimeoutSeconds: 45,
  completeTimeoutSeconds: 20,
  completeTries: 3,
} as const;
/**
 * Seconds the terminate hook waits for the node: above everything drain.sh may take (one poll, each step's
 * bound, the settle wait and the pauses between tries), so a slow drain still completes the hook itself. If
 * the node never does (it is gone already), the group terminates it anyway (default result CONTINUE).
 * @default 600
 */
export const TERMINATE_HOOK_TIMEOUT_SECONDS = 10 * 60;

/** One Auto Scaling lifecycle hook of a node group, in engine-neutral terms (every engine translates these). */
export interface LifecycleHookModel {
  readonly name: string;
  readonly transition: 'autoscaling:EC2_INSTANCE_LAUNCHING' | 'autoscaling:EC2_INSTANCE_TERMINATING';
  readonly heartbeatTimeoutSeconds: number;
  /** What the group does when the node never completes the hook. */
  readonly defaultResult: 'ABANDON' | 'CONTINUE';
}

/** The mail group's lifecycle hooks: served before InService (launch), drained before it goes (terminate). */
export const MAIL_LIFECYCLE_HOOKS: readonly LifecycleHookModel[] = [
  { name: LAUNCH_HOOK_NAME, transition: 'autoscaling:EC2_INSTANCE_LAUNCHING', heartbeatTimeoutSeconds: LAUNCH_HOOK_TIMEOUT_SECONDS, defaultResult: 'ABANDON' },
  { name: TERMINATE_HOOK_NAME, transition: 'autoscaling:EC2_INSTANCE_TERMINATING', heartbeatTimeoutSeconds: TERMINATE_HOOK_TIMEOUT_SECONDS, defaultResult: 'CONTINUE' },
];
/** A mail node tries to mount the Maildir store this many times, this far apart, before it gives up. */
export const STORAGE_WAIT = { tries: 120, intervalSeconds: 10 } as const;
/**
 * Mail tier membership (bootstrap/register.sh): the one A record's TTL; how often each mail node drops
 * addresses that are no longer instances of its group; how often, with what jittered backoff (full jitter,
 * base and cap in seconds) and within what deadline a read-modify-write of the record is retried when
 * another node changed it in between; and the connect/read timeouts of each AWS API call (botocore also
 * retries a throttled or dropped call, at most apiAttempts times).
 */
export const DISCOVERY = {
  ttlSeconds: 10,
  reconcileSeconds: 30,
  changeTries: 25,
  backoffBaseSeconds: 0.1,
  backoffCapSeconds: 3,
  deadlineSeconds: DISCOVERY_DEADLINE_SECONDS,
  connectTimeoutSeconds: 5,
  readTimeoutSeconds: 10,
  apiAttempts: 3,
} as const;
/** Consecutive failed node health checks before the node marks itself Unhealthy in its Auto Scaling group. */
export const HEALTH_FAILURES_BEFORE_UNHEALTHY = 3;

/** Root of every account-wide name: plan.namePrefix, else `mailfleet/<platform>`. */
export function nameRoot(plan: Pick<Plan, 'platform' | 'namePrefix'>): string {
  return plan.namePrefix ?? `mailfleet/${plan.platform}`;
}

/** A namePrefix: '/'-separated segments of lowercase letters, digits and '-' (valid in SSM, Secrets Manager, log group and DNS names). */
const NAME_SEGMENT = /^[a-z0-9][a-z0-9-]{0,30}$/;

/**
 * The plan with its account-wide names (SSM parameters, secrets, log groups, the mail tier's name in
 * the private zone) rooted at `namePrefix`, so the same plan can be deployed twice in one account or
 * stack; every construct of one instance must get the same prefix. Undefined keeps the plan's names.
 */
export function withNamePrefix(plan: Plan, namePrefix: string | undefined): Plan {
  if (namePrefix === undefined || namePrefix === plan.namePrefix) return plan;
  const segments = namePrefix.split('/');
  const scoped = { ...plan, namePrefix };
  // The mail tier's DNS label carries the prefix too: at most 63 characters.
  if (!segments.every((s) => NAME_SEGMENT.test(s)) || cloudMailDiscoveryName(scoped).split('.')[0]!.length > 63)
    throw new MailfleetError('BAD_REQUEST', `namePrefix "${namePrefix}": use '/'-separated segments of lowercase letters, digits and '-', at most 48 characters in all`);
  return scoped;
}

/** SSM parameter prefix; parameters are regional, so one name serves both regions. */
export function ssmPrefix(plan: Plan): string {
  return `/${nameRoot(plan)}`;
}

/** SSM parameter holding the s3:// URI of a role's node-files bundle. */
export function nodeFilesParameter(plan: Plan, role: NodeRole): string {
  return `${ssmPrefix(plan)}/node-files/${role}`;
}

/** SSM parameter holding the s3:// URI of the daemon bundle. */
export function daemonBundleParameter(plan: Plan): string {
  return `${ssmPrefix(plan)}/daemon-bundle`;
}

/**
 * SSM parameter holding the name of this region's audit archive bucket (audit.enabled): each region's
 * mail nodes ship their journal to their own region's bucket (the engines write it per region).
 */
export function auditBucketParameter(plan: Plan): string {
  return `${ssmPrefix(plan)}/audit-bucket`;
}

/** Secrets Manager names (the engines create them; nodes read them at boot). */
export function secretNames(plan: Plan) {
  const p = nameRoot(plan);
  return {
    /** Admin API token (generated). */
    adminToken: `${p}/admin-token`,
    /** Password the daemons bind to the directory with (generated for the OpenLDAP pair, set by hand otherwise). */
    ldapBind: `${p}/ldap-bind`,
    /** slapd rootdn password (OpenLDAP pair only). */
    ldapAdmin: `${p}/ldap-admin`,
    /**
     * JSON {"ca": PEM bundle} of the CA that issued the Managed AD controllers' LDAPS certificates
     * (managed-ad with TLS); filled by the operator after enabling LDAPS (docs/ldap.md).
     */
    ldapCa: `${p}/ldap-ca`,
    /** Password the syncrepl consumers bind with (OpenLDAP pair only). */
    ldapReplicator: `${p}/ldap-replicator`,
    /** JSON {"cert": PEM chain, "key": PEM} for the daemons' TLS; filled by the operator or a pipeline. */
    tls: `${p}/tls`,
    /** The users file (YAML) of a static directory; starts empty, the operator writes it (docs/cdk.md). */
    staticUsers: `${p}/users`,
    /** JSON {"username","password"} for AUTH to smtp.relay; filled by the operator. */
    relay: `${p}/relay`,
    /** AUTH token of the provisioned Redis (redis.provision elasticache; generated, the same in both regions). */
    redisAuth: `${p}/redis-auth`,
  } as const;
}

/** SSM parameter holding `<host>:<port>` of this region's provisioned Redis primary endpoint. */
export function redisEndpointParameter(plan: Plan): string {
  return `${ssmPrefix(plan)}/redis-endpoint`;
}

/** Whether the cloud engines provision Redis for the plan (spec redis with provision elasticache). */
export function provisionsRedis(plan: Pick<Plan, 'spec'>): boolean {
  return plan.spec.redis?.provision === 'elasticache';
}

/** Port of the provisioned Redis (ElastiCache's default; the security group admits only the mail nodes). */
export const REDIS_PORT = 6379;

/**
 * Private DNS zone of the platform. Each region has its own zone of this one name, associated with its
 * own VPC, so node files are the same text in both regions and a DR node names its local peers exactly
 * as the primary node does.
 */
export function privateZoneName(plan: Plan): string {
  return `${plan.platform}.internal`;
}

/**
 * Region-qualified zone (`primary.<platform>.internal`, `dr.<platform>.internal`) for names the other
 * region must reach: the LDAP provider for DR consumers, every storage node for geo-replication (and the
 * drill's fail-back copy). Each region's engine associates it with the other region's VPC once both exist.
 */
export function regionZoneName(plan: Plan, region: RegionRole): string {
  return `${region}.${privateZoneName(plan)}`;
}

/**
 * The zone a region's storage nodes live in: the name each node gives itself, its peers and its bricks.
 * With a DR region it is the region zone, in both regions: geo-replication mounts the other region's
 * volume and SSHes to each of its bricks' hosts, so a brick host must resolve from the other VPC to this
 * region's node, never to the other region's node of the same number (`gluster-N.<platform>.internal`
 * exists in both regions). Without a DR region it is the platform zone.
 */
export function storageZoneName(plan: Plan, region: RegionRole): string {
  return plan.regions?.dr ? regionZoneName(plan, region) : privateZoneName(plan);
}

/** Storage node `index` (from 1) of a region as peers, bricks and the other region name it. */
export function storageHost(plan: Plan, region: RegionRole, index: number): string {
  return `gluster-${index}.${storageZoneName(plan, region)}`;
}

/** Every storage node of a region, in brick order. */
export function storageHosts(plan: Plan, region: RegionRole): string[] {
  const n = plan.storage.kind === 'glusterfs' ? plan.storage.nodes : 0;
  return Array.from({ length: n }, (_, i) => storageHost(plan, region, i + 1));
}

/**
 * Storage node `index` by its platform-zone name, which resolves inside each region to that region's
 * node: the mail nodes mount from these, so their files are the same text in both regions.
 */
export function storageMountHost(plan: Plan, index: number): string {
  return `gluster-${index}.${privateZoneName(plan)}`;
}

export function storageMountHosts(plan: Plan): string[] {
  const n = plan.storage.kind === 'glusterfs' ? plan.storage.nodes : 0;
  return Array.from({ length: n }, (_, i) => storageMountHost(plan, i + 1));
}

/** EFS is reached through a CNAME in the private zone, so mount units stay free of file-system ids. */
export function efsHost(plan: Plan): string {
  return `efs.${privateZoneName(plan)}`;
}

export function ldapHost(plan: Plan, which: 'provider' | 'consumer'): string {
  return `ldap-${which}.${privateZoneName(plan)}`;
}

/** The provider as every consumer (primary and DR) names it. */
export function ldapProviderHost(plan: Plan): string {
  return `ldap-provider.${regionZoneName(plan, 'primary')}`;
}

/**
 * The directory URIs a cloud daemon uses: with the OpenLDAP pair the engines provision, the names they
 * give the slapd nodes (the local consumer first for reads, then the provider, which the DR region
 * reaches through the primary's region zone); with Managed AD the domain's own name, which the Resolver
 * rule the engines create forwards to the controllers (ldaps:// unless directory.tls says otherwise);
 * otherwise the spec's own URIs.
 */
export function cloudDirectoryUris(plan: Plan, region: RegionRole): readonly string[] | undefined {
  const d = plan.directory;
  if (d.kind !== 'ldap') return undefined;
  const ad = managedAdOf(d);
  if (ad) return ad.uris;
  if (d.provision !== 'openldap-pair') return d.uris;
  const provider = region === 'primary' ? ldapHost(plan, 'provider') : ldapProviderHost(plan);
  return [`ldap://${ldapHost(plan, 'consumer')}`, `ldap://${provider}`];
}

/**
 * The TLS settings a cloud daemon uses with the directory the engines create: with Managed AD, StartTLS
 * per directory.tls and the CA bundle the bootstrap writes from the ldap-ca secret; otherwise the spec's.
 */
export function cloudDirectoryTls(plan: Plan): { readonly startTls: boolean; readonly caFile?: string } | undefined {
  const d = plan.directory;
  if (d.kind !== 'ldap') return undefined;
  const ad = managedAdOf(d);
  return ad ? { startTls: ad.startTls, caFile: ad.caFile } : { startTls: d.startTls, caFile: d.caFile };
}

/** Joins a file set into one readable document (what `mailfleet render <kind>` prints). */
export function joinFiles(files: readonly RenderedFile[]): string {
  return files.map((f) => `# ==> ${f.path} <==\n${f.content}`).join('\n');
}

/** Single-quotes a value for POSIX shells. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Region role from render options (primary unless asked for dr). */
export function regionOf(opts?: { region?: RegionRole }): RegionRole {
  return opts?.region === 'dr' ? 'dr' : 'primary';
}

/**
 * Mail nodes publish themselves as the values of one simple A record (added at start and removed at stop
 * by mailfleet-register.service, dead members dropped by mailfleet-register.timer); HAProxy resolves it
 * with `server-template`. A simple record answers every value (a multivalue one at most 8).
 */
export function mailNodesHost(plan: Plan): string {
  return cloudMailDiscoveryName(plan);
}

/** The Amazon-provided DNS resolver inside every VPC. */
export const VPC_RESOLVER = '169.254.169.253';
