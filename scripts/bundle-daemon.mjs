#!/usr/bin/env node
// Bundles mailfleetd (lib/daemon/main.ts) into one ESM file, the artifact the engines ship to mail nodes,
// and writes its manifest beside it: the bundle's SHA-256 and the hash of every input, so synth can tell
// a stale or altered bundle from a current one (constructs/shared/daemon-bundle.ts).
// Usage: node scripts/bundle-daemon.mjs [--outfile dist/mailfleetd.mjs]
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { nodeBundleOptions, root, sha256, sourceHash } from './esbuild-node.mjs';

const i = process.argv.indexOf('--outfile');
const outfile = resolve(i >= 0 ? process.argv[i + 1] : resolve(root, 'dist/mailfleetd.mjs'));
const manifestFile = outfile.replace(/\.m?js$/, '') + '.manifest.json';
mkdirSync(dirname(outfile), { recursive: true });

// Built beside the target and renamed, bundle first and manifest last: a synth running meanwhile sees
// either the old pair or a bundle that does not match its manifest (an error), never half a file.
const tmp = `${outfile}.${process.pid}.tmp.mjs`;
const result = await build({ ...nodeBundleOptions('lib/daemon/main.ts', tmp), sourcemap: 'external' });

// The daemon must never carry engine code (DESIGN: dependency rules).
const inputs = Object.keys(result.metafile.inputs);
const forbidden = inputs.filter((f) => /node_modules\/(aws-cdk-lib|cdktf|@cdktf|@pulumi|constructs)\//.test(f));
if (forbidden.length > 0) {
  console.error(`bundle-daemon: engine code in the daemon bundle:\n${forbidden.slice(0, 10).join('\n')}`);
  process.exit(1);
}
const bytes = readFileSync(tmp);
const manifest = {
  bundle: relative(dirname(manifestFile), outfile),
  sha256: sha256(bytes),
  bytes: bytes.length,
  // Relative to the package root, where synth re-hashes them in a source checkout.
  sourceHash: sourceHash(root, inputs),
  sources: inputs.sort(),
  root: relative(dirname(manifestFile), root) || '.',
  rebuild: 'npm run build:daemon',
};
renameSync(tmp, outfile);
renameSync(`${tmp}.map`, `${outfile}.map`);
writeFileSync(`${manifestFile}.${process.pid}.tmp`, JSON.stringify(manifest, null, 1) + '\n');
renameSync(`${manifestFile}.${process.pid}.tmp`, manifestFile);
console.log(`bundle-daemon: ${outfile} (${(bytes.length / 1024).toFixed(0)} KiB, ${inputs.length} inputs, sha256 ${manifest.sha256.slice(0, 12)})`);
