/** plan → Terraform JSON, in memory (tests, parity) or as files (`mailfleet synth --engine terraform`). */
import { App, Testing } from 'cdktf';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../lib/plan/types.js';
import { platformModel } from '../platform.js';
import { MailfleetTerraformStack } from './stack.js';

/** The Terraform JSON document (cdk.tf.json) of the platform. */
export type TerraformJson = Record<string, unknown>;

export function terraformJson(plan: Plan): TerraformJson {
  const stack = new MailfleetTerraformStack(Testing.app(), plan.platform, { model: platformModel(plan) });
  return JSON.parse(Testing.synth(stack)) as TerraformJson;
}

/** Writes `<outDir>/stacks/<platform>/cdk.tf.json` (plus cdktf's manifest) and returns the stack folder. */
export function writeTerraform(plan: Plan, outDir: string): string {
  mkdirSync(outDir, { recursive: true });
  const app = new App({ outdir: outDir, skipValidation: false });
  new MailfleetTerraformStack(app, plan.platform, { model: platformModel(plan) });
  app.synth();
  return join(outDir, 'stacks', plan.platform);
}
