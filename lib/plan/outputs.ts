/**
 * The outputs every engine exports, declared once. The CDK stacks export them per regional stack under
 * `name`; the single-state engines (Terraform, Pulumi) hold both regions in one state and export
 * `qualifiedOutputName(role, name)`. The AWS DR drill reads these names (never a list of its own), and
 * `mailfleet dr drill --aws --check-outputs` holds a synthesized engine output to them.
 */
import { storageHost, type RegionRole } from '../render/node-layout.js';
import type { Plan } from './types.js';

/** FIS drills in the primary region (the DisasterRecovery construct and the engines define one template each). */
export const DRILL_IDS = ['stop-one-storage-node', 'lose-proxy-az', 'primary-proxy-outage'] as const;
export type DrillId = (typeof DRILL_IDS)[number];
/** The drill the AWS DR drill starts as its fault: every primary proxy down, so Route 53 fails over. */
export const REGION_OUTAGE_DRILL: DrillId = 'primary-proxy-outage';

/** What an output's value is, engine-neutral; each engine maps a source to its own resource attribute. */
export type OutputSource =
  | { readonly kind: 'vpc-id' }
  | { readonly kind: 'nlb-dns'; readonly shard: number }
  | { readonly kind: 'mail-asg-name' }
  | { readonly kind: 'health-check-id'; readonly shard: number }
  | { readonly kind: 'fis-template-id'; readonly drill: DrillId }
  /** GlusterFS node instance id; nodes are numbered from 1 like their names (gluster-1…). */
  | { readonly kind: 'storage-instance-id'; readonly node: number }
  /** A constant: storage node 1's region-qualified name, which the other region resolves (geo-replication). */
  | { readonly kind: 'storage-host'; readonly value: string }
  | { readonly kind: 'efs-id' }
  | { readonly kind: 'ldap-instance-id'; readonly ldapRole: 'provider' | 'consumer' };

export interface OutputModel {
  /** Output key (CloudFormation output names are alphanumeric). */
  readonly name: string;
  readonly description: string;
  readonly source: OutputSource;
}

/** Output name in a state holding both regions (Terraform, Pulumi): `primary_VpcId`, `dr_Nlb0Dns`. */
export function qualifiedOutputName(role: RegionRole, name: string): string {
  return `${role}_${name}`;
}

/** The outputs of one region, in a stable order. */
export function platformOutputs(plan: Plan, role: RegionRole): OutputModel[] {
  const withDr = plan.regions?.dr !== undefined;
  const out: OutputModel[] = [{ name: 'VpcId', description: 'VPC id (the other region peers with it)', source: { kind: 'vpc-id' } }];
  for (const s of plan.nlbShards)
    out.push({ name: `Nlb${s.index}Dns`, description: `DNS name of NLB shard ${s.index}`, source: { kind: 'nlb-dns', shard: s.index } });
  out.push({ name: 'MailAsgName', description: 'mail tier Auto Scaling group', source: { kind: 'mail-asg-name' } });
  if (plan.storage.kind === 'glusterfs') {
    for (let n = 1; n <= plan.sizing.storageNodes; n++)
      out.push({ name: `StorageNode${n}`, description: `GlusterFS node ${n} instance id`, source: { kind: 'storage-instance-id', node: n } });
    if (withDr)
      out.push({
        name: 'StorageHost',
        description: 'storage node 1 as the other region names it (geo-replication)',
        source: { kind: 'storage-host', value: storageHost(plan, role, 1) },
      });
  } else out.push({ name: 'EfsFileSystemId', description: 'EFS file system id', source: { kind: 'efs-id' } });
  const dir = plan.directory;
  if (dir.kind === 'ldap' && dir.provision === 'openldap-pair')
    for (const ldapRole of role === 'primary' ? (['provider', 'consumer'] as const) : (['consumer'] as const))
      out.push({
        name: ldapRole === 'provider' ? 'LdapProvider' : 'LdapConsumer',
        description: `OpenLDAP ${ldapRole} instance id`,
        source: { kind: 'ldap-instance-id', ldapRole },
      });
  if (withDr && role === 'primary') {
    if (plan.spec.dns)
      for (const s of plan.nlbShards)
        out.push({
          name: `HealthCheckId${s.index}`,
          description: `Route 53 health check of NLB shard ${s.index} (drives the failover records)`,
          source: { kind: 'health-check-id', shard: s.index },
        });
    DRILL_IDS.forEach((drill, i) =>
      out.push({ name: `Drill${i}`, description: `FIS experiment template ${drill}`, source: { kind: 'fis-template-id', drill } }),
    );
  }
  return out;
}

/** True when two sources name the same thing (storage-host compares by kind: its value is the output's value). */
function sameSource(a: OutputSource, b: OutputSource): boolean {
  if (a.kind === 'storage-host' || b.kind === 'storage-host') return a.kind === b.kind;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The declared output for a source, or undefined when this platform has none (e.g. no DR region). */
export function findOutput(plan: Plan, role: RegionRole, source: OutputSource): OutputModel | undefined {
  return platformOutputs(plan, role).find((o) => sameSource(o.source, source));
}
