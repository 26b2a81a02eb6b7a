import { Annotations, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as fis from 'aws-cdk-lib/aws-fis';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { MailfleetError } from '../../lib/errors.js';
import { DRILL_IDS } from '../../lib/plan/outputs.js';
import { publicDnsOf } from '../../lib/plan/network.js';
import {
  drillActions,
  drillFilters,
  drillsOf,
  fisRoleStatements,
  processesDocument,
  processesDocumentName,
  processesParameters,
  processesRoleStatements,
  PROCESSES_MAX_DURATION,
  type FisResource,
} from '../../lib/plan/drills.js';
import type { Plan } from '../../lib/plan/types.js';
import { LINK_OWNER } from '../../lib/plan/link.js';
import type { RegionRole } from '../../lib/render/node-layout.js';
import { LinkFacts, PeerLink } from './region-link.js';
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
   * This region's mail file system (EFS storage): published as a link fact; in the link owner, the
   * destination the other region's file system replicates into.
   * @default - none (GlusterFS storage)
   */
  readonly fileSystemId?: string;
  /**
   * Names of this region's proxy Auto Scaling groups: the drills that stop proxy nodes suspend their
   * replacing processes meanwhile (lib/plan/drills.ts drillActions).
   * @default - none (required in the primary for drills of Auto Scaling instances)
   */
  readonly proxyGroupNames?: string[];
  /**
   * The other region's VPC CIDR.
   * @default - required with a DR region in the plan
   */
  readonly peerCidr?: string;
}

/**
 * The failover plumbing of one region: Route 53 failover records for every public name (PRIMARY with
 * a health check, SECONDARY in DR), the region's link facts (SSM parameters the other region reads),
 * the network link between regions in the link owner (lib/plan/link.ts: VPC peering, routes both ways,
 * each region zone on the other VPC, EFS replication), and FIS experiment templates in the primary.
 * No link value comes from cdk context: redeploying either region keeps the link.
 */
export class DisasterRecovery extends Construct {
  public readonly healthChecks: route53.CfnHealthCheck[] = [];
  public readonly records: route53.CfnRecordSet[] = [];
  public readonly experimentTemplates: fis.CfnExperimentTemplate[] = [];
  public readonly peering?: ec2.CfnVPCPeeringConnection;
  /** This region's link facts (both regions). */
  public readonly linkFacts: LinkFacts;
  /** The reach into the other region (link owner only). */
  public readonly peerLink?: PeerLink;
  public readonly fisRole?: iam.Role;

  constructor(scope: Construct, id: string, props: DisasterRecoveryProps) {
    super(scope, id);
    const { plan } = props;
    const standby = props.standby ?? false;
    if (!standby && props.loadBalancers.length !== (props.healthTargets?.length ?? 0))
      throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: loadBalancers and healthTargets must be the same length');
    if (!plan.regions?.dr) throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: the plan has no DR region');
    if (!props.peerCidr) throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: peerCidr is required');
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

    const region: RegionRole = standby ? 'dr' : 'primary';
    this.linkFacts = new LinkFacts(this, 'LinkFacts', { plan, region, vpc: props.vpc, regionZone: props.regionZone, fileSystemId: props.fileSystemId });
    if (region === LINK_OWNER) {
      const peer: RegionRole = region === 'dr' ? 'primary' : 'dr';
      const cross = plan.regions[peer]!.account !== plan.regions[region]!.account;
      if (cross)
        Annotations.of(this).addWarningV2(
          'mailfleet:cross-account-link',
          'the regions are in different accounts: the CDK stacks make no link (peering needs the other account to accept); link them by hand or use the Terraform engine',
        );
      else {
        const made = this.link(plan, props, peer);
        this.peerLink = made.peerLink;
        this.peering = made.peering;
      }
    }

    if (!standby) this.fisRole = this.drills(plan, props.proxyGroupNames ?? []);
  }

  /**
   * The link, owned by this region: the peering (same account: accepted by CloudFormation), a route to
   * the other CIDR in each private route table here, this region zone on the other VPC, and through the
   * PeerLink the other region's side. Construct ids Peering/PeerRoute<n> are the ones the context-linked
   * stacks used, so an existing peering keeps its logical id.
   */
  private link(plan: Plan, props: DisasterRecoveryProps, peer: RegionRole): { peerLink: PeerLink; peering: ec2.CfnVPCPeeringConnection } {
    const region: RegionRole = peer === 'primary' ? 'dr' : 'primary';
    const peerLink = new PeerLink(this, 'Link', { plan, region, peer });
    const peerVpcId = peerLink.fact('vpc-id');
    const peering = new ec2.CfnVPCPeeringConnection(this, 'Peering', {
      vpcId: props.vpc.vpcId,
      peerVpcId,
      peerRegion: plan.regions![peer]!.name,
      tags: [{ key: 'Name', value: `${plan.platform}-${region}-to-${peer}` }],
    });
    const routeTables = [...new Set(props.vpc.privateSubnets.map((s) => s.routeTable.routeTableId))];
    routeTables.forEach((rt, i) => new ec2.CfnRoute(this, `PeerRoute${i}`, { routeTableId: rt, destinationCidrBlock: props.peerCidr, vpcPeeringConnectionId: peering.ref }));
    // The other region resolves this region's cross-region names (DR consumer → provider, geo-replication → DR node).
    (props.regionZone.node.defaultChild as route53.CfnHostedZone).addPropertyOverride('VPCs.1', { VPCId: peerVpcId, VPCRegion: plan.regions![peer]!.name });
    peerLink.linkPeerSide({ peeringConnectionId: peering.ref, vpc: props.vpc, cidr: props.vpc.vpcCidrBlock, fileSystemId: props.fileSystemId });
    return { peerLink, peering };
  }

