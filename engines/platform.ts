/**
 * The engine-neutral platform: every resource the Terraform and Pulumi engines create, with its name,
 * ports, sizes and bootstrap text, read from the plan and the renderers in one place. Engines only
 * translate this into their own syntax, so they cannot drift apart (the parity suite checks they don't).
 */
import { platformOutputs, type OutputModel, type OutputSource } from '../lib/plan/outputs.js';
import { nodeBoot, type AccessTarget, type NodeBootModel } from '../lib/plan/node-access.js';
import {
  drillActions,
  drillsOf,
  processesDocumentName,
  processesParameters,
  PROCESSES_MAX_DURATION,
  type DrillModel,
  type FisResource,
} from '../lib/plan/drills.js';
import { reloadsOf, RELOAD_TRIGGER_PARAMETER, type ReloadModel } from '../lib/plan/reload.js';
import {
  ldapRoles,
  nodeName,
  privateRecordsOf,
  publicDnsOf,
  resolverOf,
  regionCidr,
  regionPrefix,
  securityGroupsOf,
  type DnsModel,
  type PrivateRecordModel,
  type ResolverModel,
  type SecurityGroupModel,
} from '../lib/plan/network.js';
export * from '../lib/plan/network.js';
import { dnsNameOfBaseDn, managedAdShortName } from '../lib/plan/directory-names.js';
import { BIND_ACCOUNT_FUNCTION, managedAdOf } from '../lib/plan/managed-ad.js';

export type { DrillModel };
import type { Plan } from '../lib/plan/types.js';
import { MailfleetError } from '../lib/errors.js';
import { nlbIdleTimeoutSeconds } from '../lib/render/nlb.js';
import {
  debianAmiParameter,
  LDAP_ROLE_TAG,
  NODE_INDEX_TAG,
  privateZoneName,
  provisionsRedis,
  REDIS_PORT,
  regionZoneName,
  secretNames,
  MAIL_LIFECYCLE_HOOKS,
  type LifecycleHookModel,
} from '../lib/render/node-layout.js';
import { DEFAULT_VPC_CIDR } from '../lib/spec/defaults.js';
import { bootstrapText } from './bootstrap.js';
import { saturationAlarm, type MetricAlarmModel } from '../lib/render/alarms.js';
import { ROLE_TAG, type RegionRole } from './inventory.js';

/** VPC CIDRs when the spec gives none (as documented on regions.*.cidr). */
export const DEFAULT_CIDR: Readonly<Record<RegionRole, string>> = DEFAULT_VPC_CIDR;
/**
 * Interface endpoints the nodes call (Session Manager, CloudWatch, Secrets Manager) besides the S3 gateway
 * endpoint, as the CDK MailNetwork creates them: nodes reach AWS APIs without the NAT gateway.
 */
export const INTERFACE_ENDPOINTS = ['ssm', 'ssmmessages', 'ec2messages', 'logs', 'monitoring', 'secretsmanager'] as const;
/** ElastiCache for Valkey (Redis 7 compatible: the daemons' Lua scripts and commands run unchanged). */
export const REDIS_ENGINE_VERSION = '8.0';

export interface SubnetModel {
  readonly name: string;
  readonly az: string;
  readonly cidr: string;
  readonly public: boolean;
}

export interface NlbListenerModel {
  /** Plan listener name (also the target group's Name tag). */
  readonly name: string;
  readonly port: number;
  readonly tenant: string;
  readonly protocol: string;
  /** The listener's `tcp.idle_timeout.seconds` (lib/render/nlb.ts). */
  readonly idleTimeoutSeconds: number;
}

export interface NlbModel {
  readonly index: number;
  readonly name: string;
  readonly listeners: readonly NlbListenerModel[];
}

