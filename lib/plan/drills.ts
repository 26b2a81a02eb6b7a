/**
 * The DR drills as FIS experiment templates, declared once: the CDK DisasterRecovery construct,
 * Terraform and Pulumi translate these (targets by tag, the action, the role's statements).
 */
import type { DrillId } from './outputs.js';
import type { Plan } from './types.js';

/** A FIS drill in the primary region. */
export interface DrillModel {
  readonly id: DrillId;
  readonly description: string;
  /** Instances with this mailfleet:role tag (and the platform tag) are the targets. */
  readonly nodeRole: 'storage' | 'proxy';
  readonly selectionMode: string;
  readonly availabilityZone?: string;
  /** FIS action: stop the targets and start them again after startAfter. */
  readonly actionId: 'aws:ec2:stop-instances';
  /** ISO 8601 duration after which FIS starts the stopped instances again. */
  readonly startAfter: string;
}

/** Instance filters of every drill target (FIS `Filters`): running, and in the drill's zone when it names one. */
export function drillFilters(d: DrillModel): { path: string; values: string[] }[] {
  return [{ path: 'State.Name', values: ['running'] }, ...(d.availabilityZone ? [{ path: 'Placement.AvailabilityZone', values: [d.availabilityZone] }] : [])];
}

/** A storage node down (heal), a proxy AZ lost (NLB shifts), every primary proxy down (DNS fails over). */
export function drillsOf(plan: Plan): DrillModel[] {
  if (!plan.regions?.dr) return [];
  const firstAz = plan.regions.primary.availabilityZones[0];
  const stop = 'aws:ec2:stop-instances' as const;
  return [
    {
      id: 'stop-one-storage-node',
      description: 'Stop one storage node for 10 minutes: the volume keeps quorum and heals after restart',
      nodeRole: 'storage',
      selectionMode: 'COUNT(1)',
      actionId: stop,
      startAfter: 'PT10M',
    },
    {
      id: 'lose-proxy-az',
      description: `Stop the HAProxy nodes in ${firstAz}: the NLBs route around the zone`,
      nodeRole: 'proxy',
      selectionMode: 'ALL',
      availabilityZone: firstAz,
      actionId: stop,
      startAfter: 'PT15M',
    },
    {
      id: 'primary-proxy-outage',
      description: 'Stop every primary HAProxy node for 20 minutes: the health checks fail and Route 53 answers with the DR region',
      nodeRole: 'proxy',
      selectionMode: 'ALL',
      actionId: stop,
      startAfter: 'PT20M',
    },
  ];
}

/**
 * The FIS role's statements: stop/start/terminate this platform's instances only (by tag; the
 * `instances` placeholder is the engine's `arn:<partition>:ec2:<region>:<account>:instance/*`), and
 * describe instances (no resource-level permissions exist for it).
 */
export function fisRoleStatements(platform: string): { actions: string[]; resource: 'instances' | '*'; conditions?: Record<string, Record<string, string>> }[] {
  return [
    {
      actions: ['ec2:StopInstances', 'ec2:StartInstances', 'ec2:TerminateInstances'],
      resource: 'instances',
      conditions: { StringEquals: { 'aws:ResourceTag/mailfleet:platform': platform } },
    },
    { actions: ['ec2:DescribeInstances'], resource: '*' },
  ];
}
