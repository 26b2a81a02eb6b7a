import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { RenderedFile } from '../../lib/render/node-layout.js';

/**
 * Writes files into a content-addressed temp folder (an asset hash then follows the content only);
 * every engine zips that folder into the node-files object. `.complete` marks a finished folder.
 */
export function writeFiles(files: readonly RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${f.executable ? 'x' : '-'}\0${f.content}\0`);
  const dir = join(tmpdir(), 'mailfleet-node-files', h.digest('hex').slice(0, 24));
  if (existsSync(join(dir, '.complete'))) return dir;
  for (const f of files) {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    chmodSync(p, f.executable ? 0o755 : 0o644);
  }
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}
