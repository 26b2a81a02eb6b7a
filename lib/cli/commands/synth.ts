/**
 * `mailfleet synth --engine cdk|terraform|pulumi`: the same plan through one of the three engines.
 * Engines are imported on demand so the other commands never load aws-cdk-lib, cdktf or Pulumi.
 */
import { buildPlan, table } from '../../plan/index.js';
import { loadSpec } from '../../spec/index.js';
import { drStackNames } from '../../dr/aws-plan.js';
import { MailfleetError } from '../../errors.js';
import { runAction } from '../run.js';
import { cliProgress, step } from '../progress.js';
import { importEngine, PULUMI_ENGINE, TERRAFORM_ENGINE } from '../optional-engine.js';
import type { RegisterCommand } from '../types.js';

const ENGINES = ['cdk', 'terraform', 'pulumi'] as const;
type Engine = (typeof ENGINES)[number];

interface SynthOptions {
  engine: string;
  config: string;
  out?: string;
  validate?: boolean;
  quiet?: boolean;
}

export const registerSynth: RegisterCommand = (program) => {
  program
    .command('synth')
    .description('turn the plan into engine output: CloudFormation (cdk), Terraform JSON (terraform) or the Pulumi resource inventory (pulumi)')
    .requiredOption('-e, --engine <engine>', `engine: ${ENGINES.join(', ')}`)
    .option('-c, --config <file>', 'spec file', 'examples/single-region.yaml')
    .option('-o, --out <dir>', 'output folder (default: cdk.out for cdk, cdktf.out for terraform)')
    .option('--validate', 'terraform only: run terraform init + validate offline against the provider mirror')
    .option('-q, --quiet', 'no progress lines on stderr (also MAILFLEET_QUIET=1)')
    .action((opts: SynthOptions) =>
      runAction(async () => {
        if (!(ENGINES as readonly string[]).includes(opts.engine))
          throw new MailfleetError('BAD_REQUEST', `unknown engine "${opts.engine}"; known: ${ENGINES.join(', ')}`);
        const progress = cliProgress(opts.quiet);
        const plan = await step(progress, `loading ${opts.config} and building the plan`, () => buildPlan(loadSpec(opts.config).spec));
        const engine = opts.engine as Engine;
        const { formatInventory } = await import('../../../engines/inventory.js');
        if (engine === 'terraform') {
          const { writeTerraform, findTerraformTools, validateTerraform } = await step(progress, 'loading the terraform engine (cdktf)', () =>
            importEngine(TERRAFORM_ENGINE, () => import('../../../engines/terraform/index.js')),
          );
          const { terraformInventory } = await import('../../../engines/extract/terraform.js');
          const { readFileSync } = await import('node:fs');
          const dir = await step(progress, 'writing Terraform JSON', () => writeTerraform(plan, opts.out ?? 'cdktf.out'));
          process.stdout.write(`wrote ${dir}/cdk.tf.json (cdktf is deprecated upstream; this engine is pinned and kept thin)\n\n`);
          const doc = JSON.parse(readFileSync(`${dir}/cdk.tf.json`, 'utf8')) as Record<string, unknown>;
          process.stdout.write(formatInventory(terraformInventory(doc), table) + '\n');
          if (opts.validate) {
            const tools = findTerraformTools();
            if (tools.missing.length > 0) throw new MailfleetError('BAD_REQUEST', `cannot validate: missing ${tools.missing.join(' and ')}`);
            const r = await step(progress, 'terraform init + validate (offline provider mirror)', () =>
              validateTerraform(dir, { cli: tools.cli!, mirror: tools.mirror! }),
            );
            if (!r.valid) throw new MailfleetError('PLAN_INVALID', `terraform validate failed:\n${r.output}`);
            process.stdout.write('\nterraform validate: ok\n');
          }
        } else if (engine === 'pulumi') {
          const { registrationsOf } = await step(progress, 'loading the pulumi engine', () =>
            importEngine(PULUMI_ENGINE, () => import('../../../engines/pulumi/mocks.js')),
          );
          const { pulumiInventory } = await import('../../../engines/extract/pulumi.js');
          const regs = await step(progress, 'planning resources under Pulumi mocks', () => registrationsOf(plan));
          const inv = pulumiInventory(regs);
          process.stdout.write(`Pulumi program engines/pulumi (resources planned in-process under mocks; nothing deployed)\n\n`);
          process.stdout.write(formatInventory(inv, table) + '\n\n');
          process.stdout.write(
            [
              'To deploy with the Pulumi CLI:',
              '  cd engines/pulumi && pulumi stack init <stack>',
              `  pulumi config set spec ${opts.config}`,
              ...(plan.directory.kind === 'ldap' && plan.directory.provision === 'managed-ad'
                ? ['  pulumi config set --secret managedAdAdminPassword <password>']
                : []),
              '  pulumi up',
            ].join('\n') + '\n',
          );
        } else {
          const { synthCdk } = await step(progress, 'loading the CDK engine (aws-cdk-lib)', () => import('../../../engines/cdk.js'));
          const { cloudFormationInventory } = await import('../../../engines/extract/cloudformation.js');
          const names = drStackNames(plan.platform);
          const stacks = [names.primary, ...(plan.regions?.dr ? [names.dr] : [])];
          const { outDir, templates } = await step(progress, `synthesizing ${stacks.join(', ')} (checks the daemon bundle, runs CloudFormation validation)`, () =>
            synthCdk(plan, opts.out ?? 'cdk.out'),
          );
          process.stdout.write(`wrote ${templates.length} CloudFormation template(s) to ${outDir}\n\n`);
          process.stdout.write(formatInventory(cloudFormationInventory(templates), table) + '\n');
        }
      }),
    );
};
