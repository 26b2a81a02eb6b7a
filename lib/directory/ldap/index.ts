export { LdapDirectory, MAX_PASSWORD_LENGTH, MAX_RECIPIENT_FANOUT, type LdapDirectoryProps } from './backend.js';
export { LdapMapping, FLAVOR_DEFAULTS, parseMaxConnections, parseQuota, type LdapAttributeNames, type MappedUser } from './mapping.js';
export { LdapEndpoints, LdapPool, isTransportError } from './pool.js';
export { TtlCache } from './cache.js';
export { acceptableInput, escapeDnValue, escapeFilter, MAX_INPUT_LENGTH } from './escape.js';
export { serviceCredentials, tlsOptions } from './settings.js';
