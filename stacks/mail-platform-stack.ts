import { Annotations, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Tags, Validations, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { archiveStorageClassOf, AuditArchive, objectLockRetentionOf } from '../constructs/audit-archive/index.js';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { privateRecordsOf, publicDnsOf, regionCidr } from '../lib/plan/network.js';
import { MailfleetError } from '../lib/errors.js';
import { platformOutputs, type OutputSource } from '../lib/plan/outputs.js';
import type { Plan } from '../lib/plan/types.js';
import { logGroupNames } from '../lib/render/cloudwatch-agent.js';
import { alarmTopicAutoScalingKeyStatement, alarmTopicKeyStatement, alarmTopicPublishStatement, selfSignedCertAlarm } from '../lib/render/alarms.js';
import { modelAlarm } from '../constructs/shared/alarm.js';
import { privateZoneName, provisionsRedis, regionZoneName, type RegionRole } from '../lib/render/node-layout.js';
import { FleetRedis } from '../constructs/fleet-redis/fleet-redis.js';
import { DisasterRecovery, FIS_DRILLS } from '../constructs/disaster-recovery/disaster-recovery.js';
import { EfsMailStore } from '../constructs/efs-mail-store/efs-mail-store.js';
import { FlowControlTier } from '../constructs/flow-control-tier/flow-control-tier.js';
import { GlusterStorageCluster } from '../constructs/gluster-storage-cluster/gluster-storage-cluster.js';
import { LdapDirectory } from '../constructs/ldap-directory/ldap-directory.js';
import { managedAdOf } from '../lib/plan/managed-ad.js';
import { MailNetwork } from '../constructs/mail-network/mail-network.js';
import { MailServerFleet } from '../constructs/mail-server-fleet/mail-server-fleet.js';

export interface MailPlatformStackProps extends StackProps {
  readonly plan: Plan;
  /** Which region of the spec this stack deploys. */
  readonly regionRole: RegionRole;
}

/** One region of the platform, wired from the plan. The DR region runs the same parts at pilot-light size. */
export class MailPlatformStack extends Stack {
  public readonly network: MailNetwork;
  public readonly flowControl: FlowControlTier;
  public readonly fleet: MailServerFleet;
  /** The audit journal bucket and its auditor role (audit.enabled). */
  public readonly auditArchive?: AuditArchive;
  public readonly storage: GlusterStorageCluster | EfsMailStore;
  public readonly directory?: LdapDirectory;
  /** The mail nodes' Redis (redis.provision elasticache). */
  public readonly redis?: FleetRedis;
  public readonly disasterRecovery?: DisasterRecovery;
  public readonly alarmTopic: sns.Topic;
  /** The alarm topic's customer-managed key (CloudWatch may use it). */
  public readonly alarmTopicKey: kms.Key;
  public readonly regionZone: route53.PrivateHostedZone;
  private readonly zones: string[];

  constructor(scope: Construct, id: string, props: MailPlatformStackProps) {
    const { plan, regionRole } = props;
    const region = regionRole === 'primary' ? plan.regions?.primary : plan.regions?.dr;
    if (!region) throw new MailfleetError('PLAN_INVALID', `the CDK stacks need regions.${regionRole} in the spec`);
    super(scope, id, {
      ...props,
      env: { account: region.account, region: region.name },
      description: `mailfleet ${plan.platform}: ${regionRole} region (${region.name})`,
      // The spec decides whether `cdk destroy` may remove this region (default: protected).
      terminationProtection: props.terminationProtection ?? region.terminationProtection,
    });
    // Explicit AZs: the stack never asks AWS (no lookups, offline synth).
    this.zones = [...region.availabilityZones];
    Tags.of(this).add('mailfleet:platform', plan.platform);
    Validations.of(this).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason: 'Availability zones come from the spec on purpose: synth never looks them up, and storage nodes are pinned one per zone.',
    });
    const dr = plan.regions?.dr;
    const primaryCidr = regionCidr(plan, 'primary');
    const drCidr = regionCidr(plan, 'dr');
    const standby = regionRole === 'dr';
    const replicaRegions = !standby && dr ? [dr.name] : [];
    // Pilot light: no compute in DR until failover; warm standby keeps one node per tier.
    const standbyNodes = plan.dr?.mode === 'warm-standby' ? 1 : 0;

    // A customer-managed key: CloudWatch cannot publish to a topic under the AWS-managed alias/aws/sns key.
    this.alarmTopicKey = new kms.Key(this, 'AlarmsKey', {
      description: `mailfleet ${plan.platform} ${regionRole}: alarm topic encryption`,
      enableKeyRotation: true,
    });
    this.alarmTopicKey.addToResourcePolicy(iam.PolicyStatement.fromJson(alarmTopicKeyStatement(this.account)));
    // The tiers' Auto Scaling groups send their notifications to the same topic.
    this.alarmTopicKey.addToResourcePolicy(iam.PolicyStatement.fromJson(alarmTopicAutoScalingKeyStatement(this.account, this.partition)));
    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      displayName: `mailfleet ${plan.platform} ${regionRole} alarms`,
      masterKey: this.alarmTopicKey,
      enforceSSL: true,
    });
    this.alarmTopic.addToResourcePolicy(iam.PolicyStatement.fromJson(alarmTopicPublishStatement(this.account, this.alarmTopic.topicArn)));
    for (const [key, name] of Object.entries(logGroupNames(plan)))
      new logs.LogGroup(this, `Logs-${key}`, { logGroupName: name, retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN });

    this.network = new MailNetwork(this, 'Network', {
      cidr: standby ? drCidr : primaryCidr,
      availabilityZones: this.zones,
      privateZoneName: privateZoneName(plan),
    });
    const vpc = this.network.vpc;
    const privateZone = this.network.privateZone!;
    this.regionZone = new route53.PrivateHostedZone(this, 'RegionZone', { zoneName: regionZoneName(plan, regionRole), vpc });

    // Audit journal archive (docs/audit.md), one per region: this region's mail nodes may only add journal objects to it.
    if (plan.spec.audit.enabled)
      this.auditArchive = new AuditArchive(this, 'Audit', {
        objectLockRetention: objectLockRetentionOf(plan.spec.audit),
        archiveAfterDays: plan.spec.audit.archiveAfterDays,
        archiveStorageClass: archiveStorageClassOf(plan.spec.audit.archiveStorageClass),
      });
    this.fleet = new MailServerFleet(this, 'Mail', {
      auditArchive: this.auditArchive,
      plan,
      vpc,
      privateZone,
      region: regionRole,
      minNodes: standby ? standbyNodes : undefined,
      createSecrets: !standby,
      secretReplicaRegions: replicaRegions,
      alarmTopic: this.alarmTopic,
    });
    this.flowControl = new FlowControlTier(this, 'FlowControl', {
      plan,
      vpc,
      region: regionRole,
      minNodesPerShard: standby ? standbyNodes : undefined,
      alarmTopic: this.alarmTopic,
    });
    this.fleet.allowProxyFrom(this.flowControl.securityGroup);
    // Until a real certificate is in the TLS secret, nodes serve a generated one and report it (health timer → agent).
    modelAlarm(this, 'SelfSignedCertificate', selfSignedCertAlarm(plan, this.fleet.autoScalingGroup.autoScalingGroupName), this.alarmTopic);
    // Fleet-wide limits: the region's own Redis, reachable from the mail nodes only.
    if (provisionsRedis(plan)) {
      this.redis = new FleetRedis(this, 'Redis', { plan, vpc, region: regionRole, authSecretDependency: this.fleet.redisAuthSecret });
      this.redis.allowClientsFrom(this.fleet);
    }

    if (plan.storage.kind === 'glusterfs') {
      const cluster = new GlusterStorageCluster(this, 'Storage', {
        plan,
        machineImage: this.statefulImage('storage', region.images?.storage),
        vpc,
        privateZone,
        region: regionRole,
        terminationProtection: region.terminationProtection,
        // Both ways: primary → DR geo-replication, DR → primary for the drill's fail-back copy.
        geoReplicationPeerCidr: standby ? primaryCidr : dr ? drCidr : undefined,
      });
      cluster.allowClientsFrom(this.fleet.securityGroup);
      // Every storage node by its own name (gluster-N.<role>.…: its hostname, peer and brick name), in the
      // region zone the other VPC resolves: geo-replication reaches each DR node, the fail-back copy each
      // primary node. Node 1 keeps the id it had when it was the only one: a new id would make
      // CloudFormation create the record again before deleting it, which Route 53 refuses.
      for (const rec of privateRecordsOf(plan, regionRole).filter((r) => r.zone === 'region' && r.nodeKind === 'storage'))
        new route53.ARecord(this, rec.nodeIndex === 0 ? 'GeoReplicationTarget' : `GeoReplicationTarget${rec.nodeIndex! + 1}`, {
          zone: this.regionZone,
          recordName: `${rec.name}.`,
          ttl: Duration.seconds(rec.ttl),
          target: route53.RecordTarget.fromIpAddresses(cluster.instances[rec.nodeIndex!]!.attrPrivateIp),
        });
      this.storage = cluster;
    } else {
      const store = new EfsMailStore(this, 'Storage', {
        plan,
        vpc,
        privateZone,
        // The DR file system is the replication target; the DR stack's link starts the replication
        // (constructs/disaster-recovery), so the primary's template never names the other region's file system.
        replicationTarget: standby,
      });
      store.allowClientsFrom(this.fleet.securityGroup);
      this.storage = store;
    }

    if (dr) {
      this.disasterRecovery = new DisasterRecovery(this, 'DisasterRecovery', {
        plan,
        vpc,
        standby,
        loadBalancers: this.flowControl.loadBalancers,
        healthTargets: this.flowControl.shards.map((s) => ({
          loadBalancerFullName: s.loadBalancer.loadBalancerFullName,
          targetGroupFullName: s.listeners[0] ? this.flowControl.targetGroups.get(s.listeners[0].name)!.targetGroupFullName : undefined,
        })),
        alarmTopic: this.alarmTopic,
        regionZone: this.regionZone,
        proxyGroupNames: this.flowControl.autoScalingGroups.map((g) => g.autoScalingGroupName),
        fileSystemId: this.storage instanceof EfsMailStore ? this.storage.fileSystem.fileSystemId : undefined,
        peerCidr: standby ? primaryCidr : drCidr,
      });
      if (this.disasterRecovery.peering) new CfnOutput(this, 'PeeringConnectionId', { value: this.disasterRecovery.peering.ref });
    } else if (plan.spec.dns?.hostedZoneId) {
      // One region: a plain alias per shard (with DR, DisasterRecovery writes the failover pairs).
      const zoneId = plan.spec.dns.hostedZoneId;
      const names = publicDnsOf(plan)!.records;
      this.flowControl.loadBalancers.forEach(
        (nlb, shard) =>
          new route53.CfnRecordSet(this, `PublicName${shard}`, {
            hostedZoneId: zoneId,
            name: `${names[shard]!.name}.`,
            type: 'A',
            aliasTarget: { dnsName: nlb.loadBalancerDnsName, hostedZoneId: nlb.loadBalancerCanonicalHostedZoneId, evaluateTargetHealth: true },
          }),
      );
    }

    // After DisasterRecovery: the link carries the Managed AD controllers' addresses from the primary to DR.
    if (plan.directory.kind === 'ldap') {
      const peerLink = this.disasterRecovery?.peerLink;
      this.directory = new LdapDirectory(this, 'Directory', {
        plan,
        machineImage: plan.directory.provision === 'openldap-pair' ? this.statefulImage('ldap', region.images?.ldap) : undefined,
        vpc,
        privateZone,
        region: regionRole,
        terminationProtection: region.terminationProtection,
        crossRegionZone: standby ? undefined : this.regionZone,
        replicationPeerCidr: !standby && dr ? drCidr : undefined,
        createSecrets: !standby,
        secretReplicaRegions: replicaRegions,
        // The primary's ad-dns-ips link fact (Managed AD always has two controllers); none across accounts (no link).
        managedAdDnsIps:
          standby && peerLink && managedAdOf(plan.directory) ? [0, 1].map((i) => Fn.select(i, Fn.split(',', peerLink.fact('ad-dns-ips')))) : undefined,
      });
      this.directory.allowClientsFrom(this.fleet.securityGroup);
      if (this.directory.microsoftAd) {
        const ips = Fn.join(',', this.directory.microsoftAd.attrDnsIpAddresses);
        // The DR region's forward rule reads these through the link.
        this.disasterRecovery?.linkFacts.publish('ad-dns-ips', ips);
        new CfnOutput(this, 'ManagedAdDnsIps', { value: ips, description: 'Managed AD domain controller DNS addresses' });
      }
    }

    for (const o of platformOutputs(plan, regionRole)) new CfnOutput(this, o.name, { value: this.outputValue(o.source), description: o.description });
  }

  /**
   * Storage and LDAP nodes keep their data and peer identity: they boot the image pinned in the spec
   * (regions.*.images), which changes only when the spec does. Without one they follow the latest image
   * and a deploy after a new release replaces them: synth warns.
   */
  private statefulImage(kind: 'storage' | 'ldap', imageId: string | undefined): ec2.IMachineImage | undefined {
    if (imageId) return ec2.MachineImage.genericLinux({ [this.region]: imageId });
    Annotations.of(this).addWarningV2(
      `mailfleet:unpinned-${kind}-image`,
      `${kind} nodes follow the latest Debian 12 image (the Debian project's public SSM parameter): a new release replaces them; pin regions.*.images.${kind}`,
    );
    return undefined;
  }

  /** The value of a model output (lib/plan/outputs.ts) in this stack: the names every engine exports. */
  private outputValue(source: OutputSource): string {
    const must = <T>(v: T | undefined): T => {
      if (v === undefined) throw new MailfleetError('INTERNAL', `the stack has no resource for output ${source.kind}`);
      return v;
    };
    const storage = this.storage;
    switch (source.kind) {
      case 'vpc-id':
        return this.network.vpc.vpcId;
      case 'nlb-dns':
        return must(this.flowControl.loadBalancers[source.shard]).loadBalancerDnsName;
      case 'mail-asg-name':
        return this.fleet.autoScalingGroup.autoScalingGroupName;
      case 'storage-host':
        return source.value;
      case 'storage-instance-id':
        return must(storage instanceof GlusterStorageCluster ? storage.instances[source.node - 1] : undefined).ref;
      case 'efs-id':
        return must(storage instanceof EfsMailStore ? storage : undefined).fileSystem.fileSystemId;
      case 'ldap-instance-id': {
        const id = source.ldapRole === 'provider' ? 'Provider' : 'Consumer';
        return must(this.directory?.instances.find((i) => i.node.id === id)).ref;
      }
      case 'health-check-id':
        return must(this.disasterRecovery?.healthChecks[source.shard]).attrHealthCheckId;
      case 'fis-template-id':
        return must(this.disasterRecovery?.experimentTemplates[FIS_DRILLS.indexOf(source.drill)]).ref;
    }
  }

  override get availabilityZones(): string[] {
    return this.zones;
  }
}
