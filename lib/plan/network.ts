/**
 * The platform's network rules and names, engine-neutral and pure: every security group with its ingress
 * rules, the private records nodes resolve and the public records clients use. The CDK constructs,
 * Terraform and Pulumi translate these sections; none of them spells a port, peer or record name itself
 * (test/engines/network-parity.test.ts reads each engine's real output back against this model).
 */
import { DEFAULT_VPC_CIDR } from '../spec/defaults.js';
import { DEDICATED_BLOCK } from '../spec/ports.js';
import { CLOUD_HEALTH_PORT } from '../render/haproxy.js';
import {
  efsHost,
  ldapHost,
  provisionsRedis,
  REDIS_PORT,
  regionZoneName,
  storageHost,
  storageMountHost,
  type NodeRole,
  type RegionRole,
} from '../render/node-layout.js';
import { daemonConfig } from './daemon-config.js';
import { shardHealthPort } from './build.js';
import type { Plan } from './types.js';
import { managedAdOf } from './managed-ad.js';

/** GlusterFS management (glusterd, 24007) and RDMA management (24008). */
export const GLUSTER_MGMT_PORTS = { from: 24007, to: 24008 } as const;
/** One port per brick from 49152; 100 leaves room for several volumes per node. */
export const GLUSTER_BRICK_PORTS = { from: 49152, to: 49251 } as const;
export const LDAP_PORT = 389;
export const LDAPS_PORT = 636;
export const NFS_PORT = 2049;
export const HTTPS_PORT = 443;
/** GlusterFS geo-replication runs over SSH from one region's storage nodes to the other's (DR ones; the primary's for fail-back). */
export const GEO_REPLICATION_PORT = 22;
export const ANYWHERE = '0.0.0.0/0';

/** Security groups by role: the node kinds, EFS mount targets, the interface endpoints and Redis. */
export type GroupRole = NodeRole | 'efs' | 'endpoint' | 'redis' | 'resolver';

/**
 * A peer of a rule: a CIDR or another group of the same region, by role. `scope` says where a CIDR comes
 * from, for engines that hold it as a reference (CDK: `vpc.vpcCidrBlock`, a construct's peer-CIDR prop):
 * `vpc` this region's VPC, `peer-region` the other region's VPC; the literal is the plan's value.
 */
export type RulePeer = { readonly cidr: string; readonly scope?: 'vpc' | 'peer-region' } | { readonly role: GroupRole };

export interface IngressRuleModel {
  readonly protocol: 'tcp';
  readonly fromPort: number;
  readonly toPort: number;
  readonly peer: RulePeer;
  readonly description: string;
  /**
   * A merged port range, even when it holds one port: CDK names rules between groups by their ports
   * (`25-25`), so the form stays what it was and a deploy does not replace the rule.
   * @default false
   */
  readonly range?: boolean;
}

export interface SecurityGroupModel {
  readonly role: GroupRole;
  readonly name: string;
  readonly description: string;
  readonly ingress: readonly IngressRuleModel[];
  /**
   * Node groups may reach anything (package mirrors, AWS APIs, Redis, external LDAP); undefined: no
   * egress at all (the endpoint and Redis groups only answer).
   */
  readonly egressAllTo?: string;
}

/** A private DNS name nodes resolve (the renderers write these names into node files). */
export interface PrivateRecordModel {
  /** `platform`: <platform>.internal in this region; `region`: <region>.<platform>.internal. */
  readonly zone: 'platform' | 'region';
  readonly name: string;
  readonly ttl: number;
  /** A record: the private IP of this node (a NodeModel name, see nodeName); otherwise a CNAME to the region's EFS. */
  readonly node?: string;
  /** The node's kind and its 0-based index among the region's nodes of that kind (engines that hold instances by index). */
  readonly nodeKind?: 'storage' | 'ldap';
  readonly nodeIndex?: number;
}

export interface DnsRecordModel {
  readonly name: string;
  readonly shard: number;
  /** Port the Route 53 health check opens on the primary NLB (the shard's first listener). */
  readonly healthCheckPort: number;
}

export interface DnsModel {
  readonly zoneName: string;
  readonly hostedZoneId?: string;
  /** With a DR region: PRIMARY/SECONDARY failover pairs with a health check per primary shard. */
  readonly failover: boolean;
  readonly records: readonly DnsRecordModel[];
}

/** Resource-name prefix of a region: the platform name, `-dr` for the DR region. */
export function regionPrefix(plan: Pick<Plan, 'platform'>, role: RegionRole): string {
  return role === 'primary' ? plan.platform : `${plan.platform}-dr`;
}

