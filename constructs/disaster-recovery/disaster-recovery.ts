import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as fis from 'aws-cdk-lib/aws-fis';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { MailfleetError } from '../../lib/errors.js';
import { DRILL_IDS } from '../../lib/plan/outputs.js';
import { publicDnsOf } from '../../lib/plan/network.js';
import { drillFilters, drillsOf, fisRoleStatements } from '../../lib/plan/drills.js';
import type { Plan } from '../../lib/plan/types.js';
import { acknowledge, nagEnv } from '../shared/nag.js';
import { ROLE_TAG } from '../shared/tags.js';
import { modelAlarm } from '../shared/alarm.js';
import { HEALTH_CHECK_INSUFFICIENT_DATA, serviceHealthAlarm } from '../../lib/render/alarms.js';
import type * as sns from 'aws-cdk-lib/aws-sns';


/** Drills the FIS templates run, in this order; each names what it proves (the platform model declares them). */
export const FIS_DRILLS = DRILL_IDS;

export interface DisasterRecoveryProps {
  /** The plan: DNS names, DR mode, regions. */
  readonly plan: Plan;
  /** This region's VPC. */
  readonly vpc: ec2.IVpc;
  /**
   * This side is the standby (DR) region: SECONDARY records, no health checks or drills.
   * @default false
   */
  readonly standby?: boolean;
  /** This region's NLBs in shard order; each gets a failover record (and, in the primary, a health check). */
  readonly loadBalancers: elbv2.INetworkLoadBalancer[];
  /**
   * What each shard's failover health check watches, in shard order: the NLB's full name and the full
   * name of its first listener's target group (none for an emptied shard). The check follows an alarm on
   * the target group's HealthyHostCount: HAProxy's /healthz says 503 while no mail node answers.
   * @default - none: required unless standby
   */
  readonly healthTargets?: readonly { readonly loadBalancerFullName: string; readonly targetGroupFullName?: string }[];
  /**
   * Topic the failover alarms notify.
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;
  /** This region's cross-region zone (primary.<platform>.internal or dr.<platform>.internal). */
  readonly regionZone: route53.PrivateHostedZone;
  /**
   * The other region's VPC id: the standby side requests a peering to it; both sides associate their
   * cross-region zone with it. Known once the other stack is deployed (cdk context).
   * @default - no peering, no zone association
   */
  readonly peerVpcId?: string;
  /**
   * An accepted peering connection to route the other region's CIDR through (the primary side).
   * @default - no routes
   */
  readonly peeringConnectionId?: string;
  /**
   * The other region's VPC CIDR.
   * @default - required with peerVpcId or peeringConnectionId
   */
  readonly peerCidr?: string;
  /**
   * The other region's name.
   * @default - required with peerVpcId
   */
  readonly peerRegion?: string;
}

/**
 * The failover plumbing of one region: Route 53 failover records for every public name (PRIMARY with
 * a health check, SECONDARY in DR), the network link between regions (VPC peering, routes, private
 * zone association), and FIS experiment templates for drills in the primary.
 */
export class DisasterRecovery extends Construct {
  public readonly healthChecks: route53.CfnHealthCheck[] = [];
  public readonly records: route53.CfnRecordSet[] = [];
  public readonly experimentTemplates: fis.CfnExperimentTemplate[] = [];
  public readonly peering?: ec2.CfnVPCPeeringConnection;
  public readonly fisRole?: iam.Role;