  /**
   * FIS templates as the platform model declares them (lib/plan/drills.ts), as Terraform and Pulumi
   * write them: a storage node down (heal), a proxy AZ lost (NLB shifts), the primary proxies down (DNS
   * fails over). Drills of Auto Scaling instances suspend the replacing processes around the stop
   * through an SSM Automation document, so the group does not replace what the drill stopped.
   */
  private drills(plan: Plan, proxyGroupNames: string[]): iam.Role {
    const stack = Stack.of(this);
    const env = nagEnv(this);
    const document = new ssm.CfnDocument(this, 'ProcessesDocument', {
      name: processesDocumentName(plan),
      documentType: 'Automation',
      documentFormat: 'JSON',
      content: processesDocument(),
    });
    const automationRole = new iam.Role(this, 'ProcessesRole', {
      assumedBy: new iam.ServicePrincipal('ssm.amazonaws.com'),
      description: `mailfleet ${plan.platform} DR drills: suspend and resume proxy group processes`,
    });
    for (const st of processesRoleStatements(plan.platform))
      automationRole.addToPolicy(new iam.PolicyStatement({ actions: st.actions, resources: [st.resource], conditions: st.conditions }));
    acknowledge(automationRole, 'AwsSolutions-IAM5[Resource::*]', 'Suspend/ResumeProcesses are limited to this platform\'s groups by the autoscaling:ResourceTag/mailfleet:platform condition; group ARNs carry a generated id.');
    const role = new iam.Role(this, 'FisRole', {
      assumedBy: new iam.ServicePrincipal('fis.amazonaws.com'),
      description: `mailfleet ${plan.platform} DR drills`,
    });
    const instances = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    const definition = `arn:${env.partition}:ssm:${env.region}:${env.account}:automation-definition/${processesDocumentName(plan)}:*`;
    const executions = `arn:${env.partition}:ssm:${env.region}:${env.account}:automation-execution/*`;
    const resourceOf = (r: FisResource): string =>
      r === 'instances' ? instances : r === 'automation-definition' ? definition : r === 'automation-execution' ? executions : r === 'automation-role' ? automationRole.roleArn : '*';
    for (const st of fisRoleStatements(plan.platform))
      role.addToPolicy(new iam.PolicyStatement({ actions: st.actions, resources: [resourceOf(st.resource)], conditions: st.conditions }));
    acknowledge(role, `AwsSolutions-IAM5[Resource::arn:${env.partition}:ec2:${env.region}:${env.account}:instance/*]`, 'FIS picks instances at run time by tag; the statement is limited to this platform\'s instances by the mailfleet:platform tag condition.');
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeInstances supports no resource-level permissions; FIS needs it to resolve tag targets.');
    acknowledge(role, `AwsSolutions-IAM5[Resource::${definition}]`, 'FIS starts the drills\' own processes automation document, any version of it.');
    acknowledge(role, `AwsSolutions-IAM5[Resource::${executions}]`, 'Automation execution ids are generated per run; FIS polls and stops the executions it started.');
    const documentArn = `arn:${env.partition}:ssm:${env.region}:${env.account}:automation-definition/${processesDocumentName(plan)}:$DEFAULT`;
    for (const d of drillsOf(plan)) {
      const actions: Record<string, fis.CfnExperimentTemplate.ExperimentTemplateActionProperty> = {};
      for (const a of drillActions(d))
        actions[a.name] = {
          actionId: a.actionId,
          startAfter: a.startAfter.length > 0 ? [...a.startAfter] : undefined,
          parameters: a.stop
            ? { startInstancesAfterDuration: a.stop.startInstancesAfterDuration }
            : {
                documentArn,
                documentParameters: stack.toJsonString(processesParameters(automationRole.roleArn, proxyGroupNames, a.processes!)),
                maxDuration: PROCESSES_MAX_DURATION,
              },
          targets: a.stop ? { Instances: 'nodes' } : undefined,
        };
      const template = new fis.CfnExperimentTemplate(this, `Drill-${d.id}`, {
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
          actions,
          tags: { Name: `${plan.platform}-${d.id}`, 'mailfleet:platform': plan.platform },
        });
      // The ARN names the document by its name: the template must wait for it.
      template.addDependency(document);
      this.experimentTemplates.push(template);
    }
    return role;
  }
}
