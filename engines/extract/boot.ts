/**
 * What nodes boot with, as each engine wrote it, in one neutral form the parity suite compares across
 * CDK, Terraform and Pulumi: IAM statements of the node roles (one line per action × resource, so
 * CDK's statement merging does not matter), their managed policies and instance profiles, the SSM
 * parameters, the secrets with their replica regions, and the FIS drill templates.
 */
import type { RegionRole } from '../inventory.js';
import { ROLE_TAG } from '../inventory.js';
import type { PulumiRegistration } from './pulumi.js';
import type { RegionTemplate } from './cloudformation.js';

export interface BootInventory {
  /** "<region> <role> <action> on <resource>[ if <conditions>]", sorted. */
  readonly statements: readonly string[];
  /** "<region> <role> <policy name>", sorted. */
  readonly managedPolicies: readonly string[];
  /** "<region> <role>": node roles that have an instance profile, sorted. */
  readonly instanceProfiles: readonly string[];
  /** "<region> <name>", sorted. */
  readonly parameters: readonly string[];
  /** "<name> replicas <regions>", sorted. */
  readonly secrets: readonly string[];
  /** One line per FIS template: description, targets and actions, sorted. */
  readonly drills: readonly string[];
  /**
   * "<region> <parameter> -> object-lock bucket in <region>": SSM parameters whose value is the name of an
   * Object Lock bucket (the audit archive), with the region the bucket is created in, sorted.
   */
  readonly archiveParameters: readonly string[];
}

const NODE_ROLES = new Set(['proxy', 'mail', 'storage', 'ldap']);

/**
 * ARNs with the engine's spelling removed: partition `aws`, the node's own region `self`, any account
 * `acct`; S3 objects and hosted zones become their kind (their names are engine-generated).
 */
export function normalizeArn(arn: string, ownRegion: string): string {
  if (arn === '*') return '*';
  // Journal objects keep their key pattern: the grant is on journal/* only, not the whole bucket.
  if (arn.startsWith('arn:') && arn.split(':')[2] === 's3') return arn.endsWith('/journal/*') ? 's3-object journal/*' : 's3-object';
  if (arn.startsWith('arn:') && arn.split(':')[2] === 'kms' && (arn.split(':')[5] ?? '').startsWith('key/')) return 'kms-key';
  if (/^arn:[^:]*:route53:::hostedzone\//.test(arn)) return 'hostedzone';
  const parts = arn.split(':');
  if (parts[0] !== 'arn' || parts.length < 6) return arn;
  parts[1] = 'aws';
  if (parts[3] === ownRegion) parts[3] = 'self';
  if (parts[4]) parts[4] = 'acct';
  return parts.join(':');
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

interface Statement {
  readonly Effect?: string;
  readonly Action?: string | string[];
  readonly Resource?: unknown;
  readonly Condition?: unknown;
}

function statementLines(region: RegionRole, role: string, statements: readonly Statement[], resource: (r: unknown) => string): string[] {
  const out: string[] = [];
  const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
  for (const s of statements) {
    if ((s.Effect ?? 'Allow') !== 'Allow') continue;
    const cond = s.Condition ? ` if ${JSON.stringify(sortKeys(s.Condition))}` : '';
    for (const a of list(s.Action)) for (const r of list(s.Resource)) out.push(`${region} ${role} ${a} on ${resource(r)}${cond}`);
  }
  return out;
}

interface Drill {
  readonly description: string;
  readonly targets: readonly { resourceType: string; selectionMode: string; tags: Record<string, string>; filters: { path: string; values: string[] }[] }[];
  readonly actions: readonly { actionId: string; parameters: Record<string, string> }[];
}

const isLinkParameter = (name: string) => /\/link\/(primary|dr)\//.test(name);

/**
 * A FIS action parameter as the engines can agree on it: the automation document by its name, and of the
 * automation's parameters the action (the role ARN and group names are each engine's references).
 */
function drillParameter(key: string, value: string): string {
  if (key === 'documentArn') return /automation-definition\/([a-z0-9-]+)/.exec(value)?.[1] ?? '<document>';
  if (key === 'documentParameters') return /"Action":"(\w+)"/.exec(value.replace(/\\"/g, '"'))?.[1] ?? '<parameters>';
  return value;
}

function drillLine(d: Drill): string {
  const targets = d.targets
    .map((t) => {
      const tags = Object.entries(t.tags).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
      const filters = t.filters.map((f) => `${f.path}=${[...f.values].sort().join('|')}`).sort().join(',');
      return `${t.resourceType} ${t.selectionMode} [${tags}] [${filters}]`;
    })
    .sort()
    .join('; ');
  const actions = d.actions
    .map((a) => `${a.actionId}(${Object.entries(a.parameters).sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => `${k}=${drillParameter(k, v)}`).join(',')})`)
    .sort()
    .join('; ');
  return `${d.description} :: ${targets} :: ${actions}`;
}

const sorted = (xs: string[]) => [...xs].sort();

type Collected = { statements: string[]; managedPolicies: string[]; instanceProfiles: string[]; parameters: string[]; secrets: string[]; drills: string[]; archiveParameters: string[] };
const collected = (): Collected => ({ statements: [], managedPolicies: [], instanceProfiles: [], parameters: [], secrets: [], drills: [], archiveParameters: [] });

function finish(b: Collected): BootInventory {
  return {
    statements: sorted([...new Set(b.statements)]),
    managedPolicies: sorted(b.managedPolicies),
    instanceProfiles: sorted([...new Set(b.instanceProfiles)]),
    parameters: sorted(b.parameters),
    secrets: sorted(b.secrets),
    drills: sorted(b.drills),
    archiveParameters: sorted(b.archiveParameters),
  };
}

// ---------------------------------------------------------------- CloudFormation

type CfnResources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/**
 * A CloudFormation value as text: pseudo parameters of the own region/account spelled as normalizeArn
 * expects; the ARN of a bucket or KMS key of the template (GetAtt) as an ARN of its kind.
 */
function cfnText(v: unknown, res: CfnResources = {}): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('Fn::GetAtt' in o) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      const type = res[id]?.Type;
      if (attr === 'Arn' && type === 'AWS::S3::Bucket') return 'arn:aws:s3:::bucket';
      if (attr === 'Arn' && type === 'AWS::KMS::Key') return 'arn:aws:kms:<self>:000000000000:key/ref';
      return '<ref>';
    }
    if ('Ref' in o) return o.Ref === 'AWS::Partition' ? 'aws' : o.Ref === 'AWS::Region' ? '<self>' : o.Ref === 'AWS::AccountId' ? '000000000000' : '<ref>';
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((x) => cfnText(x, res)).join(sep);
    }
    if ('Fn::Sub' in o) return String(o['Fn::Sub']).replace(/\$\{AWS::Region\}/g, '<self>').replace(/\$\{AWS::AccountId\}/g, '000000000000').replace(/\$\{AWS::Partition\}/g, 'aws');
  }
  return '<ref>';
}

