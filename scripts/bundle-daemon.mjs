#!/usr/bin/env node
// Bundles mailfleetd (lib/daemon/main.ts) into one ESM file, the artifact the engines ship to mail nodes.
// Usage: node scripts/bundle-daemon.mjs [--outfile dist/mailfleetd.mjs]
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--outfile');
const outfile = resolve(i >= 0 ? process.argv[i + 1] : resolve(root, 'dist/mailfleetd.mjs'));
mkdirSync(dirname(outfile), { recursive: true });

const result = await build({
  entryPoints: [resolve(root, 'lib/daemon/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
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
});

// The daemon must never carry engine code (DESIGN: dependency rules).
const forbidden = Object.keys(result.metafile.inputs).filter((f) => /node_modules\/(aws-cdk-lib|cdktf|@cdktf|@pulumi|constructs)\//.test(f));
if (forbidden.length > 0) {
  console.error(`bundle-daemon: engine code in the daemon bundle:\n${forbidden.slice(0, 10).join('\n')}`);
  process.exit(1);
}
const bytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('.mjs'))].bytes;
console.log(`bundle-daemon: ${outfile} (${(bytes / 1024).toFixed(0)} KiB, ${Object.keys(result.metafile.inputs).length} inputs)`);
