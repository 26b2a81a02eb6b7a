import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { Template } from 'aws-cdk-lib/assertions';
import { buildPlan } from '../../lib/plan/index.js';
import { parseSpec } from '../../lib/spec/index.js';
import { cleanupApps, synthPlatform } from './helpers.js';

after(cleanupApps);

/** examples/primary-dr.yaml with regions.<r>.terminationProtection set as given (undefined: left out). */
function planWith(protection: boolean | undefined) {
  const doc = yaml.load(readFileSync('examples/primary-dr.yaml', 'utf8')) as { regions: Record<string, Record<string, unknown>> };
  for (const r of Object.values(doc.regions)) if (protection !== undefined) r.terminationProtection = protection;
  return buildPlan(parseSpec(JSON.stringify(doc), 'examples/primary-dr.yaml'));
}

/** DisableApiTermination of every EC2 instance in a stack's template (storage and LDAP nodes). */
function instanceProtection(template: Template): unknown[] {
  return Object.values(template.findResources('AWS::EC2::Instance')).map((r) => (r as { Properties: Record<string, unknown> }).Properties.DisableApiTermination);
}

describe('termination protection is a spec choice (regions.<r>.terminationProtection)', () => {
  it('GIVEN the spec leaves it out THEN both stacks and their stateful instances are protected (today\'s behaviour, documented default true)', () => {
    const { assembly, stacks } = synthPlatform(planWith(undefined), { validation: false });
    for (const s of [stacks.primary, stacks.dr!]) {
      assert.equal(assembly.getStackByName(s.stackName).terminationProtection, true, `${s.stackName} stack protected`);
      const flags = instanceProtection(Template.fromStack(s));
      assert.ok(flags.length > 0, `${s.stackName} has stateful instances`);
      assert.deepEqual(new Set(flags), new Set([true]));
    }
  });

  it('GIVEN terminationProtection: false THEN neither the stacks nor any instance blocks `cdk destroy`', () => {
    const { assembly, stacks } = synthPlatform(planWith(false), { validation: false });
    for (const s of [stacks.primary, stacks.dr!]) {
      assert.notEqual(assembly.getStackByName(s.stackName).terminationProtection, true, `${s.stackName} stack unprotected`);
      const flags = instanceProtection(Template.fromStack(s));
      assert.ok(flags.length > 0, `${s.stackName} has stateful instances`);
      for (const f of flags) assert.notEqual(f, true, `${s.stackName}: an instance keeps DisableApiTermination`);
    }
  });
});