/** The name of a storage or LDAP node (0-based index), as engines that name instances call it. */
export function nodeName(plan: Pick<Plan, 'platform'>, role: RegionRole, kind: 'storage' | 'ldap', index: number): string {
  return `${regionPrefix(plan, role)}-${kind}-${index}`;
}

/** A region's VPC CIDR: the spec's regions.*.cidr, else the documented default. */
export function regionCidr(plan: Pick<Plan, 'regions'>, role: RegionRole): string {
  return plan.regions?.[role]?.cidr ?? DEFAULT_VPC_CIDR[role];
}

/** The other region's VPC CIDR, when the platform has two regions. */
export function peerCidrOf(plan: Pick<Plan, 'regions'>, role: RegionRole): string | undefined {
  if (!plan.regions?.dr) return undefined;
  return regionCidr(plan, role === 'primary' ? 'dr' : 'primary');
}

/** Contiguous ports become one rule, so dedicated tenants' port blocks stay within SG rule quotas. */
export function portRanges(ports: readonly number[]): { from: number; to: number }[] {
  return mergePorts(ports, 1);
}

/**
 * Listener ports for the proxy group. Ports closer than a dedicated tenant's block are merged into one
 * range, keeping 500 tenants within the 60-rule quota of a group; the extra ports lead nowhere (nodes are
 * private and the NLBs only forward their own listeners).
 */
export function listenerPortRanges(ports: readonly number[]): { from: number; to: number }[] {
  return mergePorts(ports, DEDICATED_BLOCK);
}

function mergePorts(ports: readonly number[], gap: number): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const p of [...new Set(ports)].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && p - last.to <= gap) last.to = p;
    else out.push({ from: p, to: p });
  }
  return out;
}

const tcp = (from: number, to: number, peer: RulePeer, description: string): IngressRuleModel => ({ protocol: 'tcp', fromPort: from, toPort: to, peer, description });

/** glusterd and brick ports from one peer (the mail tier, the storage peers). */
export function glusterClientRules(peer: RulePeer, who: string): IngressRuleModel[] {
  return [
    tcp(GLUSTER_MGMT_PORTS.from, GLUSTER_MGMT_PORTS.to, peer, `glusterd from ${who}`),
    tcp(GLUSTER_BRICK_PORTS.from, GLUSTER_BRICK_PORTS.to, peer, `bricks from ${who}`),
  ];
}

/**
 * Geo-replication from the other region's storage nodes (primary → DR, and DR → primary for the drill's
 * fail-back copy): SSH transport, glusterd, and the brick ports, because `create push-pem` verifies the
 * target volume by mounting it from the source node (a FUSE client talks to every brick).
 */
export function geoReplicationRules(peer: RulePeer, from: RegionRole): IngressRuleModel[] {
  const who = from === 'primary' ? 'the primary region' : 'the DR region (fail-back)';
  return [
    tcp(GEO_REPLICATION_PORT, GEO_REPLICATION_PORT, peer, `geo-replication (SSH transport) from ${who}`),
    tcp(GLUSTER_MGMT_PORTS.from, GLUSTER_MGMT_PORTS.to, peer, `glusterd from ${who}`),
    tcp(GLUSTER_BRICK_PORTS.from, GLUSTER_BRICK_PORTS.to, peer, `bricks from ${who} (target volume check)`),
  ];
}

/** The DR consumer replicates from the primary provider. */
export function ldapReplicationRules(peer: RulePeer): IngressRuleModel[] {
  return [tcp(LDAP_PORT, LDAP_PORT, peer, 'syncrepl from the other region')];
}

/** The interface endpoints' group: HTTPS from the VPC, no egress (its own function: MailNetwork takes no plan). */
export function endpointGroup(prefix: string, vpcCidr: string): SecurityGroupModel {
  return {
    role: 'endpoint',
    name: `${prefix}-endpoints`,
    description: 'Interface endpoints: HTTPS from the VPC',
    ingress: [tcp(HTTPS_PORT, HTTPS_PORT, { cidr: vpcCidr, scope: 'vpc' }, 'HTTPS from the VPC')],
  };
}

