/** `mailfleet edge`: deny and allow client networks at the HAProxy tier, live (lib/ops/edge.ts). */
import { resolve } from 'node:path';
import { changeEdgeList, EDGE_ACTIONS, formatEdgeListing, listEdge, type EdgeContext } from '../../ops/edge.js';
import { loadSpec } from '../../spec/index.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';

interface EdgeCliOptions {
  config?: string;
  dataDir?: string;
  by?: string;
  json?: boolean;
}

function contextOf(opts: EdgeCliOptions): EdgeContext {
  const dataDir =
    opts.dataDir ?? process.env.MAILFLEET_DATA_DIR ?? resolve(loadSpec(opts.config ?? 'examples/local.yaml').spec.local.dataDir);
  return { dataDir, specFile: opts.config, by: opts.by };
}

export const registerEdge: RegisterCommand = (program) => {
  const edge = program.command('edge').description('the L7 edge in the HAProxy tier: deny and allow lists of client networks');
  const common = (cmd: ReturnType<typeof edge.command>) =>
    cmd
      .option('-c, --config <file>', 'spec file (default: the one the running HAProxy was started with, else examples/local.yaml)')
      .option('--data-dir <dir>', 'local data dir (the running HAProxy, edge-lists.json)')
      .option('--json', 'print JSON');
  for (const a of EDGE_ACTIONS)
    common(edge.command(`${a.name} <network>`).description(`${a.help}; <network> is an address or CIDR`))
      .option('--by <name>', 'who makes the change, recorded with it (default: your OS user)')
      .action((network: string, opts: EdgeCliOptions) =>
        runAction(async () => {
          const r = await changeEdgeList(contextOf(opts), a.list, a.op, network);
          if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
          else
            process.stdout.write(
              `${a.list} ${r.network}: ${r.action}${r.live ? ', live on the running HAProxy' : ' (no HAProxy runs on this data dir: applied at its next start)'}; recorded in ${r.recordedIn}\n`,
            );
        }),
      );
  common(edge.command('list').description('both lists: spec entries, live entries, and whether the running HAProxy holds each')).action((opts: EdgeCliOptions) =>
    runAction(async () => {
      const rows = await listEdge(contextOf(opts));
      process.stdout.write(opts.json ? `${JSON.stringify(rows)}\n` : `${formatEdgeListing(rows)}\n`);
    }),
  );
};
