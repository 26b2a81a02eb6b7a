/** Shared synth helpers for the stack tests: the cdk.json context, specs, and assemblies synthesized once. */
import { App } from 'aws-cdk-lib';
import type * as cxapi from 'aws-cdk-lib/cx-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext } from '../../constructs/shared/cdk-context.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { addNagChecks, addPlatformStacks, type PlatformStacks } from '../../stacks/app.js';
import { tenantsSpec } from '../../scripts/gen-tenants.js';

const outDirs: string[] = [];

/**
 * An App like the CLI's: cdk.json context, no stack traces in metadata (the CLI's default), output in a
 * temp dir removed by cleanupApps(). `validation: false` skips CDK's built-in CloudFormation rule check
 * (a WASM engine, about a fifth of synth time) for tests that only count resources.
 */
export function testApp(extra: Record<string, unknown> = {}, validation = true): App {
  const outdir = mkdtempSync(join(tmpdir(), 'mailfleet-cdk-'));
  outDirs.push(outdir);
  return new App({
    context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true, ...extra },
    outdir,
    builtinCloudFormationValidation: validation,
  });
}

export function cleanupApps(): void {
  for (const d of outDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function examplePlan(file: string): Plan {
  return buildPlan(loadSpec(file).spec);
}

export function tenantsPlan(n: number): Plan {
  return buildPlan(parseSpec(JSON.stringify(tenantsSpec(n)), `tenants-${n}.yaml`));
}

export interface Synthesized {
  readonly plan: Plan;
  readonly app: App;
  readonly stacks: PlatformStacks;
  readonly assembly: cxapi.CloudAssembly;
  readonly seconds: number;
}

export function synthPlatform(
  plan: Plan,
  opts: { nag?: boolean; context?: Record<string, unknown>; validation?: boolean } = {},
): Synthesized {
  const t0 = performance.now();
  const app = testApp(opts.context, opts.validation ?? true);
  const stacks = addPlatformStacks(app, plan);
  if (opts.nag) addNagChecks(app);
  const assembly = app.synth();
  return { plan, app, stacks, assembly, seconds: (performance.now() - t0) / 1000 };
}
