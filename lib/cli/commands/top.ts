import { MailfleetError } from '../../errors.js';
import { collectTop, formatTop, TOP_SECTIONS, type TopSection } from '../../ops/top.js';
import { findLocalHaproxy, formatHaproxyTop, haproxyTopRows } from '../../ops/haproxy-applier.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';
import { addFleetOptions, fleetFrom, type FleetCliOptions } from './fleet-options.js';

interface TopOptions extends FleetCliOptions {
  watch?: string | boolean;
  json?: boolean;
  by?: string;
  rows?: string;
}

export const registerTop: RegisterCommand = (program) => {
  addFleetOptions(
    program
      .command('top')
      .description(
        'current connections by listener, then domain, user and IP, heaviest first, with each limit and its use (every daemon of the fleet)',
      ),
  )
    .option('--watch [seconds]', 'refresh every N seconds (default 2)')
    .option('--json', 'print the report as JSON')
    .option('--by <section>', `only one section: ${TOP_SECTIONS.join(' | ')}`)
    .option('--rows <n>', 'rows per section', '10')
    .action((opts: TopOptions) =>
      runAction(async () => {
        if (opts.by !== undefined && !(TOP_SECTIONS as readonly string[]).includes(opts.by))
          throw new MailfleetError('BAD_REQUEST', `--by must be one of ${TOP_SECTIONS.join(', ')}`, {
            status: 400,
          });
        const fleet = fleetFrom(opts);
        const by = opts.by as TopSection | undefined;
        const once = async (): Promise<boolean> => {
          const report = await collectTop(fleet);
          const haproxyInfo = fleet.dataDir ? findLocalHaproxy(fleet.dataDir) : undefined;
          const haproxy = haproxyInfo ? await haproxyTopRows(haproxyInfo).catch(() => undefined) : undefined;
          if (opts.json)
            process.stdout.write(`${JSON.stringify(haproxy ? { ...report, haproxy } : report)}\n`);
          else {
            let text = formatTop(report, { by, rows: Number(opts.rows ?? 10) });
            if (haproxy && (!by || by === 'listener'))
              text += `\n\nHAProxy frontends (local tier)\n${formatHaproxyTop(haproxy)}`;
            process.stdout.write(`${text}\n`);
          }
          return report.nodes.every((n) => n.ok);
        };
        if (opts.watch === undefined || opts.watch === false) {
          if (!(await once())) process.exitCode = 1;
          return;
        }
        const seconds = opts.watch === true ? 2 : Number(opts.watch);
        if (!(seconds > 0))
          throw new MailfleetError('BAD_REQUEST', '--watch takes a positive number of seconds', {
            status: 400,
          });
        for (;;) {
          if (!opts.json && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
          await once();
          await new Promise((r) => setTimeout(r, seconds * 1000));
        }
      }),
    );
};
