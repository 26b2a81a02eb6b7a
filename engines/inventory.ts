/**
 * The engine-neutral resource inventory: what the parity suite compares across AWS CDK, Terraform (cdktf)
 * and Pulumi for one spec. Each engine has an extractor that turns its own output (a CloudFormation
 * template, Terraform JSON, Pulumi mock registrations) into neutral resources; `inventoryOf` folds those
 * into one shape, so the comparison never depends on an engine's syntax.
 */
import { createHash } from 'node:crypto';
import type { Plan } from '../lib/plan/types.js';
import { privateRecordsOf, publicDnsOf, securityGroupsOf } from '../lib/plan/network.js';

/** Which region of the platform a resource belongs to (one definition, in the node layout). */
import type { RegionRole } from '../lib/render/node-layout.js';
export type { RegionRole };

/** Node roles. Engines tag resources with `mailfleet:role` so every extractor can tell them apart. */
export const ROLES = ['proxy', 'mail', 'storage', 'ldap', 'efs', 'nlb', 'endpoint'] as const;
export type Role = (typeof ROLES)[number];
export const ROLE_TAG = 'mailfleet:role';

export interface EngineInventory {
  /** Shared kind → count over all regions (kinds as in plan.inventory where the plan lists them). */
  readonly kinds: Readonly<Record<string, number>>;
  /** Every NLB listener port over all regions, sorted ascending (a port repeats once per region). */
  readonly listenerPorts: readonly number[];
  /** Normalized rules, sorted: "primary ingress tcp 993 from 0.0.0.0/0 to proxy". */
  readonly securityGroupRules: readonly string[];
  /** "<region>/<role>" → sha256 of the node bootstrap (user data) text. */
  readonly bootstrapHashes: Readonly<Record<string, string>>;
  /**
   * Route 53 records, sorted, once per record an engine writes: "A gluster-1.acme.internal" (no trailing
   * dot). No region: which provider writes a public failover record is the engine's business.
   */
  readonly recordNames: readonly string[];
}

/** One resource after an extractor has read it from engine output. */
export interface NeutralResource {
  readonly kind: string;
  readonly region: RegionRole;
  readonly role?: string;
  /** NLB listeners: the port clients connect to. */
  readonly port?: number;
  /** Launch templates and instances: decoded user data. */
  readonly userData?: string;
  /** Route 53 records: the type and the name as written (a trailing dot is dropped). */
  readonly record?: { readonly type: string; readonly name: string };
}

