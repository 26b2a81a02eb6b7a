import { createHash } from 'node:crypto';
import { Tags } from 'aws-cdk-lib';
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
  /**
   * Hash of what the nodes fetch at boot (node files, daemon bundle): written as the instance tag
   * `mailfleet:content`, so new content is a new launch template version and the group's rolling
   * update replaces its nodes. Leave it off for stateful nodes (storage, LDAP): they must not be
   * replaced by a content change.
   * @default - none: the template changes only when its own settings do
   */
  readonly contentHash?: string;
}

/** Instance tag carrying the boot content hash (NodeLaunchTemplateOptions.contentHash). */
export const CONTENT_TAG = 'mailfleet:content';

/** One short hash of several asset hashes (node files, daemon bundle). */
export function contentHash(...assetHashes: string[]): string {
  return createHash('sha256').update(assetHashes.join('\n')).digest('hex').slice(0, 16);
}

/**
 * Launch template shared by every node kind: IMDSv2 only (hop limit 1), instance tags readable
 * through IMDS (the bootstrap reads its node index and LDAP role there), encrypted gp3 root volume,
 * detailed monitoring, and the rendered user data.
 */
export function nodeLaunchTemplate(scope: Construct, id: string, o: NodeLaunchTemplateOptions): ec2.LaunchTemplate {
  const userData = ec2.UserData.custom(o.userData);
  const lt = new ec2.LaunchTemplate(scope, id, {
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
  // Tags of a launch template land in its data's instance and volume tag specifications: a new version.
  if (o.contentHash !== undefined) Tags.of(lt).add(CONTENT_TAG, o.contentHash);
  return lt;
}
