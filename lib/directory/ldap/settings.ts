/**
 * What the LDAP backend needs from the environment: the service bind secret (from a file or an
 * environment variable, never from the spec) and TLS options with the spec's CA.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { MailfleetError } from '../../errors.js';
import type { LdapDirectorySpec } from '../../spec/schema.js';

/** The service account credentials, or undefined when the spec binds users directly (userDnTemplate). */
export function serviceCredentials(
  spec: LdapDirectorySpec,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): { dn: string; password: string } | undefined {
  if (!spec.bindDn) return undefined;
  let password: string | undefined;
  if (spec.bindPasswordFile) {
    const file = resolve(baseDir, spec.bindPasswordFile);
    try {
      // One trailing newline is how editors and `echo` leave secret files; it is not part of the secret.
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP bind password file ${file} cannot be read: ${(e as Error).message}`, { cause: e });
    }
  } else if (spec.bindPasswordEnv) {
    password = env[spec.bindPasswordEnv];
    if (password === undefined)
      throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP bind password: environment variable ${spec.bindPasswordEnv} is not set`);
  }
  if (!password)
    throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP bindDn ${spec.bindDn} has an empty password (set bindPasswordFile or bindPasswordEnv)`);
  return { dn: spec.bindDn, password };
}

/** TLS options for ldaps:// and StartTLS: the spec's CA when given, TLS 1.2 at least. */
export function tlsOptions(spec: LdapDirectorySpec, baseDir: string): ConnectionOptions {
  const opts: ConnectionOptions = { minVersion: 'TLSv1.2' };
  if (spec.caFile) {
    const file = resolve(baseDir, spec.caFile);
    try {
      opts.ca = readFileSync(file);
    } catch (e) {
      throw new MailfleetError('DIRECTORY_UNAVAILABLE', `LDAP CA file ${file} cannot be read: ${(e as Error).message}`, { cause: e });
    }
  }
  return opts;
}