/** A security-group rule after the extractor resolved group ids to roles. */
export interface NeutralRule {
  readonly region: RegionRole;
  readonly direction: 'ingress' | 'egress';
  /** tcp, udp, icmp or all */
  readonly protocol: string;
  readonly fromPort?: number;
  readonly toPort?: number;
  /** The group the rule belongs to (its role). */
  readonly group: string;
  /** A CIDR or the role of the peer group. */
  readonly peer: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function ruleText(r: NeutralRule): string {
  const ports =
    r.protocol === 'all' || r.fromPort === undefined
      ? 'all'
      : r.fromPort === r.toPort || r.toPort === undefined
        ? `${r.fromPort}`
        : `${r.fromPort}-${r.toPort}`;
  return r.direction === 'ingress'
    ? `${r.region} ingress ${r.protocol} ${ports} from ${r.peer} to ${r.group}`
    : `${r.region} egress ${r.protocol} ${ports} from ${r.group} to ${r.peer}`;
}

export const recordText = (type: string, name: string): string => `${type} ${name.endsWith('.') ? name.slice(0, -1) : name}`;

/** IpProtocol numbers and names as the three engines spell them. */
export function normalizeProtocol(p: string | number | undefined): string {
  const s = String(p ?? '-1').toLowerCase();
  if (s === '-1' || s === 'all') return 'all';
  if (s === '6') return 'tcp';
  if (s === '17') return 'udp';
  if (s === '1') return 'icmp';
  return s;
}

export function inventoryOf(resources: readonly NeutralResource[], rules: readonly NeutralRule[]): EngineInventory {
  const kinds: Record<string, number> = {};
  for (const r of resources) kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
  const listenerPorts = resources
    .filter((r) => r.kind === 'nlb-listener' && r.port !== undefined)
    .map((r) => r.port as number)
    .sort((a, b) => a - b);
  const texts = new Map<string, string[]>();
  for (const r of resources) {
    if (r.userData === undefined) continue;
    const key = `${r.region}/${r.role ?? 'unknown'}`;
    texts.set(key, [...(texts.get(key) ?? []), sha256(r.userData)]);
  }
  const bootstrapHashes: Record<string, string> = {};
  for (const [key, hashes] of [...texts].sort(([a], [b]) => a.localeCompare(b))) {
    const distinct = [...new Set(hashes)].sort();
    // Nodes of one role normally share one text; if they do not, the set of texts is what must match.
    bootstrapHashes[key] = distinct.length === 1 ? distinct[0]! : sha256(distinct.join(','));
  }
  return {
    kinds: Object.fromEntries(Object.entries(kinds).sort(([a], [b]) => a.localeCompare(b))),
    listenerPorts,
    securityGroupRules: rules.map(ruleText).sort(),
    bootstrapHashes,
    recordNames: resources.flatMap((r) => (r.record ? [recordText(r.record.type, r.record.name)] : [])).sort(),
  };
}

/** Differences between two inventories, as sentences; empty when they are equal. */
export function diffInventories(a: EngineInventory, b: EngineInventory, labels: [string, string] = ['a', 'b']): string[] {
  const [la, lb] = labels;
  const out: string[] = [];
  for (const kind of [...new Set([...Object.keys(a.kinds), ...Object.keys(b.kinds)])].sort()) {
    const x = a.kinds[kind] ?? 0;
    const y = b.kinds[kind] ?? 0;
    if (x !== y) out.push(`kind ${kind}: ${la} has ${x}, ${lb} has ${y}`);
  }
  if (a.listenerPorts.join(',') !== b.listenerPorts.join(','))
    out.push(`listener ports: ${la} [${a.listenerPorts.join(',')}], ${lb} [${b.listenerPorts.join(',')}]`);
  for (const [rule, n] of multisetDiff(a.securityGroupRules, b.securityGroupRules))
    out.push(n > 0 ? `rule only in ${la} (×${n}): ${rule}` : `rule only in ${lb} (×${-n}): ${rule}`);
  for (const [rec, n] of multisetDiff(a.recordNames, b.recordNames))
    out.push(n > 0 ? `record only in ${la} (×${n}): ${rec}` : `record only in ${lb} (×${-n}): ${rec}`);
  for (const key of [...new Set([...Object.keys(a.bootstrapHashes), ...Object.keys(b.bootstrapHashes)])].sort()) {
    const x = a.bootstrapHashes[key];
    const y = b.bootstrapHashes[key];
    if (x !== y) out.push(`bootstrap ${key}: ${la} ${x?.slice(0, 12) ?? 'none'}, ${lb} ${y?.slice(0, 12) ?? 'none'}`);
  }
  return out;
}

function multisetDiff(a: readonly string[], b: readonly string[]): [string, number][] {
  const m = new Map<string, number>();
  for (const x of a) m.set(x, (m.get(x) ?? 0) + 1);
  for (const x of b) m.set(x, (m.get(x) ?? 0) - 1);
  return [...m].filter(([, n]) => n !== 0).sort(([x], [y]) => x.localeCompare(y));
}

/**
 * Differences between an engine's inventory and what the plan says it must hold: every kind the plan
 * lists with its count, and every listener port once per region.
 */
export function diffFromPlan(plan: Plan, inv: EngineInventory, label = 'engine'): string[] {
  const out: string[] = [];
  for (const line of plan.inventory) {
    const n = inv.kinds[line.kind] ?? 0;
    if (n !== line.count) out.push(`kind ${line.kind}: plan has ${line.count} (${line.why}), ${label} has ${n}`);
  }
  const regions = plan.regions?.dr ? 2 : 1;
  const ports = plan.listeners.flatMap((l) => Array.from({ length: regions }, () => l.publicPort)).sort((a, b) => a - b);
  if (ports.join(',') !== inv.listenerPorts.join(','))
    out.push(`listener ports: plan [${ports.join(',')}], ${label} [${inv.listenerPorts.join(',')}]`);
  return out;
}

/**
 * The security-group rules and record names the platform model (lib/plan/network.ts) declares, in the
 * inventory's text form: what every engine's output must hold, exactly.
 */
export function modelNetwork(plan: Plan): Pick<EngineInventory, 'securityGroupRules' | 'recordNames'> {
  const regions = plan.regions?.dr ? (['primary', 'dr'] as const) : (['primary'] as const);
  const rules: NeutralRule[] = regions.flatMap((region) =>
    securityGroupsOf(plan, region).flatMap((g) => [
      ...g.ingress.map((r): NeutralRule => ({
        region,
        direction: 'ingress',
        protocol: r.protocol,
        fromPort: r.fromPort,
        toPort: r.toPort,
        group: g.role,
        peer: 'cidr' in r.peer ? r.peer.cidr : r.peer.role,
      })),
      ...(g.egressAllTo ? [{ region, direction: 'egress', protocol: 'all', group: g.role, peer: g.egressAllTo } as NeutralRule] : []),
    ]),
  );
  const records = regions.flatMap((region) => privateRecordsOf(plan, region).map((r) => recordText(r.node ? 'A' : 'CNAME', r.name)));
  const dns = publicDnsOf(plan);
  // CDK writes public records only with a hosted zone id (it never looks zones up); the examples give one.
  if (dns) for (const r of dns.records) for (let i = 0; i < (dns.failover ? 2 : 1); i++) records.push(recordText('A', r.name));
  return { securityGroupRules: rules.map(ruleText).sort(), recordNames: records.sort() };
}

/**
 * Best guess of a node role from names an engine gave a resource (logical ids, descriptions), for
 * outputs that carry no `mailfleet:role` tag.
 */
export function guessRole(...names: (string | undefined)[]): Role | undefined {
  const s = names.filter(Boolean).join(' ').toLowerCase();
  if (/endpoint/.test(s)) return 'endpoint';
  if (/haproxy|proxy/.test(s)) return 'proxy';
  if (/gluster|storage/.test(s)) return 'storage';
  if (/ldap|slapd|directory/.test(s)) return 'ldap';
  if (/efs|filesystem|nfs/.test(s)) return 'efs';
  if (/nlb|loadbalancer|load-balancer/.test(s)) return 'nlb';
  if (/mail|daemon/.test(s)) return 'mail';
  return undefined;
}

/** Shared kind of an instance, by role; the plan counts storage and LDAP nodes apart. */
export function instanceKind(role: string | undefined): string {
  if (role === 'storage') return 'storage-instance';
  if (role === 'ldap') return 'ldap-instance';
  return 'instance';
}

export function decodeBase64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** A readable summary of an inventory (what `mailfleet synth` prints). */
export function formatInventory(inv: EngineInventory, table: (h: string[], rows: (string | number)[][]) => string): string {
  const ports = [...new Set(inv.listenerPorts)];
  return [
    table(['kind', 'count'], Object.entries(inv.kinds)),
    '',
    `listener ports (${inv.listenerPorts.length} listeners): ${ports.join(', ')}`,
    `security-group rules: ${inv.securityGroupRules.length}`,
    ...inv.securityGroupRules.map((r) => `  ${r}`),
    'bootstrap (sha256 of user data):',
    ...Object.entries(inv.bootstrapHashes).map(([k, h]) => `  ${k.padEnd(16)} ${h}`),
  ].join('\n');
}
