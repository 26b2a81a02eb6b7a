import { SecretValue } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elasticache from 'aws-cdk-lib/aws-elasticache';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct, type IDependable } from 'constructs';
import { redisModel, type RedisModel } from '../../engines/platform.js';
import { MailfleetError } from '../../lib/errors.js';
import type { Plan } from '../../lib/plan/types.js';
import { redisEndpointParameter, type RegionRole } from '../../lib/render/node-layout.js';
import { acknowledge } from '../shared/nag.js';
import { securityGroupOf, type SecurityGroupModel } from '../../lib/plan/network.js';
import { allowGroupIngress, modelSecurityGroup } from '../shared/security-rules.js';
import { tagRole } from '../shared/tags.js';

export interface FleetRedisProps {
  /** The plan: spec redis with provision elasticache. */
  readonly plan: Plan;
  readonly vpc: ec2.IVpc;
  /**
   * Region the group runs in (its name and the mail nodes' parameter).
   * @default 'primary'
   */
  readonly region?: RegionRole;
  /**
   * Something to create the group after: the AUTH token secret, when this stack creates it (the
   * DR region reads the primary's replica, which exists before DR deploys).
   * @default - none
   */
  readonly authSecretDependency?: IDependable;
}

/**
 * The Redis the mail nodes share for fleet-wide limits (engines/platform.ts RedisModel): an ElastiCache
 * for Valkey replication group, primary + replica in two AZs with automatic failover, TLS in transit,
 * encrypted at rest, AUTH token from the platform's secret, in the private subnets; only the mail nodes
 * may connect (allowClientsFrom). Its primary endpoint goes into an SSM parameter the nodes read at boot.
 */
export class FleetRedis extends Construct implements ec2.IConnectable {
  public readonly replicationGroup: elasticache.CfnReplicationGroup;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly connections: ec2.Connections;
  public readonly model: RedisModel;
  /** The redis group of the platform model (lib/plan/network.ts): its rules, translated. */
  private readonly sgModel: SecurityGroupModel;

  constructor(scope: Construct, id: string, props: FleetRedisProps) {
    super(scope, id);
    const region = props.region ?? 'primary';
    const model = redisModel(props.plan, region);
    if (!model) throw new MailfleetError('PLAN_INVALID', 'FleetRedis: the plan provisions no Redis (spec redis.provision elasticache)');
    this.model = model;
    this.sgModel = securityGroupOf(props.plan, region, 'redis')!;
    this.securityGroup = modelSecurityGroup(this, props.vpc, this.sgModel);
    this.connections = new ec2.Connections({ securityGroups: [this.securityGroup], defaultPort: ec2.Port.tcp(model.port) });
    const subnets = new elasticache.CfnSubnetGroup(this, 'Subnets', {
      description: 'mailfleet Redis: private subnets',
      subnetIds: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds,
    });
    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'Group', {
      replicationGroupId: model.name,
      replicationGroupDescription: 'mailfleet fleet-wide limits',
      engine: model.engine,
      engineVersion: model.engineVersion,
      cacheNodeType: model.nodeType,
      numCacheClusters: model.nodes,
      port: model.port,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      transitEncryptionEnabled: true,
      atRestEncryptionEnabled: true,
      authToken: SecretValue.secretsManager(model.authSecret).unsafeUnwrap(),
      cacheSubnetGroupName: subnets.ref,
      securityGroupIds: [this.securityGroup.securityGroupId],
    });
    if (props.authSecretDependency) this.replicationGroup.node.addDependency(props.authSecretDependency);
    tagRole(this.replicationGroup, 'redis');
    acknowledge(this.replicationGroup, 'AwsSolutions-AEC5', 'The default port: only the mail nodes\' security group may connect, over TLS with an AUTH token.');
    new ssm.StringParameter(this, 'Endpoint', {
      parameterName: redisEndpointParameter(props.plan),
      stringValue: `${this.replicationGroup.attrPrimaryEndPointAddress}:${this.replicationGroup.attrPrimaryEndPointPort}`,
      description: 'Primary endpoint (host:port) of the Redis the mail nodes of this region share',
    });
  }

  /** Lets the mail nodes connect (TLS, the group's port); nothing else may. */
  allowClientsFrom(peer: ec2.IConnectable): void {
    allowGroupIngress(this.securityGroup, this.sgModel, 'mail', peer);
  }
}
