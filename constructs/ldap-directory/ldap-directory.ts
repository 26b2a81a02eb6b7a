import { Annotations, ArnFormat, Duration, Fn, Stack } from 'aws-cdk-lib';
import * as directoryservice from 'aws-cdk-lib/aws-directoryservice';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53resolver from 'aws-cdk-lib/aws-route53resolver';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ldapReplicationRules, ldapRoles, privateRecordsOf, resolverOf, securityGroupOf, type SecurityGroupModel } from '../../lib/plan/network.js';
import { addCidrIngress, allowGroupIngress, modelSecurityGroup } from '../shared/security-rules.js';
import { MailfleetError } from '../../lib/errors.js';
import type { Plan } from '../../lib/plan/types.js';
import type { LdapDirectorySpec } from '../../lib/spec/schema.js';
import { userData } from '../../lib/render/cloud-init.js';
import { LDAP_ROLE_TAG, secretNames, withNamePrefix, type RegionRole } from '../../lib/render/node-layout.js';
import { nodeLaunchTemplate } from '../shared/launch-template.js';
import { acknowledge } from '../shared/nag.js';
import { NodeFilesBundle } from '../shared/node-files-bundle.js';
import { nodeRole } from '../shared/node-role.js';
import { modelSecret } from '../shared/secrets.js';
import { platformSecrets } from '../../lib/plan/node-access.js';
import { managedAdOf } from '../../lib/plan/managed-ad.js';
import { ManagedAdBindAccount } from './bind-account.js';
import { tagRole } from '../shared/tags.js';

export interface LdapDirectoryProps {
  /** The plan: directory.kind must be ldap; its provision says what is created. */
  readonly plan: Plan;
  /** VPC of the directory nodes (or the Managed AD domain controllers). */
  readonly vpc: ec2.IVpc;
  /**
   * Root of the physical names this construct creates and its nodes read (SSM parameters, secrets);
   * see MailServerFleetProps.namePrefix.
   * @default - `mailfleet/<plan.platform>`
   */
  readonly namePrefix?: string;
  /** Private zone for ldap-provider / ldap-consumer names. */
  readonly privateZone: route53.IHostedZone;
  /**
   * Region the directory runs in. In 'dr' an OpenLDAP pair becomes one consumer of the primary provider.
   * @default 'primary'
   */
  readonly region?: RegionRole;
  /**
   * A zone the other region resolves (primary.<platform>.internal) where the provider is also published.
   * @default - the provider is named in the private zone only
   */
  readonly crossRegionZone?: route53.IHostedZone;
  /**
   * CIDR of the other region's VPC whose consumer replicates from this provider.
   * @default - no cross-region replication access
   */
  readonly replicationPeerCidr?: string;
  /**
   * Managed AD in the DR region: the primary domain controllers' DNS addresses, the targets of this
   * region's forward rule (MailPlatformStack passes the primary's `ad-dns-ips` link fact, lib/plan/link.ts).
   * @default - no forward rule in DR (synth warns)
   */
  readonly managedAdDnsIps?: string[];
  /**
   * Instance type of the OpenLDAP nodes.
   * @default - the mail tier's instance type
   */
  readonly instanceType?: string;
  /**
   * Create the directory secrets (false in the DR region, which reads their replicas by name).
   * @default true
   */
  readonly createSecrets?: boolean;
  /**
   * Regions the created secrets are replicated to.
   * @default - no replicas
   */
  readonly secretReplicaRegions?: string[];
  /**
   * Image of the OpenLDAP nodes.
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
 * The user directory: an OpenLDAP provider/consumer pair with syncrepl (a consumer only in DR), a
 * reference to an external directory, or AWS Managed Microsoft AD. The service bind password lives
 * in Secrets Manager in every case.
 */
export class LdapDirectory extends Construct {
  public readonly instances: ec2.CfnInstance[] = [];
  public readonly securityGroup?: ec2.SecurityGroup;
  /** The ldap group of the platform model (lib/plan/network.ts), with an OpenLDAP pair. */
  private sgModel?: SecurityGroupModel;
  public readonly role?: iam.Role;
  public readonly nodeFiles?: NodeFilesBundle;
  public readonly microsoftAd?: directoryservice.CfnMicrosoftAD;
  /** Managed AD: the outbound endpoint through which the VPC resolver reaches the domain's DNS. */
  public resolverEndpoint?: route53resolver.CfnResolverEndpoint;
  /** Managed AD: the FORWARD rule for the domain (absent in DR without managedAdDnsIps). */
  public resolverRule?: route53resolver.CfnResolverRule;
  /** Managed AD: the service account, created in the customer OU with the bind secret's password. */
  public bindAccount?: ManagedAdBindAccount;
  /** Managed AD with TLS: the CA bundle the daemons verify the controllers against (set by the operator). */
  public caSecret?: secretsmanager.Secret;
  /** Service bind password (generated for OpenLDAP, set by hand for an external directory). */
  public readonly bindSecret?: secretsmanager.Secret;
  public readonly adminSecret?: secretsmanager.Secret;
  public readonly replicatorSecret?: secretsmanager.Secret;
  public readonly directory: LdapDirectorySpec;
  private readonly bindSecretName: string;

