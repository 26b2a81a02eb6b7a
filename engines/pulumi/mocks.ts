/**
 * Runs the Pulumi program in-process under `pulumi.runtime.setMocks` and records every resource
 * registration: the unit tests and `mailfleet synth --engine pulumi` (no Pulumi CLI needed) both use it.
 */
import * as pulumi from '@pulumi/pulumi';
import type { Plan } from '../../lib/plan/types.js';
import { buildPlatform } from './platform.js';

export interface Registration {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  /** Inputs after Pulumi resolved them (references to other resources become their mock ids/state). */
  readonly inputs: Record<string, unknown>;
  /** Provider reference "<urn>::<id>", when the resource names one. */
  readonly provider?: string;
}

/** Output state the program reads back from resources (ARNs, DNS names) and from data sources. */
function mockState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const extra: Record<string, unknown> = { arn: `arn:aws:mock:::${type}/${name}` };
  if (type === 'aws:lb/loadBalancer:LoadBalancer') Object.assign(extra, { dnsName: `${name}.elb.mock`, zoneId: 'ZMOCKNLB', arnSuffix: `net/${name}/mock` });
  // CloudWatch dimensions name load balancers and target groups by their ARN suffix.
  if (type === 'aws:lb/targetGroup:TargetGroup') extra.arnSuffix = `targetgroup/${name}/mock`;
  if (type === 'aws:ec2/eip:Eip') extra.allocationId = `eipalloc-${name}`;
  if (type === 'aws:route53/zone:Zone') extra.zoneId = `ZMOCK-${name}`;
  // An instance's address names the instance, so a record's target can be traced back to its node.
  if (type === 'aws:ec2/instance:Instance') extra.privateIp = `${name}-ip`;
  // S3 ARNs have no region or account: the bucket's name is the whole ARN, as on AWS.
  if (type === 'aws:s3/bucket:Bucket') Object.assign(extra, { arn: `arn:aws:s3:::${name}`, bucket: name });
  // KMS key ARNs as AWS spells them (the parity extractor reads their kind).
  if (type === 'aws:kms/key:Key') extra.arn = `arn:aws:kms:mock:000000000000:key/${name}`;
  // A Managed AD answers with its two domain controllers' addresses (the Resolver forward rule's targets).
  if (type === 'aws:directoryservice/directory:Directory') extra.dnsIpAddresses = ['10.0.8.10', '10.0.9.10'];
  return { ...inputs, ...extra };
}

export function recordingMocks(): { mocks: pulumi.runtime.Mocks; registrations: Registration[] } {
  const registrations: Registration[] = [];
  const mocks: pulumi.runtime.Mocks = {
    newResource(args) {
      const id = `${args.name}-id`;
      registrations.push({ type: args.type, name: args.name, id, inputs: args.inputs as Record<string, unknown>, provider: args.provider });
      return { id, state: mockState(args.type, args.name, args.inputs as Record<string, unknown>) };
    },
    call(args) {
      if (args.token === 'aws:ssm/getParameter:getParameter') return { ...args.inputs, value: 'ami-0mock0000000000000' };
      if (args.token === 'aws:route53/getZone:getZone') return { ...args.inputs, zoneId: 'ZMOCKZONE' };
      return args.inputs as Record<string, unknown>;
    },
  };
  return { mocks, registrations };
}

const settled = (o: pulumi.Output<unknown>) => new Promise<void>((resolve) => o.apply(() => resolve()));

/** Builds the plan's platform under mocks and returns every registration once all are done. */
export async function registrationsOf(plan: Plan, opts: { managedAdPassword?: string } = {}): Promise<Registration[]> {
  const { mocks, registrations } = recordingMocks();
  await pulumi.runtime.setMocks(mocks, 'mailfleet', plan.platform, false);
  const platform = buildPlatform(plan, { managedAdPassword: opts.managedAdPassword ?? 'mock-password-only-for-tests' });
  await Promise.all([platform, ...platform.resources].map((r) => settled(r.urn)));
  return registrations;
}
