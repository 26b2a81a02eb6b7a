/**
 * Geo-replication names across regions, read from the producers: the storage node files each region's
 * nodes run (rendered by lib/render) and the DNS records each engine writes (CDK templates, Terraform
 * JSON, Pulumi registrations under mocks).
 *
 * `create push-pem` on primary storage node 1 mounts the DR volume to verify it, and the session's
 * workers SSH to every DR storage node named in that volume's brick list; the fail-back copy does the
 * same from DR to the primary. So every brick host of one region's volume must resolve, from the other
 * region's VPC, to that region's node of the same index, and to nothing else: a name the other region's
 * own zone also defines would lead the mount to the wrong node ("Unable to mount and fetch secondary
 * volume details").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { terraformJson } from '../../engines/terraform/index.js';
import { registrationsOf, type Registration } from '../../engines/pulumi/mocks.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import {
  GLUSTER_BRICK_PORTS,
  GLUSTER_MGMT_PORTS,
  GEO_REPLICATION_PORT,
  regionCidr,
  securityGroupOf,
} from '../../lib/plan/network.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { NODE_INDEX_TAG, type RegionRole } from '../../lib/render/node-layout.js';
import { cleanupApps, synthPlatform } from '../stacks/helpers.js';

after(cleanupApps);

const ROLES = ['primary', 'dr'] as const;
const other = (r: RegionRole): RegionRole => (r === 'primary' ? 'dr' : 'primary');

/** A private record as a VPC sees it: which VPCs resolve its zone, and which storage node it points at. */
interface SeenRecord {
  readonly zone: string;
  readonly name: string;
  readonly visibleFrom: ReadonlySet<RegionRole>;
  /** Region and node index (from 1) of the instance the A record points at; undefined for other targets. */
  readonly node?: { readonly region: RegionRole; readonly index: number };
}

const unquote = (s: string) => (s.startsWith("'") && s.endsWith("'") ? s.slice(1, -1) : s);

/** The rendered storage files of a region, by path. */
function storageFiles(plan: Plan, region: RegionRole): Map<string, string> {
  return new Map(nodeFiles(plan, 'storage', region).map((f) => [f.path, f.content]));
}

/** Brick hosts, in order, of the `gluster volume create` the region's node 1 runs. */
function brickHosts(plan: Plan, region: RegionRole): string[] {
  const script = storageFiles(plan, region).get('bootstrap/gluster-volume.sh')!;
  const line = script.split('\n').find((l) => l.includes('gluster --mode=script volume create'))!;
  assert.ok(line, 'gluster-volume.sh creates the volume');
  return line
    .trim()
    .split(/\s+/)
    .map(unquote)
    .filter((a) => a.includes(':/'))
    .map((a) => a.slice(0, a.indexOf(':')));
}

/** Every brick host of `region`'s volume resolves, from the other region's VPC, to exactly that node. */
function assertReachable(plan: Plan, records: readonly SeenRecord[], engine: string) {
  for (const region of ROLES) {
    const from = other(region);
    const hosts = brickHosts(plan, region);
    assert.equal(hosts.length, plan.sizing.storageNodes, `${region} volume has a brick per storage node`);
    hosts.forEach((host, i) => {
      const seen = records.filter((r) => r.name === host && r.visibleFrom.has(from));
      assert.equal(
        seen.length,
        1,
        `${engine}: ${region} brick host ${host} has exactly one record the ${from} VPC resolves (got ${seen.map((r) => r.zone).join(', ') || 'none'})`,
      );
      assert.deepEqual(
        seen[0]!.node,
        { region, index: i + 1 },
        `${engine}: ${host} points at ${region} storage node ${i + 1}`,
      );
      // Nor is it a name the other region's own zones define for their own nodes.
      assert.ok(
        !records.some((r) => r.name === host && r.node?.region === from),
        `${engine}: ${from} defines ${host} too`,
      );
    });
  }
}

