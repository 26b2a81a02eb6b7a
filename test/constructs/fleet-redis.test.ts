/**
 * The Redis the daemons' fleet-wide limits need (issue 17): provisioned per region in every engine
 * (ElastiCache for Valkey, TLS in transit, encrypted at rest, AUTH token, reachable from the mail nodes
 * only), its endpoint in an SSM parameter, and the mail node's bootstrap turning both into the daemon's
 * redis.url.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import type { Stack } from 'aws-cdk-lib';
import { terraformJson } from '../../engines/terraform/index.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { redisEndpointParameter, secretNames } from '../../lib/render/node-layout.js';
import { addPlatformStacks } from '../../stacks/app.js';
import { testApp } from '../stacks/helpers.js';
import { primaryDr, single, variant } from './fixture.js';

type Res = Record<string, { Type: string; Properties: Record<string, unknown> }>;
const tmp = mkdtempSync(join(tmpdir(), 'mailfleet-redis-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('provisioned Redis in CDK', () => {
  let primary: Template;
  let dr: Template;
  before(() => {
    const app = testApp({}, false);
    const stacks = addPlatformStacks(app, primaryDr());
    primary = Template.fromStack(stacks.primary as Stack);
    dr = Template.fromStack(stacks.dr as Stack);
  });

  test('GIVEN spec redis WHEN synthesized THEN each region has a Valkey replication group with TLS, encryption at rest, Multi-AZ failover and the platform secret as AUTH token', () => {
    for (const [region, t] of [['primary', primary], ['dr', dr]] as const) {
      const groups = Object.values(t.findResources('AWS::ElastiCache::ReplicationGroup'));
      assert.equal(groups.length, 1, region);
      const p = groups[0]!.Properties as Record<string, unknown>;
      assert.equal(p.Engine, 'valkey');
      assert.equal(p.TransitEncryptionEnabled, true);
      assert.equal(p.AtRestEncryptionEnabled, true);
      assert.equal(p.MultiAZEnabled, true);
      assert.equal(p.AutomaticFailoverEnabled, true);
      assert.equal(p.NumCacheClusters, 2);
      assert.match(JSON.stringify(p.AuthToken), new RegExp(`resolve:secretsmanager:${secretNames(primaryDr()).redisAuth}:SecretString`));
      assert.equal(p.ReplicationGroupId, region === 'primary' ? 'globex-mail-redis' : 'globex-mail-dr-redis');
    }
  });

  test('only the mail nodes may connect, and the mail nodes are told the endpoint through the parameter their bootstrap reads', () => {
    const res = primary.toJSON().Resources as Res;
    const [groupId, group] = Object.entries(res).find(([, r]) => r.Type === 'AWS::ElastiCache::ReplicationGroup')!;
    const sgIds = (group.Properties.SecurityGroupIds as { 'Fn::GetAtt': [string, string] }[]).map((x) => x['Fn::GetAtt'][0]);
    assert.equal(sgIds.length, 1);
    const sg = res[sgIds[0]!]!;
    const inline = (sg.Properties.SecurityGroupIngress as unknown[] | undefined) ?? [];
    assert.deepEqual(inline, [], 'no inline ingress');
    const ingress = Object.values(res).filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && JSON.stringify(r.Properties.GroupId).includes(sgIds[0]!));
    assert.equal(ingress.length, 1);
    assert.equal(ingress[0]!.Properties.FromPort, 6379);
    const source = (ingress[0]!.Properties.SourceSecurityGroupId as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    assert.match(source, /^MailSg/, 'from the mail tier\'s group');
    const param = Object.values(res).find((r) => r.Type === 'AWS::SSM::Parameter' && r.Properties.Name === redisEndpointParameter(primaryDr()))!;
    assert.match(JSON.stringify(param.Properties.Value), new RegExp(`"${groupId}","PrimaryEndPoint.Address".*"${groupId}","PrimaryEndPoint.Port"`));
  });

  test('GIVEN redis provision external WHEN synthesized THEN nothing is provisioned and the nodes keep the spec\'s URL', () => {
    const plan = variant({ redis: { url: 'rediss://redis.corp.example:6380', provision: 'external' } });
    const app = testApp({}, false);
    const t = Template.fromStack(addPlatformStacks(app, plan).primary as Stack);
    t.resourceCountIs('AWS::ElastiCache::ReplicationGroup', 0);
    const mail = nodeFiles(plan, 'mail', 'primary').find((f) => f.path === 'bootstrap/mail.sh')!.content;
    assert.doesNotMatch(mail, /redis-endpoint|redis-auth/);
  });
});

describe('provisioned Redis in Terraform and Pulumi', () => {
  test('GIVEN spec redis WHEN synthesized THEN both engines create the same replication group per region, from the mail group only', async () => {
    const plan = primaryDr();
    const tf = terraformJson(plan) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    const groups = Object.values(tf.resource.aws_elasticache_replication_group ?? {});
    assert.deepEqual(groups.map((g) => g.replication_group_id).sort(), ['globex-mail-dr-redis', 'globex-mail-redis']);
    for (const g of groups) {
      assert.equal(g.engine, 'valkey');
      assert.equal(g.transit_encryption_enabled, true);
      assert.equal(g.at_rest_encryption_enabled, 'true');
      assert.equal(g.auth_token, '${var.redis_auth_token}');
    }
    const redisRules = Object.values(tf.resource.aws_vpc_security_group_ingress_rule ?? {}).filter((r) => String(r.security_group_id).includes('sg-redis'));
    assert.equal(redisRules.length, 2, 'one rule per region');
    for (const r of redisRules) assert.match(String(r.referenced_security_group_id), /sg-mail\.id/);
    const regs = await registrationsOf(plan);
    const pg = regs.filter((r) => r.type === 'aws:elasticache/replicationGroup:ReplicationGroup');
    assert.deepEqual(pg.map((g) => g.inputs.replicationGroupId).sort(), ['globex-mail-dr-redis', 'globex-mail-redis']);
    for (const g of pg) {
      assert.equal(g.inputs.transitEncryptionEnabled, true);
      assert.equal(g.inputs.atRestEncryptionEnabled, true);
      assert.ok(g.inputs.authToken, 'an AUTH token');
    }
  });
});

describe('the mail node bootstrap points the daemon at the provisioned Redis', () => {
  test('GIVEN the endpoint parameter and the AUTH secret WHEN mail.sh runs its Redis step THEN mailfleetd.json says rediss://:<token>@<endpoint>, readable by the daemon group only', () => {
    const plan = single();
    const files = nodeFiles(plan, 'mail', 'primary');
    const dir = mkdtempSync(join(tmp, 'node-'));
    writeFileSync(join(dir, 'common.sh'), files.find((f) => f.path === 'bootstrap/common.sh')!.content);
    const config = join(dir, 'mailfleetd.json');
    writeFileSync(config, files.find((f) => f.path === 'mailfleetd.json')!.content);
    const mail = files.find((f) => f.path === 'bootstrap/mail.sh')!.content;
    const block = /# >>> fleet redis[^\n]*\n[\s\S]*?# <<< fleet redis\n/.exec(mail)?.[0];
    assert.ok(block, 'mail.sh has the Redis step');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const endpoint = 'master.globex-redis.abc123.euw1.cache.amazonaws.com:6379';
    const token = 'Tok3nWithLettersAndDigits0123456';
    writeFileSync(join(bin, 'curl'), '#!/bin/sh\necho stub\n', { mode: 0o755 });
    writeFileSync(
      join(bin, 'aws'),
      `#!/bin/sh\ncase "$*" in *"--name ${redisEndpointParameter(plan)} "*) echo ${endpoint} ;; *"--secret-id ${secretNames(plan).redisAuth} "*) echo ${token} ;; *) echo "unexpected: $*" >&2; exit 1 ;; esac\n`,
      { mode: 0o755 },
    );
    // chgrp needs the node's mailfleet group: a stub here (the fleet harness runs the real one).
    writeFileSync(join(bin, 'chgrp'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const script = block.replaceAll('/etc/mailfleet/mailfleetd.json', config);
    const r = spawnSync('bash', ['-c', `set -euo pipefail\n. ${dir}/common.sh\n${script}`], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
    assert.equal(r.status, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(config, 'utf8')) as { redis: { url: string; leaseSeconds: number } };
    const url = new URL(cfg.redis.url);
    assert.equal(url.protocol, 'rediss:');
    assert.equal(`${url.hostname}:${url.port}`, endpoint);
    assert.equal(decodeURIComponent(url.password), token);
    assert.equal(cfg.redis.leaseSeconds, plan.spec.redis!.leaseSeconds, 'the rest of the config is kept');
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(token), 'the token is never printed');
    assert.equal(statSync(config).mode & 0o777, 0o640);
  });
});
