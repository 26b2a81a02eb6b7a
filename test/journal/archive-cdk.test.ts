/**
 * The audit archive in CDK: Object Lock mode and retention from the spec, versioning, SSE-KMS, lifecycle to
 * the archive class, reads only through the auditor role, PutObject only for the mail nodes; cdk-nag clean.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AuditArchive, objectLockRetentionOf } from '../../constructs/audit-archive/index.js';
import { addNagChecks, addPlatformStacks } from '../../stacks/app.js';
import { cleanupApps, testApp } from '../stacks/helpers.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';

after(cleanupApps);

describe('AuditArchive (CDK)', () => {
  test('GIVEN audit.mode compliance, 3650 days WHEN synthesized THEN the bucket has Object Lock COMPLIANCE 3650 days, versioning, SSE-KMS, a lifecycle to GLACIER_IR, and no public access', () => {
    const app = testApp({}, false);
    const stack = new Stack(app, 'A', { env: { account: '111111111111', region: 'eu-west-1' } });
    new AuditArchive(stack, 'Audit', { objectLockRetention: objectLockRetentionOf({ mode: 'compliance', retentionDays: 3650 }), archiveAfterDays: 30 });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 3650 } } },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }), BucketKeyEnabled: true })] },
      LifecycleConfiguration: { Rules: [Match.objectLike({ Status: 'Enabled', Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 30 }] })] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    t.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  test('GIVEN the default WHEN synthesized THEN Object Lock is GOVERNANCE for 2555 days', () => {
    const app = testApp({}, false);
    const stack = new Stack(app, 'B', { env: { account: '111111111111', region: 'eu-west-1' } });
    new AuditArchive(stack, 'Audit');
    Template.fromStack(stack).hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 2555 } } } });
  });

  test('fails when archiveAfterDays is not a positive whole number', () => {
    const app = testApp({}, false);
    const stack = new Stack(app, 'C', { env: { account: '111111111111', region: 'eu-west-1' } });
    assert.throws(() => new AuditArchive(stack, 'Audit', { archiveAfterDays: 0 }), /archiveAfterDays/);
  });

  test('GIVEN a node role WHEN granted journal write THEN it may PutObject on journal/* and nothing else on the bucket; gets are denied to all but the auditor role', () => {
    const app = testApp({}, false);
    const stack = new Stack(app, 'D', { env: { account: '111111111111', region: 'eu-west-1' } });
    const archive = new AuditArchive(stack, 'Audit');
    const role = new iam.Role(stack, 'Node', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    archive.grantJournalWrite(role);
    const t = Template.fromStack(stack);
    const policies = t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }] } });
    const statements = Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown }> } } }).Properties.PolicyDocument.Statement);
    const s3Actions = statements.flatMap((s) => [s.Action].flat()).filter((a) => a.startsWith('s3:'));
    assert.deepEqual(s3Actions, ['s3:PutObject']);
    assert.match(JSON.stringify(statements.find((s) => s.Action === 's3:PutObject')!.Resource), /\/journal\/\*/);
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: 'ReadOnlyThroughAuditorRole', Effect: 'Deny', Action: ['s3:GetObject', 's3:GetObjectVersion'], Condition: { ArnNotEquals: { 'aws:PrincipalArn': Match.anyValue() } } }),
        ]),
      },
    });
  });

  test('GIVEN a spec with audit on WHEN the platform stacks are synthesized with AwsSolutionsChecks THEN no finding is left unacknowledged and the mail role can write the journal', () => {
    const app = testApp({}, false);
    // primary-dr.yaml pins every image (no unpinned-image annotations); the DR stack gets its own archive.
    const spec = loadSpec('examples/primary-dr.yaml').spec;
    const { primary } = addPlatformStacks(app, buildPlan(parseSpec(JSON.stringify({ ...spec, audit: { enabled: true, mode: 'compliance', retentionDays: 3650 } }), 'audit.yaml')));
    addNagChecks(app);
    assert.doesNotThrow(() => app.synth());
    const t = Template.fromStack(primary as Stack);
    t.hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 3650 } } } });
    assert.match(JSON.stringify(t.findResources('AWS::IAM::Policy')), /"s3:PutObject"/);
  });
});