describe('geo-replication storage names (DR example)', () => {
  const plan = buildPlan(loadSpec('examples/primary-dr.yaml').spec);
  assert.equal(plan.storage.kind, 'glusterfs');

  it('each region names its nodes, peers and bricks in its own region zone; the session targets DR node 1 by its brick name', () => {
    for (const region of ROLES) {
      const files = storageFiles(plan, region);
      const hosts = brickHosts(plan, region);
      for (const h of hosts)
        assert.match(h, new RegExp(`^gluster-\\d+\\.${region}\\.${plan.platform}\\.internal$`), h);
      // The name a node gives itself (index from its tag) is its brick host.
      const set = /hostnamectl set-hostname "gluster-\$\{index\}\.([^"]+)"/.exec(
        files.get('bootstrap/storage.sh')!,
      )!;
      hosts.forEach((h, i) => assert.equal(`gluster-${i + 1}.${set[1]}`, h));
      // Node 1 probes the other bricks' hosts.
      const peers = /^peers=\((.*)\)$/m
        .exec(files.get('bootstrap/gluster-volume.sh')!)![1]!
        .split(' ')
        .map(unquote);
      assert.deepEqual(peers, hosts.slice(1));
    }
    const target = /^dr_host=(.*)$/m.exec(
      storageFiles(plan, 'primary').get('bootstrap/geo-replication-primary.sh')!,
    )![1]!;
    assert.equal(unquote(target), brickHosts(plan, 'dr')[0]);
  });

  it('the mail nodes mount from names of their own region (the same text in both regions)', () => {
    const mount = (region: RegionRole) =>
      nodeFiles(plan, 'mail', region).find((f) => f.path.endsWith('.mount'))!.content;
    assert.equal(mount('primary'), mount('dr'));
  });

  it("Terraform: every brick host of each region resolves from the other VPC to that region's node, and only there", () => {
    type Res = Record<string, Record<string, Record<string, unknown>>>;
    const r = terraformJson(plan).resource as Res;
    const vpcRegion = (ref: unknown): RegionRole =>
      ref === '${aws_vpc.dr-vpc.id}'
        ? 'dr'
        : ref === '${aws_vpc.primary-vpc.id}'
          ? 'primary'
          : assert.fail(String(ref));
    const zones = new Map(
      Object.entries(r.aws_route53_zone!).map(([key, z]) => {
        const visible = new Set<RegionRole>((z.vpc as { vpc_id: string }[]).map((v) => vpcRegion(v.vpc_id)));
        for (const a of Object.values(r.aws_route53_zone_association ?? {}))
          if (a.zone_id === `\${aws_route53_zone.${key}.zone_id}`) visible.add(vpcRegion(a.vpc_id));
        return [key, { name: z.name as string, visible }];
      }),
    );
    const records: SeenRecord[] = Object.values(r.aws_route53_record!).flatMap((rec) => {
      const zoneKey = /^\$\{aws_route53_zone\.([^.]+)\.zone_id\}$/.exec(String(rec.zone_id))?.[1];
      if (!zoneKey) return []; // public records
      const zone = zones.get(zoneKey)!;
      const inst = /^\$\{aws_instance\.([^.]+)\.private_ip\}$/.exec(
        String((rec.records as string[])[0]),
      )?.[1];
      const i = inst ? r.aws_instance![inst]! : undefined;
      const node =
        i && (i.tags as Record<string, string>)[NODE_INDEX_TAG] !== undefined
          ? {
              region: (i.provider === 'aws.dr' ? 'dr' : 'primary') as RegionRole,
              index: Number((i.tags as Record<string, string>)[NODE_INDEX_TAG]),
            }
          : undefined;
      return [{ zone: zone.name, name: rec.name as string, visibleFrom: zone.visible, node }];
    });
    assertReachable(plan, records, 'terraform');
  });

  describe('Pulumi', () => {
    let regs: Registration[];
    before(async () => {
      regs = await registrationsOf(plan);
    });
    it("every brick host of each region resolves from the other VPC to that region's node, and only there", () => {
      const of = (type: string) => regs.filter((x) => x.type === type);
      const regionOfProvider = (p: string | undefined): RegionRole =>
        /::dr::/.test(String(p)) ? 'dr' : 'primary';
      const vpcs = new Map(of('aws:ec2/vpc:Vpc').map((v) => [v.id, regionOfProvider(v.provider)]));
      const zones = new Map(
        of('aws:route53/zone:Zone').map((z) => {
          const visible = new Set<RegionRole>(
            (z.inputs.vpcs as { vpcId: string }[]).map((v) => vpcs.get(v.vpcId)!),
          );
          for (const a of of('aws:route53/zoneAssociation:ZoneAssociation'))
            if (a.inputs.zoneId === `ZMOCK-${z.name}`) visible.add(vpcs.get(String(a.inputs.vpcId))!);
          return [`ZMOCK-${z.name}`, { name: String(z.inputs.name), visible }];
        }),
      );
      const instances = new Map(of('aws:ec2/instance:Instance').map((i) => [`${i.name}-ip`, i]));
      const records: SeenRecord[] = of('aws:route53/record:Record').flatMap((rec) => {
        const zone = zones.get(String(rec.inputs.zoneId));
        if (!zone) return [];
        const i = instances.get(String((rec.inputs.records as string[] | undefined)?.[0]));
        const tags = (i?.inputs.tags ?? {}) as Record<string, string>;
        const node =
          i && tags[NODE_INDEX_TAG] !== undefined
            ? { region: regionOfProvider(i.provider), index: Number(tags[NODE_INDEX_TAG]) }
            : undefined;
        return [{ zone: zone.name, name: String(rec.inputs.name), visibleFrom: zone.visible, node }];
      });
      assertReachable(plan, records, 'pulumi');
    });
  });

  it("CDK: every brick host of each region resolves from the other VPC to that region's node, and only there", () => {
    const { stacks } = synthPlatform(plan, { validation: false });
    type Res = Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    const templates = {
      primary: Template.fromStack(stacks.primary).toJSON().Resources as Res,
      dr: Template.fromStack(stacks.dr!).toJSON().Resources as Res,
    };
    const records: SeenRecord[] = [];
    for (const region of ROLES) {
      const res = templates[region];
      for (const rec of Object.values(res).filter((x) => x.Type === 'AWS::Route53::RecordSet')) {
        const zoneId = (rec.Properties!.HostedZoneId as { Ref?: string }).Ref;
        const zone = zoneId ? res[zoneId] : undefined;
        if (!zone) continue; // public records
        const vpcs = (zone.Properties!.VPCs as { VPCRegion: unknown }[]) ?? [];
        const visible = new Set<RegionRole>([region]);
        // The DR stack associates its region zone with the primary VPC itself (a second VPCs entry); the
        // primary's region zone reaches the DR VPC through the link resource (test/stacks/region-link.test.ts).
        if (
          vpcs.length === 2 ||
          (region === 'primary' && zone.Properties!.Name === `primary.${plan.platform}.internal.`)
        )
          visible.add(other(region));
        const target = (
          rec.Properties!.ResourceRecords as { 'Fn::GetAtt'?: [string, string] }[] | undefined
        )?.[0]?.['Fn::GetAtt'];
        const inst = target ? res[target[0]] : undefined;
        const tag =
          inst?.Type === 'AWS::EC2::Instance'
            ? (inst.Properties!.Tags as { Key: string; Value: string }[]).find(
                (t) => t.Key === NODE_INDEX_TAG,
              )
            : undefined;
        records.push({
          zone: String(zone.Properties!.Name),
          name: String(rec.Properties!.Name).replace(/\.$/, ''),
          visibleFrom: visible,
          node: tag ? { region, index: Number(tag.Value) } : undefined,
        });
      }
    }
    assertReachable(plan, records, 'cdk');
    // Node 1's region record keeps the id it had when it was the only one (a new id would make
    // CloudFormation create a second record of the same name before deleting the first, which Route 53
    // refuses); the other nodes' records are numbered after their node.
    for (const region of ROLES) {
      const ids = Object.entries(templates[region])
        .filter(
          ([, x]) =>
            x.Type === 'AWS::Route53::RecordSet' && String(x.Properties!.Name).includes(`.${region}.`),
        )
        .map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))
        .sort();
      assert.deepEqual(
        ids,
        ['GeoReplicationTarget', 'GeoReplicationTarget2', 'GeoReplicationTarget3'],
        region,
      );
    }
  });

  it("each region's storage group admits the other region's storage traffic: SSH, glusterd and the brick ports (the verification mount)", () => {
    for (const region of ROLES) {
      const peer = regionCidr(plan, other(region));
      const rules = securityGroupOf(plan, region, 'storage')!.ingress.filter(
        (r) => 'cidr' in r.peer && r.peer.cidr === peer,
      );
      const covers = (port: number) =>
        rules.some((r) => r.protocol === 'tcp' && r.fromPort <= port && port <= r.toPort);
      for (const port of [
        GEO_REPLICATION_PORT,
        GLUSTER_MGMT_PORTS.from,
        GLUSTER_BRICK_PORTS.from,
        GLUSTER_BRICK_PORTS.to,
      ])
        assert.ok(covers(port), `${region} storage admits ${port} from ${peer}`);
    }
  });
});
