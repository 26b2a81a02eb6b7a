import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Stack, Validations } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { IConstruct } from 'constructs';
import { addNagChecks, addPlatformStacks } from '../../stacks/app.js';
import { cleanupApps, examplePlan, testApp } from './helpers.js';
import { variant } from '../constructs/fixture.js';

after(cleanupApps);

/** Every acknowledgement in the tree, with its reason. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      // The metadata maps rule id → reason.
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .map(([id, reason]) => ({ path: c.node.path, id, reason })),
  );
}

describe('cdk-nag AwsSolutions on every stack', () => {
  for (const [label, plan] of [
    ['primary-dr.yaml (GlusterFS, Managed AD, DR)', () => examplePlan('examples/primary-dr.yaml')],
    ['single-region.yaml (OpenLDAP pair)', () => examplePlan('examples/single-region.yaml')],
    ['EFS storage with a DR region', () => variant({ storage: { kind: 'efs' }, regions: examplePlan('examples/primary-dr.yaml').regions })],
  ] as const) {
    test(`GIVEN ${label} WHEN synthesized with AwsSolutionsChecks THEN no finding is left unacknowledged`, () => {
      // CDK's built-in CloudFormation rule check runs in the examples synth test; here only cdk-nag.
      const app = testApp({}, false);
      addPlatformStacks(app, plan());
      addNagChecks(app);
      assert.doesNotThrow(() => app.synth());
      const acks = acknowledgements(app);
      assert.ok(acks.length > 10);
      for (const a of acks) assert.ok(a.reason.length >= 40, `${a.path} ${a.id}: the reason must say why ("${a.reason}")`);
    });
  }

  test('fails when a stack gains a resource with a new finding', () => {
    const app = testApp({}, false);
    const { primary } = addPlatformStacks(app, examplePlan('examples/single-region.yaml'));
    new sns.Topic(primary as Stack, 'Unreviewed');
    addNagChecks(app);
    assert.throws(() => app.synth(), /Validation failed/);
    const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as {
      pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs?: { constructPath: string }[] }[] }[];
    };
    const nag = report.pluginReports.find((p) => p.pluginName === 'AwsSolutions')!;
    const rules = nag.violations.filter((v) => v.violatingConstructs?.some((c) => c.constructPath.includes('Unreviewed'))).map((v) => v.ruleName);
    assert.ok(rules.includes('AwsSolutions-SNS3'), rules.join(', '));
    assert.ok(nag.violations.every((v) => v.violatingConstructs?.every((c) => c.constructPath.includes('Unreviewed'))), 'only the new topic is reported');
  });
});
