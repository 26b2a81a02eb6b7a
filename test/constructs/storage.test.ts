import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { EfsMailStore } from '../../constructs/efs-mail-store/index.js';
import { GlusterStorageCluster } from '../../constructs/gluster-storage-cluster/index.js';
import type { Plan } from '../../lib/plan/index.js';
import { NODE_INDEX_TAG } from '../../lib/render/node-layout.js';
import { cleanupApps } from '../stacks/helpers.js';
import { fixture, single, variant } from './fixture.js';

after(cleanupApps);

describe('GlusterStorageCluster', () => {
  test('GIVEN 3 nodes WHEN composed THEN one node per AZ subnet, each with an encrypted gp3 data volume and a private name', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    new GlusterStorageCluster(stack, 'Storage', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Instance', 3);
    ['subnet-prv1', 'subnet-prv2', 'subnet-prv3'].forEach((subnet, i) => {
      for (const tag of [{ Key: NODE_INDEX_TAG, Value: String(i + 1) }, { Key: 'mailfleet:role', Value: 'storage' }])
        t.hasResourceProperties('AWS::EC2::Instance', { SubnetId: subnet, DisableApiTermination: true, Tags: Match.arrayWith([tag]) });
    });
    t.resourceCountIs('AWS::EC2::Volume', 3);
    t.hasResourceProperties('AWS::EC2::Volume', { Size: 1000, VolumeType: 'gp3', Encrypted: true, AvailabilityZone: 'eu-west-1b' });
    t.resourceCountIs('AWS::EC2::VolumeAttachment', 3);
    t.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'gluster-2.acme-mail.internal.', Type: 'A' });
  });

  test('THEN glusterd and brick ports open to peers, and with a geo-replication peer SSH opens to that CIDR only', () => {
    const { stack, vpc, zone } = fixture();
    new GlusterStorageCluster(stack, 'Storage', { plan: single(), vpc, privateZone: zone, geoReplicationPeerCidr: '10.40.0.0/16' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 24007, ToPort: 24008 });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 49152, ToPort: 49251 });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: Match.arrayWith([Match.objectLike({ CidrIp: '10.40.0.0/16', FromPort: 22, ToPort: 22 })]),
    });
  });

  test('fails when the plan stores mail on EFS', () => {
    const { stack, vpc, zone } = fixture();
    assert.throws(() => new GlusterStorageCluster(stack, 'Storage', { plan: variant({ storage: { kind: 'efs' } }), vpc, privateZone: zone }), /storage\.kind is efs, not glusterfs/);
  });

  test('fails when storage nodes are not a multiple of 3', () => {
    const plan = single();
    const four = { ...plan, storage: { ...plan.storage, nodes: 4 } } as Plan;
    const { stack, vpc, zone } = fixture();
    assert.throws(() => new GlusterStorageCluster(stack, 'Storage', { plan: four, vpc, privateZone: zone }), /multiple of 3, got 4/);
  });
});

describe('EfsMailStore', () => {
  const efsPlan = () => variant({ storage: { kind: 'efs' } });

  test('GIVEN storage kind efs WHEN composed THEN an encrypted elastic file system is named efs.<zone>', () => {
    const { stack, vpc, zone } = fixture();
    new EfsMailStore(stack, 'Store', { plan: efsPlan(), vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true, ThroughputMode: 'elastic' });
    t.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'efs.acme-mail.internal.', Type: 'CNAME' });
    t.resourceCountIs('AWS::EFS::MountTarget', 3);
  });

  test('GIVEN a DR file system WHEN composed THEN the primary replicates into it', () => {
    const { stack, vpc, zone } = fixture();
    new EfsMailStore(stack, 'Store', { plan: efsPlan(), vpc, privateZone: zone, replicationFileSystemId: 'fs-0dr', replicationRegion: 'eu-central-1' });
    Template.fromStack(stack).hasResourceProperties('AWS::EFS::FileSystem', {
      ReplicationConfiguration: { Destinations: [{ FileSystemId: 'fs-0dr', Region: 'eu-central-1' }] },
    });
  });

  test('fails when replicationFileSystemId has no region', () => {
    const { stack, vpc, zone } = fixture();
    new EfsMailStore(stack, 'Store', { plan: efsPlan(), vpc, privateZone: zone, replicationFileSystemId: 'fs-1' });
    assert.throws(() => Template.fromStack(stack), /\[Test\/Store\] EfsMailStore: replicationFileSystemId needs replicationRegion/);
  });
});
