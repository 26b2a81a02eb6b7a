import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrapText } from '../../engines/bootstrap.js';
import { findTerraformTools, terraformJson, validateTerraform, writeTerraform, type TerraformJson } from '../../engines/terraform/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { parseSpec, specSchema } from '../../lib/spec/index.js';
import { EXAMPLES, examplePlan } from './helpers.js';
import { tenantsSpec } from '../../scripts/gen-tenants.js';

const tenantsPlan = (n: number) => buildPlan(parseSpec(JSON.stringify(tenantsSpec(n)), `tenants-${n}.yaml`));

type Resources = Record<string, Record<string, Record<string, unknown>>>;
const resources = (doc: TerraformJson) => doc.resource as Resources;
const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

describe('terraform engine (cdktf)', () => {
  const docs = new Map<string, TerraformJson>();
  let out: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), 'mailfleet-tf-'));
    for (const e of EXAMPLES) docs.set(e, terraformJson(examplePlan(e)));
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it('GIVEN both examples WHEN written as Terraform JSON THEN terraform init + validate pass offline against the provider mirror', () => {
    const tools = findTerraformTools();
    if (tools.missing.length > 0) {
      const msg = `terraform validate cannot run: missing ${tools.missing.join(' and ')}. See DEVELOPERS.md.`;
      if (process.env.MAILFLEET_ALLOW_NO_TERRAFORM === '1') {
        console.warn(`\n!!!!!!!! WARNING: ${msg} (MAILFLEET_ALLOW_NO_TERRAFORM=1: NOT validated) !!!!!!!!\n`);
        return;
      }
      assert.fail(msg);
    }
    for (const e of EXAMPLES) {
      const dir = writeTerraform(examplePlan(e), join(out, e));
      assert.ok(existsSync(join(dir, 'cdk.tf.json')), `${dir}/cdk.tf.json written`);
      const r = validateTerraform(dir, { cli: tools.cli!, mirror: tools.mirror! });
      assert.equal(r.valid, true, `${e}: terraform validate failed:\n${r.output}`);
    }
  });

  it('pins hashicorp/aws 5.100.0 and puts the DR region on an aliased provider', () => {
    const doc = docs.get('primary-dr')!;
    const tf = doc.terraform as { required_providers: { aws: { version: string } } };
    assert.equal(tf.required_providers.aws.version, '5.100.0');
    const providers = (doc.provider as { aws: { region: string; alias?: string }[] }).aws;
    assert.deepEqual(
      providers.map((p) => [p.alias ?? 'default', p.region]),
      [['default', 'eu-west-1'], ['dr', 'eu-central-1']],
    );
    const drVpcs = Object.values(resources(doc).aws_vpc!).filter((v) => v.provider === 'aws.dr');
    assert.deepEqual(drVpcs.map((v) => v.cidr_block), ['10.41.0.0/16']);
  });

  it('gives every plan listener an NLB listener and a PROXY v2 target group on its public port', () => {
    const plan = examplePlan('single-region');
    const r = resources(docs.get('single-region')!);
    const ports = Object.values(r.aws_lb_listener!).map((l) => l.port).sort((a, b) => Number(a) - Number(b));
    assert.deepEqual(ports, plan.listeners.map((l) => l.publicPort).sort((a, b) => a - b));
    for (const tg of Object.values(r.aws_lb_target_group!)) {
      assert.equal(tg.proxy_protocol_v2, true);
      assert.equal(tg.protocol, 'TCP');
    }
    assert.equal(Object.values(r.aws_lb!)[0]!.load_balancer_type, 'network');
  });

  it('sizes the Auto Scaling groups from the plan and boots them with the rendered bootstrap text', () => {
    const plan = examplePlan('single-region');
    const r = resources(docs.get('single-region')!);
    const asgs = Object.values(r.aws_autoscaling_group!);
    const proxy = asgs.find((a) => a.name === 'acme-mail-proxy')!;
    const mail = asgs.find((a) => a.name === 'acme-mail-mail')!;
    assert.deepEqual([proxy.min_size, proxy.max_size, proxy.desired_capacity], [plan.sizing.proxyNodes.min, plan.sizing.proxyNodes.max, plan.sizing.proxyNodes.desired]);
    assert.deepEqual([mail.min_size, mail.max_size, mail.desired_capacity], [plan.sizing.mailNodes.min, plan.sizing.mailNodes.max, plan.sizing.mailNodes.desired]);
    assert.equal((proxy.target_group_arns as string[]).length, plan.listeners.length);
    const lts = Object.values(r.aws_launch_template!);
    assert.equal(b64(lts.find((l) => l.name === 'acme-mail-proxy')!.user_data as string), bootstrapText(plan, 'proxy', 'primary'));
    assert.equal(b64(lts.find((l) => l.name === 'acme-mail-mail')!.user_data as string), bootstrapText(plan, 'mail', 'primary'));
    // Storage and LDAP nodes boot from their kind's launch template (no user data of their own).
    for (const role of ['storage', 'ldap'] as const) {
      const lt = Object.entries(r.aws_launch_template!).find(([, l]) => l.name === `acme-mail-${role}`)!;
      assert.equal(b64(lt[1].user_data as string), bootstrapText(plan, role, 'primary'), role);
      const nodes = Object.values(r.aws_instance!).filter((i) => (i.tags as Record<string, string>)['mailfleet:role'] === role);
      assert.ok(nodes.length > 0, role);
      for (const i of nodes) {
        assert.equal(i.user_data_base64, undefined, role);
        assert.equal((i.launch_template as { id: string }).id, `\${aws_launch_template.${lt[0]}.id}`, role);
      }
    }
    const storage = Object.values(r.aws_instance!).filter((i) => (i.tags as Record<string, string>)['mailfleet:role'] === 'storage');
    assert.equal(storage.length, plan.sizing.storageNodes);
    // Bricks live on separate volumes, one per storage node, attached as /dev/sdf.
    const volumes = Object.values(r.aws_ebs_volume!);
    assert.deepEqual(
      volumes.map((v) => v.size),
      storage.map(() => (plan.storage.kind === 'glusterfs' ? plan.storage.volumeSizeGiB : -1)),
    );
    assert.ok(volumes.every((v) => v.encrypted === true && v.type === 'gp3'));
    const attachments = Object.values(r.aws_volume_attachment!);
    assert.equal(attachments.length, storage.length);
    assert.ok(attachments.every((a) => a.device_name === '/dev/sdf'));
  });

  it('GIVEN 60 dedicated tenants WHEN written THEN one HAProxy group per NLB shard, each attached to its own shard\'s target groups only', () => {
    const plan = tenantsPlan(60);
    const r = resources(terraformJson(plan));
    const proxies = Object.values(r.aws_autoscaling_group!).filter(
      (a) => a.provider !== 'aws.dr' && (a.tag as { key: string; value: string }[]).some((t) => t.key === 'mailfleet:role' && t.value === 'proxy'),
    );
    assert.ok(plan.nlbShards.length > 1);
    assert.equal(proxies.length, plan.nlbShards.length);
    const attached = proxies.map((a) => (a.target_group_arns as string[]).length);
    assert.ok(attached.every((n) => n <= 50), `an ASG attaches at most 50 target groups: ${attached.join(',')}`);
    assert.deepEqual(attached, plan.nlbShards.map((s) => s.listeners.length));
    assert.equal(new Set(proxies.flatMap((a) => a.target_group_arns as string[])).size, plan.listeners.length);
    assert.equal(Object.values(r.aws_launch_template!).filter((l) => l.name === `${plan.platform}-proxy`).length, 1, 'the shards share one launch template');
  });

  it('in DR: a Route 53 health check per primary NLB and PRIMARY/SECONDARY failover records', () => {
    const r = resources(docs.get('primary-dr')!);
    const hc = Object.values(r.aws_route53_health_check!);
    assert.equal(hc.length, 1);
    // The service, not a TCP accept: an alarm on the shard's healthy HAProxy targets (first listener's target group).
    assert.equal(hc[0]!.type, 'CLOUDWATCH_METRIC');
    assert.equal(hc[0]!.insufficient_data_health_status, 'LastKnownStatus');
    assert.equal(hc[0]!.cloudwatch_alarm_region, 'eu-west-1');
    const alarmAddress = /^\$\{aws_cloudwatch_metric_alarm\.([^.]+)\.alarm_name\}$/.exec(String(hc[0]!.cloudwatch_alarm_name))![1]!;
    const alarm = r.aws_cloudwatch_metric_alarm![alarmAddress]!;
    assert.equal(alarm.namespace, 'AWS/NetworkELB');
    assert.equal(alarm.metric_name, 'HealthyHostCount');
    assert.equal(alarm.comparison_operator, 'LessThanThreshold');
    assert.equal(alarm.treat_missing_data, 'breaching');
    const first = examplePlan('primary-dr').nlbShards[0]!.listeners[0]!;
    assert.deepEqual(alarm.dimensions, { LoadBalancer: '${aws_lb.primary-nlb-0.arn_suffix}', TargetGroup: `\${aws_lb_target_group.primary-tg-${first}.arn_suffix}` });
    const records = Object.values(r.aws_route53_record!).filter((x) => x.failover_routing_policy !== undefined);
    assert.deepEqual(records.map((x) => (x.failover_routing_policy as { type: string }).type).sort(), ['PRIMARY', 'SECONDARY']);
    assert.ok(records.every((x) => x.name === 'mail.globex.example' && x.zone_id === 'Z9876543210ZYXWVUTSRQ'));
    const primaryAlias = records.find((x) => (x.failover_routing_policy as { type: string }).type === 'PRIMARY')!;
    assert.equal((primaryAlias.alias as { evaluate_target_health: boolean }).evaluate_target_health, false, 'the health check decides for the primary');
    const drills = Object.values(r.aws_fis_experiment_template!);
    assert.equal(drills.length, 3, 'three DR drills in the primary');
    assert.ok(drills.every((d) => d.provider !== 'aws.dr'), 'drills run in the primary region');
    // Private names the node files use: gluster-N in each region's platform zone (the mail nodes' mounts),
    // and every storage node of each region in its region zone (its own name, peer and brick host, which
    // the other region resolves for geo-replication and the drill's fail-back copy).
    const names = Object.values(r.aws_route53_record!).filter((x) => x.failover_routing_policy === undefined).map((x) => x.name as string).sort();
    assert.deepEqual(names, [
      'gluster-1.dr.globex-mail.internal',
      'gluster-1.globex-mail.internal',
      'gluster-1.globex-mail.internal',
      'gluster-1.primary.globex-mail.internal',
      'gluster-2.dr.globex-mail.internal',
      'gluster-2.globex-mail.internal',
      'gluster-2.globex-mail.internal',
      'gluster-2.primary.globex-mail.internal',
      'gluster-3.dr.globex-mail.internal',
      'gluster-3.globex-mail.internal',
      'gluster-3.globex-mail.internal',
      'gluster-3.primary.globex-mail.internal',
    ]);
    assert.equal(Object.keys(r.aws_directory_service_directory!).length, 1, 'managed-ad provisions one AWS Managed Microsoft AD');
    const drAsgs = Object.values(r.aws_autoscaling_group!).filter((a) => a.provider === 'aws.dr');
    assert.deepEqual(drAsgs.map((a) => [a.min_size, a.desired_capacity]), [[0, 0], [0, 0]], 'pilot light: no DR compute until failover');
  });

  it('in DR: the regions are linked as the CDK DisasterRecovery construct links them (peering, routes both ways, region zones on the other VPC)', () => {
    const r = resources(docs.get('primary-dr')!);
    const [peering] = Object.values(r.aws_vpc_peering_connection!);
    assert.equal(peering!.provider, 'aws.dr', 'DR requests');
    assert.equal(peering!.vpc_id, '${aws_vpc.dr-vpc.id}');
    assert.equal(peering!.peer_vpc_id, '${aws_vpc.primary-vpc.id}');
    assert.equal(peering!.peer_region, 'eu-west-1');
    const [accept] = Object.values(r.aws_vpc_peering_connection_accepter!);
    assert.equal(accept!.provider, 'aws', 'the primary accepts');
    assert.equal(accept!.auto_accept, true);
    const peerRoutes = Object.values(r.aws_route!).filter((x) => x.vpc_peering_connection_id !== undefined);
    assert.deepEqual(
      peerRoutes.map((x) => [x.provider ?? 'aws', x.route_table_id, x.destination_cidr_block]).sort(),
      [
        ['aws', '${aws_route_table.primary-private-rt.id}', '10.41.0.0/16'],
        ['aws.dr', '${aws_route_table.dr-private-rt.id}', '10.40.0.0/16'],
      ],
    );
    assert.ok(peerRoutes.every((x) => x.vpc_peering_connection_id === '${aws_vpc_peering_connection_accepter.peering-accept.id}'), 'routes wait for the accept');
    const assoc = Object.values(r.aws_route53_zone_association!).map((x) => [x.zone_id, x.vpc_id]).sort();
    assert.deepEqual(assoc, [
      ['${aws_route53_zone.dr-zone-region.zone_id}', '${aws_vpc.primary-vpc.id}'],
      ['${aws_route53_zone.primary-zone-region.zone_id}', '${aws_vpc.dr-vpc.id}'],
    ]);
    assert.deepEqual((r.aws_route53_zone!['primary-zone-region']!.lifecycle as { ignore_changes: string[] }).ignore_changes, ['vpc']);
    assert.equal(resources(docs.get('single-region')!).aws_vpc_peering_connection, undefined, 'no link without DR');
  });

  it('in DR across two accounts: each zone owner authorizes and the VPC owner associates; terraform validate passes', () => {
    const base = examplePlan('primary-dr').spec;
    const spec = { ...base, regions: { ...base.regions, dr: { ...base.regions!.dr!, account: '333333333333' } } };
    const plan = buildPlan(parseSpec(JSON.stringify(spec), 'two-accounts.yaml'));
    const r = resources(terraformJson(plan));
    const auth = Object.values(r.aws_route53_vpc_association_authorization!).map((x) => [x.provider ?? 'aws', x.zone_id]).sort();
    assert.deepEqual(auth, [
      ['aws', '${aws_route53_zone.primary-zone-region.zone_id}'],
      ['aws.dr', '${aws_route53_zone.dr-zone-region.zone_id}'],
    ]);
    const assoc = Object.values(r.aws_route53_zone_association!).map((x) => [x.provider ?? 'aws', x.vpc_id]).sort();
    assert.deepEqual(assoc, [
      ['aws', '${aws_route53_vpc_association_authorization.dr-zone-on-primary-vpc-auth.vpc_id}'],
      ['aws.dr', '${aws_route53_vpc_association_authorization.primary-zone-on-dr-vpc-auth.vpc_id}'],
    ]);
    assert.equal(Object.values(r.aws_vpc_peering_connection!)[0]!.peer_owner_id, '222222222222');
    const tools = findTerraformTools();
    if (tools.missing.length > 0) return; // the validate test above fails loudly for this
    const r2 = validateTerraform(writeTerraform(plan, join(out, 'two-accounts')), { cli: tools.cli!, mirror: tools.mirror! });
    assert.equal(r2.valid, true, r2.output);
  });

  it('fails when the spec has no AWS region', () => {
    const plan = buildPlan(specSchema.parse({ version: 1, platform: { name: 'noregion' }, domains: [{ name: 'a.example' }] }));
    assert.throws(() => terraformJson(plan), /regions\.primary/);
  });

  it('writes a readable cdk.tf.json', () => {
    const dir = writeTerraform(examplePlan('single-region'), join(out, 'read'));
    const doc = JSON.parse(readFileSync(join(dir, 'cdk.tf.json'), 'utf8')) as TerraformJson;
    assert.ok(resources(doc).aws_lb);
  });
});