  constructor(scope: Construct, id: string, props: DisasterRecoveryProps) {
    super(scope, id);
    const { plan } = props;
    const standby = props.standby ?? false;
    if (!standby && props.loadBalancers.length !== (props.healthTargets?.length ?? 0))
      throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: loadBalancers and healthTargets must be the same length');
    if ((props.peerVpcId || props.peeringConnectionId) && !props.peerCidr)
      throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: peerVpcId or peeringConnectionId needs peerCidr');
    if (props.peerVpcId && !props.peerRegion) throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: peerVpcId needs peerRegion');
    const dns = publicDnsOf(plan);

    props.loadBalancers.forEach((nlb, shard) => {
      let healthCheck: route53.CfnHealthCheck | undefined;
      if (!standby) {
        // The service, not a TCP accept: healthy HAProxy targets, each healthy only while a mail node answers (docs/dr.md).
        const target = props.healthTargets![shard]!;
        const alarm = modelAlarm(this, `ServiceHealth${shard}`, serviceHealthAlarm(target.loadBalancerFullName, target.targetGroupFullName), props.alarmTopic);
        healthCheck = new route53.CfnHealthCheck(this, `Health${shard}`, {
          healthCheckConfig: {
            type: 'CLOUDWATCH_METRIC',
            alarmIdentifier: { name: alarm.alarmName, region: Stack.of(this).region },
            insufficientDataHealthStatus: HEALTH_CHECK_INSUFFICIENT_DATA,
          },
          healthCheckTags: [{ key: 'Name', value: `${plan.platform}-nlb-${shard}` }],
        });
        this.healthChecks.push(healthCheck);
      }
      if (dns?.hostedZoneId)
        this.records.push(
          new route53.CfnRecordSet(this, `Failover${shard}`, {
            hostedZoneId: dns.hostedZoneId,
            name: `${dns.records[shard]!.name}.`,
            type: 'A',
            setIdentifier: `${plan.platform}-${standby ? 'dr' : 'primary'}-${shard}`,
            failover: standby ? 'SECONDARY' : 'PRIMARY',
            healthCheckId: healthCheck?.attrHealthCheckId,
            aliasTarget: {
              dnsName: nlb.loadBalancerDnsName,
              hostedZoneId: nlb.loadBalancerCanonicalHostedZoneId,
              // The standby answers only when the primary is unhealthy; its own NLB health matters then.
              evaluateTargetHealth: standby,
            },
          }),
        );
    });

    const routeTables = [...new Set(props.vpc.privateSubnets.map((s) => s.routeTable.routeTableId))];
    if (props.peerVpcId) {
      if (standby) {
        this.peering = new ec2.CfnVPCPeeringConnection(this, 'Peering', {
          vpcId: props.vpc.vpcId,
          peerVpcId: props.peerVpcId,
          peerRegion: props.peerRegion,
          tags: [{ key: 'Name', value: `${plan.platform}-dr-to-primary` }],
        });
        routeTables.forEach((rt, i) =>
          new ec2.CfnRoute(this, `PeerRoute${i}`, { routeTableId: rt, destinationCidrBlock: props.peerCidr, vpcPeeringConnectionId: this.peering!.ref }),
        );
      }
      // The other region resolves this region's cross-region names (DR consumer → provider, geo-replication → DR node).
      (props.regionZone.node.defaultChild as route53.CfnHostedZone).addPropertyOverride('VPCs.1', {
        VPCId: props.peerVpcId,
        VPCRegion: props.peerRegion,
      });
    }
    if (props.peeringConnectionId && !standby)
      routeTables.forEach((rt, i) =>
        new ec2.CfnRoute(this, `PeerRoute${i}`, { routeTableId: rt, destinationCidrBlock: props.peerCidr, vpcPeeringConnectionId: props.peeringConnectionId }),
      );

    if (!standby) this.fisRole = this.drills(plan);
  }

  /** FIS templates: a storage node down (heal), a proxy AZ lost (NLB shifts), the primary proxies down (DNS fails over). */
  private drills(plan: Plan): iam.Role {
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'FisRole', {
      assumedBy: new iam.ServicePrincipal('fis.amazonaws.com'),
      description: `mailfleet ${plan.platform} DR drills`,
    });
    const instances = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    for (const st of fisRoleStatements(plan.platform))
      role.addToPolicy(new iam.PolicyStatement({ actions: st.actions, resources: [st.resource === 'instances' ? instances : '*'], conditions: st.conditions }));
    const env = nagEnv(role);
    acknowledge(role, `AwsSolutions-IAM5[Resource::arn:${env.partition}:ec2:${env.region}:${env.account}:instance/*]`, 'FIS picks instances at run time by tag; the statement is limited to this platform\'s instances by the mailfleet:platform tag condition.');
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeInstances supports no resource-level permissions; FIS needs it to resolve tag targets.');
    // The templates as the platform model declares them (lib/plan/drills.ts), as Terraform and Pulumi write them.
    for (const d of drillsOf(plan))
      this.experimentTemplates.push(
        new fis.CfnExperimentTemplate(this, `Drill-${d.id}`, {
          description: d.description,
          roleArn: role.roleArn,
          stopConditions: [{ source: 'none' }],
          targets: {
            nodes: {
              resourceType: 'aws:ec2:instance',
              resourceTags: { [ROLE_TAG]: d.nodeRole, 'mailfleet:platform': plan.platform },
              filters: drillFilters(d),
              selectionMode: d.selectionMode,
            },
          },
          actions: { [d.id]: { actionId: d.actionId, parameters: { startInstancesAfterDuration: d.startAfter }, targets: { Instances: 'nodes' } } },
          tags: { Name: `${plan.platform}-${d.id}`, 'mailfleet:platform': plan.platform },
        }),
      );
    return role;
  }
}
