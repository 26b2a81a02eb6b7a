/**
 * Managed AD in the Terraform and Pulumi engines, read from their real output: each region forwards the
 * domain to the controllers, and the bind account function runs with the secret's ARN, never its value.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { terraformJson, type TerraformJson } from '../../engines/terraform/index.js';
import { registrationsOf, type Registration } from '../../engines/pulumi/mocks.js';
import { examplePlan } from './helpers.js';

type Resources = Record<string, Record<string, Record<string, unknown>>>;

describe('managed AD: terraform', () => {
  let doc: TerraformJson;
  before(() => {
    doc = terraformJson(examplePlan('primary-dr'));
  });
  const res = () => doc.resource as Resources;

  it('each region has an outbound endpoint in two subnets and a FORWARD rule for the domain to the directory\'s DNS addresses, on its VPC', () => {
    const endpoints = Object.values(res().aws_route53_resolver_endpoint ?? {});
    assert.equal(endpoints.length, 2);
    for (const e of endpoints) {
      assert.equal(e.direction, 'OUTBOUND');
      assert.equal((e.ip_address as unknown[]).length, 2);
    }
    const rules = Object.values(res().aws_route53_resolver_rule ?? {});
    assert.equal(rules.length, 2);
    for (const r of rules) {
      assert.equal(r.domain_name, 'globex.example');
      assert.equal(r.rule_type, 'FORWARD');
      const targets = r.target_ip as { ip: string; port: number }[];
      assert.deepEqual(targets.map((t) => t.port), [53, 53]);
      targets.forEach((t, i) => assert.match(t.ip, new RegExp(`^\\$\\{element\\(tolist\\(.*aws_directory_service_directory\\.managed-ad\\.dns_ip_addresses\\)+, ${i}\\)\\}$`)));
    }
    assert.equal(Object.keys(res().aws_route53_resolver_rule_association ?? {}).length, 2);
  });

  it('the bind account function is invoked with the secret ARN after the secret has its first version; the password is only a sensitive variable', () => {
    const inv = Object.values(res().aws_lambda_invocation ?? {});
    assert.equal(inv.length, 1);
    const input = String(inv[0]!.input);
    assert.match(input, /SecretArn/);
    assert.match(input, /aws_secretsmanager_secret\.[\w-]+BindSecret\.arn/);
    assert.match(input, /SamAccountName = "mailfleet-svc"|"SamAccountName":"mailfleet-svc"|mailfleet-svc/);
    assert.ok((inv[0]!.depends_on as string[]).some((d) => /secretsmanager_secret_version\.[\w-]+BindSecret-initial/.test(d)));
    const vars = doc.variable as Record<string, { sensitive?: boolean }>;
    assert.equal(vars.managed_ad_bind_password?.sensitive, true);
    const fn = Object.values(res().aws_lambda_function ?? {})[0]!;
    assert.equal(fn.runtime, 'nodejs22.x');
    assert.equal(fn.environment, undefined);
  });
});

describe('managed AD: pulumi', () => {
  let regs: Registration[];
  before(async () => {
    regs = await registrationsOf(examplePlan('primary-dr'));
  });
  const byType = (type: string) => regs.filter((r) => r.type === type);

  it('each region forwards the domain to the directory\'s two DNS addresses', () => {
    assert.equal(byType('aws:route53/resolverEndpoint:ResolverEndpoint').length, 2);
    const rules = byType('aws:route53/resolverRule:ResolverRule');
    assert.equal(rules.length, 2);
    for (const r of rules) {
      assert.equal(r.inputs.domainName, 'globex.example');
      assert.deepEqual(r.inputs.targetIps, [
        { ip: '10.0.8.10', port: 53 },
        { ip: '10.0.9.10', port: 53 },
      ]);
    }
    assert.equal(byType('aws:route53/resolverRuleAssociation:ResolverRuleAssociation').length, 2);
  });

  it('the bind account function is invoked with the secret ARN, never its value', () => {
    const inv = byType('aws:lambda/invocation:Invocation');
    assert.equal(inv.length, 1);
    const input = JSON.parse(String(inv[0]!.inputs.input)) as Record<string, string>;
    const secret = regs.find((r) => r.type === 'aws:secretsmanager/secret:Secret' && String(r.inputs.name).endsWith('/ldap-bind'))!;
    assert.equal(input.SecretArn, `arn:aws:mock:::aws:secretsmanager/secret:Secret/${secret.name}`);
    assert.equal(input.SamAccountName, 'mailfleet-svc');
    const version = regs.find((r) => r.type === 'aws:secretsmanager/secretVersion:SecretVersion' && r.name === secret.name)!;
    // Pulumi secrets arrive wrapped ({<sig>: …, value}).
    const wrapped = version.inputs.secretString as string | { value: string };
    const password = typeof wrapped === 'string' ? wrapped : wrapped.value;
    assert.ok(/[A-Z]/.test(password) && /[a-z]/.test(password) && /[0-9]/.test(password), 'AD complexity');
    assert.ok(!JSON.stringify(byType('aws:lambda/invocation:Invocation').concat(byType('aws:lambda/function:Function'))).includes(password));
  });
});
