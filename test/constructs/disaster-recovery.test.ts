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
    new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [25], regionZone });
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

  test('GIVEN the standby side with the primary VPC known THEN SECONDARY records, a peering request, routes and a zone association', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    new DisasterRecovery(stack, 'Dr', {
      plan: primaryDr(),
      vpc,
      standby: true,
      loadBalancers: [nlb],
      healthCheckPorts: [25],
      regionZone,
      peerVpcId: 'vpc-primary',
      peerCidr: '10.40.0.0/16',
      peerRegion: 'eu-west-1',
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Route53::RecordSet', { Failover: 'SECONDARY', HealthCheckId: Match.absent() });
    t.resourceCountIs('AWS::Route53::HealthCheck', 0);
    t.resourceCountIs('AWS::FIS::ExperimentTemplate', 0);
    t.hasResourceProperties('AWS::EC2::VPCPeeringConnection', { PeerVpcId: 'vpc-primary', PeerRegion: 'eu-west-1' });
    t.resourceCountIs('AWS::EC2::Route', 3);
    t.hasResourceProperties('AWS::Route53::HostedZone', { VPCs: Match.arrayWith([{ VPCId: 'vpc-primary', VPCRegion: 'eu-west-1' }]) });
  });

  test('fails when health-check ports do not match the load balancers', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    assert.throws(() => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [], regionZone }), /same length/);
  });

  test('fails when a peer VPC comes without its CIDR', () => {
    const { stack, vpc, nlb, regionZone } = setup();
    assert.throws(
      () => new DisasterRecovery(stack, 'Dr', { plan: primaryDr(), vpc, loadBalancers: [nlb], healthCheckPorts: [25], regionZone, peerVpcId: 'vpc-1', peerRegion: 'eu-west-1' }),
      /needs peerCidr/,
    );
  });
});
