/** A small stack with an imported VPC and zone, the way a platform engineer composes the constructs. */
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { testApp } from '../stacks/helpers.js';

export const single = (): Plan => buildPlan(loadSpec('examples/single-region.yaml').spec);
export const primaryDr = (): Plan => buildPlan(loadSpec('examples/primary-dr.yaml').spec);

/** single-region.yaml with top-level fields replaced. */
export function variant(patch: Record<string, unknown>): Plan {
  return buildPlan(parseSpec(JSON.stringify({ ...loadSpec('examples/single-region.yaml').spec, ...patch }), 'variant.yaml'));
}

export function fixture() {
  const app = testApp({}, false);
  const stack = new Stack(app, 'Test', { env: { account: '111111111111', region: 'eu-west-1' } });
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Existing', {
    vpcId: 'vpc-0a1b2c3d',
    vpcCidrBlock: '10.9.0.0/16',
    availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
    publicSubnetIds: ['subnet-pub1', 'subnet-pub2', 'subnet-pub3'],
    privateSubnetIds: ['subnet-prv1', 'subnet-prv2', 'subnet-prv3'],
    privateSubnetRouteTableIds: ['rtb-1', 'rtb-2', 'rtb-3'],
  });
  const zone = route53.HostedZone.fromHostedZoneAttributes(stack, 'Zone', { hostedZoneId: 'Z0PRIVATE', zoneName: 'acme-mail.internal' });
  return { app, stack, vpc, zone };
}
