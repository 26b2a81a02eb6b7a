/**
 * `mailfleet ldap check`: connect to every URI of the spec, do the service bind there, then one lookup
 * through the backend, and report what was found. Used by operators before a deploy and in runbooks.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../log.js';
import type { LdapDirectorySpec } from '../../spec/schema.js';
import { LdapDirectory } from './backend.js';
import { acceptableInput } from './escape.js';
import type { MappedUser } from './mapping.js';
import { LdapEndpoints, describeError } from './pool.js';
import { serviceCredentials, tlsOptions } from './settings.js';

export interface LdapUriCheck {
  readonly uri: string;
  readonly ok: boolean;
  /** What was done: "service bind as …", "anonymous root DSE read". */
  readonly step: string;
  readonly ms: number;
  readonly error?: string;
}

export interface LdapLookupCheck {
  /** The address or login looked up; undefined: the first entry with an address. */
  readonly query: string | undefined;
  readonly filter: string;
  readonly found: readonly MappedUser[];
  readonly ms: number;
  readonly error?: string;
}

export interface LdapCheckReport {
  readonly ok: boolean;
  readonly uris: readonly LdapUriCheck[];
  readonly lookup: LdapLookupCheck | undefined;
  /** Why the check failed, one line per problem. */
  readonly problems: readonly string[];
}

export async function checkLdap(
  spec: LdapDirectorySpec,
  opts: { baseDir: string; logger: Logger; address?: string; env?: NodeJS.ProcessEnv },
): Promise<LdapCheckReport> {
  const problems: string[] = [];
  let credentials: { dn: string; password: string } | undefined;
  let endpoints: LdapEndpoints;
  try {
    credentials = serviceCredentials(spec, opts.baseDir, opts.env);
    endpoints = new LdapEndpoints({ uris: spec.uris, timeoutMs: spec.timeoutMs, startTls: spec.startTls, tlsOptions: tlsOptions(spec, opts.baseDir) });
  } catch (e) {
    return { ok: false, uris: [], lookup: undefined, problems: [(e as Error).message] };
  }

  const uris: LdapUriCheck[] = [];
  for (let i = 0; i < spec.uris.length; i++) {
    const uri = spec.uris[i]!;
    const step = `${spec.startTls && uri.startsWith('ldap://') ? 'StartTLS, ' : ''}${credentials ? `service bind as ${credentials.dn}` : 'anonymous root DSE read'}`;
    const t0 = performance.now();
    try {
      const client = await endpoints.open(i);
      try {
        if (credentials) await client.bind(credentials.dn, credentials.password);
        else await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'] });
      } finally {
        await client.unbind().catch(() => undefined);
      }
      uris.push({ uri, ok: true, step, ms: performance.now() - t0 });
    } catch (e) {
      const error = describeError(e);
      uris.push({ uri, ok: false, step, ms: performance.now() - t0, error });
      problems.push(`${uri}: ${step} failed: ${error}`);
    }
  }

  let lookup: LdapLookupCheck | undefined;
  if (uris.some((u) => u.ok)) {
    const directory = new LdapDirectory({ spec: { ...spec, cacheTtlSeconds: 0, negativeCacheTtlSeconds: 0 }, baseDir: opts.baseDir, logger: opts.logger, env: opts.env });
    const query = opts.address;
    const filter =
      query === undefined
        ? directory.mapping.addressHoldersFilter()
        : query.includes('@')
          ? directory.mapping.recipientFilter(query)
          : directory.mapping.loginFilter(query);
    const t0 = performance.now();
    try {
      if (query !== undefined && !acceptableInput(query)) throw new Error('not a usable login or address (empty, too long or control characters)');
      const entries = await directory.search(filter, query === undefined ? 1 : 10);
      const found = entries.map((e) => directory.mapping.map(e)).filter((m): m is MappedUser => m !== undefined);
      lookup = { query, filter, found, ms: performance.now() - t0 };
      if (found.length === 0)
        problems.push(query === undefined ? `no entry with a mail address under ${spec.baseDn}` : `no entry for ${query} under ${spec.baseDn}`);
    } catch (e) {
      const error = describeError(e);
      lookup = { query, filter, found: [], ms: performance.now() - t0, error };
      problems.push(`lookup failed: ${error}`);
    } finally {
      await directory.close();
    }
  }
  return { ok: problems.length === 0, uris, lookup, problems };
}

/** The report as the CLI prints it. */
export function formatLdapCheck(r: LdapCheckReport): string {
  const lines: string[] = [];
  for (const u of r.uris) lines.push(`${u.ok ? 'ok  ' : 'FAIL'} ${u.uri}  ${u.step}  ${u.ms.toFixed(0)} ms${u.error ? `  ${u.error}` : ''}`);
  if (r.lookup) {
    const l = r.lookup;
    lines.push(`lookup ${l.query ?? '(first entry with an address)'}  ${l.filter}  ${l.ms.toFixed(0)} ms`);
    for (const m of l.found) {
      lines.push(`  dn:       ${m.dn}`);
      lines.push(`  mail:     ${m.user.address}`);
      lines.push(`  aliases:  ${m.addresses.slice(1).join(', ') || '-'}`);
      lines.push(`  disabled: ${m.disabled ? 'yes' : 'no'}`);
      lines.push(`  quota:    ${m.user.quotaBytes !== undefined ? `${m.user.quotaBytes} bytes` : '-'}`);
      lines.push(`  messages: ${m.user.quotaMessages !== undefined ? `${m.user.quotaMessages} (quota)` : '-'}`);
      lines.push(`  limits:   ${m.user.limits ? JSON.stringify(m.user.limits) : '-'}`);
    }
  }
  for (const p of r.problems) lines.push(`problem: ${p}`);
  lines.push(r.ok ? 'ldap check: ok' : 'ldap check: FAILED');
  return lines.join('\n') + '\n';
}
