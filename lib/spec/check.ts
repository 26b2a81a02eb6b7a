/**
 * Cross-field checks the schema cannot express: clashing ports, impossible limit combinations,
 * contradictory settings. Each issue carries the field path so the loader can name file and line.
 */
import { effectiveLimits } from './defaults.js';
import { SERVICES, type LimitsSpec, type ServiceLimits, type Spec } from './schema.js';
import type { FieldPath } from './locate.js';
import { DEDICATED_BLOCK, PROTOCOL_OFFSET, dedicatedProtocols, dedicatedSlots } from './ports.js';
import { managedAdBindDn, managedAdCustomerOu, normalizeDn } from './directory-names.js';

export interface CheckIssue {
  path: FieldPath;
  message: string;
}

export function checkSpec(spec: Spec): CheckIssue[] {
  const issues: CheckIssue[] = [];
  const seen = new Map<string, number>();
  spec.domains.forEach((d, i) => {
    const key = d.name.toLowerCase();
    if (seen.has(key)) issues.push({ path: ['domains', i, 'name'], message: `duplicate domain (also domains[${seen.get(key)}])` });
    else seen.set(key, i);
    if (d.protocols && d.listeners !== 'dedicated')
      issues.push({ path: ['domains', i, 'protocols'], message: 'protocols only apply to listeners: dedicated' });
    if (d.protocols && new Set(d.protocols).size !== d.protocols.length)
      issues.push({ path: ['domains', i, 'protocols'], message: 'a protocol is listed twice' });
  });

  // Impossible combinations: both values written in the same scope. An inherited wider value needs no
  // check: admission takes every scope at once, so the narrower cap binds first anyway.
  const scopes: Array<{ raw: LimitsSpec | undefined; domain?: string; base: FieldPath }> = [
    { raw: spec.limits, base: ['limits'] },
    ...spec.domains.map((d, i) => ({ raw: d.limits, domain: d.name, base: ['domains', i, 'limits'] as FieldPath })),
  ];
  const pairs: Array<[keyof ServiceLimits, keyof ServiceLimits, string]> = [
    ['sourceConnections', 'listenerConnections', 'of the same listener'],
    ['perUserIp', 'perUser', ''],
    ['perUser', 'perDomain', ''],
  ];
  for (const { raw, domain, base } of scopes) {
    for (const svc of SERVICES) {
      const set = raw?.[svc] ?? {};
      const at = (field: string): FieldPath => [...base, svc, field];
      for (const [small, big, note] of pairs) {
        const a = set[small];
        const b = set[big];
        if (a !== undefined && b !== undefined && a > b)
          issues.push({ path: at(small), message: `${small} (${a}) exceeds ${big} (${b})${note ? ' ' + note : ''}` });
      }
      const l = effectiveLimits(spec, svc, domain);
      if (set.listenerConnections !== undefined && l.listenerConnections > spec.tiers.proxyMaxConnectionsPerNode)
        issues.push({
          path: at('listenerConnections'),
          message: `listenerConnections (${l.listenerConnections}) exceeds tiers.proxyMaxConnectionsPerNode (${spec.tiers.proxyMaxConnectionsPerNode}), the HAProxy global cap`,
        });
    }
  }

  // Local ports: every public port, every internal (behind-proxy) port, the admin ports, the dedicated blocks.
  const p = spec.local.ports;
  const used = new Map<number, string>();
  const claim = (port: number, what: string, path: FieldPath) => {
    if (port > 65535) {
      issues.push({ path, message: `${what} port ${port} is above 65535` });
      return;
    }
    const other = used.get(port);
    if (other !== undefined) issues.push({ path, message: `${what} port ${port} clashes with ${other}` });
    else used.set(port, what);
  };
  const shared = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s'] as const;
  const beforePublic = issues.length;
  for (const proto of shared) claim(p[proto], `local ${proto}`, ['local', 'ports', proto]);
  claim(p.admin, 'local admin', ['local', 'ports', 'admin']);
  claim(p.haproxyStats, 'local haproxyStats', ['local', 'ports', 'haproxyStats']);
  for (const proto of shared)
    if (issues.length === beforePublic) claim(p[proto] + p.internalOffset, `internal ${proto} (${proto} + internalOffset)`, ['local', 'ports', 'internalOffset']);
  const { slots, problems } = dedicatedSlots(spec.domains);
  for (const pr of problems) issues.push({ path: ['domains', pr.index, 'slot'], message: pr.message });
  spec.domains.forEach((d, i) => {
    if (d.slot !== undefined && d.listeners !== 'dedicated')
      issues.push({ path: ['domains', i, 'slot'], message: 'slot only applies to listeners: dedicated' });
    const slot = slots.get(i);
    if (slot === undefined) return;
    const base = p.dedicatedBase + slot * DEDICATED_BLOCK;
    for (const proto of dedicatedProtocols(d))
      claim(base + PROTOCOL_OFFSET[proto], `dedicated ${d.name} ${proto}`, ['domains', i, 'listeners']);
  });

  // Tiers and placement.
  for (const t of ['proxy', 'mail'] as const) {
    const tier = spec.tiers[t];
    if (tier.minNodes > tier.maxNodes)
      issues.push({ path: ['tiers', t, 'minNodes'], message: `minNodes (${tier.minNodes}) exceeds maxNodes (${tier.maxNodes})` });
    if (tier.desiredNodes !== undefined && (tier.desiredNodes < tier.minNodes || tier.desiredNodes > tier.maxNodes))
      issues.push({ path: ['tiers', t, 'desiredNodes'], message: `desiredNodes must lie between minNodes and maxNodes` });
  }
  if (spec.storage.kind === 'glusterfs' && spec.storage.nodes % 3 !== 0)
    issues.push({ path: ['storage', 'nodes'], message: `a replica-3 volume needs a multiple of 3 nodes, got ${spec.storage.nodes}` });
  if (spec.regions?.dr && spec.regions.dr.name === spec.regions.primary.name)
    issues.push({ path: ['regions', 'dr', 'name'], message: 'the DR region must differ from the primary region' });
  // A local spec (no regions) may carry dr targets for `mailfleet dr drill --local`; a cloud spec needs the region.
  if (spec.dr && spec.regions && !spec.regions.dr)
    issues.push({ path: ['dr'], message: 'dr settings need regions.dr' });

  const dir = spec.directory;
  if (dir.kind === 'ldap') {
    if (!dir.bindDn && !dir.userDnTemplate && dir.provision !== 'managed-ad')
      issues.push({ path: ['directory', 'bindDn'], message: 'set bindDn (search then bind) or userDnTemplate (direct bind)' });
    if (dir.bindDn && !dir.bindPasswordFile && !dir.bindPasswordEnv)
      issues.push({ path: ['directory', 'bindDn'], message: 'bindDn needs bindPasswordFile or bindPasswordEnv (never a password in the spec)' });
    if (dir.bindPasswordFile && dir.bindPasswordEnv)
      issues.push({ path: ['directory', 'bindPasswordEnv'], message: 'set bindPasswordFile or bindPasswordEnv, not both' });
    issues.push(...checkManagedAd(dir));
  }
  // Quotas for a domain the platform does not serve would silently never apply.
  const served = new Set(spec.domains.map((d) => d.name.toLowerCase()));
  for (const d of Object.keys(spec.quotas.domains))
    if (!served.has(d.toLowerCase())) issues.push({ path: ['quotas', 'domains', d], message: `quotas for ${d}, which is not in domains` });
  return issues;
}

