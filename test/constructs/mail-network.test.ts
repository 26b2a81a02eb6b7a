import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { MailNetwork, NODE_INTERFACE_ENDPOINTS } from '../../constructs/mail-network/index.js';
import { cleanupApps, testApp } from '../stacks/helpers.js';
import { fixture } from './fixture.js';

after(cleanupApps);
const env = { account: '111111111111', region: 'eu-west-1' };
const azs = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'];

describe('MailNetwork', () => {
  test('GIVEN three AZs WHEN a new network is made THEN subnets span them, flow logs and endpoints exist', () => {
    const stack = new Stack(testApp({}, false), 'N', { env });
    new MailNetwork(stack, 'Net', { availabilityZones: azs, cidr: '10.50.0.0/16', privateZoneName: 'x.internal' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.50.0.0/16' });
    t.resourceCountIs('AWS::EC2::Subnet', 6);
    for (const az of azs) t.hasResourceProperties('AWS::EC2::Subnet', { AvailabilityZone: az, MapPublicIpOnLaunch: false });
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway', ServiceName: Match.objectLike({}) });
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 1 + NODE_INTERFACE_ENDPOINTS.length);
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true });
    t.hasResourceProperties('AWS::Route53::HostedZone', { Name: 'x.internal.' });
    t.resourceCountIs('AWS::EC2::NatGateway', 3);
  });

  test('GIVEN an existing VPC WHEN composed into it THEN no VPC or endpoints are created, the flow log watches that VPC', () => {
    const { stack, vpc } = fixture();
    const net = new MailNetwork(stack, 'Net', { vpc });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::VPC', 0);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceId: 'vpc-0a1b2c3d' });
    assert.equal(net.vpc, vpc);
  });

  test('fails when both vpc and cidr are given', () => {
    const { stack, vpc } = fixture();
    new MailNetwork(stack, 'Net', { vpc, cidr: '10.0.0.0/16' });
    assert.throws(() => Template.fromStack(stack), /\/Net\] MailNetwork: give either vpc or cidr, not both/);
  });

  test('fails when a new VPC would span fewer than 3 availability zones', () => {
    const stack = new Stack(testApp({}, false), 'N', { env });
    new MailNetwork(stack, 'Net', { availabilityZones: azs.slice(0, 2) });
    assert.throws(() => Template.fromStack(stack), /MailNetwork: a new VPC needs availabilityZones with at least 3 zones, got 2/);
  });
});
