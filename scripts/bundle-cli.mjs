#!/usr/bin/env node
// Bundles the `mailfleet` CLI (bin/mailfleet.ts) into dist/cli/ (mailfleet.mjs and its chunks), the
// package's bin: it runs on plain Node with its own dependencies (commander, the AWS SDK clients, the
// daemon's libraries) inside, so the package's runtime dependencies stay those of the library. The CDK
// and the optional engines (cdktf, Pulumi) stay outside: the app's aws-cdk-lib must be the one the CLI
// synthesizes with, and code splitting keeps each engine in a chunk loaded only by `synth --engine`.
// Usage: node scripts/bundle-cli.mjs [--outdir dist/cli]
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { nodeBundleOptions, root } from './esbuild-node.mjs';

const i = process.argv.indexOf('--outdir');
const outdir = resolve(i >= 0 ? process.argv[i + 1] : resolve(root, 'dist/cli'));
rmSync(outdir, { recursive: true, force: true });
const { outfile: _outfile, ...options } = nodeBundleOptions('bin/mailfleet.ts', undefined);
await build({
  ...options,
  outdir,
  splitting: true,
  entryNames: 'mailfleet',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdktf', 'cdktf/*', '@cdktf/*', '@pulumi/*'],
});
// esbuild keeps the entry's hashbang (bin/mailfleet.ts runs through tsx); the bundle runs on plain node.
const bin = join(outdir, 'mailfleet.mjs');
const text = readFileSync(bin, 'utf8').replace(/^#!.*\n/, '#!/usr/bin/env node\n');
writeFileSync(bin, text);
chmodSync(bin, 0o755);
console.log(`bundle-cli: ${bin} (${(text.length / 1024).toFixed(0)} KiB)`);