const cfnTags = (p: Record<string, unknown> | undefined): Record<string, string> =>
  Array.isArray(p?.Tags)
    ? Object.fromEntries((p.Tags as { Key: string; Value: unknown }[]).filter((t) => typeof t.Value === 'string').map((t) => [t.Key, t.Value as string]))
    : ((p?.Tags as Record<string, string> | undefined) ?? {});

/** `regions`: each region role's AWS region (CDK stacks with an env write it literally into ARNs). */
export function cloudFormationBoot(templates: readonly RegionTemplate[], regions: Partial<Record<RegionRole, string>>): BootInventory {
  const b = collected();
  for (const { region, template } of templates) {
    const res = (template.Resources ?? {}) as CfnResources;
    const roleOf = new Map<string, string>();
    for (const [id, r] of Object.entries(res)) {
      if (r.Type !== 'AWS::IAM::Role') continue;
      const role = cfnTags(r.Properties)[ROLE_TAG];
      if (!role || !NODE_ROLES.has(role)) continue;
      roleOf.set(id, role);
      for (const m of (r.Properties?.ManagedPolicyArns as unknown[] | undefined) ?? []) b.managedPolicies.push(`${region} ${role} ${cfnText(m).split('/').pop()}`);
    }
    for (const r of Object.values(res)) {
      const p = r.Properties ?? {};
      if (r.Type === 'AWS::IAM::Policy')
        for (const ref of (p.Roles as { Ref?: string }[] | undefined) ?? []) {
          const role = roleOf.get(ref.Ref ?? '');
          if (!role) continue;
          const doc = p.PolicyDocument as { Statement: Statement[] };
          b.statements.push(
            ...statementLines(region, role, doc.Statement, (x) => normalizeArn(cfnText(x, res).replace(/<self>/g, regions[region] ?? '<self>'), regions[region] ?? '<self>')),
          );
        }
      if (r.Type === 'AWS::IAM::InstanceProfile')
        for (const ref of (p.Roles as { Ref?: string }[] | undefined) ?? []) {
          const role = roleOf.get(ref.Ref ?? '');
          if (role) b.instanceProfiles.push(`${region} ${role}`);
        }
      // Link facts (lib/plan/link.ts) are how the CDK's two stacks find each other, not node boot inputs.
      if (r.Type === 'AWS::SSM::Parameter' && !isLinkParameter(cfnText(p.Name))) {
        b.parameters.push(`${region} ${cfnText(p.Name)}`);
        // One stack per region: a bucket Ref'd here is created in this parameter's region.
        const ref = (p.Value as { Ref?: string } | undefined)?.Ref;
        const target = ref ? res[ref] : undefined;
        if (target?.Type === 'AWS::S3::Bucket' && target.Properties?.ObjectLockEnabled === true)
          b.archiveParameters.push(`${region} ${cfnText(p.Name)} -> object-lock bucket in ${region}`);
      }
      if (r.Type === 'AWS::SecretsManager::Secret')
        b.secrets.push(`${cfnText(p.Name)} replicas ${((p.ReplicaRegions as { Region: string }[] | undefined) ?? []).map((x) => x.Region).sort().join(',')}`);
      if (r.Type === 'AWS::FIS::ExperimentTemplate') {
        const targets = Object.values((p.Targets ?? {}) as Record<string, Record<string, unknown>>).map((t) => ({
          resourceType: String(t.ResourceType),
          selectionMode: String(t.SelectionMode),
          tags: (t.ResourceTags ?? {}) as Record<string, string>,
          filters: ((t.Filters ?? []) as { Path: string; Values: string[] }[]).map((f) => ({ path: f.Path, values: f.Values })),
        }));
        const actions = Object.values((p.Actions ?? {}) as Record<string, Record<string, unknown>>).map((a) => ({
          actionId: String(a.ActionId),
          parameters: Object.fromEntries(Object.entries((a.Parameters ?? {}) as Record<string, unknown>).map(([k, v]) => [k, cfnText(v, res)])),
        }));
        b.drills.push(drillLine({ description: String(p.Description), targets, actions }));
      }
    }
  }
  return finish(b);
}

