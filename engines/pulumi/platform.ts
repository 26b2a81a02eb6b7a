/**
 * The platform as a Pulumi component (@pulumi/aws 7). Thin: it spells out engines/platform.ts in Pulumi
 * resources, reading every name, port, size and bootstrap text from there.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { Plan } from '../../lib/plan/types.js';
import { platformModel, tagsFor, type NodeModel, type PlatformModel, type RegionModel } from '../platform.js';

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
}

interface BuiltRegion {
  readonly provider: aws.Provider;
  readonly vpc: aws.ec2.Vpc;
  readonly privateSubnets: aws.ec2.Subnet[];
  readonly nlbs: aws.lb.LoadBalancer[];
  readonly efs?: aws.efs.FileSystem;
}

export class MailfleetPlatform extends pulumi.ComponentResource {
  /** Every resource created, in order (tests await their registration). */
  public readonly resources: pulumi.Resource[] = [];
  /** DNS names of the primary NLBs, by shard. */
  public readonly nlbDnsNames: pulumi.Output<string>[];

  constructor(name: string, args: MailfleetPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    const model = platformModel(args.plan);
    if (model.managedAd && args.managedAdPassword === undefined)
      throw new Error('directory.provision is managed-ad: pass managedAdPassword (config mailfleet:managedAdAdminPassword)');
    super('mailfleet:index:Platform', name, {}, opts);
    const regions = new Map<string, BuiltRegion>();
    for (const r of model.regions) regions.set(r.role, this.region(model, r, regions));
    if (model.managedAd) {
      const ad = model.managedAd;
      const primary = regions.get('primary')!;
      this.add(
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
    }
    if (model.dns) this.dns(model, regions);
    this.nlbDnsNames = regions.get('primary')!.nlbs.map((lb) => lb.dnsName);
    this.registerOutputs({ nlbDnsNames: this.nlbDnsNames });
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
    const privateRt = this.add(
      new aws.ec2.RouteTable(n('private'), { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }], tags: tags('network', n('private')) }, o),
    );
    publicSubnets.forEach((s, i) => this.add(new aws.ec2.RouteTableAssociation(n(`public-${i}`), { subnetId: s.id, routeTableId: publicRt.id }, o)));
    privateSubnets.forEach((s, i) => this.add(new aws.ec2.RouteTableAssociation(n(`private-${i}`), { subnetId: s.id, routeTableId: privateRt.id }, o)));

    const amis = new Map<string, pulumi.Output<string>>();
    const ami = (parameter: string) => {
      if (!amis.has(parameter)) amis.set(parameter, aws.ssm.getParameterOutput({ name: parameter }, { provider }).value);
      return amis.get(parameter)!;
    };

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
      this.add(
        new aws.vpc.SecurityGroupEgressRule(`${g.name}-out`, { securityGroupId: sg.id, ipProtocol: '-1', cidrIpv4: g.egressAllTo, description: 'all outbound' }, o),
      );
    }

    const nlbs: aws.lb.LoadBalancer[] = [];
    const targetGroups: aws.lb.TargetGroup[] = [];
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
              healthCheck: { protocol: 'TCP' },
              tags: tags('proxy', l.name),
            },
            o,
          ),
        );
        targetGroups.push(tg);
        this.add(
          new aws.lb.Listener(
            n(`listener-${l.name}`),
            { loadBalancerArn: lb.arn, port: l.port, protocol: 'TCP', defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }], tags: tags('nlb', l.name) },
            o,
          ),
        );
      }
    }

    for (const t of r.tiers) {
      const lt = this.add(
        new aws.ec2.LaunchTemplate(
          t.name,
          {
            name: t.name,
            imageId: ami(t.amiParameter),
            instanceType: t.instanceType,
            vpcSecurityGroupIds: [groups.get(t.role)!.id],
            userData: b64(t.userData),
            metadataOptions: IMDSV2,
            tagSpecifications: [{ resourceType: 'instance', tags: tags(t.role, t.name) }],
            tags: tags(t.role, t.name),
          },
          o,
        ),
      );
      this.add(
        new aws.autoscaling.Group(
          t.name,
          {
            name: t.name,
            minSize: t.min,
            maxSize: t.max,
            desiredCapacity: t.desired,
            vpcZoneIdentifiers: privateSubnets.map((s) => s.id),
            launchTemplate: { id: lt.id, version: '$Latest' },
            targetGroupArns: t.inTargetGroups ? targetGroups.map((tg) => tg.arn) : undefined,
            healthCheckType: t.inTargetGroups ? 'ELB' : 'EC2',
            tags: Object.entries(tags(t.role, t.name)).map(([key, value]) => ({ key, value, propagateAtLaunch: true })),
          },
          o,
        ),
      );
    }

    const node = (m: NodeModel) =>
      this.add(
        new aws.ec2.Instance(
          m.name,
          {
            ami: ami(m.amiParameter),
            instanceType: m.instanceType,
            subnetId: privateSubnets[m.subnet]!.id,
            vpcSecurityGroupIds: [groups.get(m.role)!.id],
            userDataBase64: b64(m.userData),
            metadataOptions: IMDSV2,
            rootBlockDevice: { encrypted: true, volumeType: 'gp3' },
            ebsBlockDevices:
              m.dataVolumeGiB === undefined
                ? undefined
                : [{ deviceName: '/dev/sdf', volumeSize: m.dataVolumeGiB, volumeType: 'gp3', encrypted: true }],
            tags: { ...tags(m.role, m.name), ...m.nodeTags },
          },
          o,
        ),
      );
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
    return { provider, vpc, privateSubnets, nlbs, efs };
  }

  private dns(model: PlatformModel, regions: Map<string, BuiltRegion>) {
    const dns = model.dns!;
    const primary = regions.get('primary')!;
    const dr = regions.get('dr');
    const o = { parent: this, provider: primary.provider };
    const zoneId: pulumi.Input<string> = dns.hostedZoneId ?? aws.route53.getZoneOutput({ name: dns.zoneName }, { provider: primary.provider }).zoneId;
    for (const rec of dns.records) {
      const lb = primary.nlbs[rec.shard]!;
      const alias = (target: aws.lb.LoadBalancer) => [{ name: target.dnsName, zoneId: target.zoneId, evaluateTargetHealth: true }];
      if (!dns.failover || !dr) {
        this.add(new aws.route53.Record(`${model.platform}-record-${rec.shard}`, { zoneId, name: rec.name, type: 'A', aliases: alias(lb) }, o));
        continue;
      }
      const hc = this.add(
        new aws.route53.HealthCheck(
          `${model.platform}-health-${rec.shard}`,
          { type: 'TCP', fqdn: lb.dnsName, port: rec.healthCheckPort, requestInterval: 10, failureThreshold: 3, tags: tagsFor(model, 'dns', rec.name) },
          o,
        ),
      );
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
            aliases: alias(lb),
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
