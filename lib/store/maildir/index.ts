export { addressParts, checkFolder, maildirPath, MAX_DOMAIN_LENGTH, MAX_FOLDER_LENGTH, MAX_LOCAL_PART_LENGTH, type AddressParts } from './paths.js';
export { DirectorySyncer, MaildirDelivery, UniqueNames, type MaildirDeliveryProps } from './deliver.js';
export { cleanMaildirTmp, type TmpCleanupOptions, type TmpCleanupResult } from './tmp-cleanup.js';
