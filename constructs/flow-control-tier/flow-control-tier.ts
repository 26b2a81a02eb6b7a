import { Duration, NestedStack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import type * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { MailfleetError } from '../../lib/errors.js';
import type { NlbShard, Plan, PlannedListener } from '../../lib/plan/types.js';
import { NLB_MAX_LISTENERS } from '../../lib/plan/index.js';
import { userData } from '../../lib/render/cloud-init.js';
import { NLB_HEALTH_CHECK, nlbIdleTimeoutSeconds } from '../../lib/render/nlb.js';
import { withNamePrefix, type RegionRole } from '../../lib/render/node-layout.js';
import { listenerPortRanges, securityGroupOf } from '../../lib/plan/network.js';
import { acknowledge } from '../shared/nag.js';
import { NodeFilesBundle } from '../shared/node-files-bundle.js';
import { contentHash, nodeLaunchTemplate } from '../shared/launch-template.js';
import { nodeRole } from '../shared/node-role.js';
import { tagRole } from '../shared/tags.js';
import { modelSecurityGroup } from '../shared/security-rules.js';
import { inPlaceReload, type ReloadResources } from '../shared/reload.js';
import { reloadsOf } from '../../lib/plan/reload.js';
import { clamp, validateProps } from '../shared/validation.js';
import { modelAlarm } from '../shared/alarm.js';
import { SATURATION_RATIO, saturationAlarm } from '../../lib/render/alarms.js';

/** AWS quota: target groups one Auto Scaling group can attach. With ≤ 50 listeners per NLB, one group per shard fits. */
export const ASG_MAX_TARGET_GROUPS = 50;

export interface FlowControlTierProps {
  /** The plan: listeners, NLB shards, proxy sizing and the rendered HAProxy configuration. */
  readonly plan: Plan;
  /** VPC the load balancers and HAProxy nodes run in. */
  readonly vpc: ec2.IVpc;
  /**
   * Root of the physical names this construct creates and its nodes read (SSM parameters
   * `/<namePrefix>/…`, secrets `<namePrefix>/…`, log groups, the mail tier's name in the private zone),
   * so the same plan can be composed twice in one stack or account. Give every construct of one
   * instance the same value.
   * @default - `mailfleet/<plan.platform>`, the names the platform stacks use
   */
  readonly namePrefix?: string;
  /**
   * Region the tier runs in (selects the node files and pilot-light sizing in the stacks).
   * @default 'primary'
   */
  readonly region?: RegionRole;
  /**
   * HAProxy nodes per NLB shard, minimum.
   * @default - plan.sizing.proxyNodes.min
   */
  readonly minNodesPerShard?: number;
  /**
   * HAProxy nodes per NLB shard, maximum.
   * @default - plan.sizing.proxyNodes.max
   */
  readonly maxNodesPerShard?: number;
  /**
   * HAProxy nodes per NLB shard at deploy time (every deploy resets the group to it).
   * @default - not set: each group starts at minNodesPerShard and scales on CPU
   */
  readonly desiredNodesPerShard?: number;
  /**
   * Cross-zone load balancing on every NLB. Off keeps traffic in its AZ (no inter-AZ data charges) but
   * needs HAProxy nodes in every AZ; on spreads flows evenly over all nodes.
   * @default true
   */
  readonly crossZoneEnabled?: boolean;
  /**
   * Put each NLB shard (its load balancer, listeners, target groups, alarms and HAProxy group) in a
   * nested stack, so no template nears CloudFormation's 500-resource quota as tenants grow.
   * @default - true when the plan has more than one NLB shard
   */
  readonly nestShards?: boolean;
  /**
   * Topic for saturation alarms and Auto Scaling notifications.
   * @default - alarms without actions, no notifications
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * A listener's saturation alarm fires at this share of its connection cap (HAProxy maxconn times
   * the shard's minimum node count).
   * @default 0.8
   */
  readonly saturationRatio?: number;
  /**
   * Internet-facing load balancers in public subnets; false makes them internal in the node subnets.
   * @default true
   */
  readonly internetFacing?: boolean;
  /**
   * Subnets of the HAProxy nodes.
   * @default - the VPC's private subnets with egress
   */
  readonly nodeSubnets?: ec2.SubnetSelection;
  /**
   * Image of the HAProxy nodes.
   * @default - Debian 12 from the Debian project's public SSM parameter (or the spec's pinned image)
   */
  readonly machineImage?: ec2.IMachineImage;
}

/** One NLB shard as built: its scope (a nested stack or a plain construct) and parts. */
export interface FlowControlShard {
  readonly index: number;
  readonly scope: Construct;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly listeners: readonly PlannedListener[];
}

/**
 * The flow-control edge: NLBs with one TCP listener per tenant × protocol (sharded at 50 listeners
 * per NLB), each forwarding with PROXY v2 to a target group of HAProxy nodes running the rendered
 * haproxy.cfg, where the per-listener connection caps live. One HAProxy Auto Scaling group per shard
 * (a group attaches at most 50 target groups); every node carries the whole configuration.
 */
export class FlowControlTier extends Construct implements ec2.IConnectable {
  public readonly loadBalancers: elbv2.NetworkLoadBalancer[] = [];
  public readonly autoScalingGroups: autoscaling.AutoScalingGroup[] = [];
  public readonly shards: FlowControlShard[] = [];
  /** By plan listener name. */
  public readonly listeners = new Map<string, elbv2.NetworkListener>();
  public readonly targetGroups = new Map<string, elbv2.NetworkTargetGroup>();
  public readonly saturationAlarms = new Map<string, cw.Alarm>();
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly role: iam.Role;
  public readonly nodeFiles: NodeFilesBundle;
  /** The in-place reload (SSM document + State Manager association) of running HAProxy nodes. */
  public readonly reload: ReloadResources;
  /** The HAProxy nodes' security group, for `allowTo` the mail tier (`MailServerFleet.allowProxyFrom` takes it too). */
  public readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, props: FlowControlTierProps) {
    super(scope, id);
    const { vpc } = props;
    const plan = withNamePrefix(props.plan, props.namePrefix);
    const sizing = plan.sizing.proxyNodes;
    const min = props.minNodesPerShard ?? sizing.min;
    const max = props.maxNodesPerShard ?? sizing.max;
    const ratio = props.saturationRatio ?? SATURATION_RATIO;
    if (plan.listeners.length === 0) throw new MailfleetError('PLAN_INVALID', 'FlowControlTier: the plan has no listeners');
    const desired = props.desiredNodesPerShard;
    validateProps(this, 'FlowControlTier', [
      { failed: min > max, message: `minNodesPerShard ${min} exceeds maxNodesPerShard ${max}` },
      { failed: desired !== undefined && (desired < min || desired > max), message: `desiredNodesPerShard ${desired} is outside minNodesPerShard..maxNodesPerShard (${min}..${max})` },
      { failed: !(ratio > 0 && ratio <= 1), message: `saturationRatio must be in (0, 1], got ${ratio}` },
    ]);
    for (const s of plan.nlbShards)
      if (s.listeners.length > Math.min(NLB_MAX_LISTENERS, ASG_MAX_TARGET_GROUPS))
        throw new MailfleetError('PLAN_INVALID', `FlowControlTier: NLB shard ${s.index} has ${s.listeners.length} listeners, over ${NLB_MAX_LISTENERS}`);
    const nest = props.nestShards ?? plan.nlbShards.length > 1;
    const nodeSubnets = props.nodeSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };

    this.securityGroup = modelSecurityGroup(this, vpc, securityGroupOf(plan, props.region ?? 'primary', 'proxy')!);
    this.connections = this.securityGroup.connections;
    acknowledge(
      this.securityGroup,
      'AwsSolutions-EC23',
      'A public mail service: NLB instance targets see client addresses, so tenant listener ports are open to the internet; nodes sit in private subnets, reachable only through NLB listeners.',
    );

    this.nodeFiles = new NodeFilesBundle(this, 'NodeFiles', { plan, role: 'proxy', region: props.region });
    this.role = nodeRole(this, 'Role', plan, 'proxy', props.region ?? 'primary', { objects: { 'node-files/proxy': this.nodeFiles.asset } });
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: sizing.instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      userData: userData(plan, 'proxy'),
      rootVolumeGiB: 16,
      machineImage: props.machineImage,
      // A new haproxy.cfg (a tenant added) rolls through the shards' groups instead of staying in S3.
      contentHash: contentHash(this.nodeFiles.asset.assetHash),
    });
    tagRole(this.launchTemplate, 'proxy');
    // Running nodes get a new haproxy.cfg in place: the master reloads, established sessions stay.
    this.reload = inPlaceReload(this, reloadsOf(plan, props.region ?? 'primary').find((r) => r.kind === 'proxy')!, contentHash(this.nodeFiles.asset.assetHash));

    const byName = new Map(plan.listeners.map((l) => [l.name, l]));
    for (const shard of plan.nlbShards) {
      const shardScope = nest ? new NestedStack(this, `Shard${shard.index}`, { description: `${shard.name}: NLB shard ${shard.index}` }) : new Construct(this, `Shard${shard.index}`);
      const listeners = shard.listeners.map((n) => byName.get(n)!);
      // Clamped: conflicting props are reported by the validation above, at synth, with the rest.
      this.shards.push(this.buildShard(shardScope, shard, listeners, { props, min: Math.min(min, max), max, ratio: clamp(ratio, 0.01, 1), nodeSubnets }));
    }
  }

  private buildShard(
    scope: Construct,
    shard: NlbShard,
    listeners: PlannedListener[],
    o: { props: FlowControlTierProps; min: number; max: number; ratio: number; nodeSubnets: ec2.SubnetSelection },
  ): FlowControlShard {
    const { props } = o;
    const internetFacing = props.internetFacing ?? true;
    const nlb = new elbv2.NetworkLoadBalancer(scope, 'Nlb', {
      vpc: props.vpc,
      internetFacing,
      crossZoneEnabled: props.crossZoneEnabled ?? true,
      vpcSubnets: internetFacing ? { subnetType: ec2.SubnetType.PUBLIC } : o.nodeSubnets,
      // The feature flag's default NLB group has no inbound rules and no outbound ones, which would drop
      // every flow; the proxy group filters instead (client addresses are preserved), as in the other engines.
      disableSecurityGroups: true,
    });
    tagRole(nlb, 'nlb');
    acknowledge(
      nlb,
      'AwsSolutions-ELB2',
      'NLB access logs only record TLS listeners; these listeners are TCP. HAProxy logs every connection and VPC flow logs cover the network.',
    );
    const asg = new autoscaling.AutoScalingGroup(scope, 'Proxy', {
      vpc: props.vpc,
      vpcSubnets: o.nodeSubnets,
      launchTemplate: this.launchTemplate,
      minCapacity: o.min,
      maxCapacity: o.max,
      // Unset unless asked for: a set desired capacity resets a scaled-out group on every deploy.
      desiredCapacity: props.desiredNodesPerShard === undefined ? undefined : clamp(props.desiredNodesPerShard, o.min, o.max),
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: Duration.minutes(10),
      }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({ maxBatchSize: 1, minInstancesInService: o.min }),
      notifications: props.alarmTopic ? [{ topic: props.alarmTopic }] : undefined,
    });
    tagRole(asg, 'proxy');
    asg.scaleOnCpuUtilization('Cpu', { targetUtilizationPercent: 60 });
    if (!props.alarmTopic)
      acknowledge(asg, 'AwsSolutions-AS3', 'No alarm topic was given to FlowControlTier; the stacks pass one.');

    for (const l of listeners) {
      const tg = new elbv2.NetworkTargetGroup(scope, `Tg-${l.name}`, {
        vpc: props.vpc,
        port: l.publicPort,
        protocol: elbv2.Protocol.TCP,
        targetType: elbv2.TargetType.INSTANCE,
        proxyProtocolV2: true,
        healthCheck: {
          protocol: elbv2.Protocol.HTTP,
          port: String(NLB_HEALTH_CHECK.port),
          path: NLB_HEALTH_CHECK.path,
          interval: Duration.seconds(NLB_HEALTH_CHECK.intervalSeconds),
          healthyThresholdCount: NLB_HEALTH_CHECK.healthyThreshold,
          unhealthyThresholdCount: NLB_HEALTH_CHECK.unhealthyThreshold,
        },
      });
      const listener = nlb.addListener(`L-${l.name}`, {
        port: l.publicPort,
        protocol: elbv2.Protocol.TCP,
        defaultTargetGroups: [tg],
        // The 350 s default cuts quiet IMAP sessions (and IDLE between keepalives) before HAProxy or the daemon would.
        tcpIdleTimeout: Duration.seconds(nlbIdleTimeoutSeconds(props.plan, l.protocol)),
      });
      asg.attachToNetworkTargetGroup(tg);
      // The metric HAProxy's exporter gives the nodes' CloudWatch agent (lib/render/cloudwatch-agent.ts), summed over nodes.
      const alarm = modelAlarm(scope, `Saturation-${l.name}`, saturationAlarm(props.plan, l, o.min, o.ratio), props.alarmTopic);
      this.listeners.set(l.name, listener);
      this.targetGroups.set(l.name, tg);
      this.saturationAlarms.set(l.name, alarm);
    }
    this.loadBalancers.push(nlb);
    this.autoScalingGroups.push(asg);
    return { index: shard.index, scope, loadBalancer: nlb, autoScalingGroup: asg, listeners };
  }
}

/** Listener port rules of the proxy group (the platform model's merge, lib/plan/network.ts). */
export const listenerPortRules = listenerPortRanges;