/**
 * AWS Managed AD lets the customer create objects only under OU=<NetBIOS name>; the engines create the
 * service account there (managedAdBindDn), so a bindDn elsewhere names an account nobody can create.
 */
function checkManagedAd(dir: Extract<Spec['directory'], { kind: 'ldap' }>): CheckIssue[] {
  const issues: CheckIssue[] = [];
  if (dir.provision !== 'managed-ad') {
    if (dir.tls !== undefined)
      issues.push({ path: ['directory', 'tls'], message: 'tls applies to provision: managed-ad; other directories use ldaps:// URIs or startTls' });
    return issues;
  }
  if (!/dc=/i.test(dir.baseDn)) issues.push({ path: ['directory', 'baseDn'], message: 'managed-ad: baseDn must name the domain (DC=corp,DC=example)' });
  const expected = managedAdBindDn(dir.baseDn);
  if (dir.bindDn !== undefined && normalizeDn(dir.bindDn) !== normalizeDn(expected)) {
    const ou = managedAdCustomerOu(dir.baseDn);
    const inside = normalizeDn(dir.bindDn).endsWith(`,${normalizeDn(ou)}`);
    issues.push({
      path: ['directory', 'bindDn'],
      message: inside
        ? `managed-ad: the platform creates its service account as ${expected}; omit bindDn or use that DN`
        : `managed-ad: AWS Managed AD allows objects only under ${ou} (the OU named after the directory's NetBIOS name); the platform creates its service account as ${expected}; omit bindDn or use that DN`,
    });
  }
  if (dir.userDnTemplate !== undefined)
    issues.push({ path: ['directory', 'userDnTemplate'], message: 'managed-ad: the platform binds with its service account (search then bind); remove userDnTemplate' });
  if (!dir.bindPasswordFile && !dir.bindPasswordEnv)
    issues.push({ path: ['directory', 'bindPasswordEnv'], message: 'managed-ad: set bindPasswordEnv or bindPasswordFile (where nodes put the generated service password)' });
  return issues;
}
