export { LdapDirectory, type LdapDirectoryProps } from './ldap-directory.js';
