/**
 * The mailfleet package's root: the repository in a checkout, node_modules/mailfleet when installed.
 * Found by walking up to the package.json named mailfleet, because this code runs from sources (lib/,
 * constructs/, engines/), from dist/ (compiled) and from dist/cli (the CLI bundle), at different depths.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mailfleet') return dir;
    if (dirname(dir) === dir) throw new Error(`mailfleet: no package.json named mailfleet above ${from}`);
  }
}
