import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cloudFormationInventory } from '../../engines/extract/cloudformation.js';
import { diffInventories, inventoryOf, ruleText, sha256 } from '../../engines/inventory.js';
import { portRanges, subnetCidr } from '../../engines/platform.js';

describe('engine inventory', () => {
  it('normalizes rules the same way whatever the engine spelled', () => {
    assert.equal(
      ruleText({ region: 'primary', direction: 'ingress', protocol: 'tcp', fromPort: 993, toPort: 993, group: 'proxy', peer: '0.0.0.0/0' }),
      'primary ingress tcp 993 from 0.0.0.0/0 to proxy',
    );
    assert.equal(
      ruleText({ region: 'dr', direction: 'egress', protocol: 'all', group: 'mail', peer: '0.0.0.0/0' }),
      'dr egress all all from mail to 0.0.0.0/0',
    );
  });

  it('names every difference between two inventories', () => {
    const a = inventoryOf([{ kind: 'nlb', region: 'primary' }, { kind: 'nlb-listener', region: 'primary', port: 25 }], []);
    const b = inventoryOf([{ kind: 'nlb-listener', region: 'primary', port: 587, role: 'proxy', userData: 'x' }], [
      { region: 'primary', direction: 'ingress', protocol: 'tcp', fromPort: 25, toPort: 25, group: 'proxy', peer: '0.0.0.0/0' },
    ]);
    assert.deepEqual(diffInventories(a, b, ['x', 'y']), [
      'kind nlb: x has 1, y has 0',
      'listener ports: x [25], y [587]',
      'rule only in y (×1): primary ingress tcp 25 from 0.0.0.0/0 to proxy',
      `bootstrap primary/proxy: x none, y ${sha256('x').slice(0, 12)}`,
    ]);
    assert.deepEqual(diffInventories(a, a), []);
  });

  it('merges contiguous ports and splits a VPC into 16 subnets', () => {
    assert.deepEqual(portRanges([995, 25, 20002, 20001, 20003, 25]), [
      { from: 25, to: 25 },
      { from: 995, to: 995 },
      { from: 20001, to: 20003 },
    ]);
    assert.equal(subnetCidr('10.40.0.0/16', 0), '10.40.0.0/20');
    assert.equal(subnetCidr('10.40.0.0/16', 9), '10.40.144.0/20');
    assert.equal(subnetCidr('192.168.8.0/24', 15), '192.168.8.240/28');
  });

  it('reads a CDK-style template: tags or logical ids give roles, GetAtt gives peers, Fn::Base64 gives user data', () => {
    const inv = cloudFormationInventory([
      {
        region: 'primary',
        template: {
          Resources: {
            ProxySg1A2B: {
              Type: 'AWS::EC2::SecurityGroup',
              Properties: {
                GroupDescription: 'HAProxy tier',
                SecurityGroupIngress: [{ IpProtocol: 'tcp', FromPort: 993, ToPort: 993, CidrIp: '0.0.0.0/0' }],
                SecurityGroupEgress: [{ IpProtocol: '-1', CidrIp: '0.0.0.0/0' }],
              },
            },
            MailSg: {
              Type: 'AWS::EC2::SecurityGroup',
              Properties: {
                GroupDescription: 'daemons',
                Tags: [{ Key: 'mailfleet:role', Value: 'mail' }],
                SecurityGroupEgress: [{ IpProtocol: 'icmp', FromPort: 252, ToPort: 86, CidrIp: '255.255.255.255/32' }],
              },
            },
            MailFromProxy: {
              Type: 'AWS::EC2::SecurityGroupIngress',
              Properties: {
                GroupId: { 'Fn::GetAtt': ['MailSg', 'GroupId'] },
                SourceSecurityGroupId: { 'Fn::GetAtt': ['ProxySg1A2B', 'GroupId'] },
                IpProtocol: 'tcp',
                FromPort: 10993,
                ToPort: 10993,
              },
            },
            Listener993: { Type: 'AWS::ElasticLoadBalancingV2::Listener', Properties: { Port: 993 } },
            ProxyLaunchTemplate: {
              Type: 'AWS::EC2::LaunchTemplate',
              Properties: { LaunchTemplateData: { UserData: { 'Fn::Base64': '#!/bin/bash\necho proxy\n' } } },
            },
            GlusterNode0: { Type: 'AWS::EC2::Instance', Properties: { UserData: { 'Fn::Base64': { 'Fn::Join': ['', ['a', 'b']] } } } },
          },
        },
      },
    ]);
    assert.deepEqual(inv.kinds, { 'launch-template': 1, 'nlb-listener': 1, 'security-group': 2, 'storage-instance': 1 });
    assert.deepEqual(inv.listenerPorts, [993]);
    assert.deepEqual(inv.securityGroupRules, [
      'primary egress all all from proxy to 0.0.0.0/0',
      'primary ingress tcp 10993 from proxy to mail',
      'primary ingress tcp 993 from 0.0.0.0/0 to proxy',
    ]);
    assert.deepEqual(inv.bootstrapHashes, { 'primary/proxy': sha256('#!/bin/bash\necho proxy\n'), 'primary/storage': sha256('ab') });
  });
});
