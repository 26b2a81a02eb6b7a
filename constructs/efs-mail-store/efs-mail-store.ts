import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { privateRecordsOf, securityGroupOf, type SecurityGroupModel } from '../../lib/plan/network.js';
import { allowGroupIngress, modelSecurityGroup } from '../shared/security-rules.js';
import { MailfleetError } from '../../lib/errors.js';
import type { Plan } from '../../lib/plan/types.js';
import { tagRole } from '../shared/tags.js';
import { validateProps } from '../shared/validation.js';

export interface EfsMailStoreProps {
  /** The plan: storage.kind must be efs. */
  readonly plan: Plan;
  /** VPC of the mount targets. */
  readonly vpc: ec2.IVpc;
  /** Private zone for the efs.<zone> name the mount unit uses. */
  readonly privateZone: route53.IHostedZone;
  /**
   * Replicate into this existing file system (in `replicationRegion`), e.g. the DR region's.
   * @default - no replication
   */
  readonly replicationFileSystemId?: string;
  /**
   * Region of `replicationFileSystemId`.
   * @default - required with replicationFileSystemId
   */
  readonly replicationRegion?: string;
  /**
   * Let another region's file system replicate into this one (the DR copy).
   * @default false
   */
  readonly replicationTarget?: boolean;
}

/** The managed alternative to GlusterFS: an encrypted EFS file system, mounted over NFS 4.1 by name. */
export class EfsMailStore extends Construct implements ec2.IConnectable {
  public readonly fileSystem: efs.FileSystem;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly record: route53.CnameRecord;
  /** The mount targets' security group; `allowClientsFrom` opens NFS to a client tier. */
  public readonly connections: ec2.Connections;
  /** The efs group of the platform model (lib/plan/network.ts): its rules, translated. */
  private readonly sgModel: SecurityGroupModel;

  constructor(scope: Construct, id: string, props: EfsMailStoreProps) {
    super(scope, id);
    const { plan } = props;
    if (plan.storage.kind !== 'efs')
      throw new MailfleetError('PLAN_INVALID', `EfsMailStore: the plan's storage.kind is ${plan.storage.kind}, not efs`);
    validateProps(this, 'EfsMailStore', [
      { failed: !!props.replicationFileSystemId && !props.replicationRegion, message: 'replicationFileSystemId needs replicationRegion' },
      { failed: !!props.replicationFileSystemId && !!props.replicationTarget, message: 'replicationFileSystemId (replicate out) and replicationTarget (be replicated into) conflict' },
    ]);
    this.sgModel = securityGroupOf(plan, 'primary', 'efs')!;
    this.securityGroup = modelSecurityGroup(this, props.vpc, this.sgModel);
    this.connections = this.securityGroup.connections;
    this.fileSystem = new efs.FileSystem(this, 'FileSystem', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: this.securityGroup,
      encrypted: true,
      throughputMode: plan.storage.throughputMode === 'elastic' ? efs.ThroughputMode.ELASTIC : efs.ThroughputMode.BURSTING,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      enableAutomaticBackups: true,
      removalPolicy: RemovalPolicy.RETAIN,
      replicationOverwriteProtection: props.replicationTarget ? efs.ReplicationOverwriteProtection.DISABLED : undefined,
    });
    tagRole(this.fileSystem, 'efs');
    if (props.replicationFileSystemId)
      (this.fileSystem.node.defaultChild as efs.CfnFileSystem).replicationConfiguration = {
        destinations: [{ fileSystemId: props.replicationFileSystemId, region: props.replicationRegion }],
      };
    const name = privateRecordsOf(plan, 'primary').find((r) => r.node === undefined)!;
    this.record = new route53.CnameRecord(this, 'Name', {
      zone: props.privateZone,
      recordName: `${name.name}.`,
      domainName: `${this.fileSystem.fileSystemId}.efs.${Stack.of(this).region}.${Stack.of(this).urlSuffix}`,
      ttl: Duration.seconds(name.ttl),
    });
  }

  /** Opens NFS to the mail tier. */
  allowClientsFrom(peer: ec2.IConnectable): void {
    allowGroupIngress(this.securityGroup, this.sgModel, 'mail', peer);
  }
}
