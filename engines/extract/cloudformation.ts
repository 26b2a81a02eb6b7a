/** Synthesized CloudFormation templates (the CDK engine's output) → neutral inventory. */
import {
  ROLE_TAG,
  decodeBase64,
  guessRole,
  instanceKind,
  inventoryOf,
  normalizeProtocol,
  type EngineInventory,
  type NeutralResource,
  type NeutralRule,
  type RegionRole,
} from '../inventory.js';

/** CloudFormation type → shared kind. Network plumbing (routes, gateways) is not compared. */
export const CLOUDFORMATION_KINDS: Readonly<Record<string, string>> = Object.freeze({
  'AWS::EC2::VPC': 'vpc',
  'AWS::EC2::Subnet': 'subnet',
  'AWS::EC2::SecurityGroup': 'security-group',
  'AWS::ElasticLoadBalancingV2::LoadBalancer': 'nlb',
  'AWS::ElasticLoadBalancingV2::Listener': 'nlb-listener',
  'AWS::ElasticLoadBalancingV2::TargetGroup': 'target-group',
  'AWS::EC2::LaunchTemplate': 'launch-template',
  'AWS::AutoScaling::AutoScalingGroup': 'autoscaling-group',
  'AWS::EC2::Instance': 'instance',
  'AWS::EC2::Volume': 'ebs-volume',
  'AWS::EFS::FileSystem': 'efs-filesystem',
  'AWS::EFS::MountTarget': 'efs-mount-target',
  'AWS::DirectoryService::MicrosoftAD': 'managed-ad',
  'AWS::Route53Resolver::ResolverEndpoint': 'resolver-endpoint',
  'AWS::Route53::HealthCheck': 'route53-health-check',
  'AWS::Route53::RecordSet': 'route53-record',
  'AWS::FIS::ExperimentTemplate': 'fis-experiment-template',
});

export interface RegionTemplate {
  readonly region: RegionRole;
  /** A synthesized template (`Template.fromStack(stack).toJSON()` or the cdk.out JSON). */
  readonly template: Record<string, unknown>;
}

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
}

type Tag = { Key: string; Value: unknown };

function tagsOf(res: CfnResource): Record<string, string> {
  const p = res.Properties ?? {};
  const lists: Tag[][] = [];
  if (Array.isArray(p.Tags)) lists.push(p.Tags as Tag[]);
  const specs = [
    ...((p.TagSpecifications as { Tags?: Tag[] }[] | undefined) ?? []),
    ...(((p.LaunchTemplateData as Record<string, unknown> | undefined)?.TagSpecifications as { Tags?: Tag[] }[] | undefined) ?? []),
  ];
  for (const s of specs) if (Array.isArray(s.Tags)) lists.push(s.Tags);
  return Object.fromEntries(lists.flat().filter((t) => typeof t.Value === 'string').map((t) => [t.Key, t.Value as string]));
}

/** Intrinsics left inside user data are kept as text, so two engines only match when both resolve them alike. */
function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && 'Fn::Join' in v) {
    const [sep, parts] = (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    return parts.map(textOf).join(sep);
  }
  return `\${${JSON.stringify(v)}}`;
}

function userDataOf(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return decodeBase64(v);
  if (typeof v === 'object' && v !== null && 'Fn::Base64' in v) return textOf((v as { 'Fn::Base64': unknown })['Fn::Base64']);
  return textOf(v);
}

/** {"Fn::GetAtt": ["LogicalId", "GroupId"]} or {"Ref": "LogicalId"} → LogicalId */
function refOf(v: unknown): string | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o['Fn::GetAtt'])) return String(o['Fn::GetAtt'][0]);
  if (typeof o.Ref === 'string') return o.Ref;
  return undefined;
}

/** CDK's placeholder for "no outbound traffic" (a rule nothing can match). */
const isCdkDisallowAll = (r: Record<string, unknown>) => r.CidrIp === '255.255.255.255/32';

export function cloudFormationInventory(templates: readonly RegionTemplate[]): EngineInventory {
  const out: NeutralResource[] = [];
  const rules: NeutralRule[] = [];
  for (const { region, template } of templates) {
    const resources = (template.Resources as Record<string, CfnResource> | undefined) ?? {};
    const roleOf = new Map<string, string | undefined>();
    for (const [id, res] of Object.entries(resources)) {
      const p = res.Properties ?? {};
      const role =
        tagsOf(res)[ROLE_TAG] ??
        guessRole(id, p.GroupDescription as string | undefined, p.LaunchTemplateName as string | undefined, tagsOf(res).Name);
      roleOf.set(id, role);
    }
    for (const [id, res] of Object.entries(resources)) {
      const shared = CLOUDFORMATION_KINDS[res.Type];
      if (!shared) continue;
      const p = res.Properties ?? {};
      const role = roleOf.get(id);
      const userData =
        res.Type === 'AWS::EC2::LaunchTemplate'
          ? userDataOf((p.LaunchTemplateData as Record<string, unknown> | undefined)?.UserData)
          : res.Type === 'AWS::EC2::Instance'
            ? userDataOf(p.UserData)
            : undefined;
      out.push({
        kind: shared === 'instance' ? instanceKind(role) : shared,
        region,
        role,
        port: shared === 'nlb-listener' ? Number(p.Port) : undefined,
        userData,
        record: shared === 'route53-record' ? { type: String(p.Type), name: String(p.Name) } : undefined,
      });
    }
    const groupName = (v: unknown) => {
      const id = refOf(v);
      return id ? (roleOf.get(id) ?? id) : String(v);
    };
    // `Fn::GetAtt [Vpc, CidrBlock]` (CDK's vpc.vpcCidrBlock) → the VPC's literal CIDR, as the other engines write it.
    const cidrOf = (v: unknown): string => {
      const id = refOf(v);
      const cidr = id ? resources[id]?.Properties?.CidrBlock : undefined;
      return typeof cidr === 'string' ? cidr : typeof v === 'string' ? v : JSON.stringify(v);
    };
    const push = (direction: 'ingress' | 'egress', group: string, r: Record<string, unknown>) => {
      if (isCdkDisallowAll(r)) return;
      const protocol = normalizeProtocol(r.IpProtocol as string);
      const peerRef = direction === 'ingress' ? r.SourceSecurityGroupId : r.DestinationSecurityGroupId;
      rules.push({
        region,
        direction,
        protocol,
        fromPort: protocol === 'all' ? undefined : Number(r.FromPort),
        toPort: protocol === 'all' ? undefined : Number(r.ToPort),
        group,
        peer: peerRef !== undefined ? groupName(peerRef) : cidrOf(r.CidrIp ?? r.CidrIpv6 ?? r.SourcePrefixListId ?? r.DestinationPrefixListId),
      });
    };
    for (const [id, res] of Object.entries(resources)) {
      const p = res.Properties ?? {};
      if (res.Type === 'AWS::EC2::SecurityGroup') {
        const group = roleOf.get(id) ?? id;
        for (const r of (p.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? []) push('ingress', group, r);
        for (const r of (p.SecurityGroupEgress as Record<string, unknown>[] | undefined) ?? []) push('egress', group, r);
      }
      if (res.Type === 'AWS::EC2::SecurityGroupIngress') push('ingress', groupName(p.GroupId), p);
      if (res.Type === 'AWS::EC2::SecurityGroupEgress') push('egress', groupName(p.GroupId), p);
    }
  }
  return inventoryOf(out, rules);
}
