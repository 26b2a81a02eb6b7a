import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPlan } from '../../plan/index.js';
import { RENDERERS, renderer } from '../../render/index.js';
import { loadSpec } from '../../spec/index.js';
import { MailfleetError } from '../../errors.js';
import { applyListenerLimits, listenerLimitsPath, readListenerLimits } from '../../haproxy/state.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

export const registerRender: RegisterCommand = (program) => {
  program
    .command('render')
    .description(`render a node artifact from the plan; kinds: ${RENDERERS.map((r) => r.kind).join(', ')}, or all`)
    .argument('<kind>', 'artifact kind, or "all"')
    .option('-c, --config <file>', 'spec file', 'examples/local.yaml')
    .option('--target <target>', 'local or cloud', 'cloud')
    .option('--region <role>', 'primary or dr', 'primary')
    .option('-o, --out <dir>', 'write files into this folder instead of printing')
    .option('--limits-state <file>', 'listener caps recorded by `limit set` (default: <MAILFLEET_DATA_DIR or local.dataDir>/haproxy/listener-limits.json)')
    .action((kind: string, opts: { config: string; target: 'local' | 'cloud'; region: 'primary' | 'dr'; out?: string; limitsState?: string }) =>
      runAction(() => {
        const spec = loadSpec(opts.config).spec;
        // Caps changed live are recorded beside the data, so a re-render keeps them (docs/haproxy.md).
        const recorded = readListenerLimits(opts.limitsState ?? listenerLimitsPath(process.env.MAILFLEET_DATA_DIR ?? spec.local.dataDir));
        if (Object.keys(recorded).length > 0) process.stderr.write(`render: recorded listener caps ${JSON.stringify(recorded)}\n`);
        const plan = applyListenerLimits(buildPlan(spec), recorded);
        const kinds = kind === 'all' ? RENDERERS : [renderer(kind)];
        if (kinds.some((r) => r === undefined))
          throw new MailfleetError('BAD_REQUEST', `unknown kind "${kind}"; known: ${RENDERERS.map((r) => r.kind).join(', ')}`);
        for (const r of kinds as typeof RENDERERS) {
          const text = r.render(plan, { target: opts.target, region: opts.region });
          if (opts.out) {
            mkdirSync(opts.out, { recursive: true });
            writeFileSync(join(opts.out, r.fileName), text);
            process.stdout.write(`wrote ${join(opts.out, r.fileName)}\n`);
          } else process.stdout.write(text);
        }
      }),
    );
};
