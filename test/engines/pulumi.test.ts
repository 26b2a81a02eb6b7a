import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapText } from '../../engines/bootstrap.js';
import { pulumiInventory } from '../../engines/extract/pulumi.js';
import { diffFromPlan, sha256 } from '../../engines/inventory.js';
import { registrationsOf, type Registration } from '../../engines/pulumi/mocks.js';
import { buildPlatform } from '../../engines/pulumi/platform.js';
import { EXAMPLES, examplePlan, type Example } from './helpers.js';

const byType = (regs: readonly Registration[], type: string) => regs.filter((r) => r.type === type);
const b64 = (s: unknown) => Buffer.from(String(s), 'base64').toString('utf8');

describe('pulumi engine (setMocks)', () => {
  const regs = new Map<Example, Registration[]>();
  before(async () => {
    // setMocks is process-wide: build the examples one after the other.
    for (const e of EXAMPLES) regs.set(e, await registrationsOf(examplePlan(e)));
  });

  for (const e of EXAMPLES) {
    it(`${e}: resource kinds and counts match the plan's inventory`, () => {
      const plan = examplePlan(e);
      assert.deepEqual(diffFromPlan(plan, pulumiInventory(regs.get(e)!), 'pulumi'), []);
    });
  }

  it('opens one TCP listener per plan listener with a PROXY v2 target group on the same port', () => {
    const plan = examplePlan('single-region');
    const r = regs.get('single-region')!;
    const listeners = byType(r, 'aws:lb/listener:Listener');
    assert.deepEqual(
      listeners.map((l) => l.inputs.port).sort((a, b) => Number(a) - Number(b)),
      plan.listeners.map((l) => l.publicPort).sort((a, b) => a - b),
    );
    assert.ok(listeners.every((l) => l.inputs.protocol === 'TCP'));
    const tgs = byType(r, 'aws:lb/targetGroup:TargetGroup');
    assert.equal(tgs.length, plan.listeners.length);
    assert.ok(tgs.every((t) => t.inputs.proxyProtocolV2 === true));
  });

  it('sizes both Auto Scaling groups from the plan and attaches the proxy tier to every target group', () => {
    const plan = examplePlan('single-region');
    const asgs = byType(regs.get('single-region')!, 'aws:autoscaling/group:Group');
    const proxy = asgs.find((a) => a.inputs.name === 'acme-mail-proxy')!;
    const mail = asgs.find((a) => a.inputs.name === 'acme-mail-mail')!;
    const size = (a: Registration) => [a.inputs.minSize, a.inputs.maxSize, a.inputs.desiredCapacity];
    assert.deepEqual(size(proxy), [plan.sizing.proxyNodes.min, plan.sizing.proxyNodes.max, plan.sizing.proxyNodes.desired]);
    assert.deepEqual(size(mail), [plan.sizing.mailNodes.min, plan.sizing.mailNodes.max, plan.sizing.mailNodes.desired]);
    assert.equal((proxy.inputs.targetGroupArns as string[]).length, plan.listeners.length);
    assert.equal(mail.inputs.targetGroupArns, undefined);
  });

  it('boots every role with the hash of the rendered bootstrap text', () => {
    const plan = examplePlan('single-region');
    const r = regs.get('single-region')!;
    for (const role of ['proxy', 'mail'] as const) {
      const lt = byType(r, 'aws:ec2/launchTemplate:LaunchTemplate').find((l) => l.inputs.name === `acme-mail-${role}`)!;
      assert.equal(sha256(b64(lt.inputs.userData)), sha256(bootstrapText(plan, role, 'primary')), role);
    }
    // Storage and LDAP nodes boot from their kind's launch template (no user data of their own).
    const instances = byType(r, 'aws:ec2/instance:Instance');
    for (const role of ['storage', 'ldap'] as const) {
      const lt = byType(r, 'aws:ec2/launchTemplate:LaunchTemplate').find((l) => l.inputs.name === `acme-mail-${role}`)!;
      assert.equal(sha256(b64(lt.inputs.userData)), sha256(bootstrapText(plan, role, 'primary')), role);
      const of = instances.filter((i) => (i.inputs.tags as Record<string, string>)['mailfleet:role'] === role);
      assert.ok(of.length > 0, role);
      for (const i of of) {
        assert.equal(i.inputs.userDataBase64, undefined, role);
        assert.equal((i.inputs.launchTemplate as { id: string }).id, lt.id, role);
      }
    }
  });

  it('in DR: health check on the primary NLB and a PRIMARY/SECONDARY failover pair; DR compute at pilot light', () => {
    const r = regs.get('primary-dr')!;
    const [hc, ...more] = byType(r, 'aws:route53/healthCheck:HealthCheck');
    assert.equal(more.length, 0);
    // The service, not a TCP accept: an alarm on the shard's healthy HAProxy targets.
    assert.equal(hc!.inputs.type, 'CLOUDWATCH_METRIC');
    assert.equal(hc!.inputs.insufficientDataHealthStatus, 'LastKnownStatus');
    assert.equal(hc!.inputs.cloudwatchAlarmRegion, 'eu-west-1');
    const alarm = byType(r, 'aws:cloudwatch/metricAlarm:MetricAlarm').find((a) => a.inputs.name === hc!.inputs.cloudwatchAlarmName);
    assert.ok(alarm, 'the health check names an alarm of the program');
    assert.equal(alarm.inputs.namespace, 'AWS/NetworkELB');
    assert.equal(alarm.inputs.metricName, 'HealthyHostCount');
    assert.equal(alarm.inputs.comparisonOperator, 'LessThanThreshold');
    assert.deepEqual(Object.keys(alarm.inputs.dimensions as object).sort(), ['LoadBalancer', 'TargetGroup']);
    const records = byType(r, 'aws:route53/record:Record');
    const policy = (x: Registration) => (x.inputs.failoverRoutingPolicies as { type: string }[] | undefined)?.[0]?.type;
    const primary = records.find((x) => policy(x) === 'PRIMARY')!;
    const secondary = records.find((x) => policy(x) === 'SECONDARY')!;
    assert.equal(primary.inputs.healthCheckId, hc!.id);
    assert.equal((primary.inputs.aliases as { name: string }[])[0]!.name, 'globex-mail-nlb-0.elb.mock');
    assert.equal((secondary.inputs.aliases as { name: string }[])[0]!.name, 'globex-mail-dr-nlb-0.elb.mock');
    const drAsgs = byType(r, 'aws:autoscaling/group:Group').filter((a) => String(a.inputs.name).startsWith('globex-mail-dr-'));
    assert.deepEqual(drAsgs.map((a) => [a.inputs.minSize, a.inputs.desiredCapacity]), [[0, 0], [0, 0]]);
    const providers = byType(r, 'pulumi:providers:aws').map((p) => [p.name, p.inputs.region]);
    assert.deepEqual(providers, [['primary', 'eu-west-1'], ['dr', 'eu-central-1']]);
    const ad = byType(r, 'aws:directoryservice/directory:Directory');
    assert.deepEqual(ad.map((d) => [d.inputs.type, d.inputs.name]), [['MicrosoftAD', 'globex.example']]);
  });

  it('in DR: the regions are linked (DR-requested peering accepted by the primary, routes both ways, region zones on the other VPC)', () => {
    const r = regs.get('primary-dr')!;
    const [peering, ...more] = byType(r, 'aws:ec2/vpcPeeringConnection:VpcPeeringConnection');
    assert.equal(more.length, 0);
    assert.equal(peering!.inputs.vpcId, 'globex-mail-dr-vpc-id');
    assert.equal(peering!.inputs.peerVpcId, 'globex-mail-vpc-id');
    assert.equal(peering!.inputs.peerRegion, 'eu-west-1');
    assert.match(String(peering!.provider), /::dr::/);
    const [accept] = byType(r, 'aws:ec2/vpcPeeringConnectionAccepter:VpcPeeringConnectionAccepter');
    assert.equal(accept!.inputs.vpcPeeringConnectionId, peering!.id);
    assert.match(String(accept!.provider), /::primary::/);
    const peerRoutes = byType(r, 'aws:ec2/route:Route').filter((x) => x.inputs.vpcPeeringConnectionId !== undefined);
    assert.deepEqual(peerRoutes.map((x) => [x.inputs.routeTableId, x.inputs.destinationCidrBlock, x.inputs.vpcPeeringConnectionId]).sort(), [
      ['globex-mail-dr-private-id', '10.40.0.0/16', accept!.id],
      ['globex-mail-private-id', '10.41.0.0/16', accept!.id],
    ]);
    const assoc = byType(r, 'aws:route53/zoneAssociation:ZoneAssociation').map((x) => [x.inputs.zoneId, x.inputs.vpcId]).sort();
    assert.deepEqual(assoc, [
      ['ZMOCK-globex-mail-dr-zone-region', 'globex-mail-vpc-id'],
      ['ZMOCK-globex-mail-zone-region', 'globex-mail-dr-vpc-id'],
    ]);
    assert.equal(byType(regs.get('single-region')!, 'aws:ec2/vpcPeeringConnection:VpcPeeringConnection').length, 0, 'no link without DR');
  });

  it('fails when the spec asks for managed-ad and no admin password is given', () => {
    assert.throws(() => buildPlatform(examplePlan('primary-dr')), /managedAdPassword/);
  });
});
