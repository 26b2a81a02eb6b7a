/**
 * What the AWS API would answer a node, read from the engine's real output: the synthesized CloudFormation
 * template and the cdk.out asset manifest (never a hand-written copy). The stand-ins (standins.ts) serve
 * exactly this: SSM parameters, Secrets Manager values (generated as GenerateSecretString says), S3
 * objects (cdk.out assets, zipped as cdk-assets publishes them), instance tags and user data from the
 * launch templates, the private zones' records, and which Auto Scaling group a node belongs to.
 */
import { createHash, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Json = unknown;
interface Resource {
  readonly Type: string;
  readonly Properties?: Record<string, Json>;
}

/** One instance (a CfnInstance, or one launched by an Auto Scaling group) as the template describes it. */
export interface NodeSpec {
  /** Logical id of the EC2::Instance or AutoScaling::AutoScalingGroup. */
  readonly logicalId: string;
  readonly userData: string;
  readonly tags: Record<string, string>;
  readonly instanceType: string;
  /** Group name for nodes of an Auto Scaling group. */
  readonly asg?: string;
}

/** Everything the stand-ins serve (JSON: handed to standins.ts in the fabric namespace). */
export interface AwsWorld {
  readonly account: string;
  readonly region: string;
  readonly parameters: Record<string, string>;
  readonly secrets: Record<string, string>;
  /** "bucket/key" -> folder to zip (packaging zip) or file. */
  readonly objects: Record<string, { path: string; packaging: 'zip' | 'file' }>;
  /** Hosted zone id -> zone name (with the trailing dot). */
  readonly zones: Record<string, string>;
  /** Lifecycle hooks by group name. */
  readonly hooks: Record<string, string[]>;
}

export class Template {
  readonly resources: Record<string, Resource>;
  constructor(
    file: string,
    readonly account: string,
    readonly region: string,
  ) {
    this.resources = (JSON.parse(readFileSync(file, 'utf8')) as { Resources: Record<string, Resource> }).Resources;
  }

  /** The physical id CloudFormation would give a resource: a stable fake per logical id. */
  physicalId(logicalId: string): string {
    const r = this.resources[logicalId];
    const h = createHash('sha256').update(logicalId).digest('hex').toUpperCase();
    if (r?.Type === 'AWS::Route53::HostedZone') return `Z${h.slice(0, 20)}`;
    if (r?.Type === 'AWS::AutoScaling::AutoScalingGroup') return `fleet-${logicalId}`;
    return `${logicalId}-${h.slice(0, 8).toLowerCase()}`;
  }

  /** Resolves the intrinsics the templates use for names and values (Ref, Sub, Join, GetAtt through `att`). */
  resolve(v: Json, att: (logicalId: string, attr: string) => string = () => 'unresolved'): string {
    const pseudo: Record<string, string> = {
      'AWS::AccountId': this.account,
      'AWS::Region': this.region,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
    };
    if (typeof v === 'string' || typeof v === 'number') return String(v);
    const o = v as Record<string, Json>;
    if ('Ref' in o) return pseudo[o.Ref as string] ?? this.physicalId(o.Ref as string);
    if ('Fn::Sub' in o) {
      const [text, vars] = Array.isArray(o['Fn::Sub']) ? (o['Fn::Sub'] as [string, Record<string, Json>]) : [o['Fn::Sub'] as string, {}];
      return text.replace(/\$\{([^}]+)\}/g, (_, k: string) => (k in vars ? this.resolve(vars[k], att) : (pseudo[k] ?? this.physicalId(k))));
    }
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, Json[]];
      return parts.map((p) => this.resolve(p, att)).join(sep);
    }
    if ('Fn::GetAtt' in o) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      return att(id, attr);
    }
    if ('Fn::Base64' in o) return this.resolve(o['Fn::Base64'], att);
    throw new Error(`cannot resolve ${JSON.stringify(v).slice(0, 200)}`);
  }

  ofType(type: string): [string, Record<string, Json>][] {
    return Object.entries(this.resources)
      .filter(([, r]) => r.Type === type)
      .map(([id, r]) => [id, r.Properties ?? {}]);
  }

  private launchTemplate(ref: Json): { userData: string; instanceType: string; tags: Record<string, string> } {
    const id = ((ref as { LaunchTemplateId: { Ref: string } }).LaunchTemplateId).Ref;
    const data = this.resources[id]!.Properties!.LaunchTemplateData as Record<string, Json>;
    const tags: Record<string, string> = {};
    for (const spec of (data.TagSpecifications ?? []) as { ResourceType: string; Tags: { Key: string; Value: Json }[] }[])
      if (spec.ResourceType === 'instance') for (const t of spec.Tags) tags[t.Key] = this.resolve(t.Value);
    return { userData: this.resolve(data.UserData), instanceType: String(data.InstanceType), tags };
  }

  /** Every node the template launches: CfnInstances with their own tags, and each Auto Scaling group's template. */
  nodes(): NodeSpec[] {
    const out: NodeSpec[] = [];
    for (const [id, p] of this.ofType('AWS::EC2::Instance')) {
      const lt = this.launchTemplate(p.LaunchTemplate);
      const tags = { ...lt.tags };
      for (const t of (p.Tags ?? []) as { Key: string; Value: Json }[]) tags[t.Key] = this.resolve(t.Value);
      out.push({ logicalId: id, userData: lt.userData, instanceType: lt.instanceType, tags });
    }
    for (const [id, p] of this.ofType('AWS::AutoScaling::AutoScalingGroup')) {
      const lt = this.launchTemplate(p.LaunchTemplate);
      const tags = { ...lt.tags };
      for (const t of (p.Tags ?? []) as { Key: string; Value: Json; PropagateAtLaunch: boolean }[]) if (t.PropagateAtLaunch) tags[t.Key] = this.resolve(t.Value);
      out.push({ logicalId: id, userData: lt.userData, instanceType: lt.instanceType, tags, asg: this.physicalId(id) });
    }
    return out;
  }

  /** Records of the private zones: name, the zone's physical id, the logical ids (GetAtt PrivateIp) or addresses they hold. */
  records(): { name: string; zone: string; targets: { instance?: string; ip?: string }[] }[] {
    return this.ofType('AWS::Route53::RecordSet')
      .filter(([, p]) => Array.isArray(p.ResourceRecords))
      .map(([, p]) => ({
        name: String(p.Name).replace(/\.$/, ''),
        zone: this.resolve(p.HostedZoneId),
        targets: (p.ResourceRecords as Json[]).map((r) => {
          const att = (r as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
          return att ? { instance: att[0] } : { ip: this.resolve(r) };
        }),
      }));
  }

  /**
   * Which regions' VPCs resolve each private zone of the template: the zone's own `VPCs`, and the zones the
   * DR link (Custom::MailfleetRegionLink) associates with this template's VPC, named by the link-facts SSM
   * parameter of the other region that holds the zone id.
   */
  zoneAssociations(): { zone?: string; zoneParameter?: string; region: string }[] {
    const out: { zone?: string; zoneParameter?: string; region: string }[] = [];
    for (const [id, p] of this.ofType('AWS::Route53::HostedZone'))
      for (const v of (p.VPCs ?? []) as { VPCRegion: Json }[]) out.push({ zone: this.physicalId(id), region: this.resolve(v.VPCRegion) });
    for (const [, p] of this.ofType('Custom::MailfleetRegionLink')) {
      const [factsId, key] = ((p.ZoneId as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'] ?? []) as [string?, string?];
      const facts = (this.resources[factsId ?? '']?.Properties?.Facts ?? []) as { Key: string; Name: string }[];
      const fact = facts.find((f) => f.Key === key);
      if (!fact) throw new Error(`the region link's ZoneId names no link fact (${JSON.stringify(p.ZoneId)})`);
      out.push({ zoneParameter: fact.Name, region: this.resolve(p.VpcRegion) });
    }
    return out;
  }

  /**
   * The primary endpoint ElastiCache gives each replication group of the template: its DNS name (shaped as
   * AWS names them, `master.<group id>.<hash>.<region short>.cache.amazonaws.com`) and port.
   */
  redisEndpoints(): { logicalId: string; host: string; port: number }[] {
    // eu-west-1 -> euw1, us-east-1 -> use1, as ElastiCache names its endpoints.
    const [geo = '', ...rest] = this.region.split('-');
    const short = geo + rest.map((p) => (/^\d+$/.test(p) ? p : p[0])).join('');
    return this.ofType('AWS::ElastiCache::ReplicationGroup').map(([id, p]) => ({
      logicalId: id,
      host: `master.${this.resolve(p.ReplicationGroupId ?? id).toLowerCase()}.${createHash('sha256').update(id).digest('hex').slice(0, 6)}.${short}.cache.amazonaws.com`,
      port: Number(p.Port ?? 6379),
    }));
  }

  /** GetAtt values the stand-ins can know: ElastiCache endpoints (the rest stay unresolved). */
  private attribute(logicalId: string, attr: string): string {
    const redis = this.redisEndpoints().find((r) => r.logicalId === logicalId);
    if (redis && attr === 'PrimaryEndPoint.Address') return redis.host;
    if (redis && attr === 'PrimaryEndPoint.Port') return String(redis.port);
    return 'unresolved';
  }

  world(assetsFile: string, outdir: string): AwsWorld {
    const parameters: Record<string, string> = {};
    for (const [, p] of this.ofType('AWS::SSM::Parameter')) parameters[this.resolve(p.Name)] = this.resolve(p.Value, (id, attr) => this.attribute(id, attr));
    const secrets: Record<string, string> = {};
    for (const [, p] of this.ofType('AWS::SecretsManager::Secret')) secrets[this.resolve(p.Name)] = secretValue(p);
    const objects: AwsWorld['objects'] = {};
    const manifest = JSON.parse(readFileSync(assetsFile, 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: 'zip' | 'file' }; destinations: Record<string, { bucketName: string; objectKey: string }> }>;
    };
    for (const f of Object.values(manifest.files))
      for (const d of Object.values(f.destinations))
        objects[`${this.resolve({ 'Fn::Sub': d.bucketName })}/${d.objectKey}`] = { path: join(outdir, f.source.path), packaging: f.source.packaging ?? 'file' };
    const zones: Record<string, string> = {};
    for (const [id, p] of this.ofType('AWS::Route53::HostedZone')) zones[this.physicalId(id)] = String(p.Name);
    const hooks: Record<string, string[]> = {};
    for (const [, p] of this.ofType('AWS::AutoScaling::LifecycleHook')) (hooks[this.resolve(p.AutoScalingGroupName)] ??= []).push(String(p.LifecycleHookName));
    return { account: this.account, region: this.region, parameters, secrets, objects, zones, hooks };
  }
}

/** A value as Secrets Manager generates it from GenerateSecretString (or the template's own SecretString). */
function secretValue(p: Record<string, Json>): string {
  if (typeof p.SecretString === 'string') return p.SecretString;
  const g = (p.GenerateSecretString ?? {}) as { PasswordLength?: number; ExcludePunctuation?: boolean; SecretStringTemplate?: string; GenerateStringKey?: string; ExcludeCharacters?: string };
  const alphabet = [...('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789' + (g.ExcludePunctuation ? '' : '!#$%&()*+,-.:;<=>?@[]^_{|}~'))].filter(
    (c) => !(g.ExcludeCharacters ?? '').includes(c),
  );
  const pw = Array.from({ length: g.PasswordLength ?? 32 }, () => alphabet[randomInt(alphabet.length)]).join('');
  if (g.SecretStringTemplate && g.GenerateStringKey) return JSON.stringify({ ...(JSON.parse(g.SecretStringTemplate) as object), [g.GenerateStringKey]: pw });
  return pw;
}
