/**
 * The platform as a Pulumi component (@pulumi/aws 7). Thin: it spells out engines/platform.ts in Pulumi
 * resources, reading every name, port, size and bootstrap text from there.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { Plan } from '../../lib/plan/types.js';
import { NLB_HEALTH_CHECK_TF } from '../../lib/render/nlb.js';
import type { LifecycleHookModel } from '../../lib/render/node-layout.js';
import { ROLE_TAG } from '../inventory.js';
import { auditArchivePulumi, JOURNAL_KEYS } from './audit-archive.js';
import { qualifiedOutputName, type OutputSource } from '../../lib/plan/outputs.js';
import { fisActions, fisResourceArn, launchImage, literalArn, metricAlarmProps, outputNode, processesRoleName, regionSaturationAlarms, reloadAssociationProps, platformModel, tagsFor, type NodeModel, type PlatformModel, type RegionModel } from '../platform.js';
import { randomBytes } from 'node:crypto';
import { bootObjectFolder, type BootObjectOptions } from '../boot-objects.js';
import type { AccessTarget, BootObjectId, ParameterModel } from '../../lib/plan/node-access.js';
import { drillFilters, fisRoleStatements, processesDocument, processesDocumentName, processesRoleStatements } from '../../lib/plan/drills.js';
import type { NodeRole } from '../../lib/render/node-layout.js';
import type { BindAccountInput } from '../../lib/plan/managed-ad.js';
import { BIND_ACCOUNT_HANDLER } from '../../lib/render/bind-account.js';
import {
  HEALTH_CHECK_INSUFFICIENT_DATA,
  alarmName,
  alarmTopicKeyPolicy,
  alarmTopicPolicy,
  selfSignedCertAlarm,
  serviceHealthAlarm,
  type MetricAlarmModel,
} from '../../lib/render/alarms.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
// IMDSv2 only; instance tags in IMDS let one user data text serve every node of a role.
const IMDSV2 = { httpTokens: 'required', httpEndpoint: 'enabled', instanceMetadataTags: 'enabled' };

export interface MailfleetPlatformArgs {
  /** The plan the platform is built from. */
  readonly plan: Plan;
  /**
   * Admin password of the AWS Managed Microsoft AD (directory.provision: managed-ad).
   * @default - required only when the spec asks for managed-ad
   */
  readonly managedAdPassword?: pulumi.Input<string>;
  /**
   * Where the daemon bundle comes from and whether the program may build it (engines/boot-objects.ts).
   * @default - the package's bundle; built when cdk.json allows dev builds
   */
  readonly bootObjects?: BootObjectOptions;
}

interface BuiltRegion {
  readonly provider: aws.Provider;
  readonly vpc: aws.ec2.Vpc;
  readonly privateSubnets: aws.ec2.Subnet[];
  readonly nlbs: aws.lb.LoadBalancer[];
  readonly efs?: aws.efs.FileSystem;
  readonly privateRt: aws.ec2.RouteTable;
  readonly regionZone: aws.route53.Zone;
  readonly model: RegionModel;
  readonly mailAsg?: aws.autoscaling.Group;
  readonly instances: ReadonlyMap<string, aws.ec2.Instance>;
  /** Managed AD: the group of the Resolver outbound endpoint. */
  readonly resolverSg?: aws.ec2.SecurityGroup;
  /** By plan listener name. */
  readonly targetGroups: ReadonlyMap<string, aws.lb.TargetGroup>;
  readonly alarmTopic: aws.sns.Topic;
}

export class MailfleetPlatform extends pulumi.ComponentResource {
  /** Every resource created, in order (tests await their registration). */
  public readonly resources: pulumi.Resource[] = [];
  /** DNS names of the primary NLBs, by shard. */
  public readonly nlbDnsNames: pulumi.Output<string>[];
  /** The model's outputs (lib/plan/outputs.ts) by region-qualified name: the names the DR drill reads. */
  public readonly outputs: Record<string, pulumi.Output<string>> = {};
  private readonly healthChecks: aws.route53.HealthCheck[] = [];
  private readonly fisTemplates = new Map<string, aws.fis.ExperimentTemplate>();

  constructor(name: string, args: MailfleetPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    const model = platformModel(args.plan);
    if (model.managedAd && args.managedAdPassword === undefined)
      throw new Error('directory.provision is managed-ad: pass managedAdPassword (config mailfleet:managedAdAdminPassword)');
    super('mailfleet:index:Platform', name, {}, opts);
    this.bootObjects = args.bootObjects ?? {};
    const regions = new Map<string, BuiltRegion>();
    for (const r of model.regions) regions.set(r.role, this.region(model, r, regions));
    if (model.link) this.link(model, regions);
    if (model.managedAd) {
      const ad = model.managedAd;
      const primary = regions.get('primary')!;
      const directory = this.add(
        new aws.directoryservice.Directory(
          `${model.platform}-managed-ad`,
          {
            type: 'MicrosoftAD',
            edition: ad.edition,
            name: ad.name,
            shortName: ad.shortName,
            password: args.managedAdPassword!,
            vpcSettings: { vpcId: primary.vpc.id, subnetIds: primary.privateSubnets.slice(0, 2).map((s) => s.id) },
            tags: tagsFor(model, 'directory', ad.name),
          },
          { parent: this, provider: primary.provider },
        ),
      );
      this.forwardDomain(model, regions, directory);
      this.bindAccount(model, primary, directory);
    }
    if (model.dns) this.dns(model, regions);
    if (model.drills.length > 0) this.drills(model, regions.get('primary')!.provider);
    this.nlbDnsNames = regions.get('primary')!.nlbs.map((lb) => lb.dnsName);
    for (const r of model.regions)
      for (const out of r.outputs) this.outputs[qualifiedOutputName(r.role, out.name)] = this.outputValue(regions.get(r.role)!, out.source);
    this.registerOutputs({ nlbDnsNames: this.nlbDnsNames, ...this.outputs });
  }

