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
  /**
   * The targets are Auto Scaling instances: the group's processes that would replace a stopped
   * instance are suspended before the stop and resumed after the restart (drillActions), so the drill
   * tests what it claims (the NLB or DNS without those nodes) rather than the group's replacement.
   */
  readonly holdsGroup: boolean;
}

/**
 * Auto Scaling processes a drill suspends around a stop: HealthCheck marks a stopped instance unhealthy,
 * ReplaceUnhealthy terminates and replaces it, AZRebalance would launch in the other zones meanwhile.
 */
export const HELD_PROCESSES = ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance'] as const;

/** The SSM Automation document that suspends or resumes HELD_PROCESSES on a list of groups. */
export function processesDocumentName(plan: Pick<Plan, 'platform'>): string {
  return `${plan.platform}-drill-asg-processes`;
}

/** The Automation document (schema 0.3): one Python step calls Suspend/ResumeProcesses on each group. */
export function processesDocument(): Record<string, unknown> {
  return {
    schemaVersion: '0.3',
    description: 'mailfleet DR drills: suspend or resume the Auto Scaling processes that replace stopped instances',
    assumeRole: '{{ AutomationAssumeRole }}',
    parameters: {
      AutomationAssumeRole: { type: 'String', description: 'Role the automation runs as' },
      AutoScalingGroupNames: { type: 'StringList', description: 'Groups the drill stops instances of' },
      Action: { type: 'String', allowedValues: ['Suspend', 'Resume'] },
    },
    mainSteps: [
      {
        name: 'apply',
        action: 'aws:executeScript',
        inputs: {
          Runtime: 'python3.11',
          Handler: 'handler',
          InputPayload: { groups: '{{ AutoScalingGroupNames }}', action: '{{ Action }}', processes: [...HELD_PROCESSES] },
          Script: [
            'import boto3',
            'def handler(events, context):',
            "    asg = boto3.client('autoscaling')",
            "    call = asg.suspend_processes if events['action'] == 'Suspend' else asg.resume_processes",
            "    for group in events['groups']:",
            "        call(AutoScalingGroupName=group, ScalingProcesses=events['processes'])",
            '',
          ].join('\n'),
        },
      },
    ],
  };
}

/** One action of a drill's FIS template. */
export interface DrillActionModel {
  /** FIS action name (the key in the template's actions). */
  readonly name: string;
  readonly actionId: 'aws:ec2:stop-instances' | 'aws:ssm:start-automation-execution';
  /** Names of actions this one waits for. */
  readonly startAfter: readonly string[];
  /** The stop: restart after this ISO 8601 duration, on the `nodes` target. */
  readonly stop?: { readonly startInstancesAfterDuration: string };
  /** The automation: processesDocument with this action on the drill's groups (the engine fills ARNs and names). */
  readonly processes?: 'Suspend' | 'Resume';
}

/** How long FIS waits for one suspend/resume automation. */
export const PROCESSES_MAX_DURATION = 'PT5M';

/**
 * A drill's FIS actions: the stop alone for plain instances; for Auto Scaling instances suspend the
 * replacing processes, stop (FIS restarts them after startAfter), then resume.
 */
export function drillActions(d: DrillModel): DrillActionModel[] {
  const stop: DrillActionModel = { name: d.id, actionId: d.actionId, startAfter: d.holdsGroup ? ['suspend-replacement'] : [], stop: { startInstancesAfterDuration: d.startAfter } };
  if (!d.holdsGroup) return [stop];
  const automation = 'aws:ssm:start-automation-execution' as const;
  return [
    { name: 'suspend-replacement', actionId: automation, startAfter: [], processes: 'Suspend' },
    stop,
    { name: 'resume-replacement', actionId: automation, startAfter: [d.id], processes: 'Resume' },
  ];
}

/** The automation's parameters (FIS `documentParameters`, a JSON string). */
export function processesParameters(roleArn: string, groupNames: readonly string[], action: 'Suspend' | 'Resume'): Record<string, unknown> {
  return { AutomationAssumeRole: roleArn, AutoScalingGroupNames: [...groupNames], Action: action };
}

/** The automation role's statements: suspend/resume this platform's groups only (by tag). */
export function processesRoleStatements(platform: string): { actions: string[]; resource: '*'; conditions?: Record<string, Record<string, string>> }[] {
  return [
    {
      actions: ['autoscaling:SuspendProcesses', 'autoscaling:ResumeProcesses'],
      resource: '*',
      conditions: { StringEquals: { 'autoscaling:ResourceTag/mailfleet:platform': platform } },
    },
  ];
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
      holdsGroup: false,
    },
    {
      id: 'lose-proxy-az',
      description: `Stop the HAProxy nodes in ${firstAz}: the NLBs route around the zone`,
      nodeRole: 'proxy',
      selectionMode: 'ALL',
      availabilityZone: firstAz,
      actionId: stop,
      startAfter: 'PT15M',
      holdsGroup: true,
    },
    {
      id: 'primary-proxy-outage',
      description: 'Stop every primary HAProxy node for 20 minutes: the health checks fail and Route 53 answers with the DR region',
      nodeRole: 'proxy',
      selectionMode: 'ALL',
      actionId: stop,
      startAfter: 'PT20M',
      holdsGroup: true,
    },
  ];
}

/** Where a FIS role statement applies, as each engine spells the ARN. */
export type FisResource =
  /** `arn:<partition>:ec2:<region>:<account>:instance/*` */
  | 'instances'
  /** the processes document: `arn:…:ssm:<region>:<account>:automation-definition/<name>:*` */
  | 'automation-definition'
  /** `arn:…:ssm:<region>:<account>:automation-execution/*` */
  | 'automation-execution'
  /** the automation role's ARN */
  | 'automation-role'
  | '*';

/**
 * The FIS role's statements: stop/start/terminate this platform's instances only (by tag; the
 * `instances` placeholder is the engine's `arn:<partition>:ec2:<region>:<account>:instance/*`),
 * describe instances (no resource-level permissions exist for it), and run the processes automation.
 */
export function fisRoleStatements(platform: string): { actions: string[]; resource: FisResource; conditions?: Record<string, Record<string, string>> }[] {
  return [
    { actions: ['ssm:StartAutomationExecution'], resource: 'automation-definition' },
    { actions: ['ssm:GetAutomationExecution', 'ssm:StopAutomationExecution'], resource: 'automation-execution' },
    { actions: ['iam:PassRole'], resource: 'automation-role' },
    {
      actions: ['ec2:StopInstances', 'ec2:StartInstances', 'ec2:TerminateInstances'],
      resource: 'instances',
      conditions: { StringEquals: { 'aws:ResourceTag/mailfleet:platform': platform } },
    },
    { actions: ['ec2:DescribeInstances'], resource: '*' },
  ];
}
