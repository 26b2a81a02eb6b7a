/**
 * The cross-region link survives a deploy without context: both stacks synthesize it from the spec alone
 * (the DR stack owns it and reads the primary's link parameters), the primary's template is the same with
 * and without the retired `-c` keys, and the link handler (run here on a fake AWS seeded from the
 * synthesized templates) makes and removes the primary-side pieces.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { LINK_HANDLER_SOURCE } from '../../constructs/disaster-recovery/link-handler.js';
import { linkParametersOf } from '../../lib/plan/link.js';
import type { Plan } from '../../lib/plan/types.js';
import { platformApp, RETIRED_LINK_CONTEXT } from '../../stacks/app.js';
import { variant } from '../constructs/fixture.js';
import { cleanupApps, examplePlan, synthPlatform, testApp } from './helpers.js';

after(cleanupApps);

type Json = Record<string, unknown>;
type Resources = Record<string, { Type: string; Properties?: Json }>;

const resourcesOf = (t: Json) => t.Resources as Resources;
const ofType = (t: Json, type: string) => Object.entries(resourcesOf(t)).filter(([, r]) => r.Type === type);

/** Synthesizes an example (or plan) and returns the two templates, nag on, no context at all. */
function templates(plan: Plan): { primary: Json; dr: Json } {
  const { stacks } = synthPlatform(plan, { nag: true, validation: false });
  return { primary: Template.fromStack(stacks.primary).toJSON(), dr: Template.fromStack(stacks.dr!).toJSON() };
}

/**
 * Resolves a template value to what CloudFormation would pass at deploy time: Refs and GetAtts from
 * `deployed` (the physical ids of a fake deployment), literals as written.
 */
function resolver(template: Json, deployed: (logicalId: string, attr?: string) => unknown) {
  const resources = resourcesOf(template);
  const resolve = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(resolve);
    if (!v || typeof v !== 'object') return v;
    const o = v as Json;
    if (typeof o.Ref === 'string') return deployed(o.Ref);
    if (Array.isArray(o['Fn::GetAtt'])) {
      const [id, attr] = o['Fn::GetAtt'] as [string, string];
      // A VPC's CIDR is the template's own literal.
      const literal = attr === 'CidrBlock' ? resources[id]?.Properties?.CidrBlock : undefined;
      return typeof literal === 'string' ? literal : deployed(id, attr);
    }
    if (Array.isArray(o['Fn::Join'])) {
      // The parts are a list, or a list-valued attribute (a Managed AD's DnsIpAddresses).
      const [sep, parts] = o['Fn::Join'] as [string, unknown];
      return (resolve(parts) as string[]).join(sep);
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, resolve(x)]));
  };
  return resolve;
}

class AwsError extends Error {
  constructor(name: string) {
    super(name);
    this.name = name;
  }
}

/** The AWS the handler talks to, per region: parameters, route tables, zones, EFS replications. */
class FakeAws {
  readonly calls: string[] = [];
  readonly parameters = new Map<string, string>(); // region|name → value
  readonly routeTables = new Map<string, Map<string, string>>(); // region|rtb → cidr → target
  readonly zones = new Map<string, { VPCId: string; VPCRegion: string }[]>();
  readonly replications = new Map<string, { FileSystemId: string; Region: string }[]>(); // region|fs → destinations