  constructor(scope: Construct, id: string, props: LdapDirectoryProps) {
    super(scope, id);
    const { vpc } = props;
    const plan = withNamePrefix(props.plan, props.namePrefix);
    const d = plan.directory;
    if (d.kind !== 'ldap') throw new MailfleetError('PLAN_INVALID', `LdapDirectory: the plan's directory.kind is ${d.kind}, not ldap`);
    this.directory = d;
    const region = props.region ?? 'primary';
    const names = secretNames(plan);
    this.bindSecretName = names.ldapBind;
    const create = props.createSecrets ?? true;
    // Secrets as the platform model declares them (lib/plan/node-access.ts), created by the primary only.
    const models = new Map(platformSecrets(plan).filter((x) => x.owner === 'directory').map((x) => [x.id, x] as const));
    const secret = (cid: string) => {
      const s = modelSecret(this, models.get(cid)!, props.secretReplicaRegions ?? []);
      acknowledge(s, 'AwsSolutions-SMG4', 'Directory passwords change through the directory runbook (slapd/AD and the daemons together); a rotation Lambda would break binds mid-rotation.');
      return s;
    };

    if (create) this.bindSecret = secret('BindSecret');

    if (d.provision === 'external') return;

    const subnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnets;
    if (d.provision === 'managed-ad') {
      if (subnets.length < 2) throw new MailfleetError('BAD_REQUEST', 'LdapDirectory: Managed AD needs private subnets in two AZs');
      const ad = managedAdOf(d)!;
      // The DR region uses the primary domain over the peering link: only its own Resolver forward rule.
      if (region === 'dr') {
        this.forwardDomain(plan, region, vpc, subnets, props.managedAdDnsIps);
        return;
      }
      this.adminSecret = secret('AdminSecret');
      if (create && ad.caFile) this.caSecret = secret('CaSecret');
      this.microsoftAd = new directoryservice.CfnMicrosoftAD(this, 'ManagedAd', {
        name: ad.domain,
        shortName: ad.shortName,
        edition: 'Standard',
        password: this.adminSecret.secretValue.unsafeUnwrap(),
        vpcSettings: { vpcId: vpc.vpcId, subnetIds: subnets.slice(0, 2).map((s) => s.subnetId) },
      });
      // Managed AD always starts with two domain controllers.
      const dcs = [0, 1].map((i) => Fn.select(i, this.microsoftAd!.attrDnsIpAddresses));
      this.forwardDomain(plan, region, vpc, subnets, dcs);
      if (this.bindSecret) this.bindAccount = new ManagedAdBindAccount(this, 'BindAccount', { directory: this.microsoftAd, samAccountName: ad.serviceAccount, bindSecret: this.bindSecret });
      return;
    }

    // openldap-pair
    if (create) {
      this.adminSecret = secret('AdminSecret');
      this.replicatorSecret = secret('ReplicatorSecret');
    }
    this.sgModel = securityGroupOf(plan, region, 'ldap')!;
    this.securityGroup = modelSecurityGroup(this, vpc, this.sgModel);
    allowGroupIngress(this.securityGroup, this.sgModel, 'ldap', this.securityGroup);
    if (props.replicationPeerCidr) addCidrIngress(this.securityGroup, ldapReplicationRules({ cidr: props.replicationPeerCidr }), vpc);
    this.nodeFiles = new NodeFilesBundle(this, 'NodeFiles', { plan, role: 'ldap', region });
    this.role = nodeRole(this, 'Role', plan, 'ldap', region, { objects: { 'node-files/ldap': this.nodeFiles.asset } });
    const lt = nodeLaunchTemplate(this, 'LaunchTemplate', {
      instanceType: props.instanceType ?? plan.sizing.mailNodes.instanceType,
      role: this.role,
      securityGroup: this.securityGroup,
      userData: userData(plan, 'ldap'),
      rootVolumeGiB: 20,
      machineImage: props.machineImage,
    });
    const records = privateRecordsOf(plan, region).filter((r) => r.nodeKind === 'ldap');
    ldapRoles(plan, region).forEach((ldapRole, i) => {
      const name = ldapRole === 'provider' ? 'Provider' : 'Consumer';
      const node = new ec2.CfnInstance(this, name, {
        launchTemplate: { launchTemplateId: lt.launchTemplateId, version: lt.latestVersionNumber },
        subnetId: subnets[i % subnets.length]!.subnetId,
        monitoring: true,
        disableApiTermination: props.terminationProtection ?? true,
        tags: [
          { key: 'Name', value: `${plan.platform}-ldap-${ldapRole}` },
          { key: LDAP_ROLE_TAG, value: ldapRole },
        ],
      });
      tagRole(node, 'ldap');
      for (const rec of records.filter((r) => r.nodeIndex === i)) {
        // The provider's region-zone name only where the caller gave that zone (the other region resolves it).
        const zone = rec.zone === 'platform' ? props.privateZone : props.crossRegionZone;
        if (!zone) continue;
        new route53.ARecord(this, rec.zone === 'platform' ? `${name}Name` : 'ProviderCrossRegionName', {
          zone,
          recordName: `${rec.name}.`,
          target: route53.RecordTarget.fromIpAddresses(node.attrPrivateIp),
          ttl: Duration.seconds(rec.ttl),
        });
      }
      this.instances.push(node);
    });
  }