export interface TierModel {
  readonly role: 'proxy' | 'mail';
  readonly name: string;
  readonly instanceType: string;
  readonly amiParameter: string;
  readonly min: number;
  readonly max: number;
  readonly desired: number;
  readonly userData: string;
  /** Proxy groups register with their shard's target groups (an ASG attaches at most 50). */
  readonly inTargetGroups: boolean;
  /** NLB shard of a proxy group; undefined for the mail tier. */
  readonly shard?: number;
  /** Plan listener names whose target groups this group registers with (the shard's listeners). */
  readonly targetGroups: readonly string[];
  /** The group's lifecycle hooks: the mail tier's launch (serving) and terminate (drained) hooks; none for proxies. */
  readonly lifecycleHooks: readonly LifecycleHookModel[];
}

export interface NodeModel {
  readonly role: 'storage' | 'ldap';
  readonly name: string;
  readonly subnet: number;
  readonly instanceType: string;
  readonly amiParameter: string;
  /** Pinned image (regions.*.images): used instead of amiParameter, so a new release does not replace the node. */
  readonly imageId?: string;
  readonly userData: string;
  readonly dataVolumeGiB?: number;
  /** DisableApiTermination (the spec's regions.<region>.terminationProtection, as the CDK stacks set it). */
  readonly terminationProtection: boolean;
  /** Instance tags the role's bootstrap reads through IMDS (node index, LDAP provider/consumer). */
  readonly nodeTags: Readonly<Record<string, string>>;
}

export interface RegionModel {
  readonly role: RegionRole;
  readonly region: string;
  readonly account: string;
  readonly cidr: string;
  readonly prefix: string;
  readonly publicSubnets: readonly SubnetModel[];
  readonly privateSubnets: readonly SubnetModel[];
  readonly securityGroups: readonly SecurityGroupModel[];
  readonly nlbs: readonly NlbModel[];
  readonly tiers: readonly TierModel[];
  readonly storageNodes: readonly NodeModel[];
  readonly efs?: { readonly name: string; readonly throughputMode: string };
  readonly ldapNodes: readonly NodeModel[];
  /** Service names of the interface endpoints (S3 is a gateway endpoint besides). */
  readonly interfaceEndpoints: readonly string[];
  /** Private zones associated with this region's VPC. */
  readonly privateZones: { readonly platform: string; readonly region: string };
  readonly privateRecords: readonly PrivateRecordModel[];
  /** Outputs this region's engine exports (lib/plan/outputs.ts): the names the DR drill reads. */
  readonly outputs: readonly OutputModel[];
  /** Node roles and their IAM, boot objects, SSM parameters and secrets (lib/plan/node-access.ts). */
  readonly boot: NodeBootModel;
  /** In-place reloads of the stateless tiers (lib/plan/reload.ts): SSM document + State Manager association each. */
  readonly reloads: readonly ReloadModel[];
  readonly redis?: RedisModel;
  /** Managed AD: the Resolver outbound endpoint and forward rule for the domain in this region. */
  readonly resolver?: ResolverModel;
}

/**
 * The Redis the mail nodes of a region share for fleet-wide limits (redis.provision elasticache): an
 * ElastiCache for Valkey replication group, primary + replica across AZs, TLS in transit, encrypted at
 * rest, AUTH token from the platform's secret, in the private subnets behind the `redis` group.
 */
export interface RedisModel {
  readonly name: string;
  readonly engine: 'valkey';
  readonly engineVersion: string;
  readonly nodeType: string;
  readonly nodes: number;
  readonly port: number;
  /** The secret holding the AUTH token (created in the primary, replicated to DR). */
  readonly authSecret: string;
  /** Engine input holding the AUTH token where the engine cannot generate it (a Terraform variable). */
  readonly authInput: string;
}

export interface ManagedAdModel {
  readonly name: string;
  readonly shortName: string;
  readonly edition: 'Standard';
  /** Engine input holding the admin password (a Terraform variable, a Pulumi secret config key). */
  readonly passwordInput: string;
  /** sAMAccountName of the daemons' service account (created in OU=Users,OU=<shortName>). */
  readonly serviceAccount: string;
  /** Engine input holding the service account's password where the engine cannot generate it (a Terraform variable). */
  readonly bindPasswordInput: string;
  /** The function that creates the service account, with its physical name (lib/plan/managed-ad.ts). */
  readonly bindAccount: typeof BIND_ACCOUNT_FUNCTION & { readonly name: string };
}