  send(service: string, region: string | undefined, command: string, input: Json): Json {
    this.calls.push(`${service}:${command}`);
    const table = () => {
      const t = this.routeTables.get(`${region}|${String(input.RouteTableId)}`);
      if (!t) throw new AwsError('InvalidRouteTableID.NotFound');
      return t;
    };
    switch (`${service}:${command}`) {
      case 'SSMClient:GetParameter': {
        const value = this.parameters.get(`${region}|${String(input.Name)}`);
        if (value === undefined) throw new AwsError('ParameterNotFound');
        return { Parameter: { Value: value } };
      }
      case 'EC2Client:CreateRoute':
        if (table().has(String(input.DestinationCidrBlock))) throw new AwsError('RouteAlreadyExists');
        table().set(String(input.DestinationCidrBlock), String(input.VpcPeeringConnectionId));
        return {};
      case 'EC2Client:ReplaceRoute':
        table().set(String(input.DestinationCidrBlock), String(input.VpcPeeringConnectionId));
        return {};
      case 'EC2Client:DeleteRoute':
        if (!table().delete(String(input.DestinationCidrBlock))) throw new AwsError('InvalidRoute.NotFound');
        return {};
      case 'Route53Client:GetHostedZone': {
        const vpcs = this.zones.get(String(input.Id));
        if (!vpcs) throw new AwsError('NoSuchHostedZone');
        return { VPCs: [...vpcs] };
      }
      case 'Route53Client:AssociateVPCWithHostedZone': {
        const vpcs = this.zones.get(String(input.HostedZoneId))!;
        const vpc = input.VPC as { VPCId: string; VPCRegion: string };
        if (vpcs.some((v) => v.VPCId === vpc.VPCId)) throw new AwsError('ConflictingDomainExists');
        vpcs.push(vpc);
        return {};
      }
      case 'Route53Client:DisassociateVPCFromHostedZone': {
        const vpcs = this.zones.get(String(input.HostedZoneId))!;
        const i = vpcs.findIndex((v) => v.VPCId === (input.VPC as { VPCId: string }).VPCId);
        if (i < 0) throw new AwsError('VPCAssociationNotFound');
        vpcs.splice(i, 1);
        return {};
      }
      case 'EFSClient:DescribeReplicationConfigurations': {
        const d = this.replications.get(`${region}|${String(input.FileSystemId)}`);
        if (!d) throw new AwsError('ReplicationNotFound');
        return { Replications: [{ SourceFileSystemId: input.FileSystemId, Destinations: d }] };
      }
      case 'EFSClient:CreateReplicationConfiguration':
        this.replications.set(`${region}|${String(input.SourceFileSystemId)}`, input.Destinations as { FileSystemId: string; Region: string }[]);
        return {};
      case 'EFSClient:DeleteReplicationConfiguration':
        if (!this.replications.delete(`${region}|${String(input.SourceFileSystemId)}`)) throw new AwsError('ReplicationNotFound');
        return {};
    }
    throw new Error(`the fake AWS has no ${service}:${command}`);
  }

  /** The handler module as Lambda loads it (CommonJS), its SDK packages answered by this fake. */
  handler(): { run: (event: Json) => Promise<Json> } {
    const sdk = new Proxy(
      {},
      {
        get: (_t, name: string) => {
          if (name.endsWith('Command')) {
            const command = name.slice(0, -'Command'.length);
            return class {
              readonly command = command;
              constructor(readonly input: Json) {}
            };
          }
          // eslint-disable-next-line @typescript-eslint/no-this-alias
          const aws = this;
          return class {
            private readonly region?: string;
            constructor(cfg: { region?: string }) {
              this.region = cfg.region;
            }
            send(cmd: { command: string; input: Json }) {
              return Promise.resolve().then(() => aws.send(name, this.region, cmd.command, cmd.input));
            }
          };
        },
      },
    );
    const module = { exports: {} as { run: (event: Json) => Promise<Json> } };
    const fakeRequire = (name: string) => (name.startsWith('@aws-sdk/') ? sdk : name === 'https' ? {} : assert.fail(`unexpected require ${name}`));
    new Function('require', 'module', 'exports', 'console', LINK_HANDLER_SOURCE)(fakeRequire, module, module.exports, { error: () => {} });
    return module.exports;
  }
}

const PRIMARY_DC_IPS = ['10.40.8.10', '10.40.9.10'];

/** A fake deployment of the primary template: its link parameters, route tables and zones exist in AWS. */
function deployPrimary(aws: FakeAws, plan: Plan, primary: Json): void {
  const region = plan.regions!.primary.name;
  // A Managed AD's DnsIpAddresses is a list: its two controllers.
  const resolve = resolver(primary, (id, attr) => (attr === 'DnsIpAddresses' ? [...PRIMARY_DC_IPS] : `phys-${id}`));
  for (const [id] of ofType(primary, 'AWS::EC2::RouteTable')) aws.routeTables.set(`${region}|phys-${id}`, new Map());
  for (const [id] of ofType(primary, 'AWS::Route53::HostedZone')) aws.zones.set(`phys-${id}`, [{ VPCId: 'primary-vpc', VPCRegion: region }]);
  for (const [, r] of ofType(primary, 'AWS::SSM::Parameter')) {
    const p = resolve(r.Properties) as { Name: string; Value: string };
    aws.parameters.set(`${region}|${p.Name}`, p.Value);
  }
}

/** Runs one of the DR template's custom resources through the handler, its properties resolved as CloudFormation would. */
async function runCustom(aws: FakeAws, dr: Json, type: string, requestType: 'Create' | 'Update' | 'Delete', facts: Json = {}): Promise<Json> {
  const [[id, res]] = ofType(dr, type) as unknown as [[string, { Properties: Json }]];
  const resolve = resolver(dr, (ref, attr) => (attr !== undefined && ref.includes('LinkFacts') ? String(facts[attr]) : `phys-${ref}`));
  const { ServiceToken: _token, ...props } = resolve(res.Properties) as Json;
  return aws.handler().run({ RequestType: requestType, LogicalResourceId: id, ResourceProperties: props, OldResourceProperties: requestType === 'Update' ? props : undefined, StackId: 's', RequestId: 'r' });
}