  /**
   * The Resolver outbound endpoint and, once the controllers' addresses are known, the FORWARD rule for
   * the AD domain, associated with this VPC: the VPC resolver alone cannot answer the domain's names.
   */
  private forwardDomain(plan: Plan, region: RegionRole, vpc: ec2.IVpc, subnets: ec2.ISubnet[], dcs: readonly string[] | undefined): void {
    const m = resolverOf(plan, region)!;
    const g = securityGroupOf(plan, region, 'resolver')!;
    const sg = new ec2.SecurityGroup(this, 'ResolverSg', { vpc, description: g.description, allowAllOutbound: false });
    tagRole(sg, g.role);
    // The controllers live in the primary VPC: this VPC's CIDR there, the primary's literal CIDR in DR.
    sg.addEgressRule(ec2.Peer.ipv4(region === 'primary' ? vpc.vpcCidrBlock : g.egressAllTo!), ec2.Port.allTraffic(), 'DNS to the AD domain controllers');
    this.resolverEndpoint = new route53resolver.CfnResolverEndpoint(this, 'ResolverEndpoint', {
      name: m.endpointName,
      direction: 'OUTBOUND',
      securityGroupIds: [sg.securityGroupId],
      ipAddresses: subnets.slice(0, m.subnets).map((s) => ({ subnetId: s.subnetId })),
    });
    if (!dcs || dcs.length === 0) {
      Annotations.of(this).addWarningV2(
        'mailfleet:managed-ad-dns-ips',
        `no forward rule for ${m.domain} in the DR region: the primary's domain controller addresses come through the region link (its ad-dns-ips fact), which the CDK stacks make only with both regions in one account; without the rule DR nodes cannot resolve the domain (docs/ldap.md)`,
      );
      return;
    }
    this.resolverRule = new route53resolver.CfnResolverRule(this, 'ForwardRule', {
      name: m.ruleName,
      domainName: m.domain,
      ruleType: 'FORWARD',
      resolverEndpointId: this.resolverEndpoint.attrResolverEndpointId,
      targetIps: dcs.map((ip) => ({ ip, port: String(m.port) })),
    });
    new route53resolver.CfnResolverRuleAssociation(this, 'ForwardRuleAssociation', { resolverRuleId: this.resolverRule.attrResolverRuleId, vpcId: vpc.vpcId });
  }

  /**
   * Lets `grantee` read the service bind password (secretsmanager:GetSecretValue), e.g. a provisioning
   * job that binds as the service account. By name, so it also works where createSecrets is false.
   */
  grantBindSecretRead(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      // Secrets Manager appends a random 6-character suffix to every secret ARN.
      resourceArns: [stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${this.bindSecretName}-??????`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
    });
  }

  /** Opens LDAP and LDAPS to the directory's clients (the mail tier). */
  allowClientsFrom(peer: ec2.IConnectable): void {
    if (!this.securityGroup) return;
    allowGroupIngress(this.securityGroup, this.sgModel!, 'mail', peer);
  }
}
