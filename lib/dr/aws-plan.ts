/**
 * The AWS DR drill as data: an ordered list of failover steps, each with the SDK calls it makes, the
 * `aws` CLI line an operator would type, its verification probe and its fail-back. Pure (no I/O): the
 * dry run prints it, lib/dr/aws-run.ts executes it, and tests read it.
 *
 * Names that only exist after deployment (health-check ids, instance ids, the FIS template) are
 * placeholders `<from stack output STACK.KEY>`, resolved at run time from CloudFormation DescribeStacks
 * of the two regional stacks; `<from result SAVE.PATH>` refers to an earlier call's response.
 */
import { stackNames } from '../plan/link.js';
import { MailfleetError } from '../errors.js';
import { REGION_OUTAGE_DRILL, findOutput, type OutputSource } from '../plan/outputs.js';
import { drillActions, drillsOf, processesDocumentName } from '../plan/drills.js';
import type { Plan } from '../plan/types.js';
import type { RegionRole } from '../render/node-layout.js';

export type AwsService = 'cloudformation' | 'ssm' | 'fis' | 'route53' | 'efs';

/** How the executor waits after a call before the step counts as done. */
export type AwsWait =
  | { readonly kind: 'ssm-command'; readonly timeoutSeconds: number }
  | { readonly kind: 'fis-experiment'; readonly states: readonly string[]; readonly timeoutSeconds: number }
  | { readonly kind: 'efs-replicated'; readonly maxLagSeconds: number; readonly timeoutSeconds: number }
  | { readonly kind: 'ssm-automation'; readonly timeoutSeconds: number };

export interface AwsCall {
  readonly service: AwsService;
  readonly region: string;
  /** SDK command name without the `Command` suffix, e.g. `UpdateHealthCheck`. */
  readonly operation: string;
  readonly input: Readonly<Record<string, unknown>>;
  /** The equivalent `aws` CLI command, placeholders left in. */
  readonly cli: string;
  /** Name under which the response is kept for `<from result NAME.path>` placeholders. */
  readonly saveAs?: string;
  readonly wait?: AwsWait;
  /** A failing call does not stop the run (used for best-effort fail-back clean-up). */
  readonly optional?: boolean;
  /** This call's wait measures the replication lag: the RPO the report shows. */
  readonly measuresRpo?: boolean;
  /**
   * The call (ssm StartAutomationExecution) runs the automation that an action of a FIS experiment started
   * earlier in the drill runs: its document and documentParameters are read from that experiment (the
   * deployed template's own values), and `input` only adds to them. Skipped when the experiment was never
   * started (it then suspended nothing).
   */
  readonly automationOf?: { readonly experiment: string; readonly action: string; readonly set: Readonly<Record<string, string>> };
}

export type ProbeKind = 'dns-switch' | 'smtp-banner' | 'imap-login';

/** A check run from the drill runner itself (not an AWS API): DNS answer, SMTP banner, IMAP login. */
export interface Probe {
  readonly kind: ProbeKind;
  readonly host: string;
  readonly port?: number;
  /** For dns-switch: the load balancer name the public name must resolve to (same addresses). */
  readonly expect?: string;
  /** The equivalent command an operator can type. */
  readonly cli: string;
}

export interface DrillStepPart {
  readonly calls: readonly AwsCall[];
  readonly probes: readonly Probe[];
}

export interface DrillStep extends DrillStepPart {
  readonly id: string;
  readonly title: string;
  /** One or two sentences: what this step does and why. */
  readonly does: string;
  /** What proves the step worked. */
  readonly verify: string;
  /** Steps from this one on count towards RTO (the first is the fault itself). */
  readonly startsRto?: boolean;
}

export interface AwsDrillPlan {
  readonly platform: string;
  readonly primaryRegion: string;
  readonly drRegion: string;
  readonly stacks: { readonly primary: string; readonly dr: string };
  /** Stack outputs the steps read; preflight fails when one is missing. */
  readonly requiredOutputs: Readonly<Record<string, readonly string[]>>;
  readonly failover: 'health-check-inversion';
  readonly targets: { readonly rpoSeconds: number; readonly rtoSeconds: number };
  readonly publicNames: readonly string[];
  readonly steps: readonly DrillStep[];
  /** Fail-back, in order: primary back, data copied back, directory, DNS, last data. */
  readonly failback: readonly FailbackStep[];
}

