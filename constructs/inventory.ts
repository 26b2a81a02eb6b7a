/**
 * What a synthesized CDK app holds, in the shape of plan.inventory (kind, count, why), so tests and the
 * parity suite can hold the stacks to the plan. Nested stack templates are followed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as cxapi from 'aws-cdk-lib/cx-api';
import type { InventoryLine } from '../lib/plan/types.js';
import { ROLE_TAG } from './shared/tags.js';

export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}
export interface CfnTemplate {
  readonly Resources?: Record<string, CfnResource>;
}
export interface NamedTemplate {
  /** Stack name, or `<parent>/<nested logical id>` for nested stacks. */
  readonly name: string;
  /** Top-level stack this template belongs to. */
  readonly stack: string;
  readonly template: CfnTemplate;
}

/**
 * Every template of an assembly, nested ones included (CloudFormation's 500-resource quota is per
 * template). Nested templates are written beside their parent as `<parent id><nested id>.nested.template.json`.
 */
export function templatesOf(assembly: cxapi.CloudAssembly): NamedTemplate[] {
  const out: NamedTemplate[] = assembly.stacks.map((s) => ({ name: s.stackName, stack: s.stackName, template: s.template as CfnTemplate }));
  // Nested template files start with the parent's id stripped to letters and digits (`globexmailprimary…`).
  const prefixOf = (id: string) => id.replace(/[^A-Za-z0-9]/g, '');
  const parents = [...assembly.stacks].sort((a, b) => prefixOf(b.id).length - prefixOf(a.id).length);
  for (const file of readdirSync(assembly.directory).filter((f) => f.endsWith('.nested.template.json')).sort()) {
    const parent = parents.find((s) => file.startsWith(prefixOf(s.id)));
    if (!parent) continue;
    out.push({
      name: `${parent.stackName}/${file.slice(prefixOf(parent.id).length, -'.nested.template.json'.length)}`,
      stack: parent.stackName,
      template: JSON.parse(readFileSync(join(assembly.directory, file), 'utf8')) as CfnTemplate,
    });
  }
  return out;
}

function tagOf(r: CfnResource, key: string): string | undefined {
  const tags = r.Properties?.['Tags'];
  if (!Array.isArray(tags)) return undefined;
  const t = tags.find((x: { Key?: string }) => x.Key === key) as { Value?: unknown } | undefined;
  return typeof t?.Value === 'string' ? t.Value : undefined;
}

/** A resource's inventory kind, as plan.inventory names kinds; undefined for kinds the inventory does not track. */
export function kindOf(r: CfnResource): string | undefined {
  switch (r.Type) {
    case 'AWS::EC2::VPC':
      return 'vpc';
    case 'AWS::ElasticLoadBalancingV2::LoadBalancer':
      return r.Properties?.['Type'] === 'network' ? 'nlb' : 'load-balancer';
    case 'AWS::ElasticLoadBalancingV2::Listener':
      return 'nlb-listener';
    case 'AWS::ElasticLoadBalancingV2::TargetGroup':
      return 'target-group';
    case 'AWS::AutoScaling::AutoScalingGroup':
      return 'autoscaling-group';
    case 'AWS::EC2::Instance': {
      const role = tagOf(r, ROLE_TAG);
      return role === 'storage' ? 'storage-instance' : role === 'ldap' ? 'ldap-instance' : 'instance';
    }
    case 'AWS::EFS::FileSystem':
      return 'efs-filesystem';
    case 'AWS::Route53::HealthCheck':
      return 'route53-health-check';
    case 'AWS::FIS::ExperimentTemplate':
      return 'fis-experiment-template';
    case 'AWS::CloudWatch::Alarm':
      return 'cloudwatch-alarm';
    case 'AWS::EC2::SecurityGroup':
      return 'security-group';
    case 'AWS::DirectoryService::MicrosoftAD':
      return 'managed-ad';
    case 'AWS::Route53Resolver::ResolverEndpoint':
      return 'resolver-endpoint';
    default:
      return undefined;
  }
}

/** Counts by kind over the given templates, in plan.inventory's shape. */
export function cdkInventory(templates: readonly NamedTemplate[]): InventoryLine[] {
  const counts = new Map<string, { n: number; stacks: Set<string> }>();
  for (const t of templates)
    for (const r of Object.values(t.template.Resources ?? {})) {
      const kind = kindOf(r);
      if (!kind) continue;
      const c = counts.get(kind) ?? { n: 0, stacks: new Set<string>() };
      c.n++;
      c.stacks.add(t.stack);
      counts.set(kind, c);
    }
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, c]) => ({ kind, count: c.n, why: `synthesized in ${[...c.stacks].sort().join(', ')}` }));
}

/** Resources per template, largest first (the 500-per-template quota check). */
export function resourceCounts(templates: readonly NamedTemplate[]): { name: string; resources: number }[] {
  return templates
    .map((t) => ({ name: t.name, resources: Object.keys(t.template.Resources ?? {}).length }))
    .sort((a, b) => b.resources - a.resources);
}