// ---------------------------------------------------------------- Terraform

type TfBody = Record<string, unknown>;

/** `${aws_s3_bucket.x.arn}` and friends: references become placeholders of the right shape. */
function tfText(s: string): string {
  return s
    .replace(/\$\{aws_s3_bucket\.[^}]+\.arn\}/g, 'arn:aws:s3:::bucket')
    .replace(/^\$\{aws_kms_key\.[^}]+\.arn\}$/, 'arn:aws:kms:self:000000000000:key/ref')
    .replace(/\$\{[^}]+\}/g, '<ref>');
}

export function terraformBoot(doc: Record<string, unknown>): BootInventory {
  const b = collected();
  const res = (doc.resource ?? {}) as Record<string, Record<string, TfBody>>;
  const providers = ((doc.provider as { aws?: { alias?: string; region: string }[] } | undefined)?.aws ?? []).map((p) => ({
    role: (p.alias ?? 'primary') as RegionRole,
    region: p.region,
  }));
  const regionOf = (body: TfBody): RegionRole => (typeof body.provider === 'string' && body.provider.endsWith('.dr') ? 'dr' : 'primary');
  const regionName = (role: RegionRole) => providers.find((p) => p.role === role)?.region ?? '';
  const roleOf = new Map<string, string>();
  for (const [name, body] of Object.entries(res.aws_iam_role ?? {})) {
    const role = ((body.tags ?? {}) as Record<string, string>)[ROLE_TAG];
    if (role && NODE_ROLES.has(role)) roleOf.set(name, role);
  }
  const roleByRef = (ref: unknown) => {
    const m = /^\$\{aws_iam_role\.([^.}]+)\.(?:id|name)\}$/.exec(String(ref));
    return m ? roleOf.get(m[1]!) : undefined;
  };
  for (const body of Object.values(res.aws_iam_role_policy ?? {})) {
    const role = roleByRef(body.role);
    if (!role) continue;
    const region = regionOf(body);
    const doc2 = JSON.parse(String(body.policy)) as { Statement: Statement[] };
    b.statements.push(...statementLines(region, role, doc2.Statement, (x) => normalizeArn(tfText(String(x)), regionName(region))));
  }
  for (const body of Object.values(res.aws_iam_role_policy_attachment ?? {})) {
    const role = roleByRef(body.role);
    if (role) b.managedPolicies.push(`${regionOf(body)} ${role} ${String(body.policy_arn).split('/').pop()}`);
  }
  for (const body of Object.values(res.aws_iam_instance_profile ?? {})) {
    const role = roleByRef(body.role);
    if (role) b.instanceProfiles.push(`${regionOf(body)} ${role}`);
  }
  for (const body of Object.values(res.aws_ssm_parameter ?? {})) {
    b.parameters.push(`${regionOf(body)} ${String(body.name)}`);
    const m = /^\$\{aws_s3_bucket\.([^.}]+)\.bucket\}$/.exec(String(body.value));
    const bucket = m ? res.aws_s3_bucket?.[m[1]!] : undefined;
    if (bucket?.object_lock_enabled === true) b.archiveParameters.push(`${regionOf(body)} ${String(body.name)} -> object-lock bucket in ${regionOf(bucket)}`);
  }
  for (const body of Object.values(res.aws_secretsmanager_secret ?? {}))
    b.secrets.push(`${String(body.name)} replicas ${((body.replica as { region: string }[] | undefined) ?? []).map((x) => x.region).sort().join(',')}`);
  for (const body of Object.values(res.aws_fis_experiment_template ?? {})) {
    const targets = ((body.target ?? []) as Record<string, unknown>[]).map((t) => ({
      resourceType: String(t.resource_type),
      selectionMode: String(t.selection_mode),
      tags: Object.fromEntries(((t.resource_tag ?? []) as { key: string; value: string }[]).map((x) => [x.key, x.value])),
      filters: ((t.filter ?? []) as { path: string; values: string[] }[]).map((f) => ({ path: f.path, values: f.values })),
    }));
    const actions = ((body.action ?? []) as Record<string, unknown>[]).map((a) => ({
      actionId: String(a.action_id),
      parameters: Object.fromEntries(((a.parameter ?? []) as { key: string; value: string }[]).map((x) => [x.key, x.value])),
    }));
    b.drills.push(drillLine({ description: String(body.description), targets, actions }));
  }
  return finish(b);
}