/** Every security group of a region with its ingress rules, in a stable order. */
export function securityGroupsOf(plan: Plan, role: RegionRole): SecurityGroupModel[] {
  const prefix = regionPrefix(plan, role);
  const vpc: RulePeer = { cidr: regionCidr(plan, role), scope: 'vpc' };
  const peerCidr = peerCidrOf(plan, role);
  const otherRegion: RulePeer | undefined = peerCidr ? { cidr: peerCidr, scope: 'peer-region' } : undefined;
  const cloud = daemonConfig(plan, { mode: 'cloud' });
  const groups: SecurityGroupModel[] = [
    {
      role: 'proxy',
      name: `${prefix}-proxy`,
      description: 'HAProxy tier: tenant listener ports from the NLBs (client addresses preserved), health checks from the VPC',
      // NLB instance targets see the client's own address, so listener ports are open to the world.
      ingress: [
        ...listenerPortRanges(plan.listeners.map((l) => l.publicPort)).map((r) => tcp(r.from, r.to, { cidr: ANYWHERE }, 'mail listeners via NLB')),
        tcp(CLOUD_HEALTH_PORT, CLOUD_HEALTH_PORT, vpc, 'NLB health checks'),
      ],
      egressAllTo: ANYWHERE,
    },
    {
      role: 'mail',
      name: `${prefix}-mail`,
      description: 'mailfleetd tier: daemon ports from HAProxy, admin API from the VPC',
      ingress: [
        ...portRanges(cloud.sockets.map((s) => s.port)).map((r) => ({ ...tcp(r.from, r.to, { role: 'proxy' }, 'daemon ports, PROXY v2'), range: true })),
        tcp(cloud.admin.port, cloud.admin.port, vpc, 'admin API and metrics'),
      ],
      egressAllTo: ANYWHERE,
    },
    endpointGroup(prefix, regionCidr(plan, role)),
  ];
  if (plan.storage.kind === 'glusterfs')
    groups.push({
      role: 'storage',
      name: `${prefix}-storage`,
      description: 'GlusterFS nodes: clients on the mail tier, peers',
      ingress: [
        ...glusterClientRules({ role: 'mail' }, 'mail tier'),
        ...glusterClientRules({ role: 'storage' }, 'peers'),
        ...(otherRegion ? geoReplicationRules(otherRegion, role === 'dr' ? 'primary' : 'dr') : []),
      ],
      egressAllTo: ANYWHERE,
    });
  else
    groups.push({
      role: 'efs',
      name: `${prefix}-efs`,
      description: 'EFS mount targets: NFS from the mail tier',
      ingress: [tcp(NFS_PORT, NFS_PORT, { role: 'mail' }, 'NFS from mail tier')],
      egressAllTo: ANYWHERE,
    });
  if (provisionsRedis(plan))
    groups.push({
      role: 'redis',
      name: `${prefix}-redis`,
      description: 'Redis (ElastiCache): fleet-wide limits, from the mail tier only',
      ingress: [tcp(REDIS_PORT, REDIS_PORT, { role: 'mail' }, 'Redis (TLS) from mail tier')],
    });
  if (plan.directory.kind === 'ldap' && plan.directory.provision === 'openldap-pair')
    groups.push({
      role: 'ldap',
      name: `${prefix}-ldap`,
      description: 'OpenLDAP provider/consumer: lookups from the mail tier, syncrepl between nodes',
      ingress: [
        tcp(LDAP_PORT, LDAP_PORT, { role: 'mail' }, 'LDAP from mail tier'),
        tcp(LDAPS_PORT, LDAPS_PORT, { role: 'mail' }, 'LDAPS from mail tier'),
        tcp(LDAP_PORT, LDAP_PORT, { role: 'ldap' }, 'syncrepl'),
        ...(role === 'primary' && otherRegion ? ldapReplicationRules(otherRegion) : []),
      ],
      egressAllTo: ANYWHERE,
    });
  // Managed AD: the Resolver outbound endpoint forwards the domain's queries to the controllers, which
  // live in the primary VPC (the DR region reaches them over the peering link). It only sends.
  if (plan.directory.kind === 'ldap' && plan.directory.provision === 'managed-ad')
    groups.push({
      role: 'resolver',
      name: `${prefix}-resolver`,
      description: 'Route 53 Resolver outbound endpoint: DNS for the AD domain to its domain controllers',
      ingress: [],
      egressAllTo: regionCidr(plan, 'primary'),
    });
  return groups;
}

/** One group of a region's model, by role (undefined where the plan has none). */
export function securityGroupOf(plan: Plan, role: RegionRole, group: GroupRole): SecurityGroupModel | undefined {
  return securityGroupsOf(plan, role).find((g) => g.role === group);
}

