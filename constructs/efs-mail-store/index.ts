export { EfsMailStore, type EfsMailStoreProps } from './efs-mail-store.js';
