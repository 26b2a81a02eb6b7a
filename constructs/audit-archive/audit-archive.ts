import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULT_AUDIT } from '../../lib/spec/defaults.js';
import { acknowledge } from '../shared/nag.js';

/** Key prefixes the journal writes (lib/journal/s3.ts): batches, and the auditors' access log. */
export const JOURNAL_PREFIX = 'journal/';
export const ACCESS_LOG_PREFIX = 'access-log/';

export interface AuditArchiveProps {
  /**
   * Object Lock default retention of every journal object: mode and period.
   * @default - governance, DEFAULT_AUDIT.retentionDays (2555 days)
   */
  readonly objectLockRetention?: s3.ObjectLockRetention;
  /**
   * Journal objects move to archiveStorageClass after this many days.
   * @default DEFAULT_AUDIT.archiveAfterDays (90)
   */
  readonly archiveAfterDays?: number;
  /**
   * Storage class of journal objects after archiveAfterDays.
   * @default s3.StorageClass.GLACIER_INSTANT_RETRIEVAL
   */
  readonly archiveStorageClass?: s3.StorageClass;
  /**
   * Who may assume the auditor role (the only role that reads the journal).
   * @default - the stack's account (IAM policies there decide which users may)
   */
  readonly auditorPrincipal?: iam.IPrincipal;
}

/**
 * The audit archive (docs/audit.md): an S3 bucket with Object Lock (default retention from the spec),
 * versioning, SSE-KMS with its own rotating key, TLS only, no public access, server access logs, and a
 * lifecycle to an archive class. Mail nodes get PutObject on journal/* only (grantJournalWrite); the
 * journal is read only through `auditorRole`, which the bucket policy enforces.
 */
export class AuditArchive extends Construct {
  /** The journal bucket (Object Lock, versioned, SSE-KMS). */
  public readonly bucket: s3.Bucket;
  /** The KMS key the bucket encrypts with. */
  public readonly key: kms.Key;
  /** Server access logs of the journal bucket. */
  public readonly accessLogsBucket: s3.Bucket;
  /** The only role that may read the journal (`mailfleet archive` runs as it); it may also write the access log. */
  public readonly auditorRole: iam.Role;

  constructor(scope: Construct, id: string, props: AuditArchiveProps = {}) {
    super(scope, id);
    const archiveAfterDays = props.archiveAfterDays ?? DEFAULT_AUDIT.archiveAfterDays;
    if (!Number.isInteger(archiveAfterDays) || archiveAfterDays < 1) throw new Error(`archiveAfterDays must be a positive whole number of days (got ${archiveAfterDays})`);

    this.key = new kms.Key(this, 'Key', {
      description: 'mailfleet audit journal',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      // Server access log delivery writes with SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(this.accessLogsBucket, 'AwsSolutions-S1', 'This bucket receives the audit bucket\'s server access logs; logging it to itself would loop.');

    this.bucket = new s3.Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention: props.objectLockRetention ?? s3.ObjectLockRetention.governance(Duration.days(DEFAULT_AUDIT.retentionDays)),
      versioned: true,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'audit/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'archive',
          transitions: [{ storageClass: props.archiveStorageClass ?? s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(archiveAfterDays) }],
          noncurrentVersionTransitions: [{ storageClass: props.archiveStorageClass ?? s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transitionAfter: Duration.days(archiveAfterDays) }],
        },
      ],
    });

    this.auditorRole = new iam.Role(this, 'AuditorRole', {
      assumedBy: props.auditorPrincipal ?? new iam.AccountPrincipal(Stack.of(this).account),
      description: 'mailfleet auditors: read the audit journal, write the access log (mailfleet archive)',
    });
    this.bucket.grantRead(this.auditorRole);
    this.bucket.grantPut(this.auditorRole, `${ACCESS_LOG_PREFIX}*`);
    const reason = 'Auditors read every journal object and write access-log/* objects (CDK grantRead/grantPut action groups): limited to this one bucket and its key.';
    const bucketArn = `<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>`;
    for (const action of ['s3:GetBucket*', 's3:GetObject*', 's3:List*', 's3:Abort*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'])
      acknowledge(this.auditorRole, `AwsSolutions-IAM5[Action::${action}]`, reason);
    for (const r of ['/*', `/${ACCESS_LOG_PREFIX}*`]) acknowledge(this.auditorRole, `AwsSolutions-IAM5[Resource::${bucketArn}${r}]`, reason);
    // Reading goes through the auditor role only: nobody else in the account may get journal objects.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ReadOnlyThroughAuditorRole',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.bucket.arnForObjects('*')],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': this.auditorRole.roleArn } },
      }),
    );
  }

  /** The mail nodes: PutObject on journal/* (and the key to encrypt with), nothing else. */
  grantJournalWrite(role: iam.IRole): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [this.bucket.arnForObjects(`${JOURNAL_PREFIX}*`)] }));
    this.key.grant(role, 'kms:GenerateDataKey');
    const bucketArn = `<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>`;
    acknowledge(role, `AwsSolutions-IAM5[Resource::${bucketArn}/${JOURNAL_PREFIX}*]`, 'Nodes add journal batches under journal/ with new keys each time (PutObject only: no read, no delete).');
  }
}

/** The retention the spec asks for (audit.mode, audit.retentionDays). */
export function objectLockRetentionOf(audit: { readonly mode: 'governance' | 'compliance'; readonly retentionDays: number }): s3.ObjectLockRetention {
  return audit.mode === 'compliance' ? s3.ObjectLockRetention.compliance(Duration.days(audit.retentionDays)) : s3.ObjectLockRetention.governance(Duration.days(audit.retentionDays));
}

/** The spec's archive class as CDK's. */
export function archiveStorageClassOf(c: 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE'): s3.StorageClass {
  return c === 'GLACIER_IR' ? s3.StorageClass.GLACIER_INSTANT_RETRIEVAL : c === 'GLACIER' ? s3.StorageClass.GLACIER : s3.StorageClass.DEEP_ARCHIVE;
}
