/**
 * The context cdk.json gives the CLI (feature flags, telemetry off), for apps built outside the CLI:
 * tests and benches pass it to `new App({ context })` so they synthesize exactly what `cdk synth` does.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../lib/package-root.js';

export { packageRoot };

export const REPO_ROOT = packageRoot();

let cached: Record<string, unknown> | undefined;

export function cdkJsonContext(): Record<string, unknown> {
  cached ??= (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
  return { ...cached };
}
