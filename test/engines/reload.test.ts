/**
 * In-place reload (lib/plan/reload.ts) in every engine: the SSM Command document and the State Manager
 * association per stateless tier, targeting that tier's nodes by tag, one node at a time, carrying the hash
 * of the node files the engine ships, so a changed plan (a tenant added) runs the reload again on the proxies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Template } from 'aws-cdk-lib/assertions';
import { FlowControlTier } from '../../constructs/flow-control-tier/index.js';
import { MailServerFleet } from '../../constructs/mail-server-fleet/index.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { proxyReloadScript, mailReloadScript } from '../../lib/plan/reload.js';
import type { Plan } from '../../lib/plan/types.js';
import { fixture, single, variant } from '../constructs/fixture.js';
import { loadSpec } from '../../lib/spec/index.js';

type Body = Record<string, unknown>;
const tfOf = (plan: Plan) => terraformJson(plan).resource as Record<string, Record<string, Body>>;

/** The single-region example plus one dedicated tenant: a new HAProxy frontend. */
const withTenant = () =>
  variant({ domains: [...(loadSpec('examples/single-region.yaml').spec.domains as unknown[]), { name: 'newco.example', listeners: 'dedicated' }] });

describe('in-place reload: every engine translates the model', () => {
  it('terraform: a document and an association per tier, targeting the tier by tag; a new tenant changes the proxy trigger', () => {
    const a = tfOf(single());
    const docs = Object.values(a.aws_ssm_document ?? {});
    assert.deepEqual(docs.map((d) => d.name).sort(), ['acme-mail-reload-mail', 'acme-mail-reload-proxy']);
    const proxyDoc = docs.find((d) => d.name === 'acme-mail-reload-proxy')!;
    // The script travels base64-encoded (${base64decode("…")}) so Terraform does not read its `${` as interpolation.
    const b64 = /^\$\{base64decode\("([A-Za-z0-9+/=]+)"\)\}$/.exec(String(proxyDoc.content))![1]!;
    const steps = (JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as { mainSteps: { inputs: { runCommand: string[] } }[] }).mainSteps;
    assert.equal(steps[0]!.inputs.runCommand.join('\n'), proxyReloadScript(single()));
    const assoc = (r: Record<string, Record<string, Body>>, kind: string) =>
      Object.values(r.aws_ssm_association ?? {}).find((x) => x.association_name === `acme-mail-reload-${kind}`)!;
    for (const kind of ['proxy', 'mail']) {
      const x = assoc(a, kind);
      assert.deepEqual(x.targets, [
        { key: 'tag:mailfleet:role', values: [kind] },
        { key: 'tag:mailfleet:platform', values: ['acme-mail'] },
      ]);
      assert.equal(x.max_concurrency, '1');
      assert.equal(x.max_errors, '0');
      assert.match(String((x.parameters as Record<string, string>).contentHash), /^[0-9a-f]{16,}$/);
    }
    const b = tfOf(withTenant());
    const hash = (r: Record<string, Record<string, Body>>, kind: string) => (assoc(r, kind).parameters as Record<string, string>).contentHash;
    assert.notEqual(hash(b, 'proxy'), hash(a, 'proxy'), 'a new frontend must run the proxy reload again');
  });

  it('pulumi: the same documents and associations', async () => {
    const regs = await registrationsOf(single());
    const docs = regs.filter((r) => r.type === 'aws:ssm/document:Document');
    assert.deepEqual(docs.map((d) => d.inputs.name).sort(), ['acme-mail-reload-mail', 'acme-mail-reload-proxy']);
    const mailDoc = docs.find((d) => d.inputs.name === 'acme-mail-reload-mail')!;
    assert.equal((JSON.parse(String(mailDoc.inputs.content)) as { mainSteps: { inputs: { runCommand: string[] } }[] }).mainSteps[0]!.inputs.runCommand.join('\n'), mailReloadScript(single()));
    const assocs = regs.filter((r) => r.type === 'aws:ssm/association:Association');
    assert.equal(assocs.length, 2);
    for (const x of assocs) {
      const kind = String(x.inputs.associationName).endsWith('proxy') ? 'proxy' : 'mail';
      assert.deepEqual(x.inputs.targets, [
        { key: 'tag:mailfleet:role', values: [kind] },
        { key: 'tag:mailfleet:platform', values: ['acme-mail'] },
      ]);
      assert.match(String((x.inputs.parameters as Record<string, string>).contentHash), /^[0-9a-f]{16,}$/);
    }
  });

  it('cdk: FlowControlTier and MailServerFleet each carry their document and association; the proxy trigger follows the node files', () => {
    const synth = (plan: Plan) => {
      const { stack, vpc, zone } = fixture();
      new FlowControlTier(stack, 'Proxy', { plan, vpc });
      new MailServerFleet(stack, 'Mail', { plan, vpc, privateZone: zone });
      return Template.fromStack(stack);
    };
    const t = synth(single());
    const docs = Object.values(t.findResources('AWS::SSM::Document')).map((d) => d.Properties as Body);
    assert.deepEqual(docs.map((d) => d.Name).sort(), ['acme-mail-reload-mail', 'acme-mail-reload-proxy']);
    const assocs = Object.values(t.findResources('AWS::SSM::Association')).map((d) => d.Properties as Body);
    const proxyAssoc = assocs.find((x) => x.AssociationName === 'acme-mail-reload-proxy')!;
    assert.deepEqual(proxyAssoc.Targets, [
      { Key: 'tag:mailfleet:role', Values: ['proxy'] },
      { Key: 'tag:mailfleet:platform', Values: ['acme-mail'] },
    ]);
    assert.equal(proxyAssoc.MaxConcurrency, '1');
    const proxyDoc = docs.find((d) => d.Name === 'acme-mail-reload-proxy')!;
    assert.equal((proxyDoc.Content as { mainSteps: { inputs: { runCommand: string[] } }[] }).mainSteps[0]!.inputs.runCommand.join('\n'), proxyReloadScript(single()));
    const trigger = (tt: Template) =>
      (Object.values(tt.findResources('AWS::SSM::Association')).map((d) => d.Properties as Body).find((x) => x.AssociationName === 'acme-mail-reload-proxy')!.Parameters as Record<string, string[]>).contentHash![0];
    assert.notEqual(trigger(synth(withTenant())), trigger(t));
  });
});