export interface FailbackStep extends DrillStepPart {
  readonly id: string;
  readonly title: string;
  /** The failover step this undoes: a rollback after a failure runs only steps whose target had begun. */
  readonly undoes: string;
}

/** How long the fail-back waits for the processes automation (FIS gives it PROCESSES_MAX_DURATION, 5 min). */
export const RESUME_TIMEOUT_SECONDS = 300;

/**
 * The fail-back call that resumes the Auto Scaling processes the region-outage drill suspended, when its
 * template holds the groups (lib/plan/drills.ts): the same automation, document and groups as the
 * template's resume action, read from the started experiment.
 */
function resumeCalls(plan: Plan, region: string): AwsCall[] {
  const drill = drillsOf(plan).find((d) => d.id === REGION_OUTAGE_DRILL);
  const resume = drill ? drillActions(drill).find((a) => a.processes === 'Resume') : undefined;
  if (!drill || !resume) return [];
  return [
    {
      service: 'ssm',
      region,
      operation: 'StartAutomationExecution',
      input: {},
      automationOf: { experiment: 'experiment', action: resume.name, set: { Action: 'Resume' } },
      cli: `aws ssm start-automation-execution --region ${region} --document-name ${processesDocumentName(plan)} --parameters 'Action=Resume,AutoScalingGroupNames=<groups of ${resume.name} in the experiment>,AutomationAssumeRole=<role of ${resume.name} in the experiment>'`,
      wait: { kind: 'ssm-automation', timeoutSeconds: RESUME_TIMEOUT_SECONDS },
    },
  ];
}

/** Stack names, one per region; the CDK, Terraform and Pulumi engines use the same. */
export function drStackNames(platform: string): { primary: string; dr: string } {
  return stackNames(platform);
}

/**
 * The stack outputs the drill reads, as the platform model declares them (lib/plan/outputs.ts): every
 * engine exports those names, so the drill never keeps a list of its own.
 */
export function drillOutput(plan: Plan, role: RegionRole, source: OutputSource): string {
  const o = findOutput(plan, role, source);
  if (!o)
    throw new MailfleetError('PLAN_INVALID', `the platform model declares no ${role} output for ${source.kind}: the drill cannot run on this platform`);
  return o.name;
}

/** Public name of an NLB shard: `<prefix>.<zone>` for shard 0, `<prefix>-<n>.<zone>` for the others. */
export function publicName(plan: Plan, shard: number): string {
  const dns = plan.spec.dns;
  if (!dns)
    throw new MailfleetError(
      'PLAN_INVALID',
      'the DR drill needs dns (the Route 53 zone holding the failover records)',
    );
  return `${dns.recordPrefix}${shard === 0 ? '' : `-${shard}`}.${dns.zoneName}`;
}

export const out = (stack: string, key: string): string => `<from stack output ${stack}.${key}>`;
export const res = (name: string, path: string): string => `<from result ${name}.${path}>`;

/** Shell for the GlusterFS geo-replication checkpoint: set it, then wait until the status says completed. */
export function glusterCheckpointScript(volume: string, toHost: string, timeoutSeconds: number): string[] {
  const session = `${volume} ${toHost}::${volume}`;
  return [
    `gluster volume geo-replication ${session} config checkpoint now`,
    // No `exit 0` inside the loop: SSM runs all lines as one script, and later lines must still run.
    // GlusterFS 10 prints `status detail` as a table (a "CHECKPOINT COMPLETED" column): read the XML field.
    `ok=0; for i in $(seq 1 ${Math.ceil(timeoutSeconds / 5)}); do gluster volume geo-replication ${session} status detail --xml | grep -q '<checkpoint_completed>Yes</checkpoint_completed>' && { ok=1; break; }; sleep 5; done; [ $ok = 1 ] || { echo 'checkpoint not completed in ${timeoutSeconds} s' >&2; exit 1; }`,
  ];
}

// Paths and unit as the slapd renderer (lib/render/slapd.ts, lib/render/systemd.ts) lays them out: slapd
// runs from slapd.conf, and a consumer's syncrepl directive lives in an include file written at boot.
const SLAPD_CONF = '/etc/ldap/slapd.conf';
const SYNCREPL_INCLUDE = '/etc/ldap/mailfleet-syncrepl.conf';
const SLAPD_UNIT = 'mailfleet-slapd';