export interface PlatformModel {
  readonly platform: string;
  /** The plan the model was built from: engines render the boot objects' files from it. */
  readonly plan: Plan;
  readonly regions: readonly RegionModel[];
  /** DR drills (FIS experiment templates) in the primary region, when a DR region exists. */
  readonly drills: readonly DrillModel[];
  readonly managedAd?: ManagedAdModel;
  readonly dns?: DnsModel;
  /**
   * With a DR region, the network link the CDK DisasterRecovery construct makes: VPC peering requested by
   * `requester` and accepted by `accepter`, a route to the other region's CIDR in each region's private
   * route table, and each region's region-qualified zone (`<region>.<platform>.internal`) associated with
   * the other VPC (DR nodes resolve ldap-provider.primary.…, each region's storage nodes resolve the other's gluster-N.<role>.…).
   */
  readonly link?: {
    readonly requester: RegionRole;
    readonly accepter: RegionRole;
    /**
     * Both ways: a route from `from`'s private subnets to `to`'s CIDR, and `from`'s region zone associated
     * with `to`'s VPC; across accounts the zone's owner authorizes and the VPC's owner associates.
     */
    readonly directions: readonly { readonly from: RegionRole; readonly to: RegionRole; readonly crossAccount: boolean }[];
  };
  /** Tags every resource carries. */
  readonly tags: Readonly<Record<string, string>>;
  /** The audit journal archive (spec audit, when enabled): one Object Lock bucket per region (audit-archive.ts in each engine). */
  readonly audit?: Plan['spec']['audit'];
}

/** Debian 12 from the Debian project's public SSM parameter (Graviton families get the arm64 image). */
export function amiParameter(instanceType: string): string {
  return debianAmiParameter(instanceType);
}

/**
 * A launch template's image: the pinned id, else EC2 resolves the SSM parameter when it launches
 * (`resolve:ssm:`), so planning needs no credentials and no data source reads the parameter.
 */
export function launchImage(o: { readonly amiParameter: string; readonly imageId?: string }): string {
  return o.imageId ?? `resolve:ssm:${o.amiParameter}`;
}

