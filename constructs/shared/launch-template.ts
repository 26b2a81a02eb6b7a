import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { nodeImage } from './node-image.js';

export interface NodeLaunchTemplateOptions {
  readonly instanceType: string;
  readonly role: iam.IRole;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly userData: string;
  readonly rootVolumeGiB: number;
  readonly machineImage?: ec2.IMachineImage;
}

/**
 * Launch template shared by every node kind: IMDSv2 only (hop limit 1), instance tags readable
 * through IMDS (the bootstrap reads its node index and LDAP role there), encrypted gp3 root volume,
 * detailed monitoring, and the rendered user data.
 */
export function nodeLaunchTemplate(scope: Construct, id: string, o: NodeLaunchTemplateOptions): ec2.LaunchTemplate {
  const userData = ec2.UserData.custom(o.userData);
  return new ec2.LaunchTemplate(scope, id, {
    instanceType: new ec2.InstanceType(o.instanceType),
    machineImage: o.machineImage ?? nodeImage(o.instanceType),
    role: o.role,
    securityGroup: o.securityGroup,
    userData,
    requireImdsv2: true,
    httpPutResponseHopLimit: 1,
    instanceMetadataTags: true,
    detailedMonitoring: true,
    blockDevices: [
      {
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs(o.rootVolumeGiB, { volumeType: ec2.EbsDeviceVolumeType.GP3, encrypted: true }),
      },
    ],
  });
}
