import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { LdapDirectory } from '../../constructs/ldap-directory/index.js';
import { LDAP_ROLE_TAG, secretNames } from '../../lib/render/node-layout.js';
import { cleanupApps } from '../stacks/helpers.js';
import { fixture, primaryDr, single, variant } from './fixture.js';

after(cleanupApps);

describe('LdapDirectory', () => {
  test('GIVEN an OpenLDAP pair WHEN composed in the primary THEN a provider and a consumer, named, with generated secrets', () => {
    const plan = single();
    const { stack, vpc, zone } = fixture();
    const dir = new LdapDirectory(stack, 'Dir', { plan, vpc, privateZone: zone, secretReplicaRegions: ['eu-central-1'] });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Instance', 2);
    for (const role of ['provider', 'consumer'])
      t.hasResourceProperties('AWS::EC2::Instance', { Tags: Match.arrayWith([{ Key: LDAP_ROLE_TAG, Value: role }]) });
    t.hasResourceProperties('AWS::Route53::RecordSet', { Name: 'ldap-provider.acme-mail.internal.' });
    const names = secretNames(plan);
    for (const n of [names.ldapBind, names.ldapAdmin, names.ldapReplicator])
      t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: n, GenerateSecretString: Match.objectLike({ ExcludePunctuation: true }) });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 389, ToPort: 389 });
    assert.equal(dir.instances.length, 2);
  });

  test('GIVEN the DR region THEN one consumer and no secrets of its own (it reads the replicas)', () => {
    const { stack, vpc, zone } = fixture();
    new LdapDirectory(stack, 'Dir', { plan: single(), vpc, privateZone: zone, region: 'dr', createSecrets: false });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Instance', 1);
    t.hasResourceProperties('AWS::EC2::Instance', { Tags: Match.arrayWith([{ Key: LDAP_ROLE_TAG, Value: 'consumer' }]) });
    t.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  test('GIVEN an external directory THEN only the bind secret, which the operator sets', () => {
    const plan = variant({
      directory: { kind: 'ldap', provision: 'external', uris: ['ldaps://ldap.acme.example'], baseDn: 'dc=acme,dc=example', bindDn: 'cn=mail,dc=acme,dc=example', bindPasswordEnv: 'LDAP_PW' },
    });
    const { stack, vpc, zone } = fixture();
    new LdapDirectory(stack, 'Dir', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Instance', 0);
    t.resourceCountIs('AWS::SecretsManager::Secret', 1);
    // Created with a random value the operator replaces with the directory's real service password.
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: secretNames(plan).ldapBind, GenerateSecretString: {} });
  });

  test('GIVEN managed AD THEN an AWS Managed Microsoft AD for the base DN domain in two subnets', () => {
    const { stack, vpc, zone } = fixture();
    new LdapDirectory(stack, 'Dir', { plan: primaryDr(), vpc, privateZone: zone });
    Template.fromStack(stack).hasResourceProperties('AWS::DirectoryService::MicrosoftAD', {
      Name: 'globex.example',
      ShortName: 'GLOBEX',
      Edition: 'Standard',
      VpcSettings: { VpcId: 'vpc-0a1b2c3d', SubnetIds: ['subnet-prv1', 'subnet-prv2'] },
    });
  });

  test('fails when the plan uses the static directory', () => {
    const { stack, vpc, zone } = fixture();
    assert.throws(() => new LdapDirectory(stack, 'Dir', { plan: variant({ directory: { kind: 'static' } }), vpc, privateZone: zone }), /directory\.kind is static, not ldap/);
  });
});
