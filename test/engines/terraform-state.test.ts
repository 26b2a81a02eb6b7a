/** The Terraform folder carries no path of the machine that wrote it: state is relative unless asked. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdktf';
import { platformModel } from '../../engines/platform.js';
import { MailfleetTerraformStack, writeTerraform } from '../../engines/terraform/index.js';
import { examplePlan } from './helpers.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('terraform state location', () => {
  it('GIVEN mailfleet synth --engine terraform WHEN written THEN the local state path is relative (terraform.tfstate), not the synth machine\'s path', () => {
    const out = mkdtempSync(join(tmpdir(), 'mailfleet-tfstate-'));
    dirs.push(out);
    const doc = readFileSync(join(writeTerraform(examplePlan('single-region'), out), 'cdk.tf.json'), 'utf8');
    const tf = JSON.parse(doc) as { terraform: { backend: { local: { path: string } } } };
    assert.equal(tf.terraform.backend.local.path, 'terraform.tfstate');
    assert.ok(!doc.includes(process.cwd()) && !doc.includes(out), 'no absolute path of this machine in the Terraform JSON');
  });

  it('GIVEN statePath THEN that path is the local backend', () => {
    const stack = new MailfleetTerraformStack(Testing.app(), 'x', { model: platformModel(examplePlan('single-region')), statePath: 'state/acme.tfstate' });
    const tf = JSON.parse(Testing.synth(stack)) as { terraform: { backend: { local: { path: string } } } };
    assert.equal(tf.terraform.backend.local.path, 'state/acme.tfstate');
  });
});
