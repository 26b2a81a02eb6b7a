import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { DisasterRecovery, FIS_DRILLS } from '../../constructs/disaster-recovery/index.js';
import { cleanupApps } from '../stacks/helpers.js';
import { fixture, primaryDr } from './fixture.js';

after(cleanupApps);

function setup() {
  const f = fixture();
  const nlb = new elbv2.NetworkLoadBalancer(f.stack, 'Nlb', { vpc: f.vpc, internetFacing: true });
  const tg = new elbv2.NetworkTargetGroup(f.stack, 'Tg', { vpc: f.vpc, port: 25, protocol: elbv2.Protocol.TCP, targetType: elbv2.TargetType.INSTANCE });
  nlb.addListener('L25', { port: 25, defaultTargetGroups: [tg] });
  const regionZone = new route53.PrivateHostedZone(f.stack, 'RegionZone', { zoneName: 'primary.globex-mail.internal', vpc: f.vpc });
  const healthTargets = [{ loadBalancerFullName: nlb.loadBalancerFullName, targetGroupFullName: tg.targetGroupFullName }];
  return { ...f, nlb, tg, regionZone, healthTargets };
}

describe('DisasterRecovery', () => {
  test('GIVEN the primary side THEN a health check per NLB follows the alarm on its target group\'s healthy HAProxy targets (the service, not a TCP accept), drives a PRIMARY failover record, and FIS drills exist', () => {
    const { stack, vpc, nlb, regionZone, healthTargets } = setup();
    new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthTargets, regionZone, peerCidr: '10.41.0.0/16' });
    const t = Template.fromStack(stack);
    const checks = Object.values(t.findResources('AWS::Route53::HealthCheck'));
    assert.equal(checks.length, 1);
    const cfg = checks[0]!.Properties.HealthCheckConfig as { Type: string; AlarmIdentifier: { Name: unknown; Region: string }; InsufficientDataHealthStatus: string };
    assert.equal(cfg.Type, 'CLOUDWATCH_METRIC');
    assert.equal(cfg.InsufficientDataHealthStatus, 'LastKnownStatus');
    assert.equal(cfg.AlarmIdentifier.Region, 'eu-west-1');
    // The identifier names the alarm the construct made, and that alarm watches the target group.
    const alarms = t.findResources('AWS::CloudWatch::Alarm');
    const ref = (cfg.AlarmIdentifier.Name as { Ref: string }).Ref;
    const alarm = alarms[ref]!.Properties as Record<string, unknown>;
    assert.equal(alarm.Namespace, 'AWS/NetworkELB');
    assert.equal(alarm.MetricName, 'HealthyHostCount');
    assert.equal(alarm.Statistic, 'Minimum');
    assert.equal(alarm.ComparisonOperator, 'LessThanThreshold');
    assert.equal(alarm.Threshold, 1);
    assert.equal(alarm.TreatMissingData, 'breaching');
    assert.deepEqual((alarm.Dimensions as { Name: string }[]).map((d) => d.Name).sort(), ['LoadBalancer', 'TargetGroup']);
    t.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'mail.globex.example.',
      Failover: 'PRIMARY',
      HostedZoneId: 'Z9876543210ZYXWVUTSRQ',
      HealthCheckId: Match.anyValue(),
      AliasTarget: Match.objectLike({ EvaluateTargetHealth: false }),
    });
    t.resourceCountIs('AWS::FIS::ExperimentTemplate', FIS_DRILLS.length);
    t.hasResourceProperties('AWS::FIS::ExperimentTemplate', {
      Targets: { nodes: Match.objectLike({ ResourceType: 'aws:ec2:instance', ResourceTags: Match.objectLike({ 'mailfleet:role': 'storage' }) }) },
      StopConditions: [{ Source: 'none' }],
    });
  });

  test('GIVEN the standby side THEN SECONDARY records, a peering to the VPC the primary publishes, routes and a zone association (no context)', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    new DisasterRecovery(stack, 'Dr', {
      plan: primaryDr(),
      vpc,
      standby: true,
      loadBalancers: [nlb],
      regionZone,
      peerCidr: '10.40.0.0/16',
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Route53::RecordSet', { Failover: 'SECONDARY', HealthCheckId: Match.absent() });
    t.resourceCountIs('AWS::Route53::HealthCheck', 0);
    t.resourceCountIs('AWS::FIS::ExperimentTemplate', 0);
    const primaryVpc = { 'Fn::GetAtt': [Match.stringLikeRegexp('^DrLinkFacts'), 'VpcId'] };
    t.hasResourceProperties('AWS::EC2::VPCPeeringConnection', { PeerVpcId: primaryVpc, PeerRegion: 'eu-west-1' });
    t.resourceCountIs('AWS::EC2::Route', 3);
    t.hasResourceProperties('AWS::Route53::HostedZone', { VPCs: Match.arrayWith([{ VPCId: primaryVpc, VPCRegion: 'eu-west-1' }]) });
    t.hasResourceProperties('Custom::MailfleetRegionLink', { Region: 'eu-west-1', RouteTableIds: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DrLinkFacts'), 'RouteTableIds'] } });
  });

  test('fails when health targets do not match the load balancers', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    assert.throws(() => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthTargets: [], regionZone, peerCidr: '10.41.0.0/16' }), /same length/);
  });

  test('fails when the peer CIDR is missing', () => {
    const { stack, vpc, nlb, regionZone, healthTargets } = setup();
    assert.throws(() => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthTargets, regionZone }), /peerCidr is required/);
  });
});
