import { Annotations, Stack } from 'aws-cdk-lib';
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
import { LINK_OWNER } from '../../lib/plan/link.js';
import type { RegionRole } from '../../lib/render/node-layout.js';
import { LinkFacts, PeerLink } from './region-link.js';
import { acknowledge, nagEnv } from '../shared/nag.js';
import { ROLE_TAG } from '../shared/tags.js';


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
  /** Port the health check opens on each shard's NLB (its first listener), in shard order. */
  readonly healthCheckPorts: number[];
  /** This region's cross-region zone (primary.<platform>.internal or dr.<platform>.internal). */
  readonly regionZone: route53.PrivateHostedZone;
  /**
   * This region's mail file system (EFS storage): published as a link fact; in the link owner, the
   * destination the other region's file system replicates into.
   * @default - none (GlusterFS storage)
   */
  readonly fileSystemId?: string;
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
    if (props.loadBalancers.length !== props.healthCheckPorts.length)
      throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: loadBalancers and healthCheckPorts must be the same length');
    if (!plan.regions?.dr) throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: the plan has no DR region');
    if (!props.peerCidr) throw new MailfleetError('BAD_REQUEST', 'DisasterRecovery: peerCidr is required');
    const dns = publicDnsOf(plan);

    props.loadBalancers.forEach((nlb, shard) => {
      let healthCheck: route53.CfnHealthCheck | undefined;
      if (!standby) {
        healthCheck = new route53.CfnHealthCheck(this, `Health${shard}`, {
          healthCheckConfig: {
            type: 'TCP',
            fullyQualifiedDomainName: nlb.loadBalancerDnsName,
            port: props.healthCheckPorts[shard]!,
            requestInterval: 10,
            failureThreshold: 3,
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

    if (!standby) this.fisRole = this.drills(plan);
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