/** Makes the DR OpenLDAP consumer writable: no syncrepl, no update referral to the dead provider. */
export const LDAP_PROMOTE_SCRIPT: readonly string[] = Object.freeze([
  `cp -p ${SYNCREPL_INCLUDE} ${SYNCREPL_INCLUDE}.pre-drill`,
  `: >${SYNCREPL_INCLUDE}`,
  `sed -i 's/^updateref /#drill updateref /' ${SLAPD_CONF}`,
  `systemctl restart ${SLAPD_UNIT}`,
  `systemctl is-active ${SLAPD_UNIT}`,
]);

/** Makes it a consumer again (fail-back): syncrepl and the referral restored. */
export const LDAP_DEMOTE_SCRIPT: readonly string[] = Object.freeze([
  `mv ${SYNCREPL_INCLUDE}.pre-drill ${SYNCREPL_INCLUDE}`,
  `sed -i 's/^#drill updateref /updateref /' ${SLAPD_CONF}`,
  `systemctl restart ${SLAPD_UNIT}`,
  `systemctl is-active ${SLAPD_UNIT}`,
]);

function quoteArgs(lines: readonly string[]): string {
  return `'${JSON.stringify({ commands: lines }).replace(/'/g, `'\\''`)}'`;
}

function ssmRun(
  region: string,
  instance: string,
  lines: readonly string[],
  comment: string,
  timeoutSeconds: number,
): AwsCall {
  return {
    service: 'ssm',
    region,
    operation: 'SendCommand',
    input: {
      DocumentName: 'AWS-RunShellScript',
      InstanceIds: [instance],
      Comment: comment,
      TimeoutSeconds: timeoutSeconds,
      Parameters: { commands: [...lines] },
    },
    cli: `aws ssm send-command --region ${region} --document-name AWS-RunShellScript --instance-ids ${instance} --comment '${comment}' --parameters ${quoteArgs(lines)}`,
    wait: { kind: 'ssm-command', timeoutSeconds },
  };
}

function invert(region: string, healthCheckId: string, inverted: boolean): AwsCall {
  return {
    service: 'route53',
    region,
    operation: 'UpdateHealthCheck',
    input: { HealthCheckId: healthCheckId, Inverted: inverted },
    cli: `aws route53 update-health-check --health-check-id ${healthCheckId} --${inverted ? '' : 'no-'}inverted`,
  };
}

function probesFor(plan: Plan, role: RegionRole): Probe[] {
  const stack = drStackNames(plan.platform)[role];
  const probes: Probe[] = [];
  for (const shard of plan.nlbShards) {
    const host = publicName(plan, shard.index);
    const expect = out(stack, drillOutput(plan, role, { kind: 'nlb-dns', shard: shard.index }));
    probes.push({
      kind: 'dns-switch',
      host,
      expect,
      cli: `dig +short ${host} ; dig +short ${expect}  # same addresses`,
    });
    const mx = plan.listeners.find((l) => l.nlbShard === shard.index && l.protocol === 'smtp');
    const imap = plan.listeners.find(
      (l) => l.nlbShard === shard.index && (l.protocol === 'imap' || l.protocol === 'imaps'),
    );
    if (mx)
      probes.push({
        kind: 'smtp-banner',
        host,
        port: mx.publicPort,
        cli: `swaks --server ${host}:${mx.publicPort} --quit-after BANNER`,
      });
    if (imap)
      probes.push({
        kind: 'imap-login',
        host,
        port: imap.publicPort,
        cli: `curl --ssl${imap.protocol === 'imap' ? '-reqd' : ''} -u "$MAILFLEET_DRILL_USER:$MAILFLEET_DRILL_PASSWORD" imap${imap.protocol === 'imaps' ? 's' : ''}://${host}:${imap.publicPort}/INBOX -X 'FETCH 1:* (FLAGS)'`,
      });
  }
  return probes;
}

/**
 * Derives the drill from the plan. Throws PLAN_INVALID when the platform has no DR region or no DNS
 * zone (nothing to fail over to, or no records to switch).
 */
