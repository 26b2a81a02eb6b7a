/**
 * The context cdk.json gives the CLI (feature flags, telemetry off), for apps built outside the CLI:
 * tests and benches pass it to `new App({ context })` so they synthesize exactly what `cdk synth` does.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: Record<string, unknown> | undefined;

export function cdkJsonContext(): Record<string, unknown> {
  cached ??= (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
  return { ...cached };
}
