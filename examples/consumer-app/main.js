// A CDK app of your own that installs mailfleet by its published name and composes two mail platform
// instances (each a MailServerFleet behind a FlowControlTier) into one stack and an existing VPC.
// Synthesize with `npx cdk synth` here (cdk.json runs `node main.js`). test/package/pack.test.ts packs
// mailfleet, installs it into a copy of this folder and synthesizes it with plain node.
import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { FlowControlTier, MailServerFleet } from 'mailfleet';
import { buildPlan } from 'mailfleet/plan';
import { loadSpec } from 'mailfleet/spec';

const app = new App();
const plan = buildPlan(loadSpec('mailfleet.yaml').spec);
const stack = new Stack(app, 'Mail', { env: { account: '111111111111', region: 'eu-west-1' } });
// Import, never look up: synth stays offline.
const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  vpcCidrBlock: '10.9.0.0/16',
  availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
  publicSubnetIds: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002', 'subnet-0a1b2c3d4e5f60003'],
  privateSubnetIds: ['subnet-0a1b2c3d4e5f60011', 'subnet-0a1b2c3d4e5f60012', 'subnet-0a1b2c3d4e5f60013'],
});
const zone = route53.PrivateHostedZone.fromHostedZoneAttributes(stack, 'Zone', {
  hostedZoneId: 'Z0123456789PRIVATE',
  zoneName: `${plan.platform}.internal`,
});
// One plan, two instances: namePrefix keeps their SSM parameters, secrets, log groups and DNS names apart.
for (const namePrefix of ['mail/blue', 'mail/green']) {
  const id = namePrefix.split('/')[1];
  const fleet = new MailServerFleet(stack, `Fleet-${id}`, { plan, vpc, privateZone: zone, namePrefix });
  const edge = new FlowControlTier(stack, `Edge-${id}`, { plan, vpc, namePrefix, crossZoneEnabled: true });
  fleet.allowProxyFrom(edge); // the tier is IConnectable
  // Parts are public: edge.loadBalancers, edge.listeners.get('default-imaps'), fleet.autoScalingGroup …
}
