/**
 * The drill's preflight, offline: are the outputs the drill reads exported by what an engine synthesized?
 * Reads a `cdk synth` output folder (manifest.json → each stack's template Outputs) or a Terraform folder
 * (cdk.tf.json → `output` blocks, region-qualified names as lib/plan/outputs.ts spells them).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';
import { qualifiedOutputName } from '../plan/outputs.js';
import type { AwsDrillPlan } from './aws-plan.js';

export interface OutputCheck {
  /** `cdk` (a cloud assembly) or `terraform` (Terraform JSON). */
  readonly engine: 'cdk' | 'terraform';
  /** What the drill reads and the folder does not export: `<stack>.<output>` (CDK), `<role>_<output>` (Terraform). */
  readonly missing: readonly string[];
  /** How many outputs the drill reads. */
  readonly checked: number;
}

interface ManifestArtifact {
  readonly type?: string;
  readonly displayName?: string;
  readonly properties?: { readonly templateFile?: string; readonly stackName?: string };
}

/** Output keys per stack name of a cloud assembly (cdk.out). */
export function cdkStackOutputs(dir: string): Map<string, Set<string>> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { artifacts?: Record<string, ManifestArtifact> };
  const out = new Map<string, Set<string>>();
  for (const [id, a] of Object.entries(manifest.artifacts ?? {})) {
    if (a.type !== 'aws:cloudformation:stack' || !a.properties?.templateFile) continue;
    const template = JSON.parse(readFileSync(join(dir, a.properties.templateFile), 'utf8')) as { Outputs?: Record<string, unknown> };
    out.set(a.properties.stackName ?? id, new Set(Object.keys(template.Outputs ?? {})));
  }
  return out;
}

/** The Terraform JSON files of a folder: the folder itself or cdktf's `stacks/<name>/`. */
function terraformFiles(dir: string): string[] {
  const here = readdirSync(dir).filter((f) => f.endsWith('.tf.json')).map((f) => join(dir, f));
  if (here.length > 0) return here;
  const stacks = join(dir, 'stacks');
  if (!existsSync(stacks)) return [];
  return readdirSync(stacks)
    .map((s) => join(stacks, s))
    .filter((d) => statSync(d).isDirectory())
    .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.tf.json')).map((f) => join(d, f)));
}

/** Output names a Terraform folder declares. */
export function terraformOutputs(dir: string): Set<string> {
  const names = new Set<string>();
  for (const f of terraformFiles(dir)) {
    const doc = JSON.parse(readFileSync(f, 'utf8')) as { output?: Record<string, unknown> };
    for (const k of Object.keys(doc.output ?? {})) names.add(k);
  }
  return names;
}

/** Checks a synthesized folder against the outputs the drill reads. Throws BAD_REQUEST for a folder of neither kind. */
export function checkDrillOutputs(drill: AwsDrillPlan, dir: string): OutputCheck {
  const wanted = (['primary', 'dr'] as const).flatMap((role) =>
    (drill.requiredOutputs[drill.stacks[role]] ?? []).map((key) => ({ role, stack: drill.stacks[role], key })),
  );
  if (existsSync(join(dir, 'manifest.json'))) {
    const stacks = cdkStackOutputs(dir);
    const missing = wanted.filter((w) => !stacks.get(w.stack)?.has(w.key)).map((w) => `${w.stack}.${w.key}`);
    return { engine: 'cdk', missing, checked: wanted.length };
  }
  if (existsSync(dir) && terraformFiles(dir).length > 0) {
    const names = terraformOutputs(dir);
    const missing = wanted.map((w) => qualifiedOutputName(w.role, w.key)).filter((name) => !names.has(name));
    return { engine: 'terraform', missing, checked: wanted.length };
  }
  throw new MailfleetError('BAD_REQUEST', `${dir}: neither a cdk synth output (manifest.json) nor a Terraform folder (*.tf.json)`);
}