// ---------------------------------------------------------------- Pulumi

export function pulumiBoot(registrations: readonly PulumiRegistration[]): BootInventory {
  const b = collected();
  const regionOf = (r: PulumiRegistration): RegionRole => {
    const parts = (r.provider ?? '').split('::');
    return parts[parts.length - 2] === 'dr' ? 'dr' : 'primary';
  };
  const regionName = new Map<RegionRole, string>();
  for (const r of registrations) if (r.type === 'pulumi:providers:aws') regionName.set(r.name === 'dr' ? 'dr' : 'primary', String(r.inputs.region));
  const roleOf = new Map<string, string>();
  for (const r of registrations) {
    if (r.type !== 'aws:iam/role:Role') continue;
    const role = ((r.inputs.tags ?? {}) as Record<string, string>)[ROLE_TAG];
    // Roles are referenced by id (the mock's `<name>-id`) or by name (the mock echoes the inputs: undefined name → the id).
    if (role && NODE_ROLES.has(role)) roleOf.set(r.id, role);
  }
  for (const r of registrations) {
    const i = r.inputs;
    const region = regionOf(r);
    if (r.type === 'aws:iam/rolePolicy:RolePolicy') {
      const role = roleOf.get(String(i.role));
      if (role) b.statements.push(...statementLines(region, role, (JSON.parse(String(i.policy)) as { Statement: Statement[] }).Statement, (x) => normalizeArn(String(x), regionName.get(region) ?? '')));
    }
    if (r.type === 'aws:iam/rolePolicyAttachment:RolePolicyAttachment') {
      const role = roleOf.get(String(i.role));
      if (role) b.managedPolicies.push(`${region} ${role} ${String(i.policyArn).split('/').pop()}`);
    }
    if (r.type === 'aws:iam/instanceProfile:InstanceProfile') {
      const role = roleOf.get(String(i.role));
      if (role) b.instanceProfiles.push(`${region} ${role}`);
    }
    if (r.type === 'aws:ssm/parameter:Parameter') {
      b.parameters.push(`${region} ${String(i.name)}`);
      // The mocks give a bucket its resource name as its bucket name.
      // (a value from another resource may arrive wrapped as an output: { <sig>, value }).
      const value = i.value && typeof i.value === 'object' ? (i.value as { value?: unknown }).value : i.value;
      const bucket = registrations.find((x) => x.type === 'aws:s3/bucket:Bucket' && x.name === value);
      if (bucket?.inputs.objectLockEnabled === true) b.archiveParameters.push(`${region} ${String(i.name)} -> object-lock bucket in ${regionOf(bucket)}`);
    }
    if (r.type === 'aws:secretsmanager/secret:Secret')
      b.secrets.push(`${String(i.name)} replicas ${((i.replicas as { region: string }[] | undefined) ?? []).map((x) => x.region).sort().join(',')}`);
    if (r.type === 'aws:fis/experimentTemplate:ExperimentTemplate') {
      const targets = ((i.targets ?? []) as Record<string, unknown>[]).map((t) => ({
        resourceType: String(t.resourceType),
        selectionMode: String(t.selectionMode),
        tags: Object.fromEntries(((t.resourceTags ?? []) as { key: string; value: string }[]).map((x) => [x.key, x.value])),
        filters: ((t.filters ?? []) as { path: string; values: string[] }[]).map((f) => ({ path: f.path, values: f.values })),
      }));
      const actions = ((i.actions ?? []) as Record<string, unknown>[]).map((a) => ({
        actionId: String(a.actionId),
        parameters: Object.fromEntries(((a.parameters ?? []) as { key: string; value: string }[]).map((x) => [x.key, x.value])),
      }));
      b.drills.push(drillLine({ description: String(i.description), targets, actions }));
    }
  }
  return finish(b);
}