export function buildAwsDrillPlan(plan: Plan): AwsDrillPlan {
  const regions = plan.regions;
  if (!regions?.dr)
    throw new MailfleetError(
      'PLAN_INVALID',
      `platform ${plan.platform} has no DR region: set regions.dr (and dr: rpoSeconds/rtoSeconds) in the spec before drilling`,
    );
  const dns = plan.spec.dns;
  if (!dns)
    throw new MailfleetError(
      'PLAN_INVALID',
      'the DR drill needs dns (the Route 53 zone holding the failover records)',
    );
  const pr = regions.primary.name;
  const dr = regions.dr.name;
  const stacks = drStackNames(plan.platform);
  const targets = { rpoSeconds: plan.dr?.rpoSeconds ?? 60, rtoSeconds: plan.dr?.rtoSeconds ?? 300 };
  const R53 = 'us-east-1'; // Route 53 is a global service signed in us-east-1
  const required: Record<string, string[]> = { [stacks.primary]: [], [stacks.dr]: [] };
  const need = (role: RegionRole, source: OutputSource) => {
    const stack = stacks[role];
    const key = drillOutput(plan, role, source);
    if (!required[stack]!.includes(key)) required[stack]!.push(key);
    return out(stack, key);
  };
  const healthChecks = plan.nlbShards.map((s) => need('primary', { kind: 'health-check-id', shard: s.index }));
  for (const s of plan.nlbShards) need('dr', { kind: 'nlb-dns', shard: s.index });
  for (const s of plan.nlbShards) need('primary', { kind: 'nlb-dns', shard: s.index });
  const fisTemplate = need('primary', { kind: 'fis-template-id', drill: REGION_OUTAGE_DRILL });

  const preflight: DrillStep = {
    id: 'preflight',
    title: 'Preflight: both regional stacks deployed, outputs read',
    does: 'Reads the primary and DR stacks (status *_COMPLETE) and the outputs every later step needs; resolves each <from stack output …> placeholder.',
    verify: 'Both stacks are CREATE_COMPLETE or UPDATE_COMPLETE and every required output is present.',
    calls: (['primary', 'dr'] as const).map((role) => {
      const region = role === 'primary' ? pr : dr;
      return {
        service: 'cloudformation',
        region,
        operation: 'DescribeStacks',
        input: { StackName: stacks[role] },
        cli: `aws cloudformation describe-stacks --region ${region} --stack-name ${stacks[role]}`,
      };
    }),
    probes: [],
  };

  const fault: DrillStep = {
    id: 'fault',
    title: 'Fault: FIS experiment stops the primary region',
    does: `Starts the FIS experiment template ${REGION_OUTAGE_DRILL} (every primary HAProxy node stopped, so the health checks fail). Its start is time zero for RTO.`,
    verify: 'The experiment reaches running (or completed).',
    startsRto: true,
    calls: [
      {
        service: 'fis',
        region: pr,
        operation: 'StartExperiment',
        input: {
          experimentTemplateId: fisTemplate,
          clientToken: '<drill id>',
          tags: { 'mailfleet:drill': '<drill id>' },
        },
        cli: `aws fis start-experiment --region ${pr} --experiment-template-id ${fisTemplate} --tags mailfleet:drill=<drill id>`,
        saveAs: 'experiment',
        wait: { kind: 'fis-experiment', states: ['running', 'completed'], timeoutSeconds: 300 },
      },
    ],
    probes: [],
  };
  const restorePrimary: FailbackStep = {
    id: 'failback-primary',
    undoes: 'fault',
    title:
      'Fail-back: stop the FIS experiment (its stop-instances action starts the primary instances again)',
    calls: [
      {
        service: 'fis',
        region: pr,
        operation: 'StopExperiment',
        input: { id: res('experiment', 'experiment.id') },
        cli: `aws fis stop-experiment --region ${pr} --id ${res('experiment', 'experiment.id')}`,
        optional: true, // a completed experiment refuses to stop; its instances are started already
      },
      // A stopped experiment cancels its pending actions, the resume of the groups' processes among them:
      // resume them here, with the automation the template's own resume action names (a no-op when the
      // experiment had completed and resumed them itself).
      ...resumeCalls(plan, pr),
    ],
    probes: [],
  };

  // Storage: bound the data at risk before the fault, make the DR copy the writable one, and on fail-back
  // copy DR → primary in two passes (bulk while DR still serves, tail after the DNS switch).
  const rpoTimeout = Math.max(60, targets.rpoSeconds * 2);
  let checkpoint: DrillStep;
  let promote: DrillStep;
  let copyBack: FailbackStep;
  let copyTail: FailbackStep;
  if (plan.storage.kind === 'glusterfs') {
    const vol = plan.storage.volumeName;
    const host: OutputSource = { kind: 'storage-host', value: '' };
    const node1: OutputSource = { kind: 'storage-instance-id', node: 1 };
    const drHost = need('dr', host);
    const prHost = need('primary', host);
    const prNode = need('primary', node1);
    const drNode = need('dr', node1);
    const reverse = `${vol} ${prHost}::${vol}`;
    checkpoint = {
      id: 'storage-checkpoint',
      title: `GlusterFS geo-replication checkpoint ${vol} → ${dr}`,
      does: 'Sets a geo-replication checkpoint on the primary volume and waits until gsyncd reports it completed: every change made before it is on the DR volume. The time it takes is the replication lag (RPO) at drill time.',
      verify: `geo-replication status detail --xml shows checkpoint_completed Yes within ${rpoTimeout} s.`,
      calls: [
        {
          ...ssmRun(
            pr,
            prNode,
            glusterCheckpointScript(vol, drHost, rpoTimeout),
            'mailfleet dr drill: geo-replication checkpoint',
            rpoTimeout + 30,
          ),
          measuresRpo: true,
        },
      ],
      probes: [],
    };
    promote = {
      id: 'storage-promote',
      title: `Promote the DR volume ${vol}: stop geo-replication, make it writable`,
      does: 'Stops the geo-replication session ("force": its primary side is unreachable) so nothing overwrites the DR volume, and lifts read-only so the DR mail tier writes to it.',
      verify: 'The SSM command succeeds; the DR volume accepts writes.',
      calls: [
        ssmRun(
          dr,
          drNode,
          [
            `gluster volume geo-replication ${vol} ${prHost}::${vol} stop force || true`,
            `gluster volume set ${vol} features.read-only off`,
          ],
          'mailfleet dr drill: promote DR volume',
          120,
        ),
      ],
      probes: [],
    };
    copyBack = {
      id: 'failback-storage-copy',
      undoes: 'storage-promote',
      title: `Fail-back: reverse geo-replication ${dr} → ${pr}, bulk pass`,
      calls: [
        ssmRun(
          dr,
          drNode,
          [
            `gluster volume geo-replication ${reverse} create push-pem force`,
            `gluster volume geo-replication ${reverse} start`,
            ...glusterCheckpointScript(vol, prHost, 3600),
          ],
          'mailfleet dr drill: fail-back copy DR → primary',
          3660,
        ),
      ],
      probes: [],
    };
    copyTail = {
      id: 'failback-storage-tail',
      undoes: 'storage-promote',
      title: `Fail-back: final checkpoint ${dr} → ${pr}, then forward geo-replication again`,
      calls: [
        ssmRun(
          dr,
          drNode,
          [
            ...glusterCheckpointScript(vol, prHost, 600),
            `gluster volume geo-replication ${reverse} stop`,
            `gluster volume set ${vol} features.read-only on`,
          ],
          'mailfleet dr drill: fail-back tail DR → primary',
          660,
        ),
        ssmRun(
          pr,
          prNode,
          [`gluster volume geo-replication ${vol} ${drHost}::${vol} start force`],
          'mailfleet dr drill: restart forward geo-replication',
          120,
        ),
      ],
      probes: [],
    };
  } else {
    const prFs = need('primary', { kind: 'efs-id' });
    const drFs = need('dr', { kind: 'efs-id' });
    const describe = (region: string, fs: string, maxLag: number, timeout: number): AwsCall => ({
      service: 'efs',
      region,
      operation: 'DescribeReplicationConfigurations',
      input: { FileSystemId: fs },
      cli: `aws efs describe-replication-configurations --region ${region} --file-system-id ${fs}`,
      wait: { kind: 'efs-replicated', maxLagSeconds: maxLag, timeoutSeconds: timeout },
    });
    const unprotect = (region: string, fs: string): AwsCall => ({
      service: 'efs',
      region,
      operation: 'UpdateFileSystemProtection',
      input: { FileSystemId: fs, ReplicationOverwriteProtection: 'DISABLED' },
      cli: `aws efs update-file-system-protection --region ${region} --file-system-id ${fs} --replication-overwrite-protection DISABLED`,
    });
    const replicate = (region: string, from: string, toRegion: string, to: string): AwsCall => ({
      service: 'efs',
      region,
      operation: 'CreateReplicationConfiguration',
      input: { SourceFileSystemId: from, Destinations: [{ Region: toRegion, FileSystemId: to }] },
      cli: `aws efs create-replication-configuration --region ${region} --source-file-system-id ${from} --destinations Region=${toRegion},FileSystemId=${to}`,
    });
    const unreplicate = (region: string, from: string): AwsCall => ({
      service: 'efs',
      region,
      operation: 'DeleteReplicationConfiguration',
      input: { SourceFileSystemId: from },
      cli: `aws efs delete-replication-configuration --region ${region} --source-file-system-id ${from}`,
    });
    checkpoint = {
      id: 'storage-checkpoint',
      title: `EFS replication ${pr} → ${dr} within RPO`,
      does: 'Reads the replication configuration of the primary file system: the destination must be ENABLED and its last replicated time within the RPO target.',
      verify: `Destinations[0].Status is ENABLED and LastReplicatedTimestamp is at most ${targets.rpoSeconds} s old.`,
      calls: [{ ...describe(pr, prFs, targets.rpoSeconds, rpoTimeout), measuresRpo: true }],
      probes: [],
    };
    promote = {
      id: 'storage-promote',
      title: 'Promote the DR file system: delete the replication configuration',
      does: 'Deleting the replication configuration makes the read-only EFS replica in the DR region writable.',
      verify: 'The call succeeds; the DR file system accepts writes.',
      calls: [unreplicate(dr, prFs)],
      probes: [],
    };
    copyBack = {
      id: 'failback-storage-copy',
      undoes: 'storage-promote',
      title: `Fail-back: replicate ${dr} → ${pr} (EFS fail-back replication)`,
      calls: [
        unprotect(pr, prFs),
        replicate(dr, drFs, pr, prFs),
        describe(dr, drFs, targets.rpoSeconds, 3600),
      ],
      probes: [],
    };
    copyTail = {
      id: 'failback-storage-tail',
      undoes: 'storage-promote',
      title: `Fail-back: last sync ${dr} → ${pr}, then replicate ${pr} → ${dr} again`,
      calls: [
        describe(dr, drFs, 5, 600),
        unreplicate(pr, drFs),
        unprotect(dr, drFs),
        replicate(pr, prFs, dr, drFs),
      ],
      probes: [],
    };
  }

  const dir = plan.directory;
  let ldap: DrillStep | undefined;
  let ldapBack: FailbackStep | undefined;
  if (dir.kind === 'ldap' && dir.provision === 'openldap-pair') {
    const consumer = need('dr', { kind: 'ldap-instance-id', ldapRole: 'consumer' });
    ldap = {
      id: 'ldap-promote',
      title: 'Promote the DR LDAP consumer to read-write',
      does: 'Empties the syncrepl include and comments out updateref in the DR slapd.conf, then restarts slapd, so password changes and new users land in DR instead of a referral to the dead provider.',
      verify: 'slapd is active again without syncrepl (the script checks).',
      calls: [ssmRun(dr, consumer, LDAP_PROMOTE_SCRIPT, 'mailfleet dr drill: promote LDAP consumer', 120)],
      probes: [],
    };
    ldapBack = {
      id: 'failback-ldap',
      undoes: 'ldap-promote',
      title: 'Fail-back: make the DR LDAP a consumer of the primary provider again',
      calls: [ssmRun(dr, consumer, LDAP_DEMOTE_SCRIPT, 'mailfleet dr drill: demote LDAP consumer', 120)],
      probes: [],
    };
  } else if (dir.kind === 'ldap') {
    const ad = dir.provision === 'managed-ad';
    ldap = {
      id: 'ldap-promote',
      title: ad
        ? 'Directory: AWS Managed AD multi-region replica (already writable)'
        : 'Directory: external, not managed by mailfleet',
      does: ad
        ? 'Managed Microsoft AD replicates multi-master across regions: the DR domain controllers accept writes already. Nothing to promote.'
        : 'The external directory has its own DR; the DR mail tier reaches it through the same URIs. Nothing to promote.',
      verify: ad
        ? `aws ds describe-regions --region ${dr} --directory-id <directory id> shows ${dr} Active; the IMAP probe logs in.`
        : 'The IMAP probe logs in through it.',
      calls: [],
      probes: [],
    };
  }

  const dnsFailover: DrillStep = {
    id: 'dns-failover',
    title: 'Route 53 failover: invert the primary health checks',
    does: `Sets Inverted=true on the ${healthChecks.length} primary health check(s), so Route 53 answers the failover records with the DR load balancers whether or not the fault has already failed the checks. (ARC routing controls are the alternative where an ARC cluster runs; inversion needs none.)`,
    verify: "The public names resolve to the DR load balancers' addresses.",
    calls: healthChecks.map((id) => invert(R53, id, true)),
    probes: probesFor(plan, 'dr').filter((p) => p.kind === 'dns-switch'),
  };
  const dnsBack: FailbackStep = {
    id: 'failback-dns',
    undoes: 'dns-failover',
    title: 'Fail-back: health checks back to normal, public names to the primary',
    calls: healthChecks.map((id) => invert(R53, id, false)),
    probes: probesFor(plan, 'primary'),
  };
  const verify: DrillStep = {
    id: 'verify',
    title: 'Verify: DR accepts and serves mail through the public names',
    does: 'From the drill runner: the SMTP banner on the MX port and an IMAP login with a FETCH through each public name. The first moment all pass ends RTO.',
    verify: `Every probe passes within the RTO target (${targets.rtoSeconds} s).`,
    calls: [],
    probes: probesFor(plan, 'dr').filter((p) => p.kind !== 'dns-switch'),
  };

  const steps = [preflight, checkpoint, fault, promote, ...(ldap ? [ldap] : []), dnsFailover, verify];
  // Primary back up first, data copied back, directory, then DNS, then the tail of the data.
  const failback = [restorePrimary, copyBack, ...(ldapBack ? [ldapBack] : []), dnsBack, copyTail];
  return {
    platform: plan.platform,
    primaryRegion: pr,
    drRegion: dr,
    stacks,
    requiredOutputs: required,
    failover: 'health-check-inversion',
    targets,
    publicNames: plan.nlbShards.map((s) => publicName(plan, s.index)),
    steps,
    failback,
  };
}

