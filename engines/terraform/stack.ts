/**
 * The platform as a cdktf stack (Terraform JSON for hashicorp/aws 5.100.0).
 *
 * cdktf was deprecated and archived upstream in December 2025: this engine is pinned (cdktf 0.21.0,
 * @cdktf/provider-aws 20.1.0) and kept thin — it only spells out engines/platform.ts in Terraform
 * resources. Nothing outside engines/terraform imports cdktf, so dropping it later is one folder.
 */
import { AssetType, Fn, LocalBackend, TerraformAsset, TerraformOutput, TerraformStack, TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';
import { AutoscalingGroup } from '@cdktf/provider-aws/lib/autoscaling-group/index.js';
import { DataAwsRoute53Zone } from '@cdktf/provider-aws/lib/data-aws-route53-zone/index.js';
import { DirectoryServiceDirectory } from '@cdktf/provider-aws/lib/directory-service-directory/index.js';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';
import { LambdaInvocation } from '@cdktf/provider-aws/lib/lambda-invocation/index.js';
import { Route53ResolverEndpoint } from '@cdktf/provider-aws/lib/route53-resolver-endpoint/index.js';
import { Route53ResolverRule } from '@cdktf/provider-aws/lib/route53-resolver-rule/index.js';
import { Route53ResolverRuleAssociation } from '@cdktf/provider-aws/lib/route53-resolver-rule-association/index.js';
import { writeFiles } from '../../constructs/shared/node-files-dir.js';
import type { BindAccountInput } from '../../lib/plan/managed-ad.js';
import { BIND_ACCOUNT_HANDLER } from '../../lib/render/bind-account.js';
import { EfsFileSystem } from '@cdktf/provider-aws/lib/efs-file-system/index.js';
import { EfsMountTarget } from '@cdktf/provider-aws/lib/efs-mount-target/index.js';
import { EfsReplicationConfiguration } from '@cdktf/provider-aws/lib/efs-replication-configuration/index.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { Eip } from '@cdktf/provider-aws/lib/eip/index.js';
import { FisExperimentTemplate } from '@cdktf/provider-aws/lib/fis-experiment-template/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret/index.js';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version/index.js';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter/index.js';
import { SsmDocument } from '@cdktf/provider-aws/lib/ssm-document/index.js';
import { SsmAssociation } from '@cdktf/provider-aws/lib/ssm-association/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import { InternetGateway } from '@cdktf/provider-aws/lib/internet-gateway/index.js';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template/index.js';
import { Lb } from '@cdktf/provider-aws/lib/lb/index.js';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener/index.js';
import { LbTargetGroup } from '@cdktf/provider-aws/lib/lb-target-group/index.js';
import { NatGateway } from '@cdktf/provider-aws/lib/nat-gateway/index.js';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { Route } from '@cdktf/provider-aws/lib/route/index.js';
import { Route53HealthCheck } from '@cdktf/provider-aws/lib/route53-health-check/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy/index.js';
import {
  HEALTH_CHECK_INSUFFICIENT_DATA,
  alarmName,
  alarmTopicKeyPolicy,
  alarmTopicPolicy,
  selfSignedCertAlarm,
  serviceHealthAlarm,
  type MetricAlarmModel,
} from '../../lib/render/alarms.js';
import { Route53Zone } from '@cdktf/provider-aws/lib/route53-zone/index.js';
import { Route53VpcAssociationAuthorization } from '@cdktf/provider-aws/lib/route53-vpc-association-authorization/index.js';
import { Route53ZoneAssociation } from '@cdktf/provider-aws/lib/route53-zone-association/index.js';
import { VpcPeeringConnection } from '@cdktf/provider-aws/lib/vpc-peering-connection/index.js';
import { VpcPeeringConnectionAccepterA } from '@cdktf/provider-aws/lib/vpc-peering-connection-accepter/index.js';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record/index.js';
import { RouteTable } from '@cdktf/provider-aws/lib/route-table/index.js';
import { RouteTableAssociation } from '@cdktf/provider-aws/lib/route-table-association/index.js';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { Subnet } from '@cdktf/provider-aws/lib/subnet/index.js';
import { VpcEndpoint } from '@cdktf/provider-aws/lib/vpc-endpoint/index.js';
import { Vpc } from '@cdktf/provider-aws/lib/vpc/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js';
import { NLB_HEALTH_CHECK_TF } from '../../lib/render/nlb.js';
import type { LifecycleHookModel } from '../../lib/render/node-layout.js';
import { auditArchiveTerraform, JOURNAL_KEYS } from './audit-archive.js';
import { ElasticacheReplicationGroup } from '@cdktf/provider-aws/lib/elasticache-replication-group/index.js';
import { ElasticacheSubnetGroup } from '@cdktf/provider-aws/lib/elasticache-subnet-group/index.js';
import { ROLE_TAG } from '../inventory.js';
import { qualifiedOutputName, type OutputSource } from '../../lib/plan/outputs.js';
import { fisActions, fisResourceArn, launchImage, literalArn, metricAlarmProps, outputNode, processesRoleName, regionSaturationAlarms, reloadAssociationProps, tagsFor, type NodeModel, type PlatformModel, type RegionModel } from '../platform.js';
import { bootObjectFolder, type BootObjectOptions } from '../boot-objects.js';
import type { AccessTarget, BootObjectId, ParameterModel } from '../../lib/plan/node-access.js';
import { drillFilters, fisRoleStatements, processesDocument, processesDocumentName, processesRoleStatements } from '../../lib/plan/drills.js';
import type { NodeRole } from '../../lib/render/node-layout.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
// IMDSv2 only; instance tags in IMDS let one user data text serve every node of a role.
const IMDSV2 = { httpTokens: 'required', httpEndpoint: 'enabled', instanceMetadataTags: 'enabled' };

interface BuiltRegion {
  readonly nlbs: Lb[];
  /** By plan listener name. */
  readonly targetGroups: ReadonlyMap<string, LbTargetGroup>;
  readonly alarmTopic: SnsTopic;
  /** Terraform expressions of the region's model outputs that region() can answer (the rest: dns(), drills()). */
  readonly values: Map<OutputSource['kind'], (source: OutputSource) => string | undefined>;
}

export interface MailfleetTerraformStackProps {
  /** The engine-neutral platform (engines/platform.ts). */
  readonly model: PlatformModel;
  /**
   * Local state file, relative to the folder `terraform` runs in (cdktf's default is an absolute path
   * on the synthesizing machine, which no other machine has).
   * @default 'terraform.tfstate'
   */
  readonly statePath?: string;
  /**
   * Where the daemon bundle comes from and whether synth may build it (engines/boot-objects.ts).
   * @default - the package's bundle; built when cdk.json allows dev builds
   */
  readonly bootObjects?: BootObjectOptions;
}

export class MailfleetTerraformStack extends TerraformStack {
  /** One entry per region, NLBs in shard order. */
  public readonly regions: ReadonlyMap<string, BuiltRegion>;

  constructor(scope: Construct, id: string, props: MailfleetTerraformStackProps) {
    super(scope, id);
    const { model } = props;
    this.bootObjects = props.bootObjects ?? {};
    new LocalBackend(this, { path: props.statePath ?? 'terraform.tfstate' });
    // Managed AD: the service account's password, which the bind secret starts with and the account gets.
    if (model.managedAd)
      this.bindPassword = new TerraformVariable(this, model.managedAd.bindPasswordInput, {
        type: 'string',
        sensitive: true,
        description: 'Password of the Managed AD service account the daemons bind with (AD complexity rules apply)',
      });
    const built = new Map<string, BuiltRegion>();
    for (const region of model.regions) {
      const provider = new AwsProvider(this, `aws-${region.role}`, {
        region: region.region,
        allowedAccountIds: [region.account],
        alias: region.role === 'primary' ? undefined : region.role,
      });
      built.set(region.role, this.region(model, region, provider));
    }
    this.regions = built;
    if (model.link) this.link(model);
    if (model.managedAd) this.managedAd(model);
    if (model.dns) this.dns(model);
    if (model.drills.length > 0) this.drills(model);
    this.outputs(model);
  }

  /** The model's outputs, under the names the DR drill reads (qualified by region: one state holds both). */
  private outputs(model: PlatformModel): void {
    for (const r of model.regions) {
      const values = this.regions.get(r.role)!.values;
      for (const o of r.outputs) {
        const value =
          o.source.kind === 'health-check-id'
            ? this.healthChecks[o.source.shard]?.id
            : o.source.kind === 'fis-template-id'
              ? this.fisTemplates.get(o.source.drill)?.id
              : values.get(o.source.kind)?.(o.source);
        if (value === undefined) throw new Error(`terraform: no resource for output ${o.name} (${o.source.kind})`);
        new TerraformOutput(this, qualifiedOutputName(r.role, o.name), { value, description: o.description });
      }
    }
  }

  private readonly healthChecks: Route53HealthCheck[] = [];
  private readonly bootObjects: BootObjectOptions;

  /**
   * What nodes need to boot (lib/plan/node-access.ts): a private bucket with the node files and daemon
   * package, the SSM parameters naming them, one role + instance profile per node kind, and (primary)
   * the secrets, replicated to DR.
   */
  private boot(model: PlatformModel, r: RegionModel, provider: AwsProvider, privateZone: Route53Zone, redis?: ElasticacheReplicationGroup): { profiles: Map<NodeRole, IamInstanceProfile> } {
    const p = r.role;
    const b = r.boot;
    const tags = (role: string, name: string) => tagsFor(model, role, name);
    const bucket = new S3Bucket(this, `${p}-boot-bucket`, {
      provider,
      // Bucket names are global: Terraform completes the prefix; destroy empties it (its objects are rebuilt from the plan).
      bucketPrefix: `${r.prefix.slice(0, 30).replace(/[^a-z0-9-]/g, '-')}-boot-`,
      forceDestroy: true,
      tags: tags('network', `${r.prefix}-boot`),
    });
    new S3BucketPublicAccessBlock(this, `${p}-boot-bucket-private`, {
      provider,
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const objects = new Map<BootObjectId, S3Object>();
    const hashes = new Map<BootObjectId, string>();
    for (const o of b.objects) {
      const folder = bootObjectFolder(model.plan, r.role, o, this.bootObjects);
      const safe = o.id.replace(/\//g, '-');
      const asset = new TerraformAsset(this, `${p}-asset-${safe}`, { path: folder.dir, type: AssetType.ARCHIVE, assetHash: folder.hash });
      objects.set(o.id, new S3Object(this, `${p}-boot-${safe}`, { provider, bucket: bucket.id, key: o.key, source: asset.path, sourceHash: folder.hash }));
      hashes.set(o.id, folder.hash);
    }
    // In-place reloads (lib/plan/reload.ts): a new node-files hash is a new association parameter, which State Manager runs again.
    for (const rl of r.reloads) {
      const doc = new SsmDocument(this, `${p}-reload-${rl.kind}-doc`, { provider, name: rl.documentName, documentType: 'Command', documentFormat: 'JSON', content: literalText(JSON.stringify(rl.document)), tags: tags(rl.kind, rl.documentName) });
      new SsmAssociation(this, `${p}-reload-${rl.kind}`, { provider, name: doc.name, ...reloadAssociationProps(rl, hashes.get(`node-files/${rl.kind}`) ?? '') });
    }
    // The region's own audit journal archive (audit-archive.ts): its mail nodes ship there.
    const audit = model.audit
      ? auditArchiveTerraform(this, p, { provider, prefix: r.prefix, account: r.account, audit: model.audit, tags: tags('audit', `${r.prefix}-audit`) })
      : undefined;
    const mustAudit = () => {
      if (!audit) throw new Error(`terraform: the model names the audit archive in ${r.role} but audit is off`);
      return audit;
    };
    const parameterValue = (v: ParameterModel['value']): string => {
      switch (v.kind) {
        case 'private-zone-id':
          return privateZone.zoneId;
        case 'audit-bucket':
          return mustAudit().bucket.bucket;
        case 'redis-endpoint':
          if (!redis) throw new Error(`terraform: the model names Redis in ${r.role} but none is provisioned`);
          return `${redis.primaryEndpointAddress}:${redis.port}`;
        case 'object-uri':
          return `s3://${bucket.bucket}/${objects.get(v.object)!.key}`;
      }
    };
    for (const [i, prm] of b.parameters.entries())
      new SsmParameter(this, `${p}-param-${i}`, {
        provider,
        name: prm.name,
        type: 'String',
        description: prm.description,
        value: parameterValue(prm.value),
        tags: tags('network', prm.name),
      });
    const arnOf = (t: AccessTarget): string => {
      switch (t.kind) {
        case 'private-zone':
          return `arn:aws:route53:::hostedzone/${privateZone.zoneId}`;
        case 'boot-object':
          return `${bucket.arn}/${objects.get(t.object)!.key}`;
        case 'audit-journal':
          return `${mustAudit().bucket.arn}/${JOURNAL_KEYS}`;
        case 'audit-key':
          return mustAudit().key.arn;
        default:
          return literalArn(model, r, t)!;
      }
    };
    const profiles = new Map<NodeRole, IamInstanceProfile>();
    for (const a of b.roles) {
      const role = new IamRole(this, `${p}-role-${a.role}`, {
        provider,
        description: a.description,
        assumeRolePolicy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        }),
        tags: tags(a.role, `${r.prefix}-${a.role}`),
      });
      a.managedPolicies.forEach(
        (m, i) => new IamRolePolicyAttachment(this, `${p}-role-${a.role}-managed-${i}`, { provider, role: role.name, policyArn: `arn:aws:iam::aws:policy/${m}` }),
      );
      new IamRolePolicy(this, `${p}-role-${a.role}-policy`, {
        provider,
        role: role.id,
        policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: a.statements.map((st) => ({
            Effect: 'Allow',
            Action: st.actions,
            Resource: st.targets.map(arnOf),
            ...(st.conditions ? { Condition: st.conditions } : {}),
          })),
        }),
      });
      profiles.set(a.role, new IamInstanceProfile(this, `${p}-profile-${a.role}`, { provider, role: role.name, tags: tags(a.role, `${r.prefix}-${a.role}`) }));
    }
    for (const sec of b.secrets) {
      const secret = new SecretsmanagerSecret(this, `${p}-secret-${sec.id}`, {
        provider,
        name: sec.name,
        description: sec.description,
        replica: b.secretReplicaRegions.map((region) => ({ region })),
        tags: tags('secret', sec.name),
      });
      // Starting texts only: generated values need a random source Terraform has not without another
      // provider (docs/engines.md: the operator puts them before the first boot); later edits are the operator's.
      const v = sec.value;
      // The Redis AUTH token is the variable the replication groups are created with.
      if (sec.id === 'RedisAuth' && this.redisAuth)
        new SecretsmanagerSecretVersion(this, `${p}-secret-${sec.id}-initial`, { provider, secretId: secret.id, secretString: this.redisAuth.stringValue });
      // The Managed AD service password is the variable the bind account is created with.
      else if (sec.id === 'BindSecret' && this.bindPassword)
        this.bindSecret = {
          secret,
          version: new SecretsmanagerSecretVersion(this, `${p}-secret-${sec.id}-initial`, { provider, secretId: secret.id, secretString: this.bindPassword.stringValue, lifecycle: { ignoreChanges: ['secret_string'] } }),
        };
      else if (v.kind === 'literal' || v.kind === 'template')
        new SecretsmanagerSecretVersion(this, `${p}-secret-${sec.id}-initial`, {
          provider,
          secretId: secret.id,
          secretString: v.kind === 'literal' ? v.text : JSON.stringify({ ...v.template, [v.generateKey]: '' }),
          lifecycle: { ignoreChanges: ['secret_string'] },
        });
    }
    return { profiles };
  }
  private readonly fisTemplates = new Map<string, FisExperimentTemplate>();
  private redisAuth?: TerraformVariable;
  private bindPassword?: TerraformVariable;
  private bindSecret?: { secret: SecretsmanagerSecret; version: SecretsmanagerSecretVersion };

  /**
   * The region's Redis (RedisModel): a Valkey replication group, primary + replica across AZs, TLS and
   * at-rest encryption, AUTH token from a sensitive variable (Terraform has no random source without
   * another provider), in the private subnets behind the redis security group.
   */
  private redis(model: PlatformModel, r: RegionModel, provider: AwsProvider, subnets: Subnet[], sg: SecurityGroup): ElasticacheReplicationGroup {
    const m = r.redis!;
    this.redisAuth ??= new TerraformVariable(this, m.authInput, {
      type: 'string',
      sensitive: true,
      description: `AUTH token of the provisioned Redis (also stored in the secret ${m.authSecret}): 16-128 letters and digits`,
      // JSON syntax: an expression is a template (`${…}`).
      validation: [{ condition: '${can(regex("^[A-Za-z0-9]{16,128}$", var.' + m.authInput + '))}', errorMessage: 'redis_auth_token: 16-128 letters and digits' }],
    });
    const group = new ElasticacheSubnetGroup(this, `${r.role}-redis-subnets`, { provider, name: m.name, description: 'mailfleet Redis: private subnets', subnetIds: subnets.map((s) => s.id), tags: tagsFor(model, 'redis', m.name) });
    return new ElasticacheReplicationGroup(this, `${r.role}-redis`, {
      provider,
      replicationGroupId: m.name,
      description: 'mailfleet fleet-wide limits',
      engine: m.engine,
      engineVersion: m.engineVersion,
      nodeType: m.nodeType,
      numCacheClusters: m.nodes,
      port: m.port,
      automaticFailoverEnabled: true,
      multiAzEnabled: true,
      transitEncryptionEnabled: true,
      atRestEncryptionEnabled: 'true',
      authToken: this.redisAuth.stringValue,
      subnetGroupName: group.name,
      securityGroupIds: [sg.id],
      tags: tagsFor(model, 'redis', m.name),
    });
  }

  private region(model: PlatformModel, r: RegionModel, provider: AwsProvider): BuiltRegion {
    const p = r.role; // construct id prefix; Terraform addresses read "aws_vpc.primary-vpc"
    const tags = (role: string, name: string) => tagsFor(model, role, name);
    const vpc = new Vpc(this, `${p}-vpc`, {
      provider,
      cidrBlock: r.cidr,
      enableDnsHostnames: true,
      enableDnsSupport: true,
      tags: tags('network', `${r.prefix}-vpc`),
    });
    const igw = new InternetGateway(this, `${p}-igw`, { provider, vpcId: vpc.id, tags: tags('network', `${r.prefix}-igw`) });
    const subnet = (s: RegionModel['publicSubnets'][number], i: number) =>
      new Subnet(this, `${p}-${s.public ? 'public' : 'private'}-${i}`, {
        provider,
        vpcId: vpc.id,
        availabilityZone: s.az,
        cidrBlock: s.cidr,
        mapPublicIpOnLaunch: false,
        tags: tags('network', s.name),
      });
    const publicSubnets = r.publicSubnets.map(subnet);
    const privateSubnets = r.privateSubnets.map(subnet);
    const publicRt = new RouteTable(this, `${p}-public-rt`, { provider, vpcId: vpc.id, tags: tags('network', `${r.prefix}-public`) });
    new Route(this, `${p}-public-default`, { provider, routeTableId: publicRt.id, destinationCidrBlock: '0.0.0.0/0', gatewayId: igw.id });
    // One NAT gateway per region: nodes only fetch packages and call AWS APIs through it.
    const eip = new Eip(this, `${p}-nat-eip`, { provider, domain: 'vpc', tags: tags('network', `${r.prefix}-nat`) });
    const nat = new NatGateway(this, `${p}-nat`, {
      provider,
      allocationId: eip.allocationId,
      subnetId: publicSubnets[0]!.id,
      tags: tags('network', `${r.prefix}-nat`),
    });
    const privateRt = new RouteTable(this, `${p}-private-rt`, { provider, vpcId: vpc.id, tags: tags('network', `${r.prefix}-private`) });
    new Route(this, `${p}-private-default`, { provider, routeTableId: privateRt.id, destinationCidrBlock: '0.0.0.0/0', natGatewayId: nat.id });
    publicSubnets.forEach((s, i) => new RouteTableAssociation(this, `${p}-public-rta-${i}`, { provider, subnetId: s.id, routeTableId: publicRt.id }));
    privateSubnets.forEach((s, i) => new RouteTableAssociation(this, `${p}-private-rta-${i}`, { provider, subnetId: s.id, routeTableId: privateRt.id }));

    const groups = new Map<string, SecurityGroup>();
    for (const g of r.securityGroups)
      groups.set(g.role, new SecurityGroup(this, `${p}-sg-${g.role}`, { provider, name: g.name, description: g.description, vpcId: vpc.id, tags: tags(g.role, g.name) }));
    for (const g of r.securityGroups) {
      const sg = groups.get(g.role)!;
      g.ingress.forEach((rule, i) => {
        new VpcSecurityGroupIngressRule(this, `${p}-sg-${g.role}-in-${i}`, {
          provider,
          securityGroupId: sg.id,
          ipProtocol: rule.protocol,
          fromPort: rule.fromPort,
          toPort: rule.toPort,
          description: rule.description,
          ...('cidr' in rule.peer ? { cidrIpv4: rule.peer.cidr } : { referencedSecurityGroupId: groups.get(rule.peer.role)!.id }),
        });
      });
      if (g.egressAllTo !== undefined)
        new VpcSecurityGroupEgressRule(this, `${p}-sg-${g.role}-out`, {
          provider,
          securityGroupId: sg.id,
          ipProtocol: '-1',
          cidrIpv4: g.egressAllTo,
          description: 'all outbound',
        });
    }

    // Nodes reach S3 and the AWS APIs they call through endpoints, not the NAT gateway.
    new VpcEndpoint(this, `${p}-endpoint-s3`, {
      provider,
      vpcId: vpc.id,
      serviceName: `com.amazonaws.${r.region}.s3`,
      vpcEndpointType: 'Gateway',
      routeTableIds: [publicRt.id, privateRt.id],
      tags: tags('network', `${r.prefix}-s3`),
    });
    for (const svc of r.interfaceEndpoints)
      new VpcEndpoint(this, `${p}-endpoint-${svc}`, {
        provider,
        vpcId: vpc.id,
        serviceName: `com.amazonaws.${r.region}.${svc}`,
        vpcEndpointType: 'Interface',
        privateDnsEnabled: true,
        subnetIds: privateSubnets.map((s) => s.id),
        securityGroupIds: [groups.get('endpoint')!.id],
        tags: tags('endpoint', `${r.prefix}-${svc}`),
      });

    const nlbs: Lb[] = [];
    const targetGroups = new Map<string, LbTargetGroup>();
    for (const n of r.nlbs) {
      const lb = new Lb(this, `${p}-nlb-${n.index}`, {
        provider,
        loadBalancerType: 'network',
        internal: false,
        subnets: publicSubnets.map((s) => s.id),
        enableCrossZoneLoadBalancing: true,
        tags: tags('nlb', n.name),
      });
      nlbs.push(lb);
      for (const l of n.listeners) {
        const tg = new LbTargetGroup(this, `${p}-tg-${l.name}`, {
          provider,
          vpcId: vpc.id,
          port: l.port,
          protocol: 'TCP',
          targetType: 'instance',
          proxyProtocolV2: true,
          preserveClientIp: 'true',
          healthCheck: NLB_HEALTH_CHECK_TF,
          tags: tags('proxy', l.name),
        });
        targetGroups.set(l.name, tg);
        new LbListener(this, `${p}-listener-${l.name}`, {
          provider,
          loadBalancerArn: lb.arn,
          port: l.port,
          protocol: 'TCP',
          tcpIdleTimeoutSeconds: l.idleTimeoutSeconds,
          defaultAction: [{ type: 'forward', targetGroupArn: tg.arn }],
          tags: tags('nlb', l.name),
        });
      }
    }

    // Private names the node files use (gluster-N, ldap-*, efs), in this region's own zones.
    const zones = {
      platform: new Route53Zone(this, `${p}-zone-platform`, { provider, name: r.privateZones.platform, vpc: [{ vpcId: vpc.id }], tags: tags('network', r.privateZones.platform) }),
      // The other region's VPC is associated by a separate resource (link()): inline `vpc` must then be ignored.
      region: new Route53Zone(this, `${p}-zone-region`, {
        provider,
        name: r.privateZones.region,
        vpc: [{ vpcId: vpc.id }],
        tags: tags('network', r.privateZones.region),
        ...(model.link ? { lifecycle: { ignoreChanges: ['vpc'] } } : {}),
      }),
    };
    const redis = r.redis ? this.redis(model, r, provider, privateSubnets, groups.get('redis')!) : undefined;
    const boot = this.boot(model, r, provider, zones.platform, redis);

    // One launch template per node kind, shared by the kind's groups (every HAProxy shard runs the same text).
    const launchTemplates = new Map<string, LaunchTemplate>();
    const launchTemplate = (role: NodeRole, name: string, o: { amiParameter: string; imageId?: string; instanceType: string; userData: string }) => {
      let lt = launchTemplates.get(role);
      if (!lt) {
        lt = new LaunchTemplate(this, `${p}-lt-${role}`, {
          provider,
          name,
          imageId: launchImage(o),
          iamInstanceProfile: { arn: boot.profiles.get(role as NodeRole)!.arn },
          instanceType: o.instanceType,
          vpcSecurityGroupIds: [groups.get(role)!.id],
          userData: b64(o.userData),
          metadataOptions: IMDSV2,
          tagSpecifications: [{ resourceType: 'instance', tags: tags(role, name) }],
          tags: tags(role, name),
        });
        launchTemplates.set(role, lt);
      }
      return lt;
    };
    let mailAsg: AutoscalingGroup | undefined;
    for (const t of r.tiers) {
      const lt = launchTemplate(t.role, `${r.prefix}-${t.role}`, t);
      const asg = new AutoscalingGroup(this, `${p}-asg-${t.role}${t.shard ? `-${t.shard}` : ''}`, {
        provider,
        name: t.name,
        minSize: t.min,
        maxSize: t.max,
        desiredCapacity: t.desired,
        vpcZoneIdentifier: privateSubnets.map((s) => s.id),
        launchTemplate: { id: lt.id, version: '$Latest' },
        targetGroupArns: t.inTargetGroups ? t.targetGroups.map((name) => targetGroups.get(name)!.arn) : undefined,
        healthCheckType: t.inTargetGroups ? 'ELB' : 'EC2',
        // Mail nodes are InService once they serve (bootstrap/mail.sh completes the launch hook or abandons
        // it), and drain before they go (bootstrap/drain.sh completes the terminate hook).
        initialLifecycleHook: (t.lifecycleHooks.length > 0 ? t.lifecycleHooks.map(lifecycleHookInput) : undefined),
        tag: Object.entries(tags(t.role, t.name)).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
      });
      if (t.role === 'mail') mailAsg = asg;
    }

    const instances = new Map<string, Instance>();
    const node = (n: NodeModel) => {
      const id = `${p}-${n.role}-${n.name.slice(n.name.lastIndexOf('-') + 1)}`;
      // The node kind's launch template carries image, type, group, IMDS options and user data.
      const lt = launchTemplate(n.role, `${r.prefix}-${n.role}`, n);
      const instance = new Instance(this, id, {
        provider,
        launchTemplate: { id: lt.id, version: '$Latest' },
        subnetId: privateSubnets[n.subnet]!.id,
        rootBlockDevice: { encrypted: true, volumeType: 'gp3' },
        // The spec decides whether `terraform destroy` may remove the node (as the CDK stacks do).
        disableApiTermination: n.terminationProtection,
        tags: { ...tags(n.role, n.name), ...n.nodeTags },
      });
      instances.set(n.name, instance);
      if (n.dataVolumeGiB === undefined) return;
      // A separate volume (not ebs_block_device) outlives instance replacement, as the CDK stacks keep bricks.
      const volume = new EbsVolume(this, `${id}-data`, {
        provider,
        availabilityZone: r.privateSubnets[n.subnet]!.az,
        size: n.dataVolumeGiB,
        type: 'gp3',
        encrypted: true,
        tags: tags(n.role, `${n.name}-data`),
      });
      new VolumeAttachment(this, `${id}-data-attach`, { provider, deviceName: '/dev/sdf', volumeId: volume.id, instanceId: instance.id });
    };
    r.storageNodes.forEach(node);
    r.ldapNodes.forEach(node);

    if (r.efs) {
      const fs = new EfsFileSystem(this, `${p}-efs`, {
        provider,
        encrypted: true,
        throughputMode: r.efs.throughputMode,
        tags: tags('efs', r.efs.name),
      });
      privateSubnets.forEach(
        (s, i) => new EfsMountTarget(this, `${p}-efs-mt-${i}`, { provider, fileSystemId: fs.id, subnetId: s.id, securityGroups: [groups.get('efs')!.id] }),
      );
      this.efs.set(r.role, { fs, provider });
    }
    if (r.role === 'dr' && r.efs) {
      const src = this.efs.get('primary')!;
      new EfsReplicationConfiguration(this, 'efs-replication', {
        provider: src.provider,
        sourceFileSystemId: src.fs.id,
        destination: { region: r.region, fileSystemId: this.efs.get('dr')!.fs.id },
      });
    }
    r.privateRecords.forEach((rec, i) => {
      const fs = this.efs.get(r.role)?.fs;
      new Route53Record(this, `${p}-dns-${i}`, {
        provider,
        zoneId: zones[rec.zone].zoneId,
        name: rec.name,
        ttl: rec.ttl,
        ...(rec.node !== undefined
          ? { type: 'A', records: [instances.get(rec.node)!.privateIp] }
          : { type: 'CNAME', records: [`${fs!.id}.efs.${r.region}.amazonaws.com`] }),
      });
    });
    this.vpcs.set(r.role, { vpc, privateSubnets, provider, privateRt, regionZone: zones.region, model: r, resolverSg: groups.get('resolver') });
    const values: BuiltRegion['values'] = new Map<OutputSource['kind'], (source: OutputSource) => string | undefined>([
      ['vpc-id', () => vpc.id],
      ['nlb-dns', (o) => (o.kind === 'nlb-dns' ? nlbs[o.shard]?.dnsName : undefined)],
      ['mail-asg-name', () => mailAsg?.name],
      ['storage-host', (o) => (o.kind === 'storage-host' ? o.value : undefined)],
      ['storage-instance-id', (o) => instances.get(outputNode(r, o) ?? '')?.id],
      ['ldap-instance-id', (o) => instances.get(outputNode(r, o) ?? '')?.id],
      ['efs-id', () => this.efs.get(r.role)?.fs.id],
    ]);
    // Alarms (lib/render/alarms.ts) to a topic CloudWatch can publish to: listener saturation, the generated certificate.
    const alarmTopic = this.alarmTopic(model, r, provider);
    for (const { listener, alarm } of regionSaturationAlarms(model.plan, r))
      this.alarm(`${p}-saturation-${listener}`, provider, alarmName(model.platform, p, `saturation-${listener}`), alarm, alarmTopic);
    if (mailAsg) this.alarm(`${p}-self-signed-certificate`, provider, alarmName(model.platform, p, 'self-signed-certificate'), selfSignedCertAlarm(model.plan, mailAsg.name), alarmTopic);
    return { nlbs, targetGroups, alarmTopic, values };
  }

  /** The region's alarm topic under a customer-managed key CloudWatch may use (alias/aws/sns refuses it). */
  private alarmTopic(model: PlatformModel, r: RegionModel, provider: AwsProvider): SnsTopic {
    const key = new KmsKey(this, `${r.role}-alarms-key`, {
      provider,
      description: `mailfleet ${model.platform} ${r.role}: alarm topic encryption`,
      enableKeyRotation: true,
      policy: JSON.stringify(alarmTopicKeyPolicy(r.account)),
      tags: tagsFor(model, 'alarms', `${r.prefix}-alarms`),
    });
    const topic = new SnsTopic(this, `${r.role}-alarms`, {
      provider,
      name: alarmName(model.platform, r.role, 'alarms'),
      displayName: `mailfleet ${model.platform} ${r.role} alarms`,
      kmsMasterKeyId: key.arn,
      tags: tagsFor(model, 'alarms', `${r.prefix}-alarms`),
    });
    new SnsTopicPolicy(this, `${r.role}-alarms-policy`, { provider, arn: topic.arn, policy: JSON.stringify(alarmTopicPolicy(r.account, topic.arn)) });
    return topic;
  }

  private alarm(id: string, provider: AwsProvider, name: string, m: MetricAlarmModel, topic: SnsTopic): CloudwatchMetricAlarm {
    return new CloudwatchMetricAlarm(this, id, { provider, alarmName: name, ...metricAlarmProps(m, topic.arn) });
  }

  private readonly efs = new Map<string, { fs: EfsFileSystem; provider: AwsProvider }>();
  private readonly vpcs = new Map<
    string,
    { vpc: Vpc; privateSubnets: Subnet[]; provider: AwsProvider; privateRt: RouteTable; regionZone: Route53Zone; model: RegionModel; resolverSg?: SecurityGroup }
  >();

  /** Peering between the regions, routes both ways, and each region-qualified zone on the other VPC. */
  private link(model: PlatformModel): void {
    const { requester, accepter } = model.link!;
    const req = this.vpcs.get(requester)!;
    const acc = this.vpcs.get(accepter)!;
    const tags = tagsFor(model, 'network', `${model.platform}-peering`);
    const peering = new VpcPeeringConnection(this, 'peering', {
      provider: req.provider,
      vpcId: req.vpc.id,
      peerVpcId: acc.vpc.id,
      peerRegion: acc.model.region,
      peerOwnerId: acc.model.account,
      tags,
    });
    // Routes use the accepter's id, so they wait until the peering is active.
    const accepted = new VpcPeeringConnectionAccepterA(this, 'peering-accept', { provider: acc.provider, vpcPeeringConnectionId: peering.id, autoAccept: true, tags });
    for (const d of model.link!.directions) {
      const from = this.vpcs.get(d.from)!;
      const to = this.vpcs.get(d.to)!;
      new Route(this, `${from.model.role}-to-${to.model.role}`, {
        provider: from.provider,
        routeTableId: from.privateRt.id,
        destinationCidrBlock: to.model.cidr,
        vpcPeeringConnectionId: accepted.id,
      });
      const id = `${from.model.role}-zone-on-${to.model.role}-vpc`;
      const association = { zoneId: from.regionZone.zoneId, vpcId: to.vpc.id, vpcRegion: to.model.region };
      if (!d.crossAccount) new Route53ZoneAssociation(this, id, { provider: from.provider, ...association });
      else {
        const auth = new Route53VpcAssociationAuthorization(this, `${id}-auth`, { provider: from.provider, ...association });
        new Route53ZoneAssociation(this, id, { provider: to.provider, zoneId: auth.zoneId, vpcId: auth.vpcId, vpcRegion: to.model.region });
      }
    }
  }

  private managedAd(model: PlatformModel) {
    const ad = model.managedAd!;
    const primary = this.vpcs.get('primary')!;
    const password = new TerraformVariable(this, ad.passwordInput, {
      type: 'string',
      sensitive: true,
      description: 'Admin password of the AWS Managed Microsoft AD',
    });
    const dir = new DirectoryServiceDirectory(this, 'managed-ad', {
      provider: primary.provider,
      type: 'MicrosoftAD',
      edition: ad.edition,
      name: ad.name,
      shortName: ad.shortName,
      password: password.stringValue,
      vpcSettings: { vpcId: primary.vpc.id, subnetIds: primary.privateSubnets.slice(0, 2).map((s) => s.id) },
      tags: tagsFor(model, 'directory', ad.name),
    });
    // Each region forwards the domain to the (primary's two) domain controllers through its own outbound endpoint.
    const dcs = Fn.tolist(dir.dnsIpAddresses);
    for (const r of model.regions) {
      const v = this.vpcs.get(r.role)!;
      const m = r.resolver!;
      const endpoint = new Route53ResolverEndpoint(this, `${r.prefix}-ad-outbound`, {
        provider: v.provider,
        name: m.endpointName,
        direction: 'OUTBOUND',
        securityGroupIds: [v.resolverSg!.id],
        ipAddress: v.privateSubnets.slice(0, m.subnets).map((s) => ({ subnetId: s.id })),
        tags: tagsFor(model, 'resolver', m.endpointName),
      });
      const rule = new Route53ResolverRule(this, `${r.prefix}-ad-forward`, {
        provider: v.provider,
        name: m.ruleName,
        domainName: m.domain,
        ruleType: 'FORWARD',
        resolverEndpointId: endpoint.id,
        targetIp: [0, 1].map((i) => ({ ip: Fn.element(dcs, i), port: m.port })),
        tags: tagsFor(model, 'resolver', m.ruleName),
      });
      new Route53ResolverRuleAssociation(this, `${r.prefix}-ad-forward-vpc`, { provider: v.provider, resolverRuleId: rule.id, vpcId: v.vpc.id });
    }
    this.bindAccount(model, dir);
  }

  /**
   * The daemons' service account (lib/plan/managed-ad.ts): the shared function, invoked once the
   * directory and the bind secret's first version exist; it reads the password from the secret itself.
   */
  private bindAccount(model: PlatformModel, dir: DirectoryServiceDirectory) {
    const ad = model.managedAd!;
    const f = ad.bindAccount;
    const primary = this.vpcs.get('primary')!;
    const provider = primary.provider;
    const bind = this.bindSecret!;
    const code = new TerraformAsset(this, 'ad-bind-account-code', { path: writeFiles([{ path: 'index.js', content: BIND_ACCOUNT_HANDLER }]), type: AssetType.ARCHIVE });
    const role = new IamRole(this, 'ad-bind-account-role', {
      provider,
      name: f.name,
      assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
      tags: tagsFor(model, 'directory', f.name),
    });
    new IamRolePolicyAttachment(this, 'ad-bind-account-logs', { provider, role: role.name, policyArn: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole' });
    new IamRolePolicy(this, 'ad-bind-account-policy', {
      provider,
      role: role.id,
      policy: Fn.jsonencode({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: [...f.directoryActions], Resource: `arn:aws:ds:${primary.model.region}:${primary.model.account}:directory/${dir.id}` },
          { Effect: 'Allow', Action: [...f.secretActions], Resource: bind.secret.arn },
        ],
      }),
    });
    const fn = new LambdaFunction(this, 'ad-bind-account', {
      provider,
      functionName: f.name,
      description: 'mailfleet: creates the Managed AD service account and sets its password from the bind secret',
      role: role.arn,
      runtime: f.runtime,
      handler: f.handler,
      timeout: f.timeoutSeconds,
      filename: code.path,
      sourceCodeHash: Fn.filebase64sha256(code.path),
      tags: tagsFor(model, 'directory', f.name),
    });
    const input: BindAccountInput = { DirectoryId: dir.id, SamAccountName: ad.serviceAccount, SecretArn: bind.secret.arn };
    new LambdaInvocation(this, 'ad-bind-account-run', { provider, functionName: fn.functionName, input: Fn.jsonencode(input), dependsOn: [bind.version] });
  }

  /** FIS drill templates in the primary, with a role that may stop and start this platform's instances only. */
  private drills(model: PlatformModel) {
    const provider = this.vpcs.get('primary')!.provider;
    const primary = model.regions.find((x) => x.role === 'primary')!;
    // The processes automation (lib/plan/drills.ts): drills of Auto Scaling instances hold the group's replacement.
    const document = new SsmDocument(this, 'drill-processes-doc', {
      provider,
      name: processesDocumentName(model),
      documentType: 'Automation',
      documentFormat: 'JSON',
      content: literalText(JSON.stringify(processesDocument())),
      tags: tagsFor(model, 'dr', processesDocumentName(model)),
    });
    const processesRole = new IamRole(this, 'drill-processes-role', {
      provider,
      name: processesRoleName(model),
      description: `mailfleet ${model.platform} DR drills: suspend and resume proxy group processes`,
      assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ssm.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
      tags: tagsFor(model, 'dr', processesRoleName(model)),
    });
    new IamRolePolicy(this, 'drill-processes-policy', {
      provider,
      role: processesRole.id,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: processesRoleStatements(model.platform).map((st) => ({ Effect: 'Allow', Action: st.actions, Resource: st.resource, ...(st.conditions ? { Condition: st.conditions } : {}) })),
      }),
    });
    const role = new IamRole(this, 'fis-role', {
      provider,
      name: `${model.platform}-fis-drills`,
      description: `mailfleet ${model.platform} DR drills`,
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'fis.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
      tags: tagsFor(model, 'dr', `${model.platform}-fis-drills`),
    });
    new IamRolePolicy(this, 'fis-role-policy', {
      provider,
      role: role.id,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: fisRoleStatements(model.platform).map((st) => ({
          Effect: 'Allow',
          Action: st.actions,
          Resource: fisResourceArn(model, primary, st.resource),
          ...(st.conditions ? { Condition: st.conditions } : {}),
        })),
      }),
    });
    for (const d of model.drills) {
      const t = new FisExperimentTemplate(this, `drill-${d.id}`, {
        provider,
        description: d.description,
        roleArn: role.arn,
        stopCondition: [{ source: 'none' }],
        target: [
          {
            name: 'nodes',
            resourceType: 'aws:ec2:instance',
            selectionMode: d.selectionMode,
            resourceTag: Object.entries({ ...model.tags, [ROLE_TAG]: d.nodeRole }).map(([key, value]) => ({ key, value })),
            filter: drillFilters(d),
          },
        ],
        action: fisActions(model, primary, d).map((a) => ({
          name: a.name,
          actionId: a.actionId,
          ...(a.startAfter.length > 0 ? { startAfter: a.startAfter } : {}),
          parameter: Object.entries(a.parameters).map(([key, value]) => ({ key, value })),
          ...(a.target ? { target: { key: 'Instances', value: a.target } } : {}),
        })),
        tags: tagsFor(model, 'dr', `${model.platform}-${d.id}`),
        dependsOn: [document, processesRole],
      });
      this.fisTemplates.set(d.id, t);
    }
  }

  private dns(model: PlatformModel) {
    const dns = model.dns!;
    const provider = this.vpcs.get('primary')!.provider;
    const zoneId = dns.hostedZoneId ?? new DataAwsRoute53Zone(this, 'zone', { provider, name: dns.zoneName }).zoneId;
    const primary = this.regions.get('primary')!.nlbs;
    const dr = this.regions.get('dr')?.nlbs;
    for (const rec of dns.records) {
      const lb = primary[rec.shard]!;
      const alias = (target: Lb, evaluateTargetHealth = true) => ({ name: target.dnsName, zoneId: target.zoneId, evaluateTargetHealth });
      if (!dns.failover || !dr) {
        new Route53Record(this, `record-${rec.shard}`, { provider, zoneId, name: rec.name, type: 'A', alias: alias(lb) });
        continue;
      }
      // The service, not a TCP accept: an alarm on the shard's healthy HAProxy targets (docs/dr.md).
      const built = this.regions.get('primary')!;
      const first = model.plan.nlbShards[rec.shard]?.listeners[0];
      const tg = first === undefined ? undefined : built.targetGroups.get(first);
      const alarm = this.alarm(`health-${rec.shard}-alarm`, provider, alarmName(model.platform, 'primary', `service-health-${rec.shard}`), serviceHealthAlarm(lb.arnSuffix, tg?.arnSuffix), built.alarmTopic);
      const hc = new Route53HealthCheck(this, `health-${rec.shard}`, {
        provider,
        type: 'CLOUDWATCH_METRIC',
        cloudwatchAlarmName: alarm.alarmName,
        cloudwatchAlarmRegion: model.regions.find((x) => x.role === 'primary')!.region,
        insufficientDataHealthStatus: HEALTH_CHECK_INSUFFICIENT_DATA,
        tags: tagsFor(model, 'dns', rec.name),
      });
      this.healthChecks[rec.shard] = hc;
      new Route53Record(this, `record-${rec.shard}-primary`, {
        provider,
        zoneId,
        name: rec.name,
        type: 'A',
        setIdentifier: `${rec.name}-primary`,
        failoverRoutingPolicy: { type: 'PRIMARY' },
        healthCheckId: hc.id,
        // The health check decides for the primary; the standby answers only when its own NLB is healthy.
        alias: alias(lb, false),
      });
      new Route53Record(this, `record-${rec.shard}-secondary`, {
        provider,
        zoneId,
        name: rec.name,
        type: 'A',
        setIdentifier: `${rec.name}-secondary`,
        failoverRoutingPolicy: { type: 'SECONDARY' },
        alias: alias(dr[rec.shard]!),
      });
    }
  }
}

/**
 * A string Terraform must take literally (a shell script full of `${`): its JSON syntax reads strings as
 * templates, so the text travels base64-encoded and Terraform decodes it at plan time, byte for byte.
 */
function literalText(s: string): string {
  return Fn.base64decode(Buffer.from(s, 'utf8').toString('base64'));
}

/** A model lifecycle hook in the provider's `initial_lifecycle_hook` shape. */
function lifecycleHookInput(h: LifecycleHookModel) {
  return { name: h.name, lifecycleTransition: h.transition, heartbeatTimeout: h.heartbeatTimeoutSeconds, defaultResult: h.defaultResult };
}