describe('the region link without cdk context (examples/primary-dr.yaml)', () => {
  const plan = examplePlan('examples/primary-dr.yaml');
  let t: { primary: Json; dr: Json };
  before(() => {
    t = templates(plan);
  });

  it('GIVEN no -c values WHEN synthesized THEN the DR template holds the peering, its routes, the zone on the primary VPC and the primary-side link resource', () => {
    const dr = Template.fromJSON(t.dr);
    dr.resourceCountIs('AWS::EC2::VPCPeeringConnection', 1);
    dr.hasResourceProperties('AWS::EC2::VPCPeeringConnection', { PeerRegion: plan.regions!.primary.name, PeerVpcId: { 'Fn::GetAtt': [ofType(t.dr, 'Custom::MailfleetLinkFacts')[0]![0], 'VpcId'] } });
    const peerRoutes = ofType(t.dr, 'AWS::EC2::Route').filter(([, r]) => r.Properties?.VpcPeeringConnectionId !== undefined);
    assert.equal(peerRoutes.length, plan.regions!.dr!.availabilityZones.length, 'a route to the primary in each private route table');
    assert.ok(peerRoutes.every(([, r]) => r.Properties!.DestinationCidrBlock === '10.40.0.0/16'));
    const zones = ofType(t.dr, 'AWS::Route53::HostedZone').filter(([, z]) => ((z.Properties!.VPCs as unknown[]) ?? []).length === 2);
    assert.equal(zones.length, 1, 'the DR region zone is associated with the primary VPC too');
    dr.resourceCountIs('Custom::MailfleetRegionLink', 1);
    dr.hasOutput('PeeringConnectionId', {});
  });

  it('GIVEN no -c values THEN each region publishes its link facts under the model names, and the primary template holds no link resource', () => {
    for (const role of ['primary', 'dr'] as const) {
      const names = ofType(t[role], 'AWS::SSM::Parameter').map(([, r]) => r.Properties!.Name).filter((n) => String(n).includes('/link/'));
      assert.deepEqual(names.sort(), linkParametersOf(plan, role).map((p) => p.name).sort(), role);
    }
    for (const type of ['AWS::EC2::VPCPeeringConnection', 'Custom::MailfleetRegionLink', 'Custom::MailfleetLinkFacts'])
      assert.equal(ofType(t.primary, type).length, 0, `primary has no ${type}`);
    assert.ok(ofType(t.primary, 'AWS::EC2::Route').every(([, r]) => r.Properties?.VpcPeeringConnectionId === undefined), 'no peering route in the primary template');
    for (const [, z] of ofType(t.primary, 'AWS::Route53::HostedZone')) assert.equal(((z.Properties!.VPCs as unknown[]) ?? []).length, 1, 'primary zones name their own VPC only');
  });

  it('GIVEN the retired -c link values WHEN synthesized as bin/cdk.ts does THEN both templates are identical to a synth without them', () => {
    const synth = (context: Record<string, unknown>) => {
      const app = testApp({ spec: 'examples/primary-dr.yaml', nag: 'false', ...context }, false);
      const stacks = platformApp(app);
      return [Template.fromStack(stacks.primary).toJSON(), Template.fromStack(stacks.dr!).toJSON()];
    };
    const context = Object.fromEntries(RETIRED_LINK_CONTEXT.map((k) => [k, k === 'drPeeringConnectionId' ? 'pcx-0123456789abcdef0' : k.endsWith('VpcId') ? 'vpc-0123456789abcdef0' : 'fs-01234567']));
    assert.deepEqual(synth(context), synth({}));
  });

  it('GIVEN the primary deployed WHEN the DR link is created, created again, then deleted THEN the primary-side routes and zone association appear once and go away', async () => {
    const aws = new FakeAws();
    deployPrimary(aws, plan, t.primary);
    const read = await runCustom(aws, t.dr, 'Custom::MailfleetLinkFacts', 'Create');
    assert.equal(read.Status, 'SUCCESS', String(read.Reason));
    const facts = read.Data as Json;
    assert.match(String(facts.VpcId), /^phys-.*Vpc/);
    for (let i = 0; i < 2; i++) {
      const link = await runCustom(aws, t.dr, 'Custom::MailfleetRegionLink', i === 0 ? 'Create' : 'Update', facts);
      assert.equal(link.Status, 'SUCCESS', String(link.Reason));
      const routes = [...aws.routeTables.values()].filter((rt) => rt.get('10.41.0.0/16') !== undefined);
      assert.equal(routes.length, plan.regions!.primary.availabilityZones.length, 'a route to DR in every primary private route table');
      const zone = aws.zones.get(String(facts.RegionZoneId))!;
      assert.deepEqual(zone.map((v) => v.VPCRegion), [plan.regions!.primary.name, plan.regions!.dr!.name]);
    }
    const gone = await runCustom(aws, t.dr, 'Custom::MailfleetRegionLink', 'Delete', facts);
    assert.equal(gone.Status, 'SUCCESS', String(gone.Reason));
    assert.ok([...aws.routeTables.values()].every((rt) => rt.size === 0));
    assert.equal(aws.zones.get(String(facts.RegionZoneId))!.length, 1);
    // A second delete (CloudFormation retries) finds nothing and still succeeds.
    assert.equal((await runCustom(aws, t.dr, 'Custom::MailfleetRegionLink', 'Delete', facts)).Status, 'SUCCESS');
  });

  it('GIVEN managed AD and no -c values THEN the primary publishes its controllers\' addresses, and the DR forward rule targets them through the link', async () => {
    // The primary: an ad-dns-ips StringList parameter from the directory's DnsIpAddresses attribute.
    const [[adId]] = ofType(t.primary, 'AWS::DirectoryService::MicrosoftAD');
    const adParam = ofType(t.primary, 'AWS::SSM::Parameter').map(([, r]) => r.Properties!).find((p) => p.Name === '/mailfleet/globex-mail/link/primary/ad-dns-ips');
    assert.ok(adParam, 'the primary publishes ad-dns-ips');
    assert.equal(adParam.Type, 'StringList');
    assert.deepEqual(adParam.Value, { 'Fn::Join': [',', { 'Fn::GetAtt': [adId, 'DnsIpAddresses'] }] });
    // The DR stack: a forward rule for the domain whose two targets are the link's AdDnsIps attribute.
    const [[factsId]] = ofType(t.dr, 'Custom::MailfleetLinkFacts');
    const rules = ofType(t.dr, 'AWS::Route53Resolver::ResolverRule');
    assert.equal(rules.length, 1, 'the DR region keeps its forward rule without context');
    const rule = rules[0]![1].Properties!;
    assert.equal(rule.DomainName, 'globex.example');
    assert.deepEqual(rule.TargetIps, [0, 1].map((i) => ({ Ip: { 'Fn::Select': [i, { 'Fn::Split': [',', { 'Fn::GetAtt': [factsId, 'AdDnsIps'] }] }] }, Port: '53' })));
    assert.equal(ofType(t.dr, 'AWS::Route53Resolver::ResolverRuleAssociation').length, 1);
    // The handler reads the published value back as the attribute (a StringList reads as its comma-joined text).
    const aws = new FakeAws();
    deployPrimary(aws, plan, t.primary);
    const read = await runCustom(aws, t.dr, 'Custom::MailfleetLinkFacts', 'Create');
    assert.equal(read.Status, 'SUCCESS', String(read.Reason));
    assert.equal((read.Data as Json).AdDnsIps, PRIMARY_DC_IPS.join(','));
  });

  it('fails when the primary is not deployed: the read names the stack to deploy first', async () => {
    const aws = new FakeAws();
    const read = await runCustom(aws, t.dr, 'Custom::MailfleetLinkFacts', 'Create');
    assert.equal(read.Status, 'FAILED');
    assert.match(String(read.Reason), /link parameter \/mailfleet\/globex-mail\/link\/primary\/vpc-id not found in eu-west-1: deploy globex-mail-primary first/);
    // Deleting that failed resource (the rollback) succeeds.
    assert.equal((await runCustom(aws, t.dr, 'Custom::MailfleetLinkFacts', 'Delete')).Status, 'SUCCESS');
  });
});

