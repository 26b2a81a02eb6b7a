import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cleanupApps, examplePlan, synthPlatform } from './helpers.js';
import { assertMatchesPlan, templatesOf } from './inventory-check.js';

after(cleanupApps);

describe('synth of examples/', () => {
  const single = synthPlatform(examplePlan('examples/single-region.yaml'));
  const pdr = synthPlatform(examplePlan('examples/primary-dr.yaml'));

  test('GIVEN single-region.yaml WHEN synthesized THEN one stack in its region with the plan inventory', () => {
    assert.deepEqual(single.assembly.stacks.map((s) => s.stackName), ['acme-mail-primary']);
    assert.deepEqual(single.assembly.stacks[0]!.environment, { account: '111111111111', region: 'eu-west-1', name: 'aws://111111111111/eu-west-1' });
    assertMatchesPlan(single.plan, templatesOf(single.assembly));
  });

  test('GIVEN primary-dr.yaml WHEN synthesized THEN a primary and a DR stack, each template written, inventory as planned', () => {
    const names = pdr.assembly.stacks.map((s) => `${s.stackName}@${s.environment.region}`).sort();
    assert.deepEqual(names, ['globex-mail-dr@eu-central-1', 'globex-mail-primary@eu-west-1']);
    for (const s of pdr.assembly.stacks) assert.ok(existsSync(join(pdr.assembly.directory, s.templateFile)));
    assertMatchesPlan(pdr.plan, templatesOf(pdr.assembly));
    console.log(`# primary-dr synth: ${pdr.seconds.toFixed(1)} s (target 15 s; bench/synth has the figures)`);
  });

  test('THEN the DR region runs at pilot-light size: no compute until failover', () => {
    const dr = pdr.assembly.stacks.find((s) => s.stackName.endsWith('-dr'))!;
    const groups = Object.values((dr.template as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources).filter(
      (r) => r.Type === 'AWS::AutoScaling::AutoScalingGroup',
    );
    assert.ok(groups.length >= 2);
    for (const g of groups) assert.equal(g.Properties['MinSize'], '0');
  });

  test('THEN the template does not depend on lookups: no cdk.context.json values were needed', () => {
    for (const s of [...single.assembly.stacks, ...pdr.assembly.stacks]) {
      const missing = s.manifest.metadata ? Object.values(s.manifest.metadata).flat().filter((m) => m.type === 'aws:cdk:missing-context') : [];
      assert.deepEqual(missing, [], s.stackName);
    }
    assert.equal(pdr.assembly.manifest.missing, undefined);
  });
});
