import { Duration, RemovalPolicy, Size, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { geoReplicationRules, privateRecordsOf, securityGroupOf, type SecurityGroupModel } from '../../lib/plan/network.js';
import { addCidrIngress, allowGroupIngress, modelSecurityGroup } from '../shared/security-rules.js';
import { MailfleetError } from '../../lib/errors.js';
import type { Plan } from '../../lib/plan/types.js';
import { userData } from '../../lib/render/cloud-init.js';
import { REPLICA } from '../../lib/render/gluster.js';
import { NODE_INDEX_TAG, withNamePrefix, type RegionRole } from '../../lib/render/node-layout.js';
import { nodeLaunchTemplate } from '../shared/launch-template.js';
import { NodeFilesBundle } from '../shared/node-files-bundle.js';
import { nodeRole } from '../shared/node-role.js';
import { tagRole } from '../shared/tags.js';

/** SSH, only as GlusterFS geo-replication's transport between storage nodes (operators use Session Manager). */
export { GEO_REPLICATION_PORT } from '../../lib/plan/network.js';

export interface GlusterStorageClusterProps {
  /** The plan: storage.kind must be glusterfs (nodes, arbiter, volume size and name come from it). */
  readonly plan: Plan;
  /** VPC the storage nodes run in. */
  readonly vpc: ec2.IVpc;
  /**
   * Root of the physical names this construct creates and its nodes read (SSM parameters, secrets);
   * see MailServerFleetProps.namePrefix.
   * @default - `mailfleet/<plan.platform>`
   */
  readonly namePrefix?: string;
  /** Private zone for the node names clients mount from (gluster-<n>.<zone>). */
  readonly privateZone: route53.IHostedZone;
  /**
   * Region the cluster runs in.
   * @default 'primary'
   */
  readonly region?: RegionRole;
  /**
   * Instance type of the storage nodes.
   * @default - storage.instanceType from the plan
   */
  readonly instanceType?: string;
  /**
   * Size of each node's EBS data volume (the brick).
   * @default - storage.volumeSizeGiB from the plan
   */
  readonly volumeSizeGiB?: number;
  /**
   * Subnets the nodes are spread over, one node per subnet in turn (one per AZ).
   * @default - the VPC's private subnets with egress
   */
  readonly nodeSubnets?: ec2.SubnetSelection;
  /**
   * CIDR of the other region's VPC allowed to reach this cluster for geo-replication (SSH transport,
   * glusterd and the brick ports), set on both clusters of a DR platform (the primary's for fail-back).
   * @default - no cross-region access
   */
  readonly geoReplicationPeerCidr?: string;
  /**
   * Image of the storage nodes.
   * @default - Debian 12 from the Debian project's public SSM parameter (or the spec's pinned image)
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * DisableApiTermination on the nodes: false lets `cdk destroy` delete them (the spec's
   * regions.<region>.terminationProtection).
   * @default true
   */
  readonly terminationProtection?: boolean;
}

/**
 * GlusterFS storage nodes across AZs, each with an encrypted gp3 EBS data volume that outlives the
 * instance. Node 1 probes its peers and creates the replica 3 (or replica 3 arbiter 1) volume; clients
 * mount it by private-zone names with backup volfile servers.
 */
export class GlusterStorageCluster extends Construct implements ec2.IConnectable {
  public readonly instances: ec2.CfnInstance[] = [];
  public readonly dataVolumes: ec2.Volume[] = [];
  public readonly records: route53.ARecord[] = [];
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly nodeFiles: NodeFilesBundle;
  /** The storage nodes' security group; `allowClientsFrom` opens the GlusterFS ports to a client tier. */
  public readonly connections: ec2.Connections;
  /** The storage group of the platform model (lib/plan/network.ts): its rules, translated. */
  private readonly sgModel: SecurityGroupModel;

  constructor(scope: Construct, id: string, props: GlusterStorageClusterProps) {
    super(scope, id);
    const { vpc } = props;
    const plan = withNamePrefix(props.plan, props.namePrefix);
    const storage = plan.storage;
    if (storage.kind !== 'glusterfs')
      throw new MailfleetError('PLAN_INVALID', `GlusterStorageCluster: the plan's storage.kind is ${storage.kind}, not glusterfs`);
    if (storage.nodes % REPLICA !== 0)
      throw new MailfleetError('PLAN_INVALID', `GlusterStorageCluster: storage.nodes must be a multiple of ${REPLICA}, got ${storage.nodes}`);
    const subnets = vpc.selectSubnets(props.nodeSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnets;
    if (subnets.length === 0) throw new MailfleetError('BAD_REQUEST', 'GlusterStorageCluster: no subnets selected for the storage nodes');
    const instanceType = props.instanceType ?? storage.instanceType;

    const region = props.region ?? 'primary';
    this.sgModel = securityGroupOf(plan, region, 'storage')!;
    this.securityGroup = modelSecurityGroup(this, vpc, this.sgModel);
    this.connections = this.securityGroup.connections;
    allowGroupIngress(this.securityGroup, this.sgModel, 'storage', this.securityGroup);
    if (props.geoReplicationPeerCidr)
      addCidrIngress(this.securityGroup, geoReplicationRules({ cidr: props.geoReplicationPeerCidr }, region === 'dr' ? 'primary' : 'dr'), vpc);

    this.nodeFiles = new NodeFilesBundle(this, 'NodeFiles', { plan, role: 'storage', region: props.region });
    // Includes node 1's geo-replication key hand-off to the DR region (lib/plan/node-access.ts).
    this.role = nodeRole(this, 'Role', plan, 'storage', props.region ?? 'primary', { objects: { 'node-files/storage': this.nodeFiles.asset } });
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      userData: userData(plan, 'storage'),
      rootVolumeGiB: 20,
      machineImage: props.machineImage,
    });

    const names = privateRecordsOf(plan, region).filter((r) => r.zone === 'platform' && r.nodeKind === 'storage');
    for (let i = 1; i <= storage.nodes; i++) {
      const subnet = subnets[(i - 1) % subnets.length]!;
      const node = new ec2.CfnInstance(this, `Node${i}`, {
        launchTemplate: { launchTemplateId: this.launchTemplate.launchTemplateId, version: this.launchTemplate.latestVersionNumber },
        subnetId: subnet.subnetId,
        monitoring: true,
        // A storage node holds a brick: never let a stray API call terminate it (unless the spec says the region may be destroyed).
        disableApiTermination: props.terminationProtection ?? true,
        tags: [
          { key: 'Name', value: `${plan.platform}-gluster-${i}` },
          { key: NODE_INDEX_TAG, value: String(i) },
        ],
      });
      tagRole(node, 'storage');
      const volume = new ec2.Volume(this, `Data${i}`, {
        availabilityZone: subnet.availabilityZone,
        size: Size.gibibytes(props.volumeSizeGiB ?? storage.volumeSizeGiB),
        volumeType: ec2.EbsDeviceVolumeType.GP3,
        encrypted: true,
        removalPolicy: RemovalPolicy.SNAPSHOT,
      });
      Tags.of(volume).add('Name', `${plan.platform}-gluster-${i}-brick`);
      new ec2.CfnVolumeAttachment(this, `Attach${i}`, { instanceId: node.ref, volumeId: volume.volumeId, device: '/dev/sdf' });
      this.records.push(
        new route53.ARecord(this, `Name${i}`, {
          zone: props.privateZone,
          recordName: `${names[i - 1]!.name}.`,
          target: route53.RecordTarget.fromIpAddresses(node.attrPrivateIp),
          ttl: Duration.seconds(names[i - 1]!.ttl),
        }),
      );
      this.instances.push(node);
      this.dataVolumes.push(volume);
    }
  }

  /** Opens glusterd and the brick ports to the clients (the mail tier). */
  allowClientsFrom(peer: ec2.IConnectable): void {
    allowGroupIngress(this.securityGroup, this.sgModel, 'mail', peer);
  }
}

