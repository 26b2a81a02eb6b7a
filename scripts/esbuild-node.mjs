// What the two bundles (the daemon, scripts/bundle-daemon.mjs; the CLI, scripts/bundle-cli.mjs) share:
// esbuild options for one Node ESM file, and the source hash a bundle's manifest records.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '..');

/** esbuild options for a single ESM file that runs on Node 20 with no node_modules beside it. */
export function nodeBundleOptions(entry, outfile) {
  return {
    absWorkingDir: root,
    entryPoints: [resolve(root, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    // CommonJS dependencies (pino, smtp-server, ...) call require(), __filename and __dirname.
    banner: {
      js: [
        "import { createRequire as __mfCreateRequire } from 'node:module';",
        "import { fileURLToPath as __mfFileURLToPath } from 'node:url';",
        "import { dirname as __mfDirname } from 'node:path';",
        'const require = __mfCreateRequire(import.meta.url);',
        'const __filename = __mfFileURLToPath(import.meta.url);',
        'const __dirname = __mfDirname(__filename);',
      ].join('\n'),
    },
  };
}

/**
 * Hash of a bundle's inputs (paths relative to the package root, as esbuild's metafile lists them).
 * constructs/shared/daemon-bundle.ts computes the same to detect a stale bundle: keep them in step.
 */
export function sourceHash(baseDir, inputs) {
  const h = createHash('sha256');
  for (const p of [...inputs].sort()) h.update(`${p}\n${createHash('sha256').update(readFileSync(resolve(baseDir, p))).digest('hex')}\n`);
  return h.digest('hex');
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}
