import * as ec2 from 'aws-cdk-lib/aws-ec2';

/** Graviton families (c7g, m7gd, t4g, …) run arm64 images. */
export function isArm(instanceType: string): boolean {
  return /^[a-z]+\d+g[a-z]*\./.test(instanceType);
}

/**
 * Amazon Linux 2023 resolved from its public SSM parameter at deploy time: no lookup at synth time, so
 * `cdk synth` runs offline without credentials, and nothing is cached in cdk.context.json.
 */
export function nodeImage(instanceType: string): ec2.IMachineImage {
  return ec2.MachineImage.latestAmazonLinux2023({
    cpuType: isArm(instanceType) ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
    cachedInContext: false,
  });
}
