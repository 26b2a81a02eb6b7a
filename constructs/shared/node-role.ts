import { ArnFormat, Stack, type CfnElement } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as route53 from 'aws-cdk-lib/aws-route53';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type { Construct } from 'constructs';
import { nodeAccess, type AccessTarget, type BootObjectId } from '../../lib/plan/node-access.js';
import type { Plan } from '../../lib/plan/types.js';
import type { NodeRole, RegionRole } from '../../lib/render/node-layout.js';
import { acknowledge, nagEnv } from './nag.js';
import { tagRole } from './tags.js';

/** The resources behind the model's symbolic targets that only the construct knows. */
export interface NodeRoleTargets {
  /** Boot objects as CDK assets (node files, daemon package). */
  readonly objects: Partial<Record<BootObjectId, s3assets.Asset>>;
  /**
   * The private zone, for roles whose statements name it (mail).
   * @default - none
   */
  readonly privateZone?: route53.IHostedZone;
  /**
   * The region's audit archive bucket and its key, for roles whose statements name them (mail, audit.enabled).
   * @default - none
   */
  readonly auditArchive?: { readonly bucket: s3.IBucket; readonly key: kms.IKey };
}

/** Key prefix the journal uploader writes under (lib/journal/s3.ts batchKeys). */
export const JOURNAL_KEYS = 'journal/*';

/**
 * The instance role of one node kind, translated from the platform model (lib/plan/node-access.ts):
 * the same managed policies and statements Terraform and Pulumi give it.
 */
export function nodeRole(scope: Construct, id: string, plan: Plan, role: NodeRole, region: RegionRole, targets: NodeRoleTargets): iam.Role {
  const access = nodeAccess(plan, role, region);
  const stack = Stack.of(scope);
  const r = new iam.Role(scope, id, {
    assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    description: access.description,
    managedPolicies: access.managedPolicies.map((n) => iam.ManagedPolicy.fromAwsManagedPolicyName(n)),
  });
  tagRole(r, role);
  const arnOf = (t: AccessTarget): string => {
    switch (t.kind) {
      case 'ssm-parameters':
        return stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: t.prefix });
      case 'ssm-parameter': {
        const name = plan.regions?.[t.region]?.name;
        return stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: t.name.replace(/^\//, ''), region: t.region === region ? undefined : name });
      }
      case 'secret':
        return stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${t.name}-*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
      case 'private-zone':
        if (!targets.privateZone) throw new Error(`nodeRole ${role}: the model grants on the private zone but none was given`);
        return targets.privateZone.hostedZoneArn;
      case 'boot-object': {
        const asset = targets.objects[t.object];
        if (!asset) throw new Error(`nodeRole ${role}: no asset for boot object ${t.object}`);
        return asset.bucket.arnForObjects(asset.s3ObjectKey);
      }
      case 'audit-journal':
      case 'audit-key': {
        if (!targets.auditArchive) throw new Error(`nodeRole ${role}: the model grants on the audit archive but none was given`);
        return t.kind === 'audit-key' ? targets.auditArchive.key.keyArn : targets.auditArchive.bucket.arnForObjects(JOURNAL_KEYS);
      }
      case 'any':
        return '*';
    }
  };
  for (const s of access.statements)
    r.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [...s.actions],
        resources: s.targets.map(arnOf),
        conditions: s.conditions as Record<string, unknown> | undefined,
      }),
    );
  const env = nagEnv(r);
  for (const s of access.statements)
    for (const t of s.targets) {
      if (t.kind === 'ssm-parameters')
        acknowledge(
          r,
          `AwsSolutions-IAM5[Resource::arn:${env.partition}:ssm:${env.region}:${env.account}:parameter/${t.prefix}]`,
          'Nodes read only the platform\'s own SSM parameters (node-files URIs, private zone id, geo-replication key), all under one prefix.',
        );
      if (t.kind === 'secret')
        acknowledge(
          r,
          `AwsSolutions-IAM5[Resource::arn:${env.partition}:secretsmanager:${env.region}:${env.account}:secret:${t.name}-*]`,
          'Secrets are granted by name: Secrets Manager appends a random 6-character suffix to every secret ARN, and the DR region reads replicas it did not create.',
        );
      if (t.kind === 'audit-journal' && targets.auditArchive) {
        const bucket = targets.auditArchive.bucket.node.defaultChild as CfnElement | undefined;
        if (bucket)
          acknowledge(
            r,
            `AwsSolutions-IAM5[Resource::<${Stack.of(bucket).getLogicalId(bucket)}.Arn>/${JOURNAL_KEYS}]`,
            'Nodes add journal batches under journal/ with new keys each time (PutObject only: no read, no delete).',
          );
      }
    }
  acknowledge(
    r,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
    'Session Manager is the only shell access to nodes (no SSH); this is the AWS-maintained minimum for the SSM agent.',
  );
  acknowledge(
    r,
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/CloudWatchAgentServerPolicy]',
    'The CloudWatch agent ships node logs and the connection metrics the tiers scale on; AWS maintains this policy for it.',
  );
  return r;
}