/** Splits the VPC into 16 equal subnets: public ones from the start, private ones from the middle. */
export function subnetCidr(vpcCidr: string, index: number): string {
  const [addr, bitsText] = vpcCidr.split('/') as [string, string];
  const bits = Number(bitsText) + 4;
  const base = addr.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
  const ip = (base + index * 2 ** (32 - bits)) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (ip >>> s) & 255).join('.')}/${bits}`;
}

function regionModel(plan: Plan, role: RegionRole): RegionModel {
  const r = role === 'primary' ? plan.regions?.primary : plan.regions?.dr;
  if (!r) throw new MailfleetError('PLAN_INVALID', `the cloud engines need regions.${role} in the spec`);
  const cidr = regionCidr(plan, role);
  const prefix = regionPrefix(plan, role);
  const azs = r.availabilityZones;
  const subnets = (pub: boolean) =>
    azs.map((az, i) => ({
      name: `${prefix}-${pub ? 'public' : 'private'}-${az}`,
      az,
      cidr: subnetCidr(cidr, pub ? i : 8 + i),
      public: pub,
    }));
  const s = plan.sizing;
  // DR runs at pilot-light size: no compute until failover (warm standby keeps one node per tier).
  const drSize = (max: number) => {
    const n = plan.dr?.mode === 'warm-standby' ? 1 : 0;
    return { min: n, max, desired: n };
  };
  const tier = (t: 'proxy' | 'mail', shard?: Plan['nlbShards'][number]): TierModel => {
    const size = t === 'proxy' ? s.proxyNodes : s.mailNodes;
    const counts = role === 'primary' ? { min: size.min, max: size.max, desired: size.desired } : drSize(size.max);
    return {
      role: t,
      // Shard 0 keeps the plain name; later shards' groups are numbered like their NLBs.
      name: shard && shard.index > 0 ? `${prefix}-${t}-${shard.index}` : `${prefix}-${t}`,
      instanceType: size.instanceType,
      amiParameter: amiParameter(size.instanceType),
      ...counts,
      userData: bootstrapText(plan, t, role),
      inTargetGroups: t === 'proxy',
      shard: shard?.index,
      targetGroups: shard ? shard.listeners : [],
      lifecycleHooks: t === 'mail' ? MAIL_LIFECYCLE_HOOKS : [],
    };
  };
  const storageNodes: NodeModel[] =
    plan.storage.kind === 'glusterfs'
      ? Array.from({ length: plan.sizing.storageNodes }, (_, i) => ({
          role: 'storage' as const,
          name: nodeName(plan, role, 'storage', i),
          subnet: i % azs.length,
          instanceType: plan.storage.kind === 'glusterfs' ? plan.storage.instanceType : '',
          amiParameter: amiParameter(plan.storage.kind === 'glusterfs' ? plan.storage.instanceType : ''),
          imageId: r.images?.storage,
          userData: bootstrapText(plan, 'storage', role),
          dataVolumeGiB: plan.storage.kind === 'glusterfs' ? plan.storage.volumeSizeGiB : undefined,
          terminationProtection: r.terminationProtection ?? true,
          // Storage hosts are numbered from 1 (gluster-1.<zone>), as the gluster renderer names them.
          nodeTags: { [NODE_INDEX_TAG]: String(i + 1) },
        }))
      : [];
  const ldapType = plan.sizing.mailNodes.instanceType;
  // Provider + consumer in the primary, one consumer in DR (the plan's ldap-instance line).
  const ldapNodes: NodeModel[] = ldapRoles(plan, role).map((ldapRole, i) => ({
    role: 'ldap' as const,
    name: nodeName(plan, role, 'ldap', i),
    subnet: i % azs.length,
    instanceType: ldapType,
    amiParameter: amiParameter(ldapType),
    imageId: r.images?.ldap,
    userData: bootstrapText(plan, 'ldap', role),
    nodeTags: { [LDAP_ROLE_TAG]: ldapRole },
    terminationProtection: r.terminationProtection ?? true,
  }));
  const byName = new Map(plan.listeners.map((l) => [l.name, l]));
  return {
    role,
    region: r.name,
    account: r.account,
    cidr,
    prefix,
    publicSubnets: subnets(true),
    privateSubnets: subnets(false),
    securityGroups: securityGroupsOf(plan, role),
    nlbs: plan.nlbShards.map((shard) => ({
      index: shard.index,
      name: shard.name,
      listeners: shard.listeners.map((n) => {
        const l = byName.get(n)!;
        return { name: l.name, port: l.publicPort, tenant: l.tenant, protocol: l.protocol, idleTimeoutSeconds: nlbIdleTimeoutSeconds(plan, l.protocol) };
      }),
    })),
    // One HAProxy group per NLB shard (an ASG attaches at most 50 target groups), one mail tier.
    tiers: [...plan.nlbShards.map((shard) => tier('proxy', shard)), tier('mail')],
    storageNodes,
    efs: plan.storage.kind === 'efs' ? { name: `${prefix}-mail`, throughputMode: plan.storage.throughputMode } : undefined,
    ldapNodes,
    interfaceEndpoints: INTERFACE_ENDPOINTS,
    privateZones: { platform: privateZoneName(plan), region: regionZoneName(plan, role) },
    privateRecords: privateRecordsOf(plan, role),
    outputs: platformOutputs(plan, role),
    boot: nodeBoot(plan, role),
    reloads: reloadsOf(plan, role),
    redis: redisModel(plan, role),
    resolver: resolverOf(plan, role),
  };
}

/** The region's provisioned Redis (redis.provision elasticache), else undefined. */
export function redisModel(plan: Plan, role: RegionRole): RedisModel | undefined {
  if (!provisionsRedis(plan)) return undefined;
  const prefix = regionPrefix(plan, role);
  return { name: `${prefix}-redis`, engine: 'valkey', engineVersion: REDIS_ENGINE_VERSION, nodeType: plan.spec.redis!.nodeType, nodes: 2, port: REDIS_PORT, authSecret: secretNames(plan).redisAuth, authInput: 'redis_auth_token' };
}

export function platformModel(plan: Plan): PlatformModel {
  const regions = [regionModel(plan, 'primary'), ...(plan.regions?.dr ? [regionModel(plan, 'dr')] : [])];
  const dir = plan.directory;
  const managedAd: ManagedAdModel | undefined =
    dir.kind === 'ldap' && dir.provision === 'managed-ad'
      ? {
          name: dnsNameOfBaseDn(dir.baseDn),
          shortName: managedAdShortName(dnsNameOfBaseDn(dir.baseDn)),
          edition: 'Standard',
          passwordInput: 'managed_ad_admin_password',
          serviceAccount: managedAdOf(dir)!.serviceAccount,
          bindPasswordInput: 'managed_ad_bind_password',
          bindAccount: { ...BIND_ACCOUNT_FUNCTION, name: `${plan.platform}-ad-bind-account` },
        }
      : undefined;
  const dns = publicDnsOf(plan);
  const pr = regions.find((r) => r.role === 'primary');
  const dr = regions.find((r) => r.role === 'dr');
  const crossAccount = pr !== undefined && dr !== undefined && pr.account !== dr.account;
  const link =
    pr && dr
      ? ({
          requester: 'dr',
          accepter: 'primary',
          directions: [
            { from: 'dr', to: 'primary', crossAccount },
            { from: 'primary', to: 'dr', crossAccount },
          ],
        } as const)
      : undefined;
  return {
    platform: plan.platform,
    plan,
    regions,
    drills: drillsOf(plan),
    managedAd,
    dns,
    link,
    tags: { 'mailfleet:platform': plan.platform },
    ...(plan.spec.audit.enabled ? { audit: plan.spec.audit } : {}),
  };
}

/**
 * The ARN of a model access target that names no resource of the engine's own (parameters, secrets,
 * `*`), for engines that spell ARNs out (Terraform, Pulumi); undefined for the private zone and boot
 * objects, whose ARNs are the engine's references.
 */
export function literalArn(model: PlatformModel, r: RegionModel, t: AccessTarget): string | undefined {
  switch (t.kind) {
    case 'ssm-parameters':
      return `arn:aws:ssm:${r.region}:${r.account}:parameter/${t.prefix}`;
    case 'ssm-parameter': {
      const other = model.regions.find((x) => x.role === t.region)!;
      return `arn:aws:ssm:${other.region}:${other.account}:parameter/${t.name.replace(/^\//, '')}`;
    }
    case 'secret':
      return `arn:aws:secretsmanager:${r.region}:${r.account}:secret:${t.name}-*`;
    case 'any':
      return '*';
    default:
      return undefined;
  }
}

