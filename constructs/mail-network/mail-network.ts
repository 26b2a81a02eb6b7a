import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { validateProps } from '../shared/validation.js';
import { acknowledge } from '../shared/nag.js';
import { endpointGroup } from '../../lib/plan/network.js';
import { addCidrIngress } from '../shared/security-rules.js';

/** Interface endpoints private nodes need with no route to the internet for AWS APIs. */
export const NODE_INTERFACE_ENDPOINTS: ReadonlyArray<readonly [string, ec2.InterfaceVpcEndpointAwsService]> = [
  ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
  ['SsmMessages', ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES],
  ['Ec2Messages', ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES],
  ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
  ['Monitoring', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING],
  ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
];

export interface MailNetworkProps {
  /**
   * An existing VPC to place the platform in (import it with `Vpc.fromVpcAttributes`, not a lookup).
   * @default - a new VPC across `availabilityZones`
   */
  readonly vpc?: ec2.IVpc;
  /**
   * CIDR of the new VPC. Rejected together with `vpc`.
   * @default '10.40.0.0/16'
   */
  readonly cidr?: string;
  /**
   * Availability zones of the new VPC, named explicitly (mailfleet never looks them up); at least 3.
   * @default - required when no `vpc` is given
   */
  readonly availabilityZones?: string[];
  /**
   * NAT gateways of the new VPC (nodes install packages through them).
   * @default - one per availability zone
   */
  readonly natGateways?: number;
  /**
   * Create the S3 gateway endpoint and the SSM, CloudWatch and Secrets Manager interface endpoints.
   * @default - true for a new VPC, false for an existing one (it usually has them)
   */
  readonly endpoints?: boolean;
  /**
   * Retention of the VPC flow log group.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly flowLogRetention?: logs.RetentionDays;
  /**
   * Name of a private hosted zone to create for node names (storage, directory, mail-tier discovery).
   * @default - no private zone
   */
  readonly privateZoneName?: string;
}

/** The network the mail platform runs in: VPC (new or yours), flow logs, endpoints, private DNS. */
export class MailNetwork extends Construct {
  public readonly vpc: ec2.IVpc;
  public readonly flowLog: ec2.FlowLog;
  public readonly flowLogGroup: logs.LogGroup;
  /** Security group of the interface endpoints (HTTPS from the VPC); undefined without endpoints. */
  public readonly endpointSecurityGroup?: ec2.SecurityGroup;
  public readonly privateZone?: route53.PrivateHostedZone;

  constructor(scope: Construct, id: string, props: MailNetworkProps = {}) {
    super(scope, id);
    validateProps(this, 'MailNetwork', [
      { failed: !!props.vpc && !!props.cidr, message: 'give either vpc or cidr, not both' },
      { failed: !!props.vpc && !!props.availabilityZones, message: 'availabilityZones describe a new VPC; an existing vpc brings its own' },
      {
        failed: !props.vpc && (props.availabilityZones?.length ?? 0) < 3,
        message: `a new VPC needs availabilityZones with at least 3 zones, got ${props.availabilityZones?.length ?? 0}`,
      },
    ]);

    this.vpc =
      props.vpc ??
      new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.40.0.0/16'),
        availabilityZones: props.availabilityZones,
        natGateways: props.natGateways ?? props.availabilityZones!.length,
        restrictDefaultSecurityGroup: false,
        subnetConfiguration: [
          { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        ],
      });

    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.flowLog = new ec2.FlowLog(this, 'FlowLog', {
      resourceType: ec2.FlowLogResourceType.fromVpc(this.vpc),
      destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    if (props.endpoints ?? !props.vpc) {
      this.vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
      // The model's endpoint group (lib/plan/network.ts); this construct takes no plan, so by the VPC alone.
      const group = endpointGroup('endpoints', this.vpc.vpcCidrBlock);
      this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSg', { vpc: this.vpc, description: group.description, allowAllOutbound: group.egressAllTo !== undefined });
      addCidrIngress(this.endpointSecurityGroup, group, this.vpc);
      acknowledge(this.endpointSecurityGroup, 'AwsSolutions-EC23', 'The only ingress is HTTPS from the VPC\'s own CIDR; the rule cannot evaluate a CIDR that is a CloudFormation reference.');
      for (const [name, service] of NODE_INTERFACE_ENDPOINTS)
        this.vpc.addInterfaceEndpoint(name, { service, securityGroups: [this.endpointSecurityGroup], privateDnsEnabled: true });
    }

    if (props.privateZoneName)
      this.privateZone = new route53.PrivateHostedZone(this, 'PrivateZone', { zoneName: props.privateZoneName, vpc: this.vpc });
  }
}
