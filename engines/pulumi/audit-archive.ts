/**
 * The audit archive in Pulumi (the CDK's constructs/audit-archive, docs/audit.md): per region an S3 bucket
 * with Object Lock (mode and retention from the spec), versioning, SSE-KMS with a rotating key, lifecycle
 * to the archive class, no public access, TLS only, reads only through the auditor role. The mail nodes'
 * own role gets PutObject on journal/* (the platform model's statements, platform.ts).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { PlatformModel } from '../platform.js';

/** Objects the journal uploader writes (lib/journal/s3.ts batchKeys): the mail nodes' grant. */
export const JOURNAL_KEYS = 'journal/*';

export function auditArchivePulumi(
  p: string,
  o: { parent: pulumi.Resource; provider: aws.Provider; prefix: string; account: string; audit: NonNullable<PlatformModel['audit']>; tags: Record<string, string> },
): { bucket: aws.s3.Bucket; key: aws.kms.Key; resources: pulumi.Resource[] } {
  const { audit, tags } = o;
  const opts = { parent: o.parent, provider: o.provider };
  const key = new aws.kms.Key(`${p}-audit-key`, { description: 'mailfleet audit journal', enableKeyRotation: true, tags }, opts);
  const bucket = new aws.s3.Bucket(`${p}-audit`, { bucketPrefix: `${o.prefix}-audit-`, objectLockEnabled: true, tags }, { ...opts, protect: true });
  const versioning = new aws.s3.BucketVersioning(`${p}-audit-versioning`, { bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } }, opts);
  const lock = new aws.s3.BucketObjectLockConfiguration(
    `${p}-audit-lock`,
    { bucket: bucket.id, rule: { defaultRetention: { mode: audit.mode.toUpperCase(), days: audit.retentionDays } } },
    { ...opts, dependsOn: [versioning] },
  );
  const sse = new aws.s3.BucketServerSideEncryptionConfiguration(
    `${p}-audit-sse`,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }] },
    opts,
  );
  const lifecycle = new aws.s3.BucketLifecycleConfiguration(
    `${p}-audit-lifecycle`,
    {
      bucket: bucket.id,
      rules: [
        {
          id: 'archive',
          status: 'Enabled',
          filter: { prefix: '' },
          transitions: [{ days: audit.archiveAfterDays, storageClass: audit.archiveStorageClass }],
          noncurrentVersionTransitions: [{ noncurrentDays: audit.archiveAfterDays, storageClass: audit.archiveStorageClass }],
        },
      ],
    },
    opts,
  );
  const publicBlock = new aws.s3.BucketPublicAccessBlock(
    `${p}-audit-public`,
    { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    opts,
  );
  const assume = (principal: Record<string, string>) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: principal, Action: 'sts:AssumeRole' }] });
  const auditor = new aws.iam.Role(`${p}-audit-auditor`, { namePrefix: `${o.prefix}-auditor-`, assumeRolePolicy: assume({ AWS: `arn:aws:iam::${o.account}:root` }), tags }, opts);
  const auditorPolicy = new aws.iam.RolePolicy(
    `${p}-audit-auditor-policy`,
    {
      role: auditor.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket'], Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`] },
          { Effect: 'Allow', Action: 's3:PutObject', Resource: pulumi.interpolate`${bucket.arn}/access-log/*` },
          { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: key.arn },
        ],
      }),
    },
    opts,
  );
  const bucketPolicy = new aws.s3.BucketPolicy(
    `${p}-audit-bucket-policy`,
    {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'TlsOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
          {
            Sid: 'ReadOnlyThroughAuditorRole',
            Effect: 'Deny',
            Principal: '*',
            Action: ['s3:GetObject', 's3:GetObjectVersion'],
            Resource: pulumi.interpolate`${bucket.arn}/*`,
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': auditor.arn } },
          },
        ],
      }),
    },
    { ...opts, dependsOn: [publicBlock] },
  );
  return { bucket, key, resources: [key, bucket, versioning, lock, sse, lifecycle, publicBlock, auditor, auditorPolicy, bucketPolicy] };
}
