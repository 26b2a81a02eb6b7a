/**
 * The drill's outputs against the real producers: a CDK cloud assembly synthesized like `cdk synth` and
 * the Terraform folder `mailfleet synth --engine terraform` writes. The CLI runs against both.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAwsDrillPlan } from '../../lib/dr/aws-plan.js';
import { checkDrillOutputs } from '../../lib/dr/check-outputs.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { writeTerraform } from '../../engines/terraform/index.js';
import { cleanupApps, synthPlatform } from '../stacks/helpers.js';

const dirs: string[] = [];
after(() => {
  cleanupApps();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'mailfleet-outputs-'));
  dirs.push(d);
  return d;
};

/** A spec file beside the examples' defaults: primary-dr.yaml with EFS storage and an OpenLDAP pair. */
function efsSpecFile(): string {
  const text = readFileSync('examples/primary-dr.yaml', 'utf8')
    .replace(/storage:\n {2}kind: glusterfs\n {2}nodes: 3\n/, 'storage:\n  kind: efs\n')
    .replace(/directory:\n[\s\S]*?\ndr:/, 'directory:\n  kind: ldap\n  provision: openldap-pair\n  uris: [ldap://ldap.internal]\n  baseDn: dc=globex,dc=example\n  userDnTemplate: uid={local},ou=people,dc=globex,dc=example\ndr:');
  const file = join(tmp(), 'efs-dr.yaml');
  writeFileSync(file, text);
  return file;
}

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'dr', 'drill', '--aws', ...args], {
    encoding: 'utf8',
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
  });

const planOf = (file: string): Plan => buildPlan(loadSpec(file).spec);
const cdkOut = (plan: Plan) => synthPlatform(plan, { validation: false }).assembly.directory;
const synthesized = new Map<string, string>();
/** One synth per spec: the negative case edits primary-dr's assembly after the positive one read it. */
const cdkOutOf = (file: string, plan: Plan) => {
  if (!synthesized.has(file)) synthesized.set(file, cdkOut(plan));
  return synthesized.get(file)!;
};

describe('mailfleet dr drill --aws --check-outputs (the drill against what the engines synthesize)', () => {
  for (const spec of ['examples/primary-dr.yaml', 'efs-openldap']) {
    it(`GIVEN ${spec} WHEN checked against cdk synth and the Terraform folder THEN every output the drill reads is exported`, () => {
      const file = spec === 'efs-openldap' ? efsSpecFile() : spec;
      const plan = planOf(file);
      const drill = buildAwsDrillPlan(plan);
      const assembly = cdkOutOf(file, plan);
      const cdk = checkDrillOutputs(drill, assembly);
      assert.deepEqual(cdk, { engine: 'cdk', missing: [], checked: cdk.checked });
      assert.ok(cdk.checked >= 6, `the drill reads ${cdk.checked} outputs`);
      const tf = writeTerraform(plan, tmp());
      assert.deepEqual(checkDrillOutputs(drill, tf).missing, []);
      const ok = cli('--check-outputs', assembly, '-c', file);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /^ok: the cdk output exports all \d+ outputs the drill reads/);
      const okTf = cli('--check-outputs', tf, '-c', file);
      assert.equal(okTf.status, 0, okTf.stdout + okTf.stderr);
    });
  }

  it('GIVEN a synthesized template without one output WHEN checked THEN it exits 1 naming the missing output', () => {
    const assembly = cdkOutOf('examples/primary-dr.yaml', planOf('examples/primary-dr.yaml'));
    const manifest = JSON.parse(readFileSync(join(assembly, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { type: string; properties?: { templateFile?: string; stackName?: string } }>;
    };
    // The manifest names a stack by its artifact id, with properties.stackName only where the two differ.
    const primary = Object.entries(manifest.artifacts).find(([id, a]) => a.type === 'aws:cloudformation:stack' && (a.properties?.stackName ?? id) === 'globex-mail-primary')![1];
    const path = join(assembly, primary.properties!.templateFile!);
    const template = JSON.parse(readFileSync(path, 'utf8')) as { Outputs: Record<string, unknown> };
    delete template.Outputs['HealthCheckId0'];
    writeFileSync(path, JSON.stringify(template));
    const r = cli('--check-outputs', assembly, '-c', 'examples/primary-dr.yaml');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /missing outputs \(cdk\): globex-mail-primary\.HealthCheckId0\n/);
  });
});
