import { Annotations, ArnFormat, AssetHashType, Duration, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as route53 from 'aws-cdk-lib/aws-route53';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { MailfleetError } from '../../lib/errors.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { platformSecrets } from '../../lib/plan/node-access.js';
import type { Plan } from '../../lib/plan/types.js';
import { userData } from '../../lib/render/cloud-init.js';
import { CONNECTIONS_METRIC, metricNamespace } from '../../lib/render/cloudwatch-agent.js';
import {
  LAUNCH_HOOK_NAME,
  MAIL_LIFECYCLE_HOOKS,
  TERMINATE_HOOK_NAME,
  auditBucketParameter,
  daemonBundleParameter,
  secretNames,
  ssmPrefix,
  withNamePrefix,
  type RegionRole,
} from '../../lib/render/node-layout.js';
import { securityGroupOf, type SecurityGroupModel } from '../../lib/plan/network.js';
import { allowGroupIngress, modelSecurityGroup } from '../shared/security-rules.js';
import { inPlaceReload, type ReloadResources } from '../shared/reload.js';
import { reloadsOf } from '../../lib/plan/reload.js';
import { daemonBundle, daemonPackage, DEV_BUILD_CONTEXT, NODE_RUNTIME_FETCH_COMMAND, nodeRuntimePackage } from '../shared/daemon-bundle.js';
import { isArm } from '../shared/node-image.js';
import { contentHash, nodeLaunchTemplate } from '../shared/launch-template.js';
import { acknowledge } from '../shared/nag.js';
import { NodeFilesBundle } from '../shared/node-files-bundle.js';
import { nodeRole } from '../shared/node-role.js';
import { modelSecret } from '../shared/secrets.js';
import { tagRole } from '../shared/tags.js';
import { clamp, validateProps } from '../shared/validation.js';

export interface MailServerFleetProps {
  /** The plan: daemon configuration, mail-tier sizing, storage and directory kinds. */
  readonly plan: Plan;
  /** VPC the mail nodes run in. */
  readonly vpc: ec2.IVpc;
  /** Private zone where nodes publish themselves under the name HAProxy resolves. */
  readonly privateZone: route53.IHostedZone;
  /**
   * Root of the physical names this construct creates and its nodes read (SSM parameters
   * `/<namePrefix>/…`, secrets `<namePrefix>/…`, log groups, the mail tier's name in the private zone),
   * so the same plan can be composed twice in one stack or account. Give every construct of one
   * instance the same value.
   * @default - `mailfleet/<plan.platform>`, the names the platform stacks use
   */
  readonly namePrefix?: string;
  /**
   * Region the fleet runs in.
   * @default 'primary'
   */
  readonly region?: RegionRole;
  /**
   * Mail nodes, minimum.
   * @default - plan.sizing.mailNodes.min
   */
  readonly minNodes?: number;
  /**
   * Mail nodes, maximum.
   * @default - plan.sizing.mailNodes.max
   */
  readonly maxNodes?: number;
  /**
   * Mail nodes at deploy time. Left unset, the group starts at minNodes and scales on connections
   * (set it only for a one-off resize: every deploy resets the group to it).
   * @default - not set
   */
  readonly desiredNodes?: number;
  /**
   * Established TCP connections per node the group scales to hold.
   * @default - 70% of tiers.maxConnectionsPerMailNode
   */
  readonly targetConnectionsPerNode?: number;
  /**
   * The daemon bundle to ship (scripts/bundle-daemon.mjs output, with its manifest beside it). Synth
   * fails when it is missing, altered or stale, naming the command that rebuilds it.
   * @default - the bundle inside the mailfleet package (dist/mailfleetd.mjs)
   */
  readonly daemonBundlePath?: string;
  /**
   * Create the admin-token and TLS secrets (false in a DR region, which reads their replicas).
   * @default true
   */
  readonly createSecrets?: boolean;
  /**
   * Regions the created secrets are replicated to (the DR region reads them by the same name).
   * @default - no replicas
   */
  readonly secretReplicaRegions?: string[];
  /**
   * Topic for Auto Scaling notifications.
   * @default - no notifications
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Subnets of the mail nodes.
   * @default - the VPC's private subnets with egress
   */
  readonly nodeSubnets?: ec2.SubnetSelection;
  /**
   * Image of the mail nodes.
   * @default - Debian 12 from the Debian project's public SSM parameter (or the spec's pinned image)
   */
  readonly machineImage?: ec2.IMachineImage;
  /**
   * Root volume size (encrypted gp3); the Maildirs live on the shared store, not here.
   * @default 20
   */
  readonly rootVolumeGiB?: number;
  /**
   * The region's audit archive (required when the plan's audit is enabled): the nodes' role may add
   * journal objects to it, and an SSM parameter tells the nodes its name.
   * @default - none (audit off)
   */
  readonly auditArchive?: { readonly bucket: s3.IBucket; readonly key: kms.IKey };
}

/**
 * The mailfleetd tier: an Auto Scaling group whose nodes fetch the esbuild daemon bundle and the
 * rendered node files, mount the Maildir store before the daemon starts (systemd), ship logs and
 * metrics through the CloudWatch agent, and scale on established connections per node.
 */
export class MailServerFleet extends Construct implements ec2.IConnectable {
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly role: iam.Role;
  public readonly launchTemplate: ec2.LaunchTemplate;
  public readonly nodeFiles: NodeFilesBundle;
  public readonly daemonBundle: s3assets.Asset;
  public readonly daemonBundleParameter: ssm.StringParameter;
  /** Undefined when createSecrets is false. */
  public readonly adminTokenSecret?: secretsmanager.Secret;
  /** JSON {"cert","key"} in PEM, filled by the operator; undefined when createSecrets is false. */
  public readonly tlsSecret?: secretsmanager.Secret;
  /** The users file of a static directory (YAML), filled by the operator; undefined with LDAP or createSecrets false. */
  public readonly staticUsersSecret?: secretsmanager.Secret;
  /** AUTH credentials for smtp.relay, JSON {"username","password"}; undefined without relay credentials. */
  public readonly relaySecret?: secretsmanager.Secret;
  /** AUTH token of the provisioned Redis (FleetRedis); undefined without one or with createSecrets false. */
  public readonly redisAuthSecret?: secretsmanager.Secret;
  public readonly scalingMetric: cw.Metric;
  /** Daemon ports behind HAProxy (PROXY v2). */
  public readonly daemonPorts: readonly number[];
  /** The mail nodes' security group, for `allowFrom`/`allowTo` (e.g. a relay or a monitoring host). */
  public readonly connections: ec2.Connections;
  /** The in-place reload (SSM document + State Manager association) of running mail nodes. */
  public readonly reload: ReloadResources;
  private readonly secretNames: ReturnType<typeof secretNames>;
  private readonly staticDirectory: boolean;
  /** The mail group of the platform model (lib/plan/network.ts): its rules, translated. */
  private readonly sgModel: SecurityGroupModel;

  constructor(scope: Construct, id: string, props: MailServerFleetProps) {
    super(scope, id);
    const { vpc } = props;
    const plan = withNamePrefix(props.plan, props.namePrefix);
    const sizing = plan.sizing.mailNodes;
    const min = props.minNodes ?? sizing.min;
    const max = props.maxNodes ?? sizing.max;
    const target = props.targetConnectionsPerNode ?? Math.floor(plan.spec.tiers.maxConnectionsPerMailNode * 0.7);
    const desired = props.desiredNodes;
    validateProps(this, 'MailServerFleet', [
      { failed: min > max, message: `minNodes ${min} exceeds maxNodes ${max}` },
      { failed: desired !== undefined && (desired < min || desired > max), message: `desiredNodes ${desired} is outside minNodes..maxNodes (${min}..${max})` },
      { failed: target <= 0, message: `targetConnectionsPerNode must be positive, got ${target}` },
      {
        failed: props.createSecrets === false && (props.secretReplicaRegions?.length ?? 0) > 0,
        message: 'secretReplicaRegions is set while createSecrets is false: a fleet that reads replicas creates none to replicate',
      },
      { failed: plan.spec.audit.enabled && !props.auditArchive, message: 'the plan has audit.enabled but no auditArchive was given: the nodes would journal with nowhere to ship' },
    ]);
    const secrets = secretNames(plan);

    this.daemonPorts = daemonConfig(plan, { mode: 'cloud' }).sockets.map((s) => s.port);
    this.sgModel = securityGroupOf(plan, props.region ?? 'primary', 'mail')!;
    this.securityGroup = modelSecurityGroup(this, vpc, this.sgModel);
    this.connections = this.securityGroup.connections;
    this.secretNames = secrets;
    this.staticDirectory = plan.directory.kind === 'static';
    acknowledge(this.securityGroup, 'AwsSolutions-EC23', 'Ingress is the admin port from the VPC\'s own CIDR and daemon ports from the proxy group; the rule cannot evaluate a CIDR that is a CloudFormation reference.');

    this.nodeFiles = new NodeFilesBundle(this, 'NodeFiles', { plan, role: 'mail', region: props.region });
    const bundle = daemonBundle({ path: props.daemonBundlePath, devBuild: this.node.tryGetContext(DEV_BUILD_CONTEXT) === true });
    // The daemon ships with its own Node.js runtime (checksummed); nodes install no Node.js of their own.
    const arch = isArm(sizing.instanceType) ? 'arm64' : 'x64';
    const pkg = daemonPackage(bundle.path, arch);
    if (!pkg.nodeVersion)
      Annotations.of(this).addWarningV2(
        'mailfleet:no-node-runtime',
        `no Node.js ${arch} runtime in this checkout (dist/node-runtime, MAILFLEET_NODE_RUNTIME_DIR or node_modules/${nodeRuntimePackage(arch)}): mail nodes will refuse to start the daemon; \`${NODE_RUNTIME_FETCH_COMMAND}\` fetches it`,
      );
    this.daemonBundle = new s3assets.Asset(this, 'DaemonBundle', { path: pkg.dir, assetHash: pkg.hash, assetHashType: AssetHashType.CUSTOM });
    // The role's statements come from the platform model (lib/plan/node-access.ts), as in Terraform and Pulumi.
    this.role = nodeRole(this, 'Role', plan, 'mail', props.region ?? 'primary', {
      objects: { 'node-files/mail': this.nodeFiles.asset, 'daemon-package': this.daemonBundle },
      privateZone: props.privateZone,
      auditArchive: props.auditArchive,
    });
    this.daemonBundleParameter = new ssm.StringParameter(this, 'DaemonBundleUri', {
      parameterName: daemonBundleParameter(plan),
      stringValue: this.daemonBundle.s3ObjectUrl,
      description: 'mailfleetd esbuild bundle',
    });
    new ssm.StringParameter(this, 'PrivateZoneId', {
      parameterName: `${ssmPrefix(plan)}/private-zone-id`,
      stringValue: props.privateZone.hostedZoneId,
      description: 'Private zone mail nodes register in',
    });
    if (props.auditArchive)
      new ssm.StringParameter(this, 'AuditBucket', {
        parameterName: auditBucketParameter(plan),
        stringValue: props.auditArchive.bucket.bucketName,
        description: 'Audit archive bucket the mail nodes of this region ship their journal to',
      });

    if (props.createSecrets ?? true) {
      const created = new Map(
        platformSecrets(plan)
          .filter((x) => x.owner === 'mail')
          .map((x) => [x.id, modelSecret(this, x, props.secretReplicaRegions ?? [])] as const),
      );
      this.adminTokenSecret = created.get('AdminToken');
      this.tlsSecret = created.get('Tls');
      this.staticUsersSecret = created.get('StaticUsers');
      this.relaySecret = created.get('Relay');
      this.redisAuthSecret = created.get('RedisAuth');
      if (this.redisAuthSecret)
        acknowledge(this.redisAuthSecret, 'AwsSolutions-SMG4', 'The ElastiCache AUTH token is rotated with modify-replication-group (ROTATE, then SET) and a rolling node restart, by the ops runbook.');
      if (this.staticUsersSecret) acknowledge(this.staticUsersSecret, 'AwsSolutions-SMG4', 'The users file is edited by the operator (mailfleet users add), not rotated.');
      if (this.relaySecret)
        acknowledge(this.relaySecret, 'AwsSolutions-SMG4', 'Relay credentials are issued by the relay provider (SES SMTP credentials, an ISP account), not rotated by Secrets Manager.');
      acknowledge(this.adminTokenSecret!, 'AwsSolutions-SMG4', 'Rotating the admin token needs a rolling daemon restart; it is rotated by the ops runbook, not a Lambda.');
      acknowledge(this.tlsSecret!, 'AwsSolutions-SMG4', 'Certificates are renewed by the certificate pipeline that writes this secret, not by Secrets Manager rotation.');
    }
    this.launchTemplate = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: sizing.instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      userData: userData(plan, 'mail'),
      rootVolumeGiB: props.rootVolumeGiB ?? 20,
      machineImage: props.machineImage,
      // New node files or a new daemon bundle roll through the group (rolling update below).
      contentHash: contentHash(this.nodeFiles.asset.assetHash, this.daemonBundle.assetHash),
    });
    tagRole(this.launchTemplate, 'mail');
    // New node files (daemon configuration) reach running nodes in place: withdrawn, drained, restarted.
    this.reload = inPlaceReload(this, reloadsOf(plan, props.region ?? 'primary').find((r) => r.kind === 'mail')!, contentHash(this.nodeFiles.asset.assetHash));
    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'Asg', {
      vpc,
      vpcSubnets: props.nodeSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplate: this.launchTemplate,
      // Clamped: conflicting sizes are reported by the validation above, at synth, with the rest.
      minCapacity: Math.min(min, max),
      maxCapacity: max,
      // Unset unless asked for: a set desired capacity resets a scaled-out group on every deploy.
      desiredCapacity: desired === undefined ? undefined : clamp(desired, Math.min(min, max), max),
      // EC2 checks plus the node's own: no load balancer fronts the mail tier (HAProxy finds nodes through
      // the private zone), so mailfleet-health.timer reports a node whose store or daemon fails as
      // Unhealthy (SetInstanceHealth), and the group replaces it; a node that never serves abandons its hook.
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(10) }),
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({ maxBatchSize: 1, minInstancesInService: Math.min(min, max) }),
      notifications: props.alarmTopic ? [{ topic: props.alarmTopic }] : undefined,
      // Long IMAP sessions: give clients time to move to another node before a node is replaced.
      defaultInstanceWarmup: Duration.minutes(5),
    });
    tagRole(this.autoScalingGroup, 'mail');
    // A node is InService only once it serves (storage mounted, daemon healthy): bootstrap/mail.sh completes
    // the launch hook, or abandons it when the store never comes (the group then replaces the node). A node
    // the group terminates drains first: bootstrap/drain.sh completes the terminate hook. Construct IDs
    // are pinned per hook name (renaming one replaces the hook).
    const hookIds: Readonly<Record<string, string>> = { [LAUNCH_HOOK_NAME]: 'Ready', [TERMINATE_HOOK_NAME]: 'Drain' };
    for (const h of MAIL_LIFECYCLE_HOOKS)
      this.autoScalingGroup.addLifecycleHook(hookIds[h.name] ?? h.name, {
        lifecycleHookName: h.name,
        lifecycleTransition:
          h.transition === 'autoscaling:EC2_INSTANCE_LAUNCHING' ? autoscaling.LifecycleTransition.INSTANCE_LAUNCHING : autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
        heartbeatTimeout: Duration.seconds(h.heartbeatTimeoutSeconds),
        defaultResult: h.defaultResult === 'ABANDON' ? autoscaling.DefaultResult.ABANDON : autoscaling.DefaultResult.CONTINUE,
      });
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'DescribeAutoScalingInstances has no resource-level permissions; CompleteLifecycleAction and SetInstanceHealth are limited to groups tagged mailfleet:role=mail (the group\'s ARN would make role, group and launch template depend on each other).',
    );
    if (!props.alarmTopic)
      acknowledge(this.autoScalingGroup, 'AwsSolutions-AS3', 'No alarm topic was given to MailServerFleet; the stacks pass one.');
    this.scalingMetric = new cw.Metric({
      namespace: metricNamespace(plan),
      metricName: CONNECTIONS_METRIC,
      dimensionsMap: { AutoScalingGroupName: this.autoScalingGroup.autoScalingGroupName },
      statistic: 'Average',
      period: Duration.minutes(1),
    });
    this.autoScalingGroup.scaleToTrackMetric('Connections', { metric: this.scalingMetric, targetValue: Math.max(1, target) });
  }

  /**
   * Lets `grantee` read the admin API token (secretsmanager:GetSecretValue), e.g. a Lambda or CI role
   * that runs `mailfleet top` / `mailfleet limit`. By name, so it also works where createSecrets is false
   * (the DR region reads the replica).
   */
  grantAdminTokenRead(grantee: iam.IGrantable): iam.Grant {
    return this.grantSecrets(grantee, ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], [this.secretNames.adminToken]);
  }

  /** Lets `grantee` write the TLS secret (JSON {"cert","key"}): the certificate pipeline's role. */
  grantTlsWrite(grantee: iam.IGrantable): iam.Grant {
    return this.grantSecrets(grantee, ['secretsmanager:PutSecretValue', 'secretsmanager:DescribeSecret'], [this.secretNames.tls]);
  }

  /**
   * Lets `grantee` read and write the static directory's users file (`mailfleet users add` run by an
   * operator role). Fails with a static directory only: with LDAP the users live in the directory.
   */
  grantUsersWrite(grantee: iam.IGrantable): iam.Grant {
    if (!this.staticDirectory) throw new MailfleetError('BAD_REQUEST', 'MailServerFleet.grantUsersWrite: the plan\'s directory is LDAP; users are managed there');
    return this.grantSecrets(grantee, ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:DescribeSecret'], [this.secretNames.staticUsers]);
  }

  private grantSecrets(grantee: iam.IGrantable, actions: string[], names: readonly string[]): iam.Grant {
    const stack = Stack.of(this);
    return iam.Grant.addToPrincipal({
      grantee,
      actions,
      // Secrets Manager appends a random 6-character suffix to every secret ARN.
      resourceArns: names.map((n) => stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${n}-??????`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })),
    });
  }

  /** Opens the daemon ports (PROXY v2) to the proxy tier. */
  allowProxyFrom(peer: ec2.IConnectable): void {
    allowGroupIngress(this.securityGroup, this.sgModel, 'proxy', peer);
  }
}

