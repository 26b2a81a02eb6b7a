#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's --test takes no globs, so we list files.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
// First it installs the Debian packages the tests talk to when any is missing (a fast no-op otherwise), so
// `npm test` alone passes on a fresh machine.
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const deps = spawnSync('bash', [join(dirname(fileURLToPath(import.meta.url)), 'install-system-deps.sh')], { stdio: 'inherit' });
if (deps.status !== 0) {
  console.error(`run-tests: scripts/install-system-deps.sh failed (${deps.error?.message ?? `exit ${deps.status}`}); the tests need those packages`);
  process.exit(1);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const filters = process.argv.slice(2);
const files = walk('test')
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const concurrency = process.env.MAILFLEET_TEST_CONCURRENCY ?? '2';
// *.serial.test.ts files run after the others, one at a time, with the box to themselves:
// test/dr/georep.serial.test.ts (GlusterFS geo-replication between two namespaced hosts) passed every time
// alone and failed every time beside other test files (its live-changelog step never delivered; cause not
// found, see docs/dr.md).
const serial = files.filter((f) => f.endsWith('.serial.test.ts'));
const parallel = files.filter((f) => !f.endsWith('.serial.test.ts'));
// A hung test fails after 5 min (suites may set longer timeouts); a hung run (a file whose handles never
// close) is killed after 45 min, well inside CI's 90: the whole suite takes about 20 min.
const WATCHDOG_MS = Number(process.env.MAILFLEET_TEST_WATCHDOG_MS ?? 45 * 60_000);
// One budget for both batches (the serial files get what the parallel ones left), so the run as a whole
// still ends inside it.
const deadline = Date.now() + WATCHDOG_MS;
function run(batch, n) {
  if (batch.length === 0) return 0;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${n}`, '--test-timeout=300000', '--test-reporter=spec', ...batch],
    {
      stdio: 'inherit',
      env: { ...process.env, MAILFLEET_LOG_LEVEL: process.env.MAILFLEET_LOG_LEVEL ?? 'silent' },
      timeout: Math.max(1, deadline - Date.now()),
      killSignal: 'SIGKILL',
    },
  );
  if (r.error && r.signal === 'SIGKILL') {
    console.error(`run-tests: the test run did not finish within ${WATCHDOG_MS / 60_000} min and was killed (a hung test or a leaked handle)`);
    return 1;
  }
  return r.status ?? 1;
}
const first = run(parallel, concurrency);
if (serial.length > 0) console.log(`run-tests: ${serial.length} serial file(s), one at a time: ${serial.join(', ')}`);
const second = run(serial, '1');
if (first !== 0 || second !== 0) console.error(`run-tests: failed (${first !== 0 ? 'the parallel files' : ''}${first !== 0 && second !== 0 ? ' and ' : ''}${second !== 0 ? 'the serial files' : ''})`);
process.exit(first !== 0 ? first : second);
