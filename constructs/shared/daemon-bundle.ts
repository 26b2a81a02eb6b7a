/**
 * The daemon ships to mail nodes as one esbuild bundle (dist/mailfleetd.mjs) in an S3 asset. Synth
 * never touches the network: when the bundle is missing it is built locally, through
 * scripts/bundle-daemon.mjs when that exists, else straight from lib/daemon/main.ts with esbuild.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
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
