#!/usr/bin/env node
// Runs every benchmark under bench/ one after another (they load the machine: never in parallel).
// Usage: npm run bench [-- name ...]   e.g. npm run bench -- smtp imap-idle
// Each prints its figures with peers measured in the same run and writes bench/results/<name>.json (+ .svg).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const all = readdirSync('bench').filter((d) => existsSync(join('bench', d, 'run.ts'))).sort();
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : all;
const unknown = names.filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`run-bench: unknown benchmark(s) ${unknown.join(', ')}; known: ${all.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of names) {
  console.log(`\n=== bench/${name} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('bench', name, 'run.ts')], {
    stdio: 'inherit',
    env: { ...process.env, MAILFLEET_LOG_LEVEL: process.env.MAILFLEET_LOG_LEVEL ?? 'silent' },
  });
  if (r.status !== 0) {
    failed++;
    console.error(`bench/${name} exited with ${r.status ?? r.signal}`);
  }
}
process.exit(failed ? 1 : 0);
