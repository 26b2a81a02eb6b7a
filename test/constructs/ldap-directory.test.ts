import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
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

  test('GIVEN managed AD WHEN composed in the primary THEN the VPC forwards the domain to the two controllers through an outbound endpoint', () => {
    const { stack, vpc, zone } = fixture();
    new LdapDirectory(stack, 'Dir', { plan: primaryDr(), vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Route53Resolver::ResolverEndpoint', {
      Direction: 'OUTBOUND',
      IpAddresses: [{ SubnetId: 'subnet-prv1' }, { SubnetId: 'subnet-prv2' }],
      SecurityGroupIds: [Match.objectLike({ 'Fn::GetAtt': Match.arrayWith([Match.stringLikeRegexp('ResolverSg')]) })],
    });
    const ad = Object.keys(t.findResources('AWS::DirectoryService::MicrosoftAD'))[0]!;
    t.hasResourceProperties('AWS::Route53Resolver::ResolverRule', {
      DomainName: 'globex.example',
      RuleType: 'FORWARD',
      TargetIps: [0, 1].map((i) => ({ Ip: { 'Fn::Select': [i, { 'Fn::GetAtt': [ad, 'DnsIpAddresses'] }] }, Port: '53' })),
    });
    t.hasResourceProperties('AWS::Route53Resolver::ResolverRuleAssociation', { VPCId: 'vpc-0a1b2c3d' });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('Resolver outbound endpoint'),
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '10.9.0.0/16', IpProtocol: '-1' })],
    });
  });

  test('GIVEN managed AD THEN a custom resource creates the service account from the bind secret by ARN, and no password is in the template', () => {
    const plan = primaryDr();
    const { stack, vpc, zone } = fixture();
    const dir = new LdapDirectory(stack, 'Dir', { plan, vpc, privateZone: zone });
    const t = Template.fromStack(stack);
    const bind = stack.getLogicalId(dir.bindSecret!.node.defaultChild as import('aws-cdk-lib').CfnElement);
    const ad = stack.getLogicalId(dir.microsoftAd!);
    t.hasResourceProperties('Custom::MailfleetAdBindAccount', { DirectoryId: { Ref: ad }, SamAccountName: 'mailfleet-svc', SecretArn: { Ref: bind } });
    // The function may read that secret and act on that directory, nothing else.
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: Match.arrayWith(['ds-data:CreateUser', 'ds:ResetUserPassword']) }),
          Match.objectLike({ Action: 'secretsmanager:GetSecretValue', Resource: { Ref: bind } }),
        ]),
      },
    });
    // The bind password is generated by Secrets Manager and read by the function: no literal, no dynamic reference to it.
    const text = JSON.stringify(t.toJSON());
    assert.ok(!text.includes(`resolve:secretsmanager:${secretNames(plan).ldapBind}`), 'no dynamic reference to the bind secret');
    const refs = [...text.matchAll(/\{\{resolve:secretsmanager:[^}]*\}\}/g)].map((m) => m[0]);
    assert.ok(refs.every((r) => !r.includes('BindSecret')), refs.join(' '));
    const bindRefs = JSON.stringify(t.findResources('AWS::Lambda::Function')).includes(bind);
    assert.equal(bindRefs, false, 'the function code and environment do not carry the secret');
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: secretNames(plan).ldapBind, GenerateSecretString: Match.objectLike({ RequireEachIncludedType: true }) });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: secretNames(plan).ldapCa, GenerateSecretString: Match.objectLike({ SecretStringTemplate: '{"ca":""}' }) });
  });

  test('GIVEN managed AD in DR THEN its own endpoint, and a forward rule once the primary controllers\' addresses are given', () => {
    const plan = primaryDr();
    const unlinked = fixture();
    new LdapDirectory(unlinked.stack, 'Dir', { plan, vpc: unlinked.vpc, privateZone: unlinked.zone, region: 'dr', createSecrets: false });
    const u = Template.fromStack(unlinked.stack);
    u.resourceCountIs('AWS::Route53Resolver::ResolverEndpoint', 1);
    u.resourceCountIs('AWS::Route53Resolver::ResolverRule', 0);
    u.resourceCountIs('AWS::DirectoryService::MicrosoftAD', 0);
    // The warning points at the region link; no cdk context key exists any more.
    const warnings = Annotations.fromStack(unlinked.stack).findWarning('*', Match.stringLikeRegexp('no forward rule for globex.example'));
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.entry.data), /region link \(its ad-dns-ips fact\)/);
    assert.doesNotMatch(String(warnings[0]!.entry.data), /context|managedAdDnsIps/);
    const linked = fixture();
    new LdapDirectory(linked.stack, 'Dir', { plan, vpc: linked.vpc, privateZone: linked.zone, region: 'dr', createSecrets: false, managedAdDnsIps: ['10.40.8.10', '10.40.9.10'] });
    const l = Template.fromStack(linked.stack);
    l.hasResourceProperties('AWS::Route53Resolver::ResolverRule', { DomainName: 'globex.example', TargetIps: [{ Ip: '10.40.8.10', Port: '53' }, { Ip: '10.40.9.10', Port: '53' }] });
    l.hasResourceProperties('AWS::Route53Resolver::ResolverRuleAssociation', { VPCId: 'vpc-0a1b2c3d' });
    // The controllers are in the primary VPC: the DR endpoint may only send there.
    l.hasResourceProperties('AWS::EC2::SecurityGroup', { SecurityGroupEgress: [Match.objectLike({ CidrIp: '10.40.0.0/16' })] });
  });

  test('fails when the plan uses the static directory', () => {
    const { stack, vpc, zone } = fixture();
    assert.throws(() => new LdapDirectory(stack, 'Dir', { plan: variant({ directory: { kind: 'static' } }), vpc, privateZone: zone }), /directory\.kind is static, not ldap/);
  });
});
