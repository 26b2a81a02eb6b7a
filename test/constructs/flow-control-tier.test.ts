import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { FlowControlTier, listenerPortRules } from '../../constructs/flow-control-tier/index.js';
import { NLB_MAX_LISTENERS } from '../../lib/plan/index.js';
import { cleanupApps, tenantsPlan } from '../stacks/helpers.js';
import { fixture, single } from './fixture.js';
import { proxyMetricProducer, type CfnAlarm } from '../render/metric-producers.js';

after(cleanupApps);

describe('FlowControlTier', () => {
  test('GIVEN the single-region plan WHEN composed THEN one NLB with a TCP listener per tenant x protocol, PROXY v2 target groups and explicit cross-zone', () => {
    const plan = single();
    const { stack, vpc } = fixture();
    const tier = new FlowControlTier(stack, 'Edge', { plan, vpc });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internet-facing',
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'load_balancing.cross_zone.enabled', Value: 'true' }]),
    });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', plan.listeners.length);
    for (const l of plan.listeners) t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: l.publicPort, Protocol: 'TCP' });
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', plan.listeners.length);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 993,
      Protocol: 'TCP',
      TargetType: 'instance',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: '8404',
      HealthCheckPath: '/healthz',
      TargetGroupAttributes: Match.arrayWith([{ Key: 'proxy_protocol_v2.enabled', Value: 'true' }]),
    });
    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: String(plan.sizing.proxyNodes.min),
      MaxSize: String(plan.sizing.proxyNodes.max),
      TargetGroupARNs: Match.anyValue(),
      HealthCheckType: 'ELB',
    });
    assert.equal(tier.listeners.size, plan.listeners.length);
    assert.equal(tier.autoScalingGroups.length, 1);
  });

  test('THEN every listener has a saturation alarm at 80% of its cap times the shard minimum, on the per-listener metric the proxy nodes publish (read from the rendered agent config and haproxy.cfg)', () => {
    const plan = single();
    const { stack, vpc } = fixture();
    new FlowControlTier(stack, 'Edge', { plan, vpc });
    const alarms = Object.values(Template.fromStack(stack).findResources('AWS::CloudWatch::Alarm')).map((r) => r.Properties as CfnAlarm);
    assert.equal(alarms.length, plan.listeners.length);
    const producer = proxyMetricProducer(plan);
    for (const l of plan.listeners) {
      const a = alarms.find((x) => x.Dimensions.some((d) => d.Value === l.name));
      assert.ok(a, `no alarm names listener ${l.name}`);
      assert.equal(a.Namespace, producer.namespace);
      assert.ok(producer.selectors.some((re) => re.test(a.MetricName)), `${a.MetricName} is not a metric the agent publishes (${producer.selectors.join(', ')})`);
      assert.deepEqual(a.Dimensions.map((d) => d.Name).sort(), [...producer.dimensions].sort());
      assert.ok(producer.frontends.includes(String(a.Dimensions[0]!.Value)), `${a.Dimensions[0]!.Value} is no frontend of the rendered haproxy.cfg`);
      // Every node sends one sample a minute: the one-minute Sum is the total over the nodes.
      assert.equal(a.Statistic, 'Sum');
      assert.equal(a.Period, 60);
      assert.equal(a.Threshold, Math.floor(0.8 * l.limits.listenerConnections * plan.sizing.proxyNodes.min));
      assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    }
  });

  test('THEN HAProxy nodes boot with IMDSv2 only, instance tags in IMDS, an encrypted gp3 root and the proxy user data', () => {
    const { stack, vpc } = fixture();
    new FlowControlTier(stack, 'Edge', { plan: single(), vpc });
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' },
        BlockDeviceMappings: [Match.objectLike({ Ebs: Match.objectLike({ Encrypted: true, VolumeType: 'gp3' }) })],
        UserData: Match.anyValue(),
      }),
    });
  });

  test('THEN listener ports are open to clients, and nothing else but the health port from the VPC', () => {
    const { stack, vpc } = fixture();
    new FlowControlTier(stack, 'Edge', { plan: single(), vpc });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: Match.arrayWith([
        Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 25, ToPort: 25, IpProtocol: 'tcp' }),
        Match.objectLike({ CidrIp: '10.9.0.0/16', FromPort: 8404, ToPort: 8404 }),
      ]),
    });
    const groups = t.findResources('AWS::EC2::SecurityGroup');
    const ingress = Object.values(groups).flatMap((g) => (g.Properties.SecurityGroupIngress ?? []) as { FromPort: number }[]);
    assert.ok(!ingress.some((r) => r.FromPort === 22), 'no SSH');
  });

  test('GIVEN cross-zone off WHEN composed THEN the attribute says false', () => {
    const { stack, vpc } = fixture();
    new FlowControlTier(stack, 'Edge', { plan: single(), vpc, crossZoneEnabled: false });
    Template.fromStack(stack).hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'load_balancing.cross_zone.enabled', Value: 'false' }]),
    });
  });

  test('GIVEN 60 dedicated tenants WHEN composed THEN each NLB shard is a nested stack with at most 50 listeners and its own HAProxy group', () => {
    const plan = tenantsPlan(60);
    const { stack, vpc } = fixture();
    const tier = new FlowControlTier(stack, 'Edge', { plan, vpc });
    assert.ok(plan.nlbShards.length > 1);
    Template.fromStack(stack).resourceCountIs('AWS::CloudFormation::Stack', plan.nlbShards.length);
    let listeners = 0;
    for (const shard of tier.shards) {
      const nested = Template.fromStack(shard.scope as never);
      const n = Object.keys(nested.findResources('AWS::ElasticLoadBalancingV2::Listener')).length;
      assert.ok(n <= NLB_MAX_LISTENERS, `shard ${shard.index}: ${n} listeners`);
      nested.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
      nested.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
      listeners += n;
    }
    assert.equal(listeners, plan.listeners.length);
  });

  test('listener port rules stay within the 60-rule group quota at 500 tenants', () => {
    const rules = listenerPortRules(tenantsPlan(500).listeners.map((l) => l.publicPort));
    assert.ok(rules.length <= 60, `${rules.length} rules`);
    assert.deepEqual(rules.find((r) => r.from >= 20000), { from: 20001, to: 24996 });
  });

  test('GIVEN minNodesPerShard over maxNodesPerShard and a saturation ratio outside (0, 1] WHEN synthesized THEN both are reported under the construct path', () => {
    const { stack, vpc } = fixture();
    new FlowControlTier(stack, 'Edge', { plan: single(), vpc, minNodesPerShard: 5, maxNodesPerShard: 2, saturationRatio: 0 });
    assert.throws(
      () => Template.fromStack(stack),
      (e: Error) => /\[Test\/Edge\] FlowControlTier: minNodesPerShard 5 exceeds maxNodesPerShard 2/.test(e.message) && /saturationRatio must be in \(0, 1\], got 0/.test(e.message),
    );
  });

  test('GIVEN the tier WHEN composed THEN it is IConnectable: the mail fleet opens its daemon ports to it directly', () => {
    const { stack, vpc } = fixture();
    const edge = new FlowControlTier(stack, 'Edge', { plan: single(), vpc });
    assert.equal(edge.connections, edge.securityGroup.connections);
    const db = new ec2.SecurityGroup(stack, 'Db', { vpc });
    db.connections.allowFrom(edge, ec2.Port.tcp(5432));
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 5432, SourceSecurityGroupId: Match.anyValue() });
  });
});
