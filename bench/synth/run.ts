/**
 * Synth bench: time and resources per template for 1, 50, 200 and 500 dedicated tenants (primary + DR),
 * and the primary-dr example through the real CLI (`npx cdk synth`, cdk-nag included). Prints whether
 * cost grows no faster than linearly (time and resources per listener, against the 50-tenant run).
 * Usage: npx tsx bench/synth/run.ts [tenant counts…]
 * Writes bench/results/synth.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePlot } from '../lib/plot.js';
import { App } from 'aws-cdk-lib';
import { resourceCounts, templatesOf } from '../../constructs/inventory.js';
import { cdkJsonContext, REPO_ROOT } from '../../constructs/shared/cdk-context.js';
import { ensureDaemonBundle } from '../../constructs/shared/daemon-bundle.js';
import { buildPlan } from '../../lib/plan/index.js';
import { parseSpec } from '../../lib/spec/index.js';
import { tenantsSpec } from '../../scripts/gen-tenants.js';
import { addPlatformStacks } from '../../stacks/app.js';

interface Run {
  tenants: number;
  listeners: number;
  nlbShards: number;
  seconds: number;
  totalResources: number;
  largestTemplate: { name: string; resources: number };
  stacks: Record<string, number>;
  secondsPerListener: number;
  resourcesPerListener: number;
}

ensureDaemonBundle(); // outside the timings

function synthOnce(n: number): Run {
  const plan = buildPlan(parseSpec(JSON.stringify(tenantsSpec(n)), `tenants-${n}.yaml`));
  const outdir = mkdtempSync(join(tmpdir(), 'mailfleet-bench-synth-'));
  try {
    const t0 = performance.now();
    // As the CLI runs the app (cdk.json context, no stack traces), minus cdk-nag, which the CLI run below covers.
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true }, outdir });
    addPlatformStacks(app, plan);
    const assembly = app.synth();
    const seconds = (performance.now() - t0) / 1000;
    const templates = templatesOf(assembly);
    const counts = resourceCounts(templates);
    const stacks: Record<string, number> = {};
    for (const t of templates) stacks[t.stack] = (stacks[t.stack] ?? 0) + Object.keys(t.template.Resources ?? {}).length;
    const total = counts.reduce((a, c) => a + c.resources, 0);
    return {
      tenants: n,
      listeners: plan.listeners.length,
      nlbShards: plan.nlbShards.length,
      seconds,
      totalResources: total,
      largestTemplate: counts[0]!,
      stacks,
      secondsPerListener: seconds / plan.listeners.length,
      resourcesPerListener: total / plan.listeners.length,
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function cliSynth(): { seconds: number; ok: boolean } {
  const outdir = mkdtempSync(join(tmpdir(), 'mailfleet-bench-cli-'));
  const t0 = performance.now();
  const r = spawnSync('npx', ['cdk', 'synth', '--quiet', '-c', 'spec=examples/primary-dr.yaml', '-o', outdir], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' },
  });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(outdir, { recursive: true, force: true });
  return { seconds, ok: r.status === 0 };
}

const counts = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n >= 0);
const runs: Run[] = [];
for (const n of counts.length ? counts : [1, 50, 200, 500]) {
  const r = synthOnce(n);
  runs.push(r);
  console.log(
    `${String(n).padStart(4)} tenants  ${String(r.listeners).padStart(5)} listeners  ${String(r.nlbShards).padStart(3)} NLBs  ` +
      `${r.seconds.toFixed(1).padStart(6)} s  ${String(r.totalResources).padStart(6)} resources  ` +
      `largest template ${r.largestTemplate.resources} (${r.largestTemplate.name})  ` +
      `per stack ${Object.entries(r.stacks).map(([k, v]) => `${k}=${v}`).join(' ')}`,
  );
}
const base = runs.find((r) => r.tenants === 50) ?? runs[0]!;
const growth = runs.map((r) => ({
  tenants: r.tenants,
  timePerListenerVs50: r.secondsPerListener / base.secondsPerListener,
  resourcesPerListenerVs50: r.resourcesPerListener / base.resourcesPerListener,
}));
for (const g of growth)
  console.log(
    `${String(g.tenants).padStart(4)} tenants: time/listener ×${g.timePerListenerVs50.toFixed(2)}, resources/listener ×${g.resourcesPerListenerVs50.toFixed(2)} (vs ${base.tenants} tenants)`,
  );
const big = growth.filter((g) => g.tenants > base.tenants);
const linear = big.every((g) => g.resourcesPerListenerVs50 <= 1.05 && g.timePerListenerVs50 <= 1.5);
console.log(`growth: ${linear ? 'no faster than linear' : 'FASTER THAN LINEAR'} (resources/listener within 5%, time/listener within 1.5x)`);

// The machine is shared: three CLI runs, the best one says what the code costs.
const cliRuns = [cliSynth(), cliSynth(), cliSynth()];
const cli = { seconds: Math.min(...cliRuns.map((r) => r.seconds)), ok: cliRuns.every((r) => r.ok), runs: cliRuns.map((r) => r.seconds) };
console.log(
  `npx cdk synth primary-dr.yaml (cdk-nag, built-in validation, no credentials): best ${cli.seconds.toFixed(1)} s of ${cli.runs.map((s) => s.toFixed(1)).join(', ')} ${cli.ok ? 'ok' : 'FAILED'} (target 15 s)`,
);

mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(REPO_ROOT, 'bench', 'results', 'synth.json'),
  JSON.stringify({ date: new Date().toISOString(), runs, growth, linear, cliPrimaryDr: cli }, null, 2) + '\n',
);
writePlot('synth', { title: 'CDK resources per listener by tenant count', unit: 'per listener', bars: runs.map((r) => ({ label: `${r.tenants} tenants`, value: r.resourcesPerListener })) });
