import { buildPlan, formatPlan } from '../../plan/index.js';
import { loadSpec } from '../../spec/index.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerPlan: RegisterCommand = (program) => {
  program
    .command('plan')
    .description('validate the spec and print the derived plan: listeners, ports, limits per layer, resources')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--json', 'print the plan as JSON')
    .action((opts: { config: string; json?: boolean }) =>
      runAction(() => {
        const { spec } = loadSpec(opts.config);
        const plan = buildPlan(spec);
        if (opts.json) {
          const { spec: _spec, ...rest } = plan;
          process.stdout.write(JSON.stringify(rest, null, 2) + '\n');
        } else process.stdout.write(formatPlan(plan) + '\n');
      }),
    );
  program
    .command('check')
    .description('validate the spec; exit 2 with file:line field: message on errors')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .action((opts: { config: string }) =>
      runAction(() => {
        loadSpec(opts.config);
        process.stdout.write(`${opts.config}: ok\n`);
      }),
    );
};
