import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { debianAmiParameter } from '../../lib/render/node-layout.js';

/** Graviton families (c7g, m7gd, t4g, …) run arm64 images. */
export function isArm(instanceType: string): boolean {
  return /^[a-z]+\d+g[a-z]*\./.test(instanceType);
}

/**
 * Debian 12 (the OS the tests and the fleet harness run) resolved at deploy time from the Debian project's
 * public SSM parameter: no lookup at synth time, so `cdk synth` runs offline without credentials, and
 * nothing is cached in cdk.context.json.
 */
export function nodeImage(instanceType: string): ec2.IMachineImage {
  return ec2.MachineImage.fromSsmParameter(debianAmiParameter(instanceType));
}
