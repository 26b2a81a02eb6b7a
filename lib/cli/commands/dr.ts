import { randomUUID } from 'node:crypto';
import { buildAwsDrillPlan, formatAwsDrillPlan } from '../../dr/aws-plan.js';
import { defaultClientFactory, runAwsDrill } from '../../dr/aws-run.js';
import { checkDrillOutputs } from '../../dr/check-outputs.js';
import { defaultProbeRunner, probeCredentialsFromEnv } from '../../dr/probes.js';
import { createProgress } from '../../dr/progress.js';
import { formatReportJson, formatReportText, writeReport, type DrillReport } from '../../dr/report.js';
import { MailfleetError } from '../../errors.js';
import { buildPlan } from '../../plan/index.js';
import { loadSpec } from '../../spec/index.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

interface DrillOpts {
  config?: string;
  local?: boolean;
  aws?: boolean;
  dryRun?: boolean;
  checkOutputs?: string;
  json?: boolean;
  jsonFile?: string;
  markdown?: string;
  failback: boolean;
  mode: string;
  streamSeconds: string;
  workDir?: string;
}

export const registerDr: RegisterCommand = (program) => {
  const dr = program.command('dr').description('disaster recovery: drills with RPO and RTO measured');
  dr.command('drill')
    .description(
      'fail the primary, promote DR, verify no acknowledged mail is lost, report RPO/RTO, fail back',
    )
    .option(
      '-c, --config <file>',
      'spec file (default: examples/dr-local.yaml for --local, examples/primary-dr.yaml for --aws)',
    )
    .option('--local', 'drill two local platforms (primary and DR child processes, rsync replication)')
    .option('--aws', 'drill the deployed platform (FIS, Route 53, SSM) with the AWS SDK')
    .option('--dry-run', 'with --aws: print the steps and the exact commands, call nothing')
    .option(
      '--check-outputs <dir>',
      'with --aws: check offline that a cdk synth output (cdk.out) or a Terraform folder exports every output the drill reads; exit 1 listing the missing ones',
    )
    .option('--json', 'print the report (or the --dry-run plan) as JSON')
    .option('--json-file <file>', 'also write the report as JSON to this file')
    .option('--markdown <file>', 'also write the report as Markdown to this file (audit trail)')
    .option('--no-failback', 'stay on DR after the drill')
    .option(
      '--mode <mode>',
      'local: checkpoint (pause, replicate, then fail: zero loss) or hard (fail under load)',
      'checkpoint',
    )
    .option('--stream-seconds <s>', 'local: seconds of mail to the primary before the failure', '3')
    .option(
      '--work-dir <dir>',
      'local: keep the two platforms in this folder (default: a temp folder, removed)',
    )
    .action((opts: DrillOpts) =>
      runAction(async () => {
        if (opts.local === opts.aws)
          throw new MailfleetError('BAD_REQUEST', 'choose one of --local or --aws');
        const drillId = `drill-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomUUID().slice(0, 6)}`;
        let report: DrillReport;
        if (opts.aws) {
          const { spec } = loadSpec(opts.config ?? 'examples/primary-dr.yaml');
          const drill = buildAwsDrillPlan(buildPlan(spec));
          if (opts.checkOutputs) {
            const check = checkDrillOutputs(drill, opts.checkOutputs);
            if (check.missing.length > 0) {
              process.stdout.write(`missing outputs (${check.engine}): ${check.missing.join(', ')}\n`);
              process.exitCode = 1;
            } else process.stdout.write(`ok: the ${check.engine} output exports all ${check.checked} outputs the drill reads\n`);
            return;
          }
          if (opts.dryRun) {
            process.stdout.write(
              opts.json ? JSON.stringify(drill, null, 2) + '\n' : formatAwsDrillPlan(drill) + '\n',
            );
            return;
          }
          const creds = probeCredentialsFromEnv();
          if (!creds)
            throw new MailfleetError(
              'BAD_REQUEST',
              'set MAILFLEET_DRILL_USER and MAILFLEET_DRILL_PASSWORD (a probe mailbox) for the IMAP probes',
            );
          report = await runAwsDrill(drill, {
            clients: defaultClientFactory(),
            probe: defaultProbeRunner(creds),
            drillId,
            failback: opts.failback,
            progress: createProgress(),
          });
        } else {
          if (opts.dryRun) throw new MailfleetError('BAD_REQUEST', '--dry-run applies to --aws only');
          const { runLocalDrill } = await import('../../dr/local-drill.js');
          if (opts.mode !== 'checkpoint' && opts.mode !== 'hard')
            throw new MailfleetError('BAD_REQUEST', '--mode is checkpoint or hard');
          report = await runLocalDrill({
            config: opts.config ?? 'examples/dr-local.yaml',
            drillId,
            mode: opts.mode,
            failback: opts.failback,
            streamSeconds: Number(opts.streamSeconds),
            workDir: opts.workDir,
            progress: createProgress(),
          });
        }
        process.stdout.write(opts.json ? formatReportJson(report) : formatReportText(report) + '\n');
        for (const p of writeReport(report, { json: opts.jsonFile, markdown: opts.markdown }))
          process.stderr.write(`wrote ${p}\n`);
        if (!report.pass) process.exitCode = 1;
      }),
    );
};
