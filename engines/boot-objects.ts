/**
 * The folders behind the model's boot objects (lib/plan/node-access.ts) for the engines that upload
 * them themselves (Terraform, Pulumi): the rendered node files of a role, and the daemon package
 * (bundle, Node.js runtime, SHA256SUMS) checked exactly as CDK synth checks it.
 */
import { cdkJsonContext } from '../constructs/shared/cdk-context.js';
import { daemonBundle, daemonPackage, DEV_BUILD_CONTEXT } from '../constructs/shared/daemon-bundle.js';
import { isArm } from '../constructs/shared/node-image.js';
import { writeFiles } from '../constructs/shared/node-files-dir.js';
import type { BootObjectModel } from '../lib/plan/node-access.js';
import type { Plan } from '../lib/plan/types.js';
import { nodeFiles } from '../lib/render/node-files.js';
import type { RegionRole } from '../lib/render/node-layout.js';

export interface BootObjectOptions {
  /**
   * The daemon bundle to ship (scripts/bundle-daemon.mjs output with its manifest).
   * @default - the package's dist/mailfleetd.mjs
   */
  readonly daemonBundlePath?: string;
  /**
   * Build a missing or stale bundle in a source checkout.
   * @default - cdk.json's `mailfleet:buildDaemonBundle`, the same switch CDK synth follows
   */
  readonly devBuild?: boolean;
}

/** Folder to zip for one boot object, and a content hash for it (engines skip hashing big folders). */
export function bootObjectFolder(plan: Plan, region: RegionRole, o: BootObjectModel, opts: BootObjectOptions = {}): { dir: string; hash: string } {
  if (o.source.kind === 'node-files') {
    const dir = writeFiles(nodeFiles(plan, o.source.role, region));
    return { dir, hash: dir.slice(dir.lastIndexOf('/') + 1) };
  }
  const devBuild = opts.devBuild ?? cdkJsonContext()[DEV_BUILD_CONTEXT] === true;
  const bundle = daemonBundle({ path: opts.daemonBundlePath, devBuild });
  const pkg = daemonPackage(bundle.path, isArm(plan.sizing.mailNodes.instanceType) ? 'arm64' : 'x64');
  return { dir: pkg.dir, hash: pkg.hash };
}
