/**
 * The audit archive in Terraform (the CDK's constructs/audit-archive, docs/audit.md): per region an S3
 * bucket with Object Lock (mode and retention from the spec), versioning, SSE-KMS with a rotating key,
 * lifecycle to the archive class, no public access, TLS only, and reads only through the auditor role.
 * The mail nodes' own role gets PutObject on journal/* (the platform model's statements, stack.ts).
 */
import { DataAwsIamPolicyDocument } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import type { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js';
import { S3BucketObjectLockConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-object-lock-configuration/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning/index.js';
import type { Construct } from 'constructs';
import type { PlatformModel } from '../platform.js';

/** Objects the journal uploader writes (lib/journal/s3.ts batchKeys): the mail nodes' grant. */
export const JOURNAL_KEYS = 'journal/*';

export interface TerraformAuditArchive {
  readonly bucket: S3Bucket;
  readonly key: KmsKey;
  readonly auditorRole: IamRole;
}

export function auditArchiveTerraform(
  scope: Construct,
  p: string,
  o: { provider: AwsProvider; prefix: string; account: string; audit: NonNullable<PlatformModel['audit']>; tags: Record<string, string> },
): TerraformAuditArchive {
  const { provider, audit, tags } = o;
  const key = new KmsKey(scope, `${p}-audit-key`, { provider, description: 'mailfleet audit journal', enableKeyRotation: true, tags });
  const bucket = new S3Bucket(scope, `${p}-audit`, { provider, bucketPrefix: `${o.prefix}-audit-`, objectLockEnabled: true, tags, lifecycle: { preventDestroy: true } });
  new S3BucketVersioningA(scope, `${p}-audit-versioning`, { provider, bucket: bucket.id, versioningConfiguration: { status: 'Enabled' } });
  new S3BucketObjectLockConfigurationA(scope, `${p}-audit-lock`, {
    provider,
    bucket: bucket.id,
    rule: { defaultRetention: { mode: audit.mode.toUpperCase(), days: audit.retentionDays } },
  });
  new S3BucketServerSideEncryptionConfigurationA(scope, `${p}-audit-sse`, {
    provider,
    bucket: bucket.id,
    rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: key.arn }, bucketKeyEnabled: true }],
  });
  new S3BucketLifecycleConfiguration(scope, `${p}-audit-lifecycle`, {
    provider,
    bucket: bucket.id,
    rule: [
      {
        id: 'archive',
        status: 'Enabled',
        filter: [{ prefix: '' }],
        transition: [{ days: audit.archiveAfterDays, storageClass: audit.archiveStorageClass }],
        noncurrentVersionTransition: [{ noncurrentDays: audit.archiveAfterDays, storageClass: audit.archiveStorageClass }],
      },
    ],
  });
  new S3BucketPublicAccessBlock(scope, `${p}-audit-public`, { provider, bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true });

  const assume = (principal: Record<string, string>) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: principal, Action: 'sts:AssumeRole' }] });
  const auditorRole = new IamRole(scope, `${p}-audit-auditor`, { provider, namePrefix: `${o.prefix}-auditor-`, assumeRolePolicy: assume({ AWS: `arn:aws:iam::${o.account}:root` }), tags });
  new IamRolePolicy(scope, `${p}-audit-auditor-policy`, {
    provider,
    role: auditorRole.id,
    policy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:ListBucket'], Resource: [bucket.arn, `${bucket.arn}/*`] },
        { Effect: 'Allow', Action: 's3:PutObject', Resource: `${bucket.arn}/access-log/*` },
        { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: key.arn },
      ],
    }),
  });
  const policy = new DataAwsIamPolicyDocument(scope, `${p}-audit-policy-doc`, {
    provider,
    statement: [
      {
        sid: 'TlsOnly',
        effect: 'Deny',
        principals: [{ type: '*', identifiers: ['*'] }],
        actions: ['s3:*'],
        resources: [bucket.arn, `${bucket.arn}/*`],
        condition: [{ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] }],
      },
      {
        sid: 'ReadOnlyThroughAuditorRole',
        effect: 'Deny',
        principals: [{ type: '*', identifiers: ['*'] }],
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [`${bucket.arn}/*`],
        condition: [{ test: 'ArnNotEquals', variable: 'aws:PrincipalArn', values: [auditorRole.arn] }],
      },
    ],
  });
  new S3BucketPolicy(scope, `${p}-audit-bucket-policy`, { provider, bucket: bucket.id, policy: policy.json });
  return { bucket, key, auditorRole };
}