/** The State Manager association targets of a reload (tag targets, as every engine spells them). */
export function reloadTargets(r: ReloadModel): { key: string; values: string[] }[] {
  return Object.entries(r.targetTags).map(([k, v]) => ({ key: `tag:${k}`, values: [v] }));
}

/** The association parameters of a reload: the hash of the node files the engine ships for the kind. */
export function reloadParameters(hash: string): Record<string, string> {
  return { [RELOAD_TRIGGER_PARAMETER]: hash };
}

/**
 * A metric alarm's properties as Terraform's aws_cloudwatch_metric_alarm and Pulumi's MetricAlarm both take
 * them (same argument names; each engine adds its own name key).
 */
export function metricAlarmProps<T>(m: MetricAlarmModel, topicArn: T) {
  return {
    alarmDescription: m.description,
    namespace: m.namespace,
    metricName: m.metricName,
    dimensions: { ...m.dimensions },
    statistic: m.statistic,
    period: m.periodSeconds,
    evaluationPeriods: m.evaluationPeriods,
    datapointsToAlarm: m.datapointsToAlarm,
    threshold: m.threshold,
    comparisonOperator: m.comparison,
    treatMissingData: m.treatMissingData,
    alarmActions: [topicArn],
  };
}

/**
 * A region's listener saturation alarms as Terraform and Pulumi write them (CDK builds them in the tier
 * construct): one per listener of each NLB shard, against that shard's minimum proxy node count.
 */
