import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { buildAwsDrillPlan, failbackFor, formatAwsDrillPlan } from '../../lib/dr/aws-plan.js';
import { isMailfleetError } from '../../lib/errors.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec, specSchema, type SpecInput } from '../../lib/spec/index.js';

const planOf = (file: string) => buildPlan(loadSpec(file).spec);

function specWith(extra: Partial<SpecInput>) {
  return buildPlan(
    specSchema.parse({
      version: 1,
      platform: { name: 'demo' },
      regions: {
        primary: {
          name: 'us-east-1',
          account: '123456789012',
          availabilityZones: ['us-east-1a', 'us-east-1b'],
        },
        dr: { name: 'us-west-2', account: '123456789012', availabilityZones: ['us-west-2a', 'us-west-2b'] },
      },
      dns: { zoneName: 'demo.example' },
      domains: [{ name: 'demo.example' }],
      dr: { rpoSeconds: 30, rtoSeconds: 120 },
      ...extra,
    }),
  );
}

describe('AWS drill plan', () => {
  it('GIVEN primary-dr.yaml WHEN planned THEN the failover steps come in runbook order with their fail-back', () => {
    const drill = buildAwsDrillPlan(planOf('examples/primary-dr.yaml'));
    assert.deepEqual(
      drill.steps.map((s) => s.id),
      [
        'preflight',
        'storage-checkpoint',
        'fault',
        'storage-promote',
        'ldap-promote',
        'dns-failover',
        'verify',
      ],
    );
    assert.deepEqual(
      drill.failback.map((s) => s.id),
      ['failback-primary', 'failback-storage-copy', 'failback-dns', 'failback-storage-tail'],
    );
    assert.deepEqual(drill.stacks, { primary: 'globex-mail-primary', dr: 'globex-mail-dr' });
    assert.deepEqual(drill.targets, { rpoSeconds: 60, rtoSeconds: 300 });
    assert.deepEqual(drill.publicNames, ['mail.globex.example']);
    // Only the fault starts the RTO clock.
    assert.deepEqual(
      drill.steps.filter((s) => s.startsRto).map((s) => s.id),
      ['fault'],
    );
  });

  it('names every deployed id as a stack-output placeholder and lists it as a required output', () => {
    const drill = buildAwsDrillPlan(planOf('examples/primary-dr.yaml'));
    const byId = Object.fromEntries(drill.steps.map((s) => [s.id, s]));
    const inv = byId['dns-failover']!.calls[0]!;
    assert.equal(inv.service, 'route53');
    assert.equal(inv.operation, 'UpdateHealthCheck');
    assert.deepEqual(inv.input, {
      HealthCheckId: '<from stack output globex-mail-primary.HealthCheckId0>',
      Inverted: true,
    });
    assert.match(
      inv.cli,
      /^aws route53 update-health-check --health-check-id <from stack output globex-mail-primary\.HealthCheckId0> --inverted$/,
    );
    const fis = byId.fault!.calls[0]!;
    assert.equal(fis.operation, 'StartExperiment');
    assert.equal(fis.region, 'eu-west-1');
    assert.equal(
      fis.input.experimentTemplateId,
      '<from stack output globex-mail-primary.Drill2>',
    );
    const cp = byId['storage-checkpoint']!.calls[0]!;
    assert.equal(cp.operation, 'SendCommand');
    assert.equal(cp.measuresRpo, true);
    const commands = (cp.input.Parameters as { commands: string[] }).commands;
    assert.equal(
      commands[0],
      'gluster volume geo-replication mail <from stack output globex-mail-dr.StorageHost>::mail config checkpoint now',
    );
    assert.match(commands[1]!, /status detail --xml \| grep -q '<checkpoint_completed>Yes<\/checkpoint_completed>'/);
    assert.ok(drill.requiredOutputs['globex-mail-primary']!.includes('HealthCheckId0'));
    assert.ok(drill.requiredOutputs['globex-mail-dr']!.includes('Nlb0Dns'));
    // Managed AD: nothing to promote, no calls.
    assert.equal(byId['ldap-promote']!.calls.length, 0);
    assert.match(byId['ldap-promote']!.title, /Managed AD/);
    // Probes: SMTP banner on 25 and IMAP on 143 through the public name.
    assert.deepEqual(
      byId.verify!.probes.map((p) => `${p.kind} ${p.host}:${p.port}`),
      ['smtp-banner mail.globex.example:25', 'imap-login mail.globex.example:143'],
    );
  });

  it('GIVEN EFS storage and an OpenLDAP pair THEN it checks EFS lag, deletes replication, and promotes the LDAP consumer through SSM', () => {
    const drill = buildAwsDrillPlan(
      specWith({
        storage: { kind: 'efs' },
        directory: {
          kind: 'ldap',
          provision: 'openldap-pair',
          uris: ['ldap://ldap.internal'],
          baseDn: 'dc=demo,dc=example',
          userDnTemplate: 'uid={local},ou=people,dc=demo,dc=example',
        },
      }),
    );
    const byId = Object.fromEntries(drill.steps.map((s) => [s.id, s]));
    const cp = byId['storage-checkpoint']!.calls[0]!;
    assert.equal(cp.service, 'efs');
    assert.equal(cp.operation, 'DescribeReplicationConfigurations');
    assert.deepEqual(cp.wait, { kind: 'efs-replicated', maxLagSeconds: 30, timeoutSeconds: 60 });
    assert.deepEqual(
      byId['storage-promote']!.calls.map((c) => `${c.region} ${c.operation}`),
      ['us-west-2 DeleteReplicationConfiguration'],
    );
    const ldap = byId['ldap-promote']!.calls[0]!;
    assert.equal(ldap.region, 'us-west-2');
    assert.equal(
      ldap.input.InstanceIds && (ldap.input.InstanceIds as string[])[0],
      '<from stack output demo-dr.LdapConsumer>',
    );
    assert.match(
      (ldap.input.Parameters as { commands: string[] }).commands.join('\n'),
      /: >\/etc\/ldap\/mailfleet-syncrepl\.conf\n.*#drill updateref/,
    );
    assert.deepEqual(
      drill.failback.map((s) => s.id),
      ['failback-primary', 'failback-storage-copy', 'failback-ldap', 'failback-dns', 'failback-storage-tail'],
    );
    // EFS fail-back replicates DR → primary after lifting the primary's overwrite protection.
    assert.deepEqual(
      drill.failback[1]!.calls.map((c) => `${c.region} ${c.operation}`),
      [
        'us-east-1 UpdateFileSystemProtection',
        'us-west-2 CreateReplicationConfiguration',
        'us-west-2 DescribeReplicationConfigurations',
      ],
    );
  });

  it('rollback after a failure only undoes steps that had begun', () => {
    const drill = buildAwsDrillPlan(planOf('examples/primary-dr.yaml'));
    assert.deepEqual(
      failbackFor(drill, ['preflight', 'storage-checkpoint']).map((s) => s.id),
      [],
    );
    assert.deepEqual(
      failbackFor(drill, ['preflight', 'storage-checkpoint', 'fault']).map((s) => s.id),
      ['failback-primary'],
    );
    assert.equal(
      failbackFor(
        drill,
        drill.steps.map((s) => s.id),
      ).length,
      drill.failback.length,
    );
  });

  it('gives one health check and one DR name per NLB shard', () => {
    const domains = Array.from({ length: 9 }, (_, i) => ({
      name: `t${i}.example`,
      listeners: 'dedicated' as const,
    }));
    const plan = specWith({ domains });
    assert.ok(plan.nlbShards.length >= 2);
    const drill = buildAwsDrillPlan(plan);
    const inv = drill.steps.find((s) => s.id === 'dns-failover')!;
    assert.equal(inv.calls.length, plan.nlbShards.length);
    assert.deepEqual(drill.publicNames.slice(0, 2), ['mail.demo.example', 'mail-1.demo.example']);
  });

  it('fails when the platform has no DR region (single-region.yaml)', () => {
    assert.throws(
      () => buildAwsDrillPlan(planOf('examples/single-region.yaml')),
      (e: unknown) => isMailfleetError(e, 'PLAN_INVALID') && /no DR region: set regions\.dr/.test(e.message),
    );
  });

  it('fails when there is no DNS zone to switch', () => {
    assert.throws(() => buildAwsDrillPlan(specWith({ dns: undefined })), /needs dns/);
  });

  it('dry-run text shows each step with its aws CLI line and the fail-back', () => {
    const text = formatAwsDrillPlan(buildAwsDrillPlan(planOf('examples/primary-dr.yaml')));
    assert.match(text, /1\. \[preflight\]/);
    assert.match(
      text,
      /\$ aws fis start-experiment --region eu-west-1 --experiment-template-id <from stack output globex-mail-primary\.Drill2>/,
    );
    assert.match(text, /\$ aws route53 update-health-check .* --no-inverted/);
    assert.match(text, /probe imap-login mail\.globex\.example:143/);
  });

  it('mailfleet dr drill --aws --dry-run prints the plan; without a DR region it exits non-zero with the reason', () => {
    const ok = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/mailfleet.ts',
        'dr',
        'drill',
        '--aws',
        '--dry-run',
        '-c',
        'examples/primary-dr.yaml',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /DR drill \(AWS\) for globex-mail: eu-west-1 → eu-central-1/);
    assert.match(ok.stdout, /aws ssm send-command --region eu-west-1 --document-name AWS-RunShellScript/);
    const bad = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'bin/mailfleet.ts',
        'dr',
        'drill',
        '--aws',
        '--dry-run',
        '-c',
        'examples/single-region.yaml',
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /has no DR region/);
  });
});
