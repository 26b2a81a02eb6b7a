/**
 * The context cdk.json gives the CLI (feature flags, telemetry off), for apps built outside the CLI:
 * tests and benches pass it to `new App({ context })` so they synthesize exactly what `cdk synth` does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The mailfleet package's root: the repository in a checkout, node_modules/mailfleet when installed.
 * Found by walking up, because this code runs from constructs/shared (sources), dist/constructs/shared
 * (compiled) and dist/cli (the CLI bundle).
 */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mailfleet') return dir;
    if (dirname(dir) === dir) throw new Error(`mailfleet: no package.json named mailfleet above ${from}`);
  }
}

export const REPO_ROOT = packageRoot();

let cached: Record<string, unknown> | undefined;

export function cdkJsonContext(): Record<string, unknown> {
  cached ??= (JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
  return { ...cached };
}
