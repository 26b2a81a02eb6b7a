import { CustomResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as route53 from 'aws-cdk-lib/aws-route53';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { MailfleetError } from '../../lib/errors.js';
import { linkParameterPrefix, linkParametersOf, missingLinkFactMessage, type LinkFact, type LinkParameterModel } from '../../lib/plan/link.js';
import type { Plan } from '../../lib/plan/types.js';
import type { RegionRole } from '../../lib/render/node-layout.js';
import { acknowledge, nagEnv } from '../shared/nag.js';
import { LINK_HANDLER_SOURCE } from './link-handler.js';

/** The custom-resource attribute a fact is read into (`vpc-id` → `VpcId`). */
export function linkFactKey(fact: LinkFact): string {
  return fact.replace(/(^|-)([a-z])/g, (_m, _d: string, c: string) => c.toUpperCase());
}

export interface LinkFactsProps {
  readonly plan: Plan;
  /** The region this stack deploys. */
  readonly region: RegionRole;
  readonly vpc: ec2.IVpc;
  /** This region's region-qualified zone (`<region>.<platform>.internal`). */
  readonly regionZone: route53.IHostedZone;
  /**
   * This region's mail file system (EFS storage).
   * @default - no `efs-id` fact
   */
  readonly fileSystemId?: string;
}

/**
 * A region's link facts as SSM parameters in its own region, under the model's names
 * (lib/plan/link.ts): the other region's link reads them across regions.
 */
export class LinkFacts extends Construct {
  public readonly parameters: ssm.CfnParameter[] = [];
  private readonly models: Map<LinkFact, LinkParameterModel>;

  constructor(scope: Construct, id: string, props: LinkFactsProps) {
    super(scope, id);
    this.models = new Map(linkParametersOf(props.plan, props.region).map((p) => [p.fact, p] as const));
    const routeTables = [...new Set(props.vpc.privateSubnets.map((s) => s.routeTable.routeTableId))];
    const values: Partial<Record<LinkFact, string>> = {
      'vpc-id': props.vpc.vpcId,
      cidr: props.vpc.vpcCidrBlock,
      'route-table-ids': routeTables.join(','),
      'region-zone-id': props.regionZone.hostedZoneId,
      'efs-id': props.fileSystemId,
    };
    for (const [fact, value] of Object.entries(values) as [LinkFact, string | undefined][])
      if (value !== undefined && this.models.has(fact)) this.publish(fact, value);
  }

  /**
   * Publishes a fact the model lists for this region, e.g. one whose resource is created after this
   * construct (`ad-dns-ips`: the stack's directory). A StringList takes its items comma-joined.
   */
  publish(fact: LinkFact, value: string): ssm.CfnParameter {
    const p = this.models.get(fact);
    if (!p) throw new MailfleetError('INTERNAL', `LinkFacts: the link model has no ${fact} fact for this region`);
    const parameter = new ssm.CfnParameter(this, linkFactKey(p.fact), { name: p.name, type: p.type, value, description: p.description });
    this.parameters.push(parameter);
    return parameter;
  }
}

export interface PeerLinkProps {
  readonly plan: Plan;
  /** The region that owns the link (the one deployed second). */
  readonly region: RegionRole;
  /** The other region, whose facts are read and whose side of the link this construct makes. */
  readonly peer: RegionRole;
}

/**
 * The link owner's reach into the other region, through one inline Lambda (link-handler.ts):
 * `facts` reads the other region's link parameters (a missing one fails with the stack to deploy
 * first), `linkPeerSide` makes the other region's side (routes, zone association, EFS replication),
 * removed again when this stack is deleted.
 */
export class PeerLink extends Construct {
  public readonly function: lambda.Function;
  /** The other region's facts (attributes by linkFactKey). */
  public readonly facts: CustomResource;
  public peerSide?: CustomResource;
  private readonly plan: Plan;
  private readonly peerRegionName: string;

  constructor(scope: Construct, id: string, props: PeerLinkProps) {
    super(scope, id);
    const { plan, peer } = props;
    this.plan = plan;
    this.peerRegionName = plan.regions![peer]!.name;
    const env = nagEnv(this);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `mailfleet ${plan.platform}: links the ${props.region} region to the ${peer} region`,
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    const paramArn = `arn:${env.partition}:ssm:${this.peerRegionName}:${env.account}:parameter${linkParameterPrefix(plan, peer)}/*`;
    role.addToPolicy(new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [paramArn] }));
    this.function = new lambda.Function(this, 'Handler', {
      runtime: lambda.Runtime.NODEJS_LATEST,
      handler: 'index.handler',
      code: lambda.Code.fromInline(LINK_HANDLER_SOURCE),
      timeout: Duration.minutes(5),
      memorySize: 256,
      role,
      logGroup,
      description: `mailfleet ${plan.platform}: region link (reads the ${peer} region's link parameters, makes its side of the link)`,
    });
    acknowledge(role, `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(logGroup.node.defaultChild as logs.CfnLogGroup)}.Arn>:*]`, 'The handler writes log streams of its own log group only; stream names are chosen by Lambda at run time.');
    acknowledge(role, `AwsSolutions-IAM5[Resource::${paramArn}]`, 'The handler reads the link parameters the other region publishes under its link prefix (lib/plan/link.ts), and nothing else.');
    this.facts = new CustomResource(this, 'Facts', {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::MailfleetLinkFacts',
      properties: {
        Action: 'read',
        Region: this.peerRegionName,
        Facts: linkParametersOf(plan, peer).map((p) => ({
          Key: linkFactKey(p.fact),
          Name: p.name,
          Missing: missingLinkFactMessage(plan, peer, p.name, this.peerRegionName),
        })),
      },
    });
  }

  /** A fact of the other region (a deploy-time value). */
  fact(fact: LinkFact): string {
    return this.facts.getAttString(linkFactKey(fact));
  }

  /**
   * The other region's side of the link: a route to `cidr` through the peering in each of its private
   * route tables, its region zone on this VPC, and (EFS) replication of its file system into this one.
   */
  linkPeerSide(o: { peeringConnectionId: string; vpc: ec2.IVpc; cidr: string; fileSystemId?: string }): CustomResource {
    const stack = Stack.of(this);
    const env = nagEnv(this);
    const peerRegion = this.peerRegionName;
    const zoneId = this.fact('region-zone-id');
    const statements = [
      new iam.PolicyStatement({
        actions: ['ec2:CreateRoute', 'ec2:ReplaceRoute', 'ec2:DeleteRoute'],
        resources: [`arn:${env.partition}:ec2:${peerRegion}:${env.account}:route-table/*`],
        conditions: { StringEquals: { 'aws:ResourceTag/mailfleet:platform': this.plan.platform } },
      }),
      new iam.PolicyStatement({
        actions: ['route53:GetHostedZone', 'route53:AssociateVPCWithHostedZone', 'route53:DisassociateVPCFromHostedZone'],
        resources: [`arn:${env.partition}:route53:::hostedzone/${zoneId}`],
      }),
      new iam.PolicyStatement({ actions: ['ec2:DescribeVpcs'], resources: ['*'] }),
    ];
    const efs = o.fileSystemId !== undefined && this.plan.storage.kind === 'efs';
    if (efs) {
      const fsArn = (region: string, id: string) => `arn:${env.partition}:elasticfilesystem:${region}:${env.account}:file-system/${id}`;
      statements.push(
        new iam.PolicyStatement({
          actions: ['elasticfilesystem:DescribeReplicationConfigurations', 'elasticfilesystem:CreateReplicationConfiguration', 'elasticfilesystem:DeleteReplicationConfiguration'],
          resources: [fsArn(peerRegion, this.fact('efs-id')), fsArn(stack.region, o.fileSystemId!)],
        }),
        new iam.PolicyStatement({
          actions: ['iam:CreateServiceLinkedRole'],
          resources: [`arn:${env.partition}:iam::${env.account}:role/aws-service-role/elasticfilesystem.amazonaws.com/*`],
          conditions: { StringEquals: { 'iam:AWSServiceName': 'elasticfilesystem.amazonaws.com' } },
        }),
      );
    }
    const policy = new iam.Policy(this, 'PeerSidePolicy', { statements, roles: [this.function.role!] });
    acknowledge(policy, `AwsSolutions-IAM5[Resource::arn:${env.partition}:ec2:${peerRegion}:${env.account}:route-table/*]`, 'Route table ids are read at deploy time; the statement is limited to this platform\'s route tables by the mailfleet:platform tag condition.');
    acknowledge(policy, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeVpcs has no resource-level permissions; Route 53 calls it to associate a VPC with a private zone.');
    if (efs)
      acknowledge(policy, `AwsSolutions-IAM5[Resource::arn:${env.partition}:iam::${env.account}:role/aws-service-role/elasticfilesystem.amazonaws.com/*]`, 'EFS replication needs its service-linked role; the statement may create that role only (iam:AWSServiceName condition).');
    this.peerSide = new CustomResource(this, 'PeerSide', {
      serviceToken: this.function.functionArn,
      resourceType: 'Custom::MailfleetRegionLink',
      properties: {
        Action: 'link',
        Region: peerRegion,
        RouteTableIds: this.fact('route-table-ids'),
        DestinationCidr: o.cidr,
        PeeringConnectionId: o.peeringConnectionId,
        ZoneId: zoneId,
        VpcId: o.vpc.vpcId,
        VpcRegion: stack.region,
        ...(efs ? { EfsSourceId: this.fact('efs-id'), EfsDestinationId: o.fileSystemId, EfsDestinationRegion: stack.region } : {}),
      },
    });
    // The calls need the policy in place (it is a separate resource the function does not wait for).
    this.peerSide.node.addDependency(policy);
    return this.peerSide;
  }
}
