/**
 * The CDK engine as the parity suite and `mailfleet synth --engine cdk` see it: synthesize the CDK
 * app's stacks in-process (the same App as `cdk synth`: cdk.json context, no stack traces) and hand
 * back each region's CloudFormation template(s), nested shard stacks included.
 */
import { App } from 'aws-cdk-lib';
import type { Plan } from '../lib/plan/types.js';
import { cdkJsonContext } from '../constructs/shared/cdk-context.js';
import { templatesOf } from '../constructs/inventory.js';
import { addPlatformStacks } from '../stacks/app.js';
import type { RegionTemplate } from './extract/cloudformation.js';

export interface CdkSynthResult {
  readonly outDir: string;
  readonly templates: RegionTemplate[];
}

export interface CdkSynthOptions {
  /** CDK's built-in CloudFormation rule check (about a fifth of synth time); on by default. */
  readonly validation?: boolean;
}

export function synthCdk(plan: Plan, outDir: string, opts: CdkSynthOptions = {}): CdkSynthResult {
  const app = new App({
    context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true },
    outdir: outDir,
    builtinCloudFormationValidation: opts.validation ?? true,
  });
  const stacks = addPlatformStacks(app, plan);
  const regionOf = new Map<string, RegionTemplate['region']>([[stacks.primary.stackName, 'primary']]);
  if (stacks.dr) regionOf.set(stacks.dr.stackName, 'dr');
  const assembly = app.synth();
  const templates = templatesOf(assembly).flatMap((t) => {
    const region = regionOf.get(t.stack);
    return region ? [{ region, template: t.template as Record<string, unknown> }] : [];
  });
  return { outDir, templates };
}
