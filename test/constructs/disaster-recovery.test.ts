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
  const regionZone = new route53.PrivateHostedZone(f.stack, 'RegionZone', { zoneName: 'primary.globex-mail.internal', vpc: f.vpc });
  return { ...f, nlb, regionZone };
}

describe('DisasterRecovery', () => {
  test('GIVEN the primary side THEN a TCP health check per NLB drives a PRIMARY failover record, and FIS drills exist', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [25], regionZone, peerCidr: '10.41.0.0/16' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Route53::HealthCheck', { HealthCheckConfig: Match.objectLike({ Type: 'TCP', Port: 25, RequestInterval: 10 }) });
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
      healthCheckPorts: [25],
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

  test('fails when health-check ports do not match the load balancers', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    assert.throws(() => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [], regionZone, peerCidr: '10.41.0.0/16' }), /same length/);
  });

  test('fails when the peer CIDR is missing', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    assert.throws(() => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [25], regionZone }), /peerCidr is required/);
  });
});
