export { cdkJsonContext, packageRoot, REPO_ROOT } from './cdk-context.js';
export { acknowledge } from './nag.js';
export { tagRole, ROLE_TAG } from './tags.js';
export { nodeImage, isArm } from './node-image.js';
export {
  daemonBundle,
  ensureDaemonBundle,
  DAEMON_BUNDLE,
  DAEMON_REBUILD_COMMAND,
  DEV_BUILD_CONTEXT,
  type DaemonBundle,
  type DaemonBundleManifest,
  type DaemonBundleOptions,
} from './daemon-bundle.js';
export { NodeFilesBundle, type NodeFilesBundleProps } from './node-files-bundle.js';
export { nodeRole, type NodeRoleTargets } from './node-role.js';
export { nodeLaunchTemplate, type NodeLaunchTemplateOptions } from './launch-template.js';