/** The LDAP role of the n-th OpenLDAP node of a region: provider first in the primary, the DR region has a consumer only. */
export function ldapRoles(plan: Plan, role: RegionRole): ('provider' | 'consumer')[] {
  const pair = plan.directory.kind === 'ldap' && plan.directory.provision === 'openldap-pair';
  return pair ? (role === 'primary' ? ['provider', 'consumer'] : ['consumer']) : [];
}

/** The private records of a region, in a stable order. */
export function privateRecordsOf(plan: Plan, role: RegionRole): PrivateRecordModel[] {
  const storage = plan.storage.kind === 'glusterfs' ? plan.sizing.storageNodes : 0;
  const records: PrivateRecordModel[] = [];
  const node = (kind: 'storage' | 'ldap', i: number) => ({ node: nodeName(plan, role, kind, i), nodeKind: kind, nodeIndex: i });
  // Storage hosts are numbered from 1, as the gluster renderer names them: the platform-zone names the mail
  // nodes mount from, and with a DR region the region-zone names that are the nodes' own names, peers and
  // bricks (storageHost), which the other region resolves for geo-replication and the fail-back copy.
  for (let i = 0; i < storage; i++) records.push({ zone: 'platform', name: storageMountHost(plan, i + 1), ttl: 60, ...node('storage', i) });
  const regionStorage = plan.regions?.dr ? storage : 0;
  // Node 1's region record comes first and the others last, so records the engines key by position
  // (Terraform and Pulumi `dns-<i>`) keep their addresses from before every node had one.
  if (regionStorage > 0) records.push({ zone: 'region', name: storageHost(plan, role, 1), ttl: 60, ...node('storage', 0) });
  if (plan.storage.kind === 'efs') records.push({ zone: 'platform', name: efsHost(plan), ttl: 300 });
  ldapRoles(plan, role).forEach((which, i) => {
    records.push({ zone: 'platform', name: ldapHost(plan, which), ttl: 60, ...node('ldap', i) });
    // DR consumers reach the provider as ldap-provider.primary.<platform>.internal.
    if (which === 'provider') records.push({ zone: 'region', name: `ldap-provider.${regionZoneName(plan, role)}`, ttl: 60, ...node('ldap', i) });
  });
  for (let i = 1; i < regionStorage; i++) records.push({ zone: 'region', name: storageHost(plan, role, i + 1), ttl: 60, ...node('storage', i) });
  return records;
}

/** The public record of an NLB shard: shard 0 keeps the plain prefix, later shards are numbered (a tenant keeps its shard for life). */
export function publicRecordName(dns: { readonly recordPrefix: string; readonly zoneName: string }, shard: number): string {
  return `${dns.recordPrefix}${shard === 0 ? '' : `-${shard}`}.${dns.zoneName}`;
}

/** The public names (spec dns), one per NLB shard; with a DR region each is a failover pair. */
export function publicDnsOf(plan: Plan): DnsModel | undefined {
  const dns = plan.spec.dns;
  if (!dns) return undefined;
  return {
    zoneName: dns.zoneName,
    hostedZoneId: dns.hostedZoneId,
    failover: plan.regions?.dr !== undefined,
    records: plan.nlbShards.map((shard) => ({ name: publicRecordName(dns, shard.index), shard: shard.index, healthCheckPort: shardHealthPort(plan, shard.index) })),
  };
}

/**
 * The Route 53 Resolver pieces of one region: the VPC resolver knows nothing of the AD domain, so an
 * outbound endpoint (two subnets, the model's `resolver` security group) and a FORWARD rule for the
 * domain to the controllers' DNS addresses, associated with the region's VPC. The DR region has its own
 * (Resolver rules are regional) and reaches the primary's controllers over the peering link.
 */
export interface ResolverModel {
  readonly endpointName: string;
  readonly ruleName: string;
  /** The forwarded domain: the managed AD's DNS name. */
  readonly domain: string;
  /** Subnets of the outbound endpoint (the first private subnets of the region; Resolver needs two). */
  readonly subnets: 2;
  readonly port: 53;
}

export function resolverOf(plan: Plan, region: RegionRole): ResolverModel | undefined {
  const ad = managedAdOf(plan.directory);
  if (!ad) return undefined;
  const prefix = regionPrefix(plan, region);
  return { endpointName: `${prefix}-ad-outbound`, ruleName: `${prefix}-ad-forward`, domain: ad.domain, subnets: 2, port: 53 };
}
