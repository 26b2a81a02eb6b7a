#!/usr/bin/env node
// Bundles the `mailfleet` CLI (bin/mailfleet.ts) into dist/cli/mailfleet.mjs, the package's bin: it runs
// on plain Node with its own dependencies (commander, the AWS SDK clients, the daemon's libraries)
// inside, so the package's runtime dependencies stay those of the library. The CDK and the optional
// engines (cdktf, Pulumi) stay outside: the app's aws-cdk-lib must be the one the CLI synthesizes with.
// Usage: node scripts/bundle-cli.mjs [--outfile dist/cli/mailfleet.mjs]
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { nodeBundleOptions, root } from './esbuild-node.mjs';

const i = process.argv.indexOf('--outfile');
const outfile = resolve(i >= 0 ? process.argv[i + 1] : resolve(root, 'dist/cli/mailfleet.mjs'));
mkdirSync(dirname(outfile), { recursive: true });
const tmp = `${outfile}.${process.pid}.tmp.mjs`;
const options = nodeBundleOptions('bin/mailfleet.ts', tmp);
await build({
  ...options,
  external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs', 'cdktf', 'cdktf/*', '@cdktf/*', '@pulumi/*', 'esbuild'],
});
// esbuild keeps the entry's hashbang (bin/mailfleet.ts runs through tsx); the bundle runs on plain node.
const text = readFileSync(tmp, 'utf8').replace(/^#!.*\n/, '#!/usr/bin/env node\n');
rmSync(tmp);
writeFileSync(outfile, text);
chmodSync(outfile, 0o755);
console.log(`bundle-cli: ${outfile} (${(text.length / 1024).toFixed(0)} KiB)`);
