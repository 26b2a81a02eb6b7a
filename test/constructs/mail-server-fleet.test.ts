import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonPackage, nodeRuntimePackage } from '../../constructs/shared/daemon-bundle.js';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { MailServerFleet } from '../../constructs/mail-server-fleet/index.js';
import { CONNECTIONS_METRIC } from '../../lib/render/cloudwatch-agent.js';
import {
  LAUNCH_HOOK_NAME,
  MAIL_UID,
  STORAGE_WAIT,
  daemonBundleParameter,
  debianAmiParameter,
  mailNodesHost,
  nodeFilesParameter,
  secretNames,
} from '../../lib/render/node-layout.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { cleanupApps } from '../stacks/helpers.js';
import { fixture, single, variant } from './fixture.js';

after(cleanupApps);

describe('MailServerFleet', () => {
  test('GIVEN an existing VPC WHEN the fleet is composed THEN an ASG of IMDSv2 nodes with encrypted gp3 roots runs the mail user data', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: String(plan.sizing.mailNodes.min),
      MaxSize: String(plan.sizing.mailNodes.max),
      VPCZoneIdentifier: ['subnet-prv1', 'subnet-prv2', 'subnet-prv3'],
    });
    t.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        InstanceType: plan.sizing.mailNodes.instanceType,
        MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3', VolumeSize: 20 }) })],
      }),
    });
    const lt = Object.values(t.findResources('AWS::EC2::LaunchTemplate'))[0]!;
    const ud = Buffer.from(lt.Properties.LaunchTemplateData.UserData['Fn::Base64'] as string).toString();
    assert.match(ud, /exec \/opt\/mailfleet\/bootstrap\/mail\.sh/);
  });

  test('THEN the daemon bundle and node files are S3 assets whose URIs sit in the SSM parameters the user data reads', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: daemonBundleParameter(plan), Value: Match.stringLikeRegexp('^s3://') });
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: nodeFilesParameter(plan, 'mail'), Value: Match.stringLikeRegexp('^s3://.*\\.zip$') });
  });

  test('THEN the group scales on established connections per node, at 70% of the per-node target', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    Template.fromStack(stack).hasResourceProperties('AWS::AutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingConfiguration: Match.objectLike({
        TargetValue: Math.floor(plan.spec.tiers.maxConnectionsPerMailNode * 0.7),
        CustomizedMetricSpecification: Match.objectLike({ MetricName: CONNECTIONS_METRIC, Statistic: 'Average' }),
      }),
    });
  });

  test('THEN secrets are created by name, and nodes may only publish their own discovery name', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone, secretReplicaRegions: ['eu-central-1'] });
    const t = Template.fromStack(stack);
    const names = secretNames(plan);
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: names.adminToken, ReplicaRegions: [{ Region: 'eu-central-1' }] });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: names.tls });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'route53:ChangeResourceRecordSets',
            Condition: { 'ForAllValues:StringEquals': { 'route53:ChangeResourceRecordSetsNormalizedRecordNames': [mailNodesHost(plan)] } },
          }),
        ]),
      }),
    });
  });

  test('GIVEN a static directory THEN its users file is a secret (empty at first) that nodes may read, and no LDAP secret is granted', () => {
    const plan = variant({ directory: { kind: 'static' } });
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    const names = secretNames(plan);
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: names.staticUsers, SecretString: 'users: []\n' });
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    assert.ok(policies.includes(`secret:${names.staticUsers}-*`), 'users secret granted');
    assert.ok(!policies.includes(`secret:${names.ldapBind}-*`), 'no LDAP bind secret with a static directory');
    assert.equal(Object.keys(t.findResources('AWS::SecretsManager::Secret', { Properties: { Name: names.relay } })).length, 0, 'no relay secret without relay credentials');
  });

  test('GIVEN smtp.relay with credentials THEN a relay secret exists and nodes may read it', () => {
    const plan = variant({ smtp: { relay: { host: 'smtp.relay.example', usernameEnv: 'RELAY_USER', passwordEnv: 'RELAY_PASSWORD' } } });
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    const names = secretNames(plan);
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: names.relay });
    assert.ok(JSON.stringify(t.findResources('AWS::IAM::Policy')).includes(`secret:${names.relay}-*`));
  });

  test('GIVEN createSecrets false (DR) THEN no secrets are created', () => {
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan: single(), vpc, privateZone: zone, createSecrets: false, minNodes: 0 });
    Template.fromStack(stack).resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  test('WHEN the proxy tier is allowed THEN only the daemon ports open to its group', () => {
    const { stack, vpc, zone } = fixture();
    const fleet = new MailServerFleet(stack, 'Mail', { plan: single(), vpc, privateZone: zone });
    const proxy = new ec2.SecurityGroup(stack, 'Proxy', { vpc });
    fleet.allowProxyFrom(proxy);
    const t = Template.fromStack(stack);
    const rules = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties as { FromPort: number; ToPort: number });
    const ports = rules.flatMap((r) => Array.from({ length: r.ToPort - r.FromPort + 1 }, (_, i) => r.FromPort + i)).sort((a, b) => a - b);
    assert.deepEqual(ports, [...fleet.daemonPorts].sort((a, b) => a - b));
  });

  test('GIVEN conflicting props WHEN synthesized THEN synth fails naming each conflict under the construct path (Node.addValidation), all at once', () => {
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan: single(), vpc, privateZone: zone, minNodes: 9, maxNodes: 3, desiredNodes: 12, createSecrets: false, secretReplicaRegions: ['eu-central-1'] });
    assert.throws(
      () => Template.fromStack(stack),
      (e: Error) =>
        /\[Test\/Mail\] MailServerFleet: minNodes 9 exceeds maxNodes 3/.test(e.message) &&
        /desiredNodes 12 is outside minNodes\.\.maxNodes \(9\.\.3\)/.test(e.message) &&
        /secretReplicaRegions is set while createSecrets is false/.test(e.message),
    );
  });

  test('GIVEN the fleet WHEN a consumer uses its IConnectable and grant methods THEN rules and least-privilege statements land on the consumer\'s resources', () => {
    const { stack, vpc, zone } = fixture();
    const plan = variant({ directory: { kind: 'static' } });
    const fleet = new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const monitor = new ec2.SecurityGroup(stack, 'Monitor', { vpc });
    fleet.connections.allowFrom(monitor, ec2.Port.tcp(9100), 'node exporter');
    const ops = new iam.Role(stack, 'Ops', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    fleet.grantAdminTokenRead(ops);
    fleet.grantTlsWrite(ops);
    fleet.grantUsersWrite(ops);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 9100, ToPort: 9100, GroupId: Match.anyValue(), SourceSecurityGroupId: Match.anyValue() });
    const secrets = secretNames(plan);
    const stmts = Object.values(t.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes('Ops'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
    const grantOf = (name: string) => stmts.filter((s) => JSON.stringify(s.Resource).includes(`secret:${name}-??????`)).flatMap((s) => [s.Action].flat());
    assert.deepEqual(grantOf(secrets.adminToken).sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    assert.deepEqual(grantOf(secrets.tls).sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:PutSecretValue']);
    assert.deepEqual(grantOf(secrets.staticUsers).sort(), ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue']);
    assert.equal(stmts.length, 3, JSON.stringify(stmts));
  });

  test('GIVEN an LDAP directory WHEN grantUsersWrite is called THEN it says users live in the directory', () => {
    const { stack, vpc, zone } = fixture();
    const fleet = new MailServerFleet(stack, 'Mail', { plan: single(), vpc, privateZone: zone });
    assert.equal(single().directory.kind, 'ldap');
    const ops = new iam.Role(stack, 'Ops', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    assert.throws(() => fleet.grantUsersWrite(ops), /directory is LDAP; users are managed there/);
  });
});

describe('MailServerFleet: nodes are in service only once they serve, on Debian 12, with their own runtime', () => {
  test('GIVEN the fleet WHEN synthesized THEN a launch lifecycle hook (ABANDON by default) outlasts the storage wait, and the node role may complete it and report its own health', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    const hooks = Object.values(t.findResources('AWS::AutoScaling::LifecycleHook'));
    // The terminate hook (drain) is checked against drain.sh in test/engines/lifecycle-hook.test.ts.
    assert.equal(hooks.length, 2);
    const hook = hooks.find((h) => h.Properties.LifecycleTransition === 'autoscaling:EC2_INSTANCE_LAUNCHING')!.Properties as Record<string, unknown>;
    assert.equal(hook.LifecycleTransition, 'autoscaling:EC2_INSTANCE_LAUNCHING');
    assert.equal(hook.DefaultResult, 'ABANDON');
    assert.equal(hook.LifecycleHookName, LAUNCH_HOOK_NAME);
    assert.ok(Number(hook.HeartbeatTimeout) > STORAGE_WAIT.tries * STORAGE_WAIT.intervalSeconds, 'the hook waits longer than the node waits for storage');
    const actions = Object.values(t.findResources('AWS::IAM::Policy')).flatMap((p) =>
      (p.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) => s.Action),
    );
    for (const a of ['autoscaling:CompleteLifecycleAction', 'autoscaling:SetInstanceHealth', 'autoscaling:DescribeAutoScalingInstances'])
      assert.ok(actions.includes(a), a);
  });

  test('GIVEN the mail node files WHEN read THEN the store is mounted with bounded retries (not once under set -e), the node checks daemon and store before it signals, and the mail user has a fixed UID', () => {
    const plan = single();
    const files = nodeFiles(plan, 'mail', 'primary');
    const mail = files.find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.doesNotMatch(mail, /systemctl enable --now srv-mail\.mount/);
    assert.match(mail, new RegExp(`for try in \\$\\(seq 1 ${STORAGE_WAIT.tries}\\)`));
    assert.ok(mail.indexOf('bootstrap/health.sh') < mail.indexOf('signal_launch CONTINUE'));
    assert.match(mail, new RegExp(`useradd --system --uid ${MAIL_UID} --gid ${MAIL_UID}`));
    const health = files.find((f) => f.path === 'bootstrap/health.sh')!.content;
    assert.match(health, /mountpoint -q \/srv\/mail/);
    assert.match(health, /healthz/);
    assert.ok(files.some((f) => f.path === 'systemd/mailfleet-health.timer'));
  });

  test('GIVEN the fleet WHEN synthesized THEN nodes boot the Debian 12 AMI from the Debian project\'s public SSM parameter', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
    const params = Object.values(Template.fromStack(stack).toJSON().Parameters ?? {}) as { Default?: string }[];
    assert.ok(params.some((p) => p.Default === debianAmiParameter(plan.sizing.mailNodes.instanceType)), JSON.stringify(params.map((p) => p.Default)));
    assert.ok(params.every((p) => !String(p.Default).includes('amazon-linux')));
  });
});

