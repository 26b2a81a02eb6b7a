/**
 * The directory backend chosen by the spec. One case per backend; both implement IDirectory.
 */
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import type { DirectorySpec } from '../spec/schema.js';
import { LdapDirectory } from './ldap/index.js';
import { StaticDirectory } from './static.js';
import type { IDirectory } from './types.js';

export type { AuthResult, DirectoryUser, IDirectory } from './types.js';
export { StaticDirectory, hashPassword, verifyPassword, readUsersFile, writeUsersFile, type StaticDirectoryProps, type UsersFile } from './static.js';

export interface CreateDirectoryOptions {
  /** The platform's local domains (the spec's), added to those a backend finds itself. */
  readonly domains?: readonly string[];
}

/** `baseDir`: the folder relative paths in the directory spec resolve against (the spec file's). */
export function createDirectory(spec: DirectorySpec, baseDir: string, logger: Logger, opts: CreateDirectoryOptions = {}): IDirectory {
  switch (spec.kind) {
    case 'static':
      return new StaticDirectory({ file: resolve(baseDir, spec.file), domains: opts.domains, logger });
    case 'ldap':
      return new LdapDirectory({ spec, baseDir, logger });
  }
}
