export * from './mail-network/index.js';
export * from './flow-control-tier/index.js';
export * from './mail-server-fleet/index.js';
export * from './gluster-storage-cluster/index.js';
export * from './efs-mail-store/index.js';
export * from './ldap-directory/index.js';
export * from './disaster-recovery/index.js';
export * from './shared/index.js';
export { cdkInventory, templatesOf, resourceCounts, kindOf, type NamedTemplate } from './inventory.js';
