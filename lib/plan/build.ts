/**
 * spec → plan. Pure: no I/O, no engines. Every engine and the daemon read the plan, so names, ports,
 * limits and sizes are computed here once.
 */
import { proxyNumbers } from './proxy.js';
import { effectiveLimits, effectiveRates, type EffectiveServiceLimits } from '../spec/defaults.js';
import {
  CLOUD_DAEMON_OFFSET,
  CLOUD_DEDICATED_BASE,
  DEDICATED_BLOCK,
  PROTOCOL_OFFSET,
  NLB_LISTENER_QUOTA,
  STANDARD_PORT,
  dedicatedProtocols,
  dedicatedSlots,
  firstSlotOfShard,
  shardOfSlot,
} from '../spec/ports.js';
import { MailfleetError } from '../errors.js';
import { PROTOCOLS, SERVICES, type Protocol, type Service, type Spec } from '../spec/schema.js';
import type { Affinity, InventoryLine, NlbShard, Plan, PlannedListener, TlsMode } from './types.js';
import { planDirectory } from './managed-ad.js';

/** AWS quota: listeners per Network Load Balancer. */
export const NLB_MAX_LISTENERS = NLB_LISTENER_QUOTA;

export const SERVICE_OF: Readonly<Record<Protocol, Service>> = Object.freeze({
  smtp: 'smtp',
  submission: 'submission',
  submissions: 'submission',
  imap: 'imap',
  imaps: 'imap',
  pop3: 'pop3',
  pop3s: 'pop3',
});

export const TLS_OF: Readonly<Record<Protocol, TlsMode>> = Object.freeze({
  smtp: 'starttls',
  submission: 'starttls',
  submissions: 'implicit',
  imap: 'starttls',
  imaps: 'implicit',
  pop3: 'starttls',
  pop3s: 'implicit',
});

/** Listener and resource names must be safe in HAProxy, CloudFormation ids and metric labels. */
export function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

export function listenerName(tenant: string, protocol: Protocol): string {
  return `${slug(tenant)}-${protocol}`;
}

function affinityFor(service: Service, requested: 'source' | 'user' | 'none' | undefined): Affinity {
  // 'user' affinity needs the login, which a TCP proxy never sees; source affinity is the closest it can do.
  if (requested === 'none') return 'none';
  if (requested === 'source' || requested === 'user') return 'source';
  return service === 'imap' || service === 'pop3' ? 'source' : 'none';
}

function buildListeners(spec: Spec): PlannedListener[] {
  const p = spec.local.ports;
  const shared: Omit<PlannedListener, 'nlbShard'>[] = [];
  for (const protocol of PROTOCOLS) {
    const service = SERVICE_OF[protocol];
    shared.push({
      name: listenerName('default', protocol),
      tenant: 'default',
      protocol,
      service,
      tls: TLS_OF[protocol],
      publicPort: STANDARD_PORT[protocol],
      localPort: p[protocol],
      daemonPort: CLOUD_DAEMON_OFFSET + STANDARD_PORT[protocol],
      localDaemonPort: p[protocol] + p.internalOffset,
      limits: effectiveLimits(spec, service),
      affinity: affinityFor(service, undefined),
    });
  }
  const { slots, problems } = dedicatedSlots(spec.domains);
  if (problems.length > 0)
    throw new MailfleetError('PLAN_INVALID', problems.map((pr) => `domains[${pr.index}] ${spec.domains[pr.index]!.name}: ${pr.message}`).join('; '));
  const out: PlannedListener[] = shared.map((l) => ({ ...l, nlbShard: 0 }));
  spec.domains.forEach((d, i) => {
    const slot = slots.get(i);
    if (slot === undefined) return;
    // The slot, not the tenant's position, fixes its ports and NLB shard (append-stable: docs/engines.md).
    const cloudBase = CLOUD_DEDICATED_BASE + slot * DEDICATED_BLOCK;
    const localBase = p.dedicatedBase + slot * DEDICATED_BLOCK;
    for (const protocol of PROTOCOLS.filter((x) => dedicatedProtocols(d).includes(x))) {
      const service = SERVICE_OF[protocol];
      out.push({
        name: listenerName(d.name, protocol),
        tenant: d.name,
        protocol,
        service,
        tls: TLS_OF[protocol],
        publicPort: cloudBase + PROTOCOL_OFFSET[protocol],
        localPort: localBase + PROTOCOL_OFFSET[protocol],
        daemonPort: CLOUD_DAEMON_OFFSET + STANDARD_PORT[protocol],
        localDaemonPort: p[protocol] + p.internalOffset,
        limits: effectiveLimits(spec, service, d.name),
        affinity: affinityFor(service, d.affinity),
        nlbShard: shardOfSlot(slot),
      });
    }
  });
  return out;
}

/**
 * NLB shards 0…highest, each with its listeners in plan order. A shard whose tenants are all gone stays
 * (empty): its NLB and public name belong to its slot range, so later shards keep their index.
 */
function shardsOf(platform: string, listeners: readonly PlannedListener[]): NlbShard[] {
  const count = Math.max(0, ...listeners.map((l) => l.nlbShard)) + 1;
  return Array.from({ length: count }, (_, index) => {
    const mine = listeners.filter((l) => l.nlbShard === index);
    return { index, name: `${platform}-nlb-${index}`, listeners: mine.map((l) => l.name), tenants: [...new Set(mine.map((l) => l.tenant))] };
  });
}