describe('daemon package: the bundle ships with its Node.js runtime, checksummed', () => {
  test('GIVEN a runtime package WHEN the package is built THEN it holds mailfleetd.mjs and node/bin/node, and sha256sum -c of its SHA256SUMS passes on them', () => {
    const root = mkdtempSync(join(tmpdir(), 'mf-runtime-'));
    try {
      const rt = join(root, nodeRuntimePackage('x64'));
      mkdirSync(join(rt, 'bin'), { recursive: true });
      writeFileSync(join(rt, 'bin', 'node'), `#!/bin/sh\necho v24.0.0-${process.pid}\n`, { mode: 0o755 });
      writeFileSync(join(rt, 'package.json'), JSON.stringify({ name: nodeRuntimePackage('x64'), version: '24.0.0' }));
      const bundle = join(root, 'mailfleetd.mjs');
      writeFileSync(bundle, `console.log(${process.pid});\n`);
      const saved = process.env.MAILFLEET_NODE_RUNTIME_DIR;
      process.env.MAILFLEET_NODE_RUNTIME_DIR = root;
      try {
        const pkg = daemonPackage(bundle, 'x64');
        assert.equal(pkg.nodeVersion, '24.0.0');
        const check = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: pkg.dir, encoding: 'utf8' });
        assert.equal(check.status, 0, check.stdout + check.stderr);
        assert.match(check.stdout, /node\/bin\/node: OK/);
        assert.match(check.stdout, /mailfleetd\.mjs: OK/);
      } finally {
        if (saved === undefined) delete process.env.MAILFLEET_NODE_RUNTIME_DIR;
        else process.env.MAILFLEET_NODE_RUNTIME_DIR = saved;
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
