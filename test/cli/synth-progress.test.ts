/**
 * `mailfleet synth` says what it is doing as it goes (issue: the constructs as a CDK library, "CLI
 * progress"), on stderr so stdout stays the inventory; and an optional engine that is not installed is
 * named with its install command instead of Node's stack.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { importEngine, TERRAFORM_ENGINE } from '../../lib/cli/optional-engine.js';
import { MailfleetError } from '../../lib/errors.js';

const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, MAILFLEET_QUIET: '', ...env },
  });

describe('mailfleet synth progress', { timeout: 600_000 }, () => {
  it('GIVEN synth --engine cdk WHEN it runs THEN stderr names each step (plan, engine, the stacks it synthesizes) with its time, and stdout is only the result', () => {
    const out = mkdtempSync(join(tmpdir(), 'mf-synth-'));
    try {
      const r = cli(['synth', '-e', 'cdk', '-c', 'examples/single-region.yaml', '-o', out]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /✔ loading examples\/single-region\.yaml and building the plan \(\d+\.\d s\)/);
      assert.match(r.stderr, /✔ loading the CDK engine \(aws-cdk-lib\)/);
      assert.match(r.stderr, /✔ synthesizing [a-z0-9-]+-primary .*\(\d+\.\d s\)/);
      assert.doesNotMatch(r.stdout, /✔|…/);
      assert.match(r.stdout, /CloudFormation template\(s\)/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('GIVEN --quiet WHEN synth --engine terraform runs THEN stderr is empty', () => {
    const out = mkdtempSync(join(tmpdir(), 'mf-synth-'));
    try {
      const r = cli(['synth', '-e', 'terraform', '-c', 'examples/single-region.yaml', '-o', out, '--quiet']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /cdk\.tf\.json/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('optional engines', () => {
  it('GIVEN an engine module whose cdktf import cannot be resolved WHEN it is loaded THEN the error names the engine, the packages and the npm command', async () => {
    // A real module outside any node_modules: Node's own resolution failure, as in an app without cdktf.
    const dir = mkdtempSync(join(tmpdir(), 'mf-engine-'));
    try {
      writeFileSync(join(dir, 'engine.mjs'), "import 'cdktf';\nexport const x = 1;\n");
      await assert.rejects(
        importEngine(TERRAFORM_ENGINE, () => import(pathToFileURL(join(dir, 'engine.mjs')).href)),
        (e: unknown) =>
          e instanceof MailfleetError &&
          e.code === 'BAD_REQUEST' &&
          /terraform engine needs cdktf and @cdktf\/provider-aws/.test(e.message) &&
          /missing: cdktf\)/.test(e.message) &&
          /npm i -D cdktf@0\.21\.0 @cdktf\/provider-aws@20\.1\.0/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GIVEN a missing module that is not one of the engine packages WHEN loaded THEN the original error goes on up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-engine-'));
    try {
      writeFileSync(join(dir, 'engine.mjs'), "import 'left-pad-not-here';\n");
      await assert.rejects(
        importEngine(TERRAFORM_ENGINE, () => import(pathToFileURL(join(dir, 'engine.mjs')).href)),
        (e: unknown) => !(e instanceof MailfleetError) && (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