describe('the region link with EFS storage', () => {
  const plan = variant({ storage: { kind: 'efs' }, regions: examplePlan('examples/primary-dr.yaml').regions });

  it('GIVEN no -c values THEN the primary file system names no replication, and the DR link replicates it into the DR file system', async () => {
    const t = templates(plan);
    for (const [, fs] of ofType(t.primary, 'AWS::EFS::FileSystem')) assert.equal(fs.Properties!.ReplicationConfiguration, undefined);
    const aws = new FakeAws();
    deployPrimary(aws, plan, t.primary);
    const read = await runCustom(aws, t.dr, 'Custom::MailfleetLinkFacts', 'Create');
    assert.equal(read.Status, 'SUCCESS', String(read.Reason));
    const facts = read.Data as Json;
    const link = await runCustom(aws, t.dr, 'Custom::MailfleetRegionLink', 'Create', facts);
    assert.equal(link.Status, 'SUCCESS', String(link.Reason));
    const [drFs] = ofType(t.dr, 'AWS::EFS::FileSystem')[0]!;
    assert.deepEqual(aws.replications.get(`${plan.regions!.primary.name}|${String(facts.EfsId)}`), [{ FileSystemId: `phys-${drFs}`, Region: plan.regions!.dr!.name }]);
    await runCustom(aws, t.dr, 'Custom::MailfleetRegionLink', 'Delete', facts);
    assert.equal(aws.replications.size, 0);
  });
});