/**
 * What to run after the failover steps in `begun`: the whole fail-back after a drill that got through,
 * or, as rollback after a failure, the fail-back steps that undo a step that had started.
 */
export function failbackFor(drill: AwsDrillPlan, begun: readonly string[]): readonly FailbackStep[] {
  return drill.failback.filter((f) => begun.includes(f.undoes));
}

/** The dry-run text: steps, what they do, the exact commands, probes and fail-back. */
export function formatAwsDrillPlan(drill: AwsDrillPlan): string {
  const lines: string[] = [
    `DR drill (AWS) for ${drill.platform}: ${drill.primaryRegion} → ${drill.drRegion}`,
    `stacks: ${drill.stacks.primary} (${drill.primaryRegion}), ${drill.stacks.dr} (${drill.drRegion}); failover by ${drill.failover}`,
    `targets: RPO ≤ ${drill.targets.rpoSeconds} s, RTO ≤ ${drill.targets.rtoSeconds} s; public names: ${drill.publicNames.join(', ')}`,
    '',
  ];
  const part = (p: DrillStepPart, indent: string) => {
    for (const c of p.calls)
      lines.push(
        `${indent}$ ${c.cli}`,
        `${indent}  # ${c.service}:${c.operation}${c.wait ? ` then wait (${c.wait.kind}, ≤ ${c.wait.timeoutSeconds} s)` : ''}${c.optional ? ' (best effort)' : ''}`,
      );
    for (const p2 of p.probes)
      lines.push(`${indent}probe ${p2.kind} ${p2.host}${p2.port ? ':' + p2.port : ''}: ${p2.cli}`);
  };
  drill.steps.forEach((s, i) => {
    lines.push(`${i + 1}. [${s.id}] ${s.title}`, `   ${s.does}`);
    part(s, '   ');
    lines.push(`   verify: ${s.verify}`, '');
  });
  lines.push('Fail-back:');
  drill.failback.forEach((s, i) => {
    lines.push(`F${i + 1}. [${s.id}] ${s.title}`);
    part(s, '   ');
  });
  return lines.join('\n');
}
