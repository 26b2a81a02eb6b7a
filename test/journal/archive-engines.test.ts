/**
 * The audit archive in the Terraform and Pulumi engines: the Object Lock settings (mode and retention from
 * the spec), versioning, SSE-KMS, lifecycle, and a writer role limited to PutObject on journal/*.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { terraformJson, type TerraformJson } from '../../engines/terraform/index.js';
import { registrationsOf, type Registration } from '../../engines/pulumi/mocks.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';

const auditPlan = (audit: Record<string, unknown>): Plan =>
  buildPlan(parseSpec(JSON.stringify({ ...loadSpec('examples/single-region.yaml').spec, audit: { enabled: true, ...audit } }), 'audit.yaml'));

type Resources = Record<string, Record<string, Record<string, unknown>>>;

describe('audit archive in Terraform', () => {
  let doc: TerraformJson;
  before(() => {
    doc = terraformJson(auditPlan({ mode: 'compliance', retentionDays: 3650, archiveAfterDays: 30, archiveStorageClass: 'DEEP_ARCHIVE' }));
  });
  // The archive's resources (the boot bucket of each region is an aws_s3_bucket too).
  const one = (type: string) => {
    const all = Object.entries((doc.resource as Resources)[type] ?? {})
      .filter(([key]) => /audit/i.test(key))
      .map(([, v]) => v);
    assert.equal(all.length, 1, `${type}: one per region`);
    return all[0]!;
  };

  it('GIVEN audit compliance 3650 days WHEN synthesized THEN the bucket has Object Lock COMPLIANCE 3650 days, versioning, SSE-KMS with a rotating key, a lifecycle to DEEP_ARCHIVE and no public access', () => {
    assert.equal(one('aws_s3_bucket').object_lock_enabled, true);
    assert.deepEqual(one('aws_s3_bucket_object_lock_configuration').rule, { default_retention: { days: 3650, mode: 'COMPLIANCE' } });
    assert.deepEqual(one('aws_s3_bucket_versioning').versioning_configuration, { status: 'Enabled' });
    const sse = one('aws_s3_bucket_server_side_encryption_configuration').rule as Array<Record<string, Record<string, unknown>>>;
    assert.equal(sse[0]!.apply_server_side_encryption_by_default!.sse_algorithm, 'aws:kms');
    assert.equal(one('aws_kms_key').enable_key_rotation, true);
    const rule = (one('aws_s3_bucket_lifecycle_configuration').rule as Array<Record<string, unknown>>)[0]!;
    assert.deepEqual(rule.transition, [{ days: 30, storage_class: 'DEEP_ARCHIVE' }]);
    assert.equal(one('aws_s3_bucket_public_access_block').restrict_public_buckets, true);
  });

  it('gives the mail nodes\' role PutObject on journal/* of the archive (and its key), and denies reads to all but the auditor role', () => {
    const policies = Object.values((doc.resource as Resources).aws_iam_role_policy!).filter((p) => String(p.role).includes('role-mail'));
    assert.equal(policies.length, 1);
    const statements = (JSON.parse(String(policies[0]!.policy)) as { Statement: Array<{ Action: string[]; Resource: string[] }> }).Statement;
    const put = statements.filter((s) => s.Action.includes('s3:PutObject'));
    assert.deepEqual(put.map((s) => s.Resource), [['${aws_s3_bucket.primary-audit.arn}/journal/*']]);
    assert.deepEqual(statements.filter((s) => s.Action.includes('kms:GenerateDataKey')).map((s) => s.Resource), [['${aws_kms_key.primary-audit-key.arn}']]);
    const doc2 = Object.values((doc.data as Resources).aws_iam_policy_document!)[0]!;
    assert.ok(JSON.stringify(doc2).includes('ReadOnlyThroughAuditorRole'));
  });

  it('GIVEN audit off WHEN synthesized THEN there is no archive bucket', () => {
    const off = terraformJson(buildPlan(loadSpec('examples/single-region.yaml').spec));
    assert.equal((off.resource as Resources).aws_s3_bucket_object_lock_configuration, undefined);
  });
});

describe('audit archive in Pulumi', () => {
  let regs: Registration[];
  before(async () => {
    regs = await registrationsOf(auditPlan({ mode: 'governance', retentionDays: 400 }));
  });
  const one = (type: string) => {
    const all = regs.filter((r) => r.type === type && /audit/.test(r.name));
    assert.equal(all.length, 1, `${type}: one per region`);
    return all[0]!.inputs;
  };

  it('GIVEN audit governance 400 days WHEN registered THEN the bucket has Object Lock GOVERNANCE 400 days, versioning, SSE-KMS, a lifecycle to GLACIER_IR and no public access', () => {
    assert.equal(one('aws:s3/bucket:Bucket').objectLockEnabled, true);
    assert.deepEqual(one('aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration').rule, { defaultRetention: { mode: 'GOVERNANCE', days: 400 } });
    assert.deepEqual(one('aws:s3/bucketVersioning:BucketVersioning').versioningConfiguration, { status: 'Enabled' });
    const sse = one('aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration').rules as Array<Record<string, Record<string, unknown>>>;
    assert.equal(sse[0]!.applyServerSideEncryptionByDefault!.sseAlgorithm, 'aws:kms');
    const rules = one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration').rules as Array<Record<string, unknown>>;
    assert.deepEqual(rules[0]!.transitions, [{ days: 90, storageClass: 'GLACIER_IR' }]);
    assert.equal(one('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock').blockPublicPolicy, true);
  });

  it('gives the mail nodes\' role PutObject on journal/* of the archive', () => {
    const mail = regs.filter((r) => r.type === 'aws:iam/rolePolicy:RolePolicy' && r.name.endsWith('mail-node'));
    assert.equal(mail.length, 1);
    const statements = (JSON.parse(String(mail[0]!.inputs.policy)) as { Statement: Array<{ Action: string[]; Resource: string[] }> }).Statement;
    assert.deepEqual(statements.filter((s) => s.Action.includes('s3:PutObject')).map((s) => s.Resource), [['arn:aws:s3:::primary-audit/journal/*']]);
  });
});