  /** Each region forwards the AD domain to the (primary's) domain controllers through its own outbound endpoint. */
  private forwardDomain(model: PlatformModel, regions: ReadonlyMap<string, BuiltRegion>, directory: aws.directoryservice.Directory): void {
    for (const r of model.regions) {
      const b = regions.get(r.role)!;
      const m = r.resolver!;
      const o = { parent: this, provider: b.provider };
      const endpoint = this.add(
        new aws.route53.ResolverEndpoint(
          m.endpointName,
          {
            name: m.endpointName,
            direction: 'OUTBOUND',
            securityGroupIds: [b.resolverSg!.id],
            ipAddresses: b.privateSubnets.slice(0, m.subnets).map((s) => ({ subnetId: s.id })),
            tags: tagsFor(model, 'resolver', m.endpointName),
          },
          o,
        ),
      );
      const rule = this.add(
        new aws.route53.ResolverRule(
          m.ruleName,
          {
            name: m.ruleName,
            domainName: m.domain,
            ruleType: 'FORWARD',
            resolverEndpointId: endpoint.id,
            targetIps: directory.dnsIpAddresses.apply((ips) => [...ips].sort().slice(0, 2).map((ip) => ({ ip, port: m.port }))),
            tags: tagsFor(model, 'resolver', m.ruleName),
          },
          o,
        ),
      );
      this.add(new aws.route53.ResolverRuleAssociation(`${m.ruleName}-vpc`, { resolverRuleId: rule.id, vpcId: b.vpc.id }, o));
    }
  }

