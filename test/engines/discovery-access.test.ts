/**
 * Mail tier discovery (bootstrap/register.sh) against the mail node role of every engine: each AWS API
 * call the rendered script makes (read from the script, as the node runs it) must be allowed to the mail
 * role by CDK, Terraform and Pulumi alike, and the zone id the script reads must be published. A call the
 * role may not make fails on the node: registration (ListResourceRecordSets) would leave the node out of
 * HAProxy, reconciliation (Describe*) would never drop a dead node.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Template as CdkTemplate } from 'aws-cdk-lib/assertions';
import { MailServerFleet } from '../../constructs/mail-server-fleet/index.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { mailNodesHost, ssmPrefix } from '../../lib/render/node-layout.js';
import { loadSpec } from '../../lib/spec/index.js';
import { fixture, single } from '../constructs/fixture.js';
import { cleanupApps } from '../stacks/helpers.js';

after(cleanupApps);

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);

/** `service:Action` of every API call the rendered register.sh makes (its botocore clients by variable). */
function callsOfRegisterScript(): string[] {
  const script = nodeFiles(plan, 'mail', 'primary').find((f) => f.path === 'bootstrap/register.sh')!.content;
  const services: Record<string, string> = {};
  for (const m of script.matchAll(/^\s*(\w+) = session\.create_client\("([\w-]+)"/gm)) services[m[1]!] = m[2]!;
  const calls = new Set<string>();
  for (const m of script.matchAll(/\b(\w+)\.([a-z_]+)\(/g)) {
    const service = services[m[1]!];
    if (service) calls.add(`${service}:${m[2]!.split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}`);
  }
  return [...calls].sort();
}

type Statement = { Action: string | string[]; Resource?: unknown; Condition?: Record<string, Record<string, unknown>> };
const statementsOf = (policyJson: string) => (JSON.parse(policyJson) as { Statement: Statement[] }).Statement;
const allows = (statements: Statement[], action: string) => statements.some((s) => [s.Action].flat().includes(action));

describe('mail tier discovery: the calls register.sh makes are allowed to the mail role in every engine', () => {
  const calls = callsOfRegisterScript();

  it('register.sh reads and changes the record, and reads group membership (the calls this test checks)', () => {
    assert.deepEqual(calls, [
      'autoscaling:DescribeAutoScalingGroups',
      'autoscaling:DescribeAutoScalingInstances',
      'ec2:DescribeInstances',
      'route53:ChangeResourceRecordSets',
      'route53:ListResourceRecordSets',
    ]);
  });

  it('terraform: the mail role allows every call; the record change only on the mail tier name', () => {
    const r = terraformJson(plan).resource as Record<string, Record<string, Record<string, unknown>>>;
    const policy = statementsOf(Object.entries(r.aws_iam_role_policy!).find(([k]) => k.endsWith('role-mail-policy'))![1].policy as string);
    for (const a of calls) assert.ok(allows(policy, a), `terraform mail role: ${a}`);
    const change = policy.find((s) => [s.Action].flat().includes('route53:ChangeResourceRecordSets'))!;
    assert.deepEqual(change.Condition?.['ForAllValues:StringEquals']?.['route53:ChangeResourceRecordSetsNormalizedRecordNames'], [mailNodesHost(plan)]);
    const params = Object.values(r.aws_ssm_parameter!).map((p) => p.name);
    assert.ok(params.includes(`${ssmPrefix(plan)}/private-zone-id`), 'the zone id parameter the script reads');
  });

  it('pulumi: the mail role allows every call; the record change only on the mail tier name', async () => {
    const regs = await registrationsOf(plan);
    const policy = statementsOf(regs.find((x) => x.type === 'aws:iam/rolePolicy:RolePolicy' && x.name.endsWith('-mail-node'))!.inputs.policy as string);
    for (const a of calls) assert.ok(allows(policy, a), `pulumi mail role: ${a}`);
    const change = policy.find((s) => [s.Action].flat().includes('route53:ChangeResourceRecordSets'))!;
    assert.deepEqual(change.Condition?.['ForAllValues:StringEquals']?.['route53:ChangeResourceRecordSetsNormalizedRecordNames'], [mailNodesHost(plan)]);
    const params = regs.filter((x) => x.type === 'aws:ssm/parameter:Parameter').map((x) => x.inputs.name);
    assert.ok(params.includes(`${ssmPrefix(plan)}/private-zone-id`), 'the zone id parameter the script reads');
  });

  it('cdk: the mail fleet role allows every call; the record change only on the mail tier name', () => {
    const p = single();
    const { stack, vpc, zone } = fixture();
    new MailServerFleet(stack, 'Mail', { plan: p, vpc, privateZone: zone });
    const t = CdkTemplate.fromStack(stack);
    const policy = Object.values(t.findResources('AWS::IAM::Policy')).flatMap((x) => x.Properties.PolicyDocument.Statement as Statement[]);
    for (const a of calls) assert.ok(allows(policy, a), `cdk mail role: ${a}`);
    const change = policy.find((s) => [s.Action].flat().includes('route53:ChangeResourceRecordSets'))!;
    assert.deepEqual(change.Condition?.['ForAllValues:StringEquals']?.['route53:ChangeResourceRecordSetsNormalizedRecordNames'], [mailNodesHost(p)]);
    const params = Object.values(t.findResources('AWS::SSM::Parameter')).map((x) => x.Properties.Name as string);
    assert.ok(params.includes(`${ssmPrefix(p)}/private-zone-id`), 'the zone id parameter the script reads');
  });
});