/**
 * Port of the Route 53 health check of a shard's NLB: its first listener. An emptied shard has none;
 * its first slot's SMTP port stands in (nothing answers, so its name, which no tenant uses, fails over).
 */
export function shardHealthPort(plan: Pick<Plan, 'listeners' | 'nlbShards'>, shard: number): number {
  const first = plan.nlbShards[shard]?.listeners[0];
  const l = first === undefined ? undefined : plan.listeners.find((x) => x.name === first);
  return l?.publicPort ?? CLOUD_DEDICATED_BASE + firstSlotOfShard(shard) * DEDICATED_BLOCK;
}

function perService(spec: Spec, domain?: string): Record<Service, EffectiveServiceLimits> {
  return Object.fromEntries(SERVICES.map((s) => [s, effectiveLimits(spec, s, domain)])) as Record<
    Service,
    EffectiveServiceLimits
  >;
}

function inventory(spec: Spec, listeners: readonly PlannedListener[], shards: readonly NlbShard[]): InventoryLine[] {
  const regions = spec.regions?.dr ? 2 : 1;
  const lines: InventoryLine[] = [
    { kind: 'vpc', count: regions, why: 'one VPC per region' },
    { kind: 'nlb', count: shards.length * regions, why: `${listeners.length} listeners / ${NLB_MAX_LISTENERS} per NLB, per region` },
    { kind: 'nlb-listener', count: listeners.length * regions, why: 'one per tenant × protocol, per region' },
    { kind: 'target-group', count: listeners.length * regions, why: 'one per NLB listener (PROXY v2 to HAProxy)' },
    {
      kind: 'autoscaling-group',
      count: (shards.length + 1) * regions,
      why: 'one HAProxy group per NLB shard (an ASG attaches at most 50 target groups) and the mail tier, per region',
    },
  ];
  if (spec.storage.kind === 'glusterfs')
    lines.push({ kind: 'storage-instance', count: spec.storage.nodes * regions, why: 'GlusterFS nodes, one per AZ, per region' });
  else lines.push({ kind: 'efs-filesystem', count: regions, why: 'one EFS per region (replicated to DR)' });
  if (spec.directory.kind === 'ldap' && spec.directory.provision === 'openldap-pair')
    lines.push({ kind: 'ldap-instance', count: 2 + (regions - 1), why: 'provider + consumer, plus a DR consumer' });
  if (spec.directory.kind === 'ldap' && spec.directory.provision === 'managed-ad')
    lines.push(
      { kind: 'managed-ad', count: 1, why: 'AWS Managed Microsoft AD, in the primary VPC only' },
      { kind: 'resolver-endpoint', count: regions, why: 'Route 53 Resolver outbound endpoint per region: the AD domain is forwarded to its controllers' },
    );
  if (regions === 2 && spec.dns)
    lines.push({ kind: 'route53-health-check', count: shards.length, why: 'one per primary NLB shard, drives failover records' });
  if (regions === 2)
    lines.push({ kind: 'fis-experiment-template', count: 3, why: 'DR drills in the primary: a storage node down, a proxy AZ lost, all primary proxies down' });
  return lines;
}

export function buildPlan(spec: Spec): Plan {
  const listeners = buildListeners(spec);
  const shards = shardsOf(spec.platform.name, listeners);
  const sum = listeners.reduce((a, l) => a + l.limits.listenerConnections, 0);
  const cap = spec.tiers.proxyMaxConnectionsPerNode;
  const mailTier = spec.tiers.mail;
  const byConnections = Math.ceil(sum / spec.tiers.maxConnectionsPerMailNode);
  const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));
  const domainsWithOverrides = spec.domains.filter((d) => d.limits !== undefined || d.listeners === 'dedicated');
  return {
    platform: spec.platform.name,
    hostname: spec.platform.hostname,
    domains: spec.domains.map((d) => d.name.toLowerCase()),
    listeners,
    nlbShards: shards,
    limits: {
      platform: perService(spec),
      domains: Object.fromEntries(domainsWithOverrides.map((d) => [d.name.toLowerCase(), perService(spec, d.name)])),
      rates: effectiveRates(spec),
      domainRates: Object.fromEntries(
        spec.domains.filter((d) => d.rates).map((d) => [d.name.toLowerCase(), effectiveRates(spec, d.name)]),
      ),
    },
    proxy: proxyNumbers(listeners, cap),
    sizing: {
      proxyNodes: {
        min: spec.tiers.proxy.minNodes,
        max: spec.tiers.proxy.maxNodes,
        desired: spec.tiers.proxy.desiredNodes ?? spec.tiers.proxy.minNodes,
        instanceType: spec.tiers.proxy.instanceType,
      },
      mailNodes: {
        min: mailTier.minNodes,
        max: mailTier.maxNodes,
        desired: mailTier.desiredNodes ?? clamp(byConnections, mailTier.minNodes, mailTier.maxNodes),
        instanceType: mailTier.instanceType,
      },
      storageNodes: spec.storage.kind === 'glusterfs' ? spec.storage.nodes : 0,
    },
    regions: spec.regions,
    storage: spec.storage,
    directory: planDirectory(spec.directory),
    redis: spec.redis,
    dr: spec.dr,
    inventory: inventory(spec, listeners, shards),
    spec,
  };
}