export function regionSaturationAlarms(plan: Plan, r: RegionModel): { listener: string; alarm: MetricAlarmModel }[] {
  return r.nlbs.flatMap((n) => {
    const min = r.tiers.find((t) => t.role === 'proxy' && (t.shard ?? 0) === n.index)?.min ?? 0;
    return n.listeners.map((l) => ({ listener: l.name, alarm: saturationAlarm(plan, plan.listeners.find((x) => x.name === l.name)!, min) }));
  });
}

/**
 * A reload's State Manager association as Terraform and Pulumi write it (their AWS providers share the
 * argument names): the model's name, tag targets and rollout bounds, and the hash of the node files the
 * engine ships as the parameter whose change runs the document again.
 */
export function reloadAssociationProps(rl: ReloadModel, hash: string) {
  return {
    associationName: rl.associationName,
    documentVersion: '$LATEST',
    targets: reloadTargets(rl),
    parameters: reloadParameters(hash),
    maxConcurrency: rl.maxConcurrency,
    maxErrors: rl.maxErrors,
  };
}

/** The role the drills' processes automation runs as (Terraform and Pulumi name it; CDK generates it). */
export function processesRoleName(model: Pick<PlatformModel, 'platform'>): string {
  return `${model.platform}-drill-processes`;
}

/** A FIS role statement's resource as Terraform and Pulumi spell it (literal ARNs in the primary region). */
export function fisResourceArn(model: PlatformModel, r: RegionModel, resource: FisResource): string {
  switch (resource) {
    case 'instances':
      return 'arn:aws:ec2:*:*:instance/*';
    case 'automation-definition':
      return `arn:aws:ssm:${r.region}:${r.account}:automation-definition/${processesDocumentName(model)}:*`;
    case 'automation-execution':
      return `arn:aws:ssm:${r.region}:${r.account}:automation-execution/*`;
    case 'automation-role':
      return `arn:aws:iam::${r.account}:role/${processesRoleName(model)}`;
    case '*':
      return '*';
  }
}

/** A drill's FIS actions with their parameters as Terraform and Pulumi write them (lib/plan/drills.ts drillActions). */
export function fisActions(model: PlatformModel, r: RegionModel, d: DrillModel): { name: string; actionId: string; startAfter: string[]; parameters: Record<string, string>; target?: 'nodes' }[] {
  const proxyGroups = r.tiers.filter((t) => t.role === 'proxy').map((t) => t.name);
  return drillActions(d).map((a) => ({
    name: a.name as string,
    actionId: a.actionId,
    startAfter: [...a.startAfter],
    parameters: (a.stop
      ? { startInstancesAfterDuration: a.stop.startInstancesAfterDuration }
      : {
          documentArn: `arn:aws:ssm:${r.region}:${r.account}:automation-definition/${processesDocumentName(model)}:$DEFAULT`,
          documentParameters: JSON.stringify(processesParameters(fisResourceArn(model, r, 'automation-role'), proxyGroups, a.processes!)),
          maxDuration: PROCESSES_MAX_DURATION,
        }) as Record<string, string>,
    target: a.stop ? ('nodes' as const) : undefined,
  }));
}

/** Tags of one resource: the platform's, its role (read back by the inventory extractors) and a Name. */
export function tagsFor(model: PlatformModel, role: string, name: string): Record<string, string> {
  return { ...model.tags, [ROLE_TAG]: role, Name: name };
}

/** The node (a NodeModel name) whose instance id an output carries, for the engines that map outputs to resources. */
export function outputNode(region: RegionModel, source: OutputSource): string | undefined {
  if (source.kind === 'storage-instance-id') return region.storageNodes[source.node - 1]?.name;
  if (source.kind === 'ldap-instance-id') return region.ldapNodes.find((n) => n.nodeTags[LDAP_ROLE_TAG] === source.ldapRole)?.name;
  return undefined;
}