  /**
   * The daemons' service account (lib/plan/managed-ad.ts): the shared function, invoked once the directory
   * and the bind secret's first version exist; it reads the password from the secret itself.
   */
  private bindAccount(model: PlatformModel, primary: BuiltRegion, directory: aws.directoryservice.Directory): void {
    const ad = model.managedAd!;
    const f = ad.bindAccount;
    const bind = this.bindSecret!;
    const o = { parent: this, provider: primary.provider };
    const role = this.add(
      new aws.iam.Role(
        f.name,
        {
          name: f.name,
          assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
          tags: tagsFor(model, 'directory', f.name),
        },
        o,
      ),
    );
    this.add(new aws.iam.RolePolicyAttachment(`${f.name}-logs`, { role: role.name, policyArn: 'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole' }, o));
    this.add(
      new aws.iam.RolePolicy(
        `${f.name}-policy`,
        {
          role: role.id,
          policy: pulumi.jsonStringify({
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: [...f.directoryActions], Resource: pulumi.interpolate`arn:aws:ds:${primary.model.region}:${primary.model.account}:directory/${directory.id}` },
              { Effect: 'Allow', Action: [...f.secretActions], Resource: bind.secret.arn },
            ],
          }),
        },
        o,
      ),
    );
    const fn = this.add(
      new aws.lambda.Function(
        f.name,
        {
          name: f.name,
          description: 'mailfleet: creates the Managed AD service account and sets its password from the bind secret',
          role: role.arn,
          runtime: f.runtime,
          handler: f.handler,
          timeout: f.timeoutSeconds,
          code: new pulumi.asset.AssetArchive({ 'index.js': new pulumi.asset.StringAsset(BIND_ACCOUNT_HANDLER) }),
          tags: tagsFor(model, 'directory', f.name),
        },
        o,
      ),
    );
    const input = pulumi.jsonStringify({ DirectoryId: directory.id, SamAccountName: ad.serviceAccount, SecretArn: bind.secret.arn } satisfies Record<keyof BindAccountInput, unknown>);
    this.add(new aws.lambda.Invocation(`${f.name}-run`, { functionName: fn.name, input }, { ...o, dependsOn: [bind.version] }));
  }

  private outputValue(b: BuiltRegion, source: OutputSource): pulumi.Output<string> {
    const must = <T>(v: T | undefined): T => {
      if (v === undefined) throw new Error(`pulumi: no resource for output ${source.kind}`);
      return v;
    };
    switch (source.kind) {
      case 'vpc-id':
        return b.vpc.id;
      case 'nlb-dns':
        return must(b.nlbs[source.shard]).dnsName;
      case 'mail-asg-name':
        return must(b.mailAsg).name;
      case 'storage-host':
        return pulumi.output(source.value);
      case 'storage-instance-id':
      case 'ldap-instance-id':
        return must(b.instances.get(outputNode(b.model, source) ?? '')).id;
      case 'efs-id':
        return must(b.efs).id;
      case 'health-check-id':
        return must(this.healthChecks[source.shard]).id;
      case 'fis-template-id':
        return must(this.fisTemplates.get(source.drill)).id;
    }
  }

  private bootObjects: BootObjectOptions = {};
  private redisToken?: pulumi.Output<string>;
  private bindSecret?: { secret: aws.secretsmanager.Secret; version: aws.secretsmanager.SecretVersion };

  /** One AUTH token for the platform's Redis in both regions (and its secret): random, a Pulumi secret in the state. */
  private redisAuthToken(): pulumi.Output<string> {
    this.redisToken ??= pulumi.secret(randomBytes(24).toString('hex'));
    return this.redisToken;
  }

  /**
   * The region's Redis (RedisModel): a Valkey replication group, primary + replica across AZs, TLS and
   * at-rest encryption, the platform's AUTH token, in the private subnets behind the redis security group.
   */
  private redis(model: PlatformModel, r: RegionModel, o: pulumi.CustomResourceOptions, subnets: aws.ec2.Subnet[], sg: aws.ec2.SecurityGroup): aws.elasticache.ReplicationGroup {
    const m = r.redis!;
    const group = this.add(
      new aws.elasticache.SubnetGroup(`${r.prefix}-redis`, { name: m.name, description: 'mailfleet Redis: private subnets', subnetIds: subnets.map((s) => s.id), tags: tagsFor(model, 'redis', m.name) }, o),
    );
    return this.add(
      new aws.elasticache.ReplicationGroup(
        `${r.prefix}-redis`,
        {
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
          atRestEncryptionEnabled: true,
          authToken: this.redisAuthToken(),
          subnetGroupName: group.name,
          securityGroupIds: [sg.id],
          tags: tagsFor(model, 'redis', m.name),
        },
        o,
      ),
    );
  }

  /**
   * What nodes need to boot (lib/plan/node-access.ts): a private bucket with the node files and daemon
   * package, the SSM parameters naming them, one role + instance profile per node kind, and (primary)
   * the secrets, replicated to DR.
   */
  private boot(
    model: PlatformModel,
    r: RegionModel,
    o: pulumi.CustomResourceOptions,
    privateZone: aws.route53.Zone,
    redis?: aws.elasticache.ReplicationGroup,
  ): { profiles: Map<NodeRole, aws.iam.InstanceProfile> } {
    const n = (suffix: string) => `${r.prefix}-${suffix}`;
    const b = r.boot;
    const tags = (role: string, name: string) => tagsFor(model, role, name);
    // Bucket names are global: Pulumi appends a random suffix to the resource name; destroy empties it.
    const bucket = this.add(new aws.s3.Bucket(n('boot'), { forceDestroy: true, tags: tags('network', n('boot')) }, o));
    this.add(
      new aws.s3.BucketPublicAccessBlock(
        n('boot-private'),
        { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
        o,
      ),
    );
    const objects = new Map<BootObjectId, aws.s3.BucketObjectv2>();
    const hashes = new Map<BootObjectId, string>();
    for (const ob of b.objects) {
      const folder = bootObjectFolder(model.plan, r.role, ob, this.bootObjects);
      hashes.set(ob.id, folder.hash);
      objects.set(
        ob.id,
        this.add(
          new aws.s3.BucketObjectv2(n(`boot-${ob.id.replace(/\//g, '-')}`), { bucket: bucket.id, key: ob.key, source: new pulumi.asset.FileArchive(folder.dir), sourceHash: folder.hash }, o),
        ),
      );
    }
    // In-place reloads (lib/plan/reload.ts): a new node-files hash is a new association parameter, which State Manager runs again.
    for (const rl of r.reloads) {
      const doc = this.add(
        new aws.ssm.Document(n(`reload-${rl.kind}`), { name: rl.documentName, documentType: 'Command', documentFormat: 'JSON', content: JSON.stringify(rl.document), tags: tags(rl.kind, rl.documentName) }, o),
      );
      this.add(
        new aws.ssm.Association(n(`reload-${rl.kind}`), { name: doc.name, ...reloadAssociationProps(rl, hashes.get(`node-files/${rl.kind}`) ?? '') }, o),
      );
    }
    // The region's own audit journal archive (audit-archive.ts): its mail nodes ship there.
    const audit = model.audit
      ? auditArchivePulumi(r.role, { parent: this, provider: o.provider as aws.Provider, prefix: r.prefix, account: r.account, audit: model.audit, tags: tags('audit', `${r.prefix}-audit`) })
      : undefined;
    for (const res of audit?.resources ?? []) this.add(res);
    const mustAudit = () => {
      if (!audit) throw new Error(`pulumi: the model names the audit archive in ${r.role} but audit is off`);
      return audit;
    };
    const parameterValue = (v: ParameterModel['value']): pulumi.Input<string> => {
      switch (v.kind) {
        case 'private-zone-id':
          return privateZone.zoneId;
        case 'audit-bucket':
          return mustAudit().bucket.bucket;
        case 'redis-endpoint':
          if (!redis) throw new Error(`pulumi: the model names Redis in ${r.role} but none is provisioned`);
          return pulumi.interpolate`${redis.primaryEndpointAddress}:${redis.port}`;
        case 'object-uri':
          return pulumi.interpolate`s3://${bucket.bucket}/${objects.get(v.object)!.key}`;
      }
    };
    for (const prm of b.parameters)
      this.add(
        new aws.ssm.Parameter(
          n(`param${prm.name.replace(/\//g, '-')}`),
          {
            name: prm.name,
            type: 'String',
            description: prm.description,
            value: parameterValue(prm.value),
            tags: tags('network', prm.name),
          },
          o,
        ),
      );
    const arnOf = (t: AccessTarget): pulumi.Input<string> => {
      switch (t.kind) {
        case 'private-zone':
          return pulumi.interpolate`arn:aws:route53:::hostedzone/${privateZone.zoneId}`;
        case 'boot-object':
          return pulumi.interpolate`${bucket.arn}/${objects.get(t.object)!.key}`;
        case 'audit-journal':
          return pulumi.interpolate`${mustAudit().bucket.arn}/${JOURNAL_KEYS}`;
        case 'audit-key':
          return mustAudit().key.arn;
        default:
          return literalArn(model, r, t)!;
      }
    };
    const profiles = new Map<NodeRole, aws.iam.InstanceProfile>();
    for (const a of b.roles) {
      const role = this.add(
        new aws.iam.Role(
          n(`${a.role}-node`),
          {
            description: a.description,
            assumeRolePolicy: JSON.stringify({
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
            }),
            tags: tags(a.role, n(a.role)),
          },
          o,
        ),
      );
      a.managedPolicies.forEach((m) => this.add(new aws.iam.RolePolicyAttachment(n(`${a.role}-node-${m}`), { role: role.id, policyArn: `arn:aws:iam::aws:policy/${m}` }, o)));
      this.add(
        new aws.iam.RolePolicy(
          n(`${a.role}-node`),
          {
            role: role.id,
            policy: pulumi.jsonStringify({
              Version: '2012-10-17',
              Statement: a.statements.map((st) => ({
                Effect: 'Allow',
                Action: st.actions,
                Resource: st.targets.map(arnOf),
                ...(st.conditions ? { Condition: st.conditions } : {}),
              })),
            }),
          },
          o,
        ),
      );
      profiles.set(a.role, this.add(new aws.iam.InstanceProfile(n(`${a.role}-node`), { role: role.id, tags: tags(a.role, n(a.role)) }, o)));
    }
    for (const sec of b.secrets) {
      const secret = this.add(
        new aws.secretsmanager.Secret(
          n(`secret-${sec.id}`),
          { name: sec.name, description: sec.description, replicas: b.secretReplicaRegions.map((region) => ({ region })), tags: tags('secret', sec.name) },
          o,
        ),
      );
      // A first value only (random values are Pulumi secrets in the state); later edits are the operator's.
      const v = sec.value;
      const first =
        sec.id === 'RedisAuth'
          ? this.redisAuthToken()
          : v.kind === 'generated'
          ? pulumi.secret(randomPassword(v.length, v.requireEachIncludedType === true))
          : v.kind === 'template'
            ? pulumi.secret(JSON.stringify({ ...v.template, [v.generateKey]: randomBytes(24).toString('base64url') }))
            : v.kind === 'literal'
              ? v.text
              : undefined;
      if (first !== undefined) {
        const version = this.add(new aws.secretsmanager.SecretVersion(n(`secret-${sec.id}`), { secretId: secret.id, secretString: first }, { ...o, ignoreChanges: ['secretString'] }));
        // Managed AD: the bind account function reads this secret once its first version exists.
        if (sec.id === 'BindSecret') this.bindSecret = { secret, version };
      }
    }
    return { profiles };
  }

  private add<T extends pulumi.Resource>(r: T): T {
    this.resources.push(r);
    return r;
  }

  private region(model: PlatformModel, r: RegionModel, built: Map<string, BuiltRegion>): BuiltRegion {
    const n = (suffix: string) => `${r.prefix}-${suffix}`;
    const provider = this.add(
      new aws.Provider(r.role, { region: r.region as aws.Region, allowedAccountIds: [r.account] }, { parent: this }),
    );
    const o = { parent: this, provider };
    const tags = (role: string, name: string) => tagsFor(model, role, name);

    const vpc = this.add(
      new aws.ec2.Vpc(n('vpc'), { cidrBlock: r.cidr, enableDnsHostnames: true, enableDnsSupport: true, tags: tags('network', n('vpc')) }, o),
    );
    const igw = this.add(new aws.ec2.InternetGateway(n('igw'), { vpcId: vpc.id, tags: tags('network', n('igw')) }, o));
    const subnet = (s: RegionModel['publicSubnets'][number]) =>
      this.add(
        new aws.ec2.Subnet(s.name, { vpcId: vpc.id, availabilityZone: s.az, cidrBlock: s.cidr, mapPublicIpOnLaunch: false, tags: tags('network', s.name) }, o),
      );
    const publicSubnets = r.publicSubnets.map(subnet);
    const privateSubnets = r.privateSubnets.map(subnet);
    const publicRt = this.add(
      new aws.ec2.RouteTable(n('public'), { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: igw.id }], tags: tags('network', n('public')) }, o),
    );
    // One NAT gateway per region: nodes only fetch packages and call AWS APIs through it.
    const eip = this.add(new aws.ec2.Eip(n('nat'), { domain: 'vpc', tags: tags('network', n('nat')) }, o));
    const nat = this.add(
      new aws.ec2.NatGateway(n('nat'), { allocationId: eip.allocationId, subnetId: publicSubnets[0]!.id, tags: tags('network', n('nat')) }, o),
    );
    // Routes as separate resources (not inline): the peering route to the other region joins this table later.
    const privateRt = this.add(new aws.ec2.RouteTable(n('private'), { vpcId: vpc.id, tags: tags('network', n('private')) }, o));
    this.add(new aws.ec2.Route(n('private-default'), { routeTableId: privateRt.id, destinationCidrBlock: '0.0.0.0/0', natGatewayId: nat.id }, o));
    publicSubnets.forEach((s, i) => this.add(new aws.ec2.RouteTableAssociation(n(`public-${i}`), { subnetId: s.id, routeTableId: publicRt.id }, o)));
    privateSubnets.forEach((s, i) => this.add(new aws.ec2.RouteTableAssociation(n(`private-${i}`), { subnetId: s.id, routeTableId: privateRt.id }, o)));

    const groups = new Map<string, aws.ec2.SecurityGroup>();
    for (const g of r.securityGroups)
      groups.set(g.role, this.add(new aws.ec2.SecurityGroup(g.name, { name: g.name, description: g.description, vpcId: vpc.id, tags: tags(g.role, g.name) }, o)));
    for (const g of r.securityGroups) {
      const sg = groups.get(g.role)!;
      g.ingress.forEach((rule, i) =>
        this.add(
          new aws.vpc.SecurityGroupIngressRule(
            `${g.name}-in-${i}`,
            {
              securityGroupId: sg.id,
              ipProtocol: rule.protocol,
              fromPort: rule.fromPort,
              toPort: rule.toPort,
              description: rule.description,
              ...('cidr' in rule.peer ? { cidrIpv4: rule.peer.cidr } : { referencedSecurityGroupId: groups.get(rule.peer.role)!.id }),
            },
            o,
          ),
        ),
      );
      if (g.egressAllTo !== undefined)
        this.add(
          new aws.vpc.SecurityGroupEgressRule(`${g.name}-out`, { securityGroupId: sg.id, ipProtocol: '-1', cidrIpv4: g.egressAllTo, description: 'all outbound' }, o),
        );
    }

    // Nodes reach S3 and the AWS APIs they call through endpoints, not the NAT gateway.
    this.add(
      new aws.ec2.VpcEndpoint(
        n('s3'),
        { vpcId: vpc.id, serviceName: `com.amazonaws.${r.region}.s3`, vpcEndpointType: 'Gateway', routeTableIds: [publicRt.id, privateRt.id], tags: tags('network', n('s3')) },
        o,
      ),
    );
    for (const svc of r.interfaceEndpoints)
      this.add(
        new aws.ec2.VpcEndpoint(
          n(`endpoint-${svc}`),
          {
            vpcId: vpc.id,
            serviceName: `com.amazonaws.${r.region}.${svc}`,
            vpcEndpointType: 'Interface',
            privateDnsEnabled: true,
            subnetIds: privateSubnets.map((s) => s.id),
            securityGroupIds: [groups.get('endpoint')!.id],
            tags: tags('endpoint', n(svc)),
          },
          o,
        ),
      );

    const nlbs: aws.lb.LoadBalancer[] = [];
    const targetGroups = new Map<string, aws.lb.TargetGroup>();
    for (const nlb of r.nlbs) {
      const lb = this.add(
        new aws.lb.LoadBalancer(
          n(`nlb-${nlb.index}`),
          { loadBalancerType: 'network', internal: false, subnets: publicSubnets.map((s) => s.id), enableCrossZoneLoadBalancing: true, tags: tags('nlb', nlb.name) },
          o,
        ),
      );
      nlbs.push(lb);
      for (const l of nlb.listeners) {
        const tg = this.add(
          new aws.lb.TargetGroup(
            n(`tg-${l.name}`),
            {
              vpcId: vpc.id,
              port: l.port,
              protocol: 'TCP',
              targetType: 'instance',
              proxyProtocolV2: true,
              preserveClientIp: 'true',
              healthCheck: NLB_HEALTH_CHECK_TF,
              tags: tags('proxy', l.name),
            },
            o,
          ),
        );
        targetGroups.set(l.name, tg);
        this.add(
          new aws.lb.Listener(
            n(`listener-${l.name}`),
            { loadBalancerArn: lb.arn, port: l.port, protocol: 'TCP', tcpIdleTimeoutSeconds: l.idleTimeoutSeconds, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }], tags: tags('nlb', l.name) },
            o,
          ),
        );
      }
    }

    // Private names the node files use (gluster-N, ldap-*, efs), in this region's own zones.
    const zones = {
      platform: this.add(new aws.route53.Zone(n('zone-platform'), { name: r.privateZones.platform, vpcs: [{ vpcId: vpc.id }], tags: tags('network', r.privateZones.platform) }, o)),
      // The other region's VPC is associated by a separate resource (link()): inline `vpcs` must then be ignored.
      region: this.add(
        new aws.route53.Zone(
          n('zone-region'),
          { name: r.privateZones.region, vpcs: [{ vpcId: vpc.id }], tags: tags('network', r.privateZones.region) },
          model.link ? { ...o, ignoreChanges: ['vpcs'] } : o,
        ),
      ),
    };
    const redis = r.redis ? this.redis(model, r, o, privateSubnets, groups.get('redis')!) : undefined;
    const boot = this.boot(model, r, o, zones.platform, redis);

    // One launch template per node kind, shared by the kind's groups (every HAProxy shard runs the same text).
    const launchTemplates = new Map<string, aws.ec2.LaunchTemplate>();
    const launchTemplate = (role: NodeModel['role'] | 'proxy' | 'mail', x: { amiParameter: string; imageId?: string; instanceType: string; userData: string }) => {
      let lt = launchTemplates.get(role);
      if (!lt) {
        const name = n(role);
        lt = this.add(
          new aws.ec2.LaunchTemplate(
            name,
            {
              name,
              imageId: launchImage(x),
              iamInstanceProfile: { arn: boot.profiles.get(role)!.arn },
              instanceType: x.instanceType,
              vpcSecurityGroupIds: [groups.get(role)!.id],
              userData: b64(x.userData),
              metadataOptions: IMDSV2,
              tagSpecifications: [{ resourceType: 'instance', tags: tags(role, name) }],
              tags: tags(role, name),
            },
            o,
          ),
        );
        launchTemplates.set(role, lt);
      }
      return lt;
    };
    let mailAsg: aws.autoscaling.Group | undefined;
    for (const t of r.tiers) {
      const lt = launchTemplate(t.role, t);
      const asg = this.add(
        new aws.autoscaling.Group(
          t.name,
          {
            name: t.name,
            minSize: t.min,
            maxSize: t.max,
            desiredCapacity: t.desired,
            vpcZoneIdentifiers: privateSubnets.map((s) => s.id),
            launchTemplate: { id: lt.id, version: '$Latest' },
            targetGroupArns: t.inTargetGroups ? t.targetGroups.map((name) => targetGroups.get(name)!.arn) : undefined,
            healthCheckType: t.inTargetGroups ? 'ELB' : 'EC2',
            // Mail nodes are InService once they serve (bootstrap/mail.sh completes the launch hook or abandons
        // it), and drain before they go (bootstrap/drain.sh completes the terminate hook).
            initialLifecycleHooks: (t.lifecycleHooks.length > 0 ? t.lifecycleHooks.map(lifecycleHookInput) : undefined),
            tags: Object.entries(tags(t.role, t.name)).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
          },
          o,
        ),
      );
      if (t.role === 'mail') mailAsg = asg;
    }

    const instances = new Map<string, aws.ec2.Instance>();
    const node = (m: NodeModel) => {
      // The node kind's launch template carries image, type, group, IMDS options and user data.
      const lt = launchTemplate(m.role, m);
      const instance = this.add(
        new aws.ec2.Instance(
          m.name,
          {
            launchTemplate: { id: lt.id, version: '$Latest' },
            subnetId: privateSubnets[m.subnet]!.id,
            rootBlockDevice: { encrypted: true, volumeType: 'gp3' },
            // The spec decides whether `pulumi destroy` may remove the node (as the CDK stacks do).
            disableApiTermination: m.terminationProtection,
            tags: { ...tags(m.role, m.name), ...m.nodeTags },
          },
          o,
        ),
      );
      instances.set(m.name, instance);
      if (m.dataVolumeGiB === undefined) return;
      // A separate volume (not an inline block device) outlives instance replacement, as the CDK stacks keep bricks.
      const volume = this.add(
        new aws.ebs.Volume(
          `${m.name}-data`,
          { availabilityZone: r.privateSubnets[m.subnet]!.az, size: m.dataVolumeGiB, type: 'gp3', encrypted: true, tags: tags(m.role, `${m.name}-data`) },
          o,
        ),
      );
      this.add(new aws.ec2.VolumeAttachment(`${m.name}-data`, { deviceName: '/dev/sdf', volumeId: volume.id, instanceId: instance.id }, o));
    };
    r.storageNodes.forEach(node);
    r.ldapNodes.forEach(node);

    let efs: aws.efs.FileSystem | undefined;
    if (r.efs) {
      const fs = this.add(new aws.efs.FileSystem(r.efs.name, { encrypted: true, throughputMode: r.efs.throughputMode, tags: tags('efs', r.efs.name) }, o));
      privateSubnets.forEach((s, i) =>
        this.add(new aws.efs.MountTarget(n(`efs-${i}`), { fileSystemId: fs.id, subnetId: s.id, securityGroups: [groups.get('efs')!.id] }, o)),
      );
      efs = fs;
      const primary = built.get('primary');
      if (r.role === 'dr' && primary?.efs) {
        this.add(
          new aws.efs.ReplicationConfiguration(
            `${model.platform}-efs-replication`,
            { sourceFileSystemId: primary.efs.id, destination: { region: r.region, fileSystemId: fs.id } },
            { parent: this, provider: primary.provider },
          ),
        );
      }
    }
    r.privateRecords.forEach((rec, i) =>
      this.add(
        new aws.route53.Record(
          n(`dns-${i}`),
          {
            zoneId: zones[rec.zone].zoneId,
            name: rec.name,
            ttl: rec.ttl,
            ...(rec.node !== undefined
              ? { type: 'A', records: [instances.get(rec.node)!.privateIp] }
              : { type: 'CNAME', records: [pulumi.interpolate`${efs!.id}.efs.${r.region}.amazonaws.com`] }),
          },
          o,
        ),
      ),
    );
    // Alarms (lib/render/alarms.ts) to a topic CloudWatch can publish to: listener saturation, the generated certificate.
    const alarmTopic = this.alarmTopic(model, r, o);
    for (const { listener, alarm } of regionSaturationAlarms(model.plan, r))
      this.alarm(alarmName(model.platform, r.role, `saturation-${listener}`), alarm, alarmTopic, o);
    if (mailAsg) this.alarm(alarmName(model.platform, r.role, 'self-signed-certificate'), selfSignedCertAlarm(model.plan, r.tiers.find((t) => t.role === 'mail')!.name), alarmTopic, o);
    return { provider, vpc, privateSubnets, nlbs, efs, privateRt, regionZone: zones.region, model: r, mailAsg, instances, resolverSg: groups.get('resolver'), targetGroups, alarmTopic };
  }

  /** The region's alarm topic under a customer-managed key CloudWatch may use (alias/aws/sns refuses it). */
  private alarmTopic(model: PlatformModel, r: RegionModel, o: pulumi.CustomResourceOptions): aws.sns.Topic {
    const name = alarmName(model.platform, r.role, 'alarms');
    const key = this.add(
      new aws.kms.Key(
        `${name}-key`,
        { description: `mailfleet ${model.platform} ${r.role}: alarm topic encryption`, enableKeyRotation: true, policy: JSON.stringify(alarmTopicKeyPolicy(r.account)), tags: tagsFor(model, 'alarms', `${r.prefix}-alarms`) },
        o,
      ),
    );
    const topic = this.add(new aws.sns.Topic(name, { name, displayName: `mailfleet ${model.platform} ${r.role} alarms`, kmsMasterKeyId: key.arn, tags: tagsFor(model, 'alarms', `${r.prefix}-alarms`) }, o));
    this.add(new aws.sns.TopicPolicy(`${name}-policy`, { arn: topic.arn, policy: topic.arn.apply((arn) => JSON.stringify(alarmTopicPolicy(r.account, arn))) }, o));
    return topic;
  }

  private alarm(name: string, m: MetricAlarmModel, topic: aws.sns.Topic, o: pulumi.CustomResourceOptions, dimensions?: pulumi.Input<Record<string, pulumi.Input<string>>>): aws.cloudwatch.MetricAlarm {
    return this.add(
      new aws.cloudwatch.MetricAlarm(
        name,
        {
          name,
          ...metricAlarmProps(m, topic.arn),
          ...(dimensions ? { dimensions } : {}),
        },
        o,
      ),
    );
  }

  /** Peering between the regions, routes both ways, and each region-qualified zone on the other VPC. */
  private link(model: PlatformModel, regions: Map<string, BuiltRegion>): void {
    const req = regions.get(model.link!.requester)!;
    const acc = regions.get(model.link!.accepter)!;
    const tags = tagsFor(model, 'network', `${model.platform}-peering`);
    const peering = this.add(
      new aws.ec2.VpcPeeringConnection(
        `${model.platform}-peering`,
        { vpcId: req.vpc.id, peerVpcId: acc.vpc.id, peerRegion: acc.model.region, peerOwnerId: acc.model.account, tags },
        { parent: this, provider: req.provider },
      ),
    );
    const accepted = this.add(
      new aws.ec2.VpcPeeringConnectionAccepter(`${model.platform}-peering-accept`, { vpcPeeringConnectionId: peering.id, autoAccept: true, tags }, { parent: this, provider: acc.provider }),
    );
    for (const d of model.link!.directions) {
      const from = regions.get(d.from)!;
      const to = regions.get(d.to)!;
      const o = { parent: this, provider: from.provider };
      // The accepter's id: routes wait until the peering is active.
      this.add(new aws.ec2.Route(`${from.model.prefix}-to-${to.model.role}`, { routeTableId: from.privateRt.id, destinationCidrBlock: to.model.cidr, vpcPeeringConnectionId: accepted.id }, o));
      const id = `${from.model.prefix}-zone-on-${to.model.role}-vpc`;
      const association = { zoneId: from.regionZone.zoneId, vpcId: to.vpc.id, vpcRegion: to.model.region };
      if (!d.crossAccount) this.add(new aws.route53.ZoneAssociation(id, association, o));
      else {
        const auth = this.add(new aws.route53.VpcAssociationAuthorization(`${id}-auth`, association, o));
        this.add(new aws.route53.ZoneAssociation(id, { zoneId: auth.zoneId, vpcId: auth.vpcId, vpcRegion: to.model.region }, { parent: this, provider: to.provider }));
      }
    }
  }

  /** FIS drill templates in the primary, with a role that may stop and start this platform's instances only. */
  private drills(model: PlatformModel, provider: aws.Provider) {
    const o = { parent: this, provider };
    const name = `${model.platform}-fis-drills`;
    const primary = model.regions.find((x) => x.role === 'primary')!;
    // The processes automation (lib/plan/drills.ts): drills of Auto Scaling instances hold the group's replacement.
    const document = this.add(
      new aws.ssm.Document(
        processesDocumentName(model),
        { name: processesDocumentName(model), documentType: 'Automation', documentFormat: 'JSON', content: JSON.stringify(processesDocument()), tags: tagsFor(model, 'dr', processesDocumentName(model)) },
        o,
      ),
    );
    const processesRole = this.add(
      new aws.iam.Role(
        processesRoleName(model),
        {
          name: processesRoleName(model),
          description: `mailfleet ${model.platform} DR drills: suspend and resume proxy group processes`,
          assumeRolePolicy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ssm.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
          tags: tagsFor(model, 'dr', processesRoleName(model)),
        },
        o,
      ),
    );
    this.add(
      new aws.iam.RolePolicy(
        processesRoleName(model),
        {
          role: processesRole.id,
          policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: processesRoleStatements(model.platform).map((st) => ({ Effect: 'Allow', Action: st.actions, Resource: st.resource, ...(st.conditions ? { Condition: st.conditions } : {}) })),
          }),
        },
        o,
      ),
    );
    const role = this.add(
      new aws.iam.Role(
        name,
        {
          name,
          description: `mailfleet ${model.platform} DR drills`,
          assumeRolePolicy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { Service: 'fis.amazonaws.com' }, Action: 'sts:AssumeRole' }],
          }),
          tags: tagsFor(model, 'dr', name),
        },
        o,
      ),
    );
    this.add(
      new aws.iam.RolePolicy(
        name,
        {
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
        },
        o,
      ),
    );
    for (const d of model.drills) {
      const template = this.add(
        new aws.fis.ExperimentTemplate(
          `${model.platform}-${d.id}`,
          {
            description: d.description,
            roleArn: role.arn,
            stopConditions: [{ source: 'none' }],
            targets: [
              {
                name: 'nodes',
                resourceType: 'aws:ec2:instance',
                selectionMode: d.selectionMode,
                resourceTags: Object.entries({ ...model.tags, [ROLE_TAG]: d.nodeRole }).map(([key, value]) => ({ key, value })),
                filters: drillFilters(d),
              },
            ],
            actions: fisActions(model, primary, d).map((a) => ({
              name: a.name,
              actionId: a.actionId,
              ...(a.startAfter.length > 0 ? { startAfters: a.startAfter } : {}),
              parameters: Object.entries(a.parameters).map(([key, value]) => ({ key, value })),
              ...(a.target ? { target: { key: 'Instances', value: a.target } } : {}),
            })),
            tags: tagsFor(model, 'dr', `${model.platform}-${d.id}`),
          },
          { ...o, dependsOn: [document, processesRole] },
        ),
      );
      this.fisTemplates.set(d.id, template);
    }
  }

  private dns(model: PlatformModel, regions: Map<string, BuiltRegion>) {
    const dns = model.dns!;
    const primary = regions.get('primary')!;
    const dr = regions.get('dr');
    const o = { parent: this, provider: primary.provider };
    const zoneId: pulumi.Input<string> = dns.hostedZoneId ?? aws.route53.getZoneOutput({ name: dns.zoneName }, { provider: primary.provider }).zoneId;
    for (const rec of dns.records) {
      const lb = primary.nlbs[rec.shard]!;
      const alias = (target: aws.lb.LoadBalancer, evaluateTargetHealth = true) => [{ name: target.dnsName, zoneId: target.zoneId, evaluateTargetHealth }];
      if (!dns.failover || !dr) {
        this.add(new aws.route53.Record(`${model.platform}-record-${rec.shard}`, { zoneId, name: rec.name, type: 'A', aliases: alias(lb) }, o));
        continue;
      }
      // The service, not a TCP accept: an alarm on the shard's healthy HAProxy targets (docs/dr.md).
      const first = model.plan.nlbShards[rec.shard]?.listeners[0];
      const tg = first === undefined ? undefined : primary.targetGroups.get(first);
      const health = serviceHealthAlarm('<lb>', tg ? '<tg>' : undefined);
      const dimensions: Record<string, pulumi.Input<string>> = tg ? { LoadBalancer: lb.arnSuffix, TargetGroup: tg.arnSuffix } : { LoadBalancer: lb.arnSuffix };
      const alarm = this.alarm(alarmName(model.platform, 'primary', `service-health-${rec.shard}`), health, primary.alarmTopic, o, dimensions);
      const hc = this.add(
        new aws.route53.HealthCheck(
          `${model.platform}-health-${rec.shard}`,
          {
            type: 'CLOUDWATCH_METRIC',
            cloudwatchAlarmName: alarm.name,
            cloudwatchAlarmRegion: primary.model.region,
            insufficientDataHealthStatus: HEALTH_CHECK_INSUFFICIENT_DATA,
            tags: tagsFor(model, 'dns', rec.name),
          },
          o,
        ),
      );
      this.healthChecks[rec.shard] = hc;
      this.add(
        new aws.route53.Record(
          `${model.platform}-record-${rec.shard}-primary`,
          {
            zoneId,
            name: rec.name,
            type: 'A',
            setIdentifier: `${rec.name}-primary`,
            failoverRoutingPolicies: [{ type: 'PRIMARY' }],
            healthCheckId: hc.id,
            // The health check decides for the primary; the standby answers only when its own NLB is healthy.
            aliases: alias(lb, false),
          },
          o,
        ),
      );
      this.add(
        new aws.route53.Record(
          `${model.platform}-record-${rec.shard}-secondary`,
          {
            zoneId,
            name: rec.name,
            type: 'A',
            setIdentifier: `${rec.name}-secondary`,
            failoverRoutingPolicies: [{ type: 'SECONDARY' }],
            aliases: alias(dr.nlbs[rec.shard]!),
          },
          o,
        ),
      );
    }
  }
}

/** Builds the platform of a plan; the Pulumi program and the setMocks tests both call this. */
export function buildPlatform(plan: Plan, opts: { managedAdPassword?: pulumi.Input<string> } = {}): MailfleetPlatform {
  return new MailfleetPlatform(plan.platform, { plan, managedAdPassword: opts.managedAdPassword });
}

/** A random password; with `eachClass`, one that has an upper case letter, a lower case letter and a digit (Active Directory's rule). */
function randomPassword(length: number, eachClass: boolean): string {
  for (;;) {
    const p = randomBytes(length).toString('base64url').slice(0, length);
    if (!eachClass || (/[A-Z]/.test(p) && /[a-z]/.test(p) && /[0-9]/.test(p))) return p;
  }
}

/** A model lifecycle hook in the provider's `initial_lifecycle_hook` shape. */
function lifecycleHookInput(h: LifecycleHookModel) {
  return { name: h.name, lifecycleTransition: h.transition, heartbeatTimeout: h.heartbeatTimeoutSeconds, defaultResult: h.defaultResult };
}
