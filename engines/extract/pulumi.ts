/** Pulumi resource registrations (recorded under setMocks) → neutral inventory. */
import {
  ROLE_TAG,
  decodeBase64,
  instanceKind,
  inventoryOf,
  normalizeProtocol,
  type EngineInventory,
  type NeutralResource,
  type NeutralRule,
  type RegionRole,
} from '../inventory.js';

/** Pulumi type token → shared kind. Network plumbing (routes, gateways) is not compared. */
export const PULUMI_KINDS: Readonly<Record<string, string>> = Object.freeze({
  'aws:ec2/vpc:Vpc': 'vpc',
  'aws:ec2/subnet:Subnet': 'subnet',
  'aws:ec2/securityGroup:SecurityGroup': 'security-group',
  'aws:lb/loadBalancer:LoadBalancer': 'nlb',
  'aws:lb/listener:Listener': 'nlb-listener',
  'aws:lb/targetGroup:TargetGroup': 'target-group',
  'aws:ec2/launchTemplate:LaunchTemplate': 'launch-template',
  'aws:autoscaling/group:Group': 'autoscaling-group',
  'aws:ec2/instance:Instance': 'instance',
  'aws:ebs/volume:Volume': 'ebs-volume',
  'aws:efs/fileSystem:FileSystem': 'efs-filesystem',
  'aws:efs/mountTarget:MountTarget': 'efs-mount-target',
  'aws:directoryservice/directory:Directory': 'managed-ad',
  'aws:route53/resolverEndpoint:ResolverEndpoint': 'resolver-endpoint',
  'aws:route53/healthCheck:HealthCheck': 'route53-health-check',
  'aws:route53/record:Record': 'route53-record',
  'aws:fis/experimentTemplate:ExperimentTemplate': 'fis-experiment-template',
});

/** The part of a registration the extractor reads (engines/pulumi/mocks.ts records it). */
export interface PulumiRegistration {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly inputs: Record<string, unknown>;
  readonly provider?: string;
}

function tagsOf(r: PulumiRegistration): Record<string, string> {
  const t = r.inputs.tags;
  if (Array.isArray(t)) return Object.fromEntries((t as { key: string; value: string }[]).map((x) => [x.key, x.value]));
  return (t as Record<string, string> | undefined) ?? {};
}

/** Provider references read "<urn>::<id>"; the provider's name (the URN's last part) is its region role. */
function regionOf(r: PulumiRegistration): RegionRole {
  const parts = (r.provider ?? '').split('::');
  return parts[parts.length - 2] === 'dr' ? 'dr' : 'primary';
}

export function pulumiInventory(registrations: readonly PulumiRegistration[]): EngineInventory {
  const out: NeutralResource[] = [];
  const groupRole = new Map<string, string>();
  for (const r of registrations) {
    const role = tagsOf(r)[ROLE_TAG];
    if (r.type === 'aws:ec2/securityGroup:SecurityGroup') groupRole.set(r.id, role ?? r.name);
    const shared = PULUMI_KINDS[r.type];
    if (!shared) continue;
    const kind = shared === 'instance' ? instanceKind(role) : shared;
    const ud = r.type === 'aws:ec2/launchTemplate:LaunchTemplate' ? r.inputs.userData : r.inputs.userDataBase64;
    out.push({
      kind,
      region: regionOf(r),
      role,
      port: kind === 'nlb-listener' ? Number(r.inputs.port) : undefined,
      record: kind === 'route53-record' ? { type: String(r.inputs.type), name: String(r.inputs.name) } : undefined,
      userData: typeof ud === 'string' ? decodeBase64(ud) : typeof r.inputs.userData === 'string' ? r.inputs.userData : undefined,
    });
  }
  const rules: NeutralRule[] = [];
  const directions = {
    'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule': 'ingress',
    'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule': 'egress',
  } as const;
  for (const r of registrations) {
    const direction = directions[r.type as keyof typeof directions];
    if (!direction) continue;
    const i = r.inputs;
    const protocol = normalizeProtocol(i.ipProtocol as string);
    const ref = i.referencedSecurityGroupId as string | undefined;
    rules.push({
      region: regionOf(r),
      direction,
      protocol,
      fromPort: protocol === 'all' ? undefined : Number(i.fromPort),
      toPort: protocol === 'all' ? undefined : Number(i.toPort),
      group: groupRole.get(String(i.securityGroupId)) ?? String(i.securityGroupId),
      peer: ref ? (groupRole.get(ref) ?? ref) : String(i.cidrIpv4 ?? i.cidrIpv6 ?? i.prefixListId),
    });
  }
  return inventoryOf(out, rules);
}
