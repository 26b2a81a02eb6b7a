import { MailfleetError } from '../../errors.js';
import { collectTop, formatTop, TOP_SECTIONS, type TopSection } from '../../ops/top.js';
import { findLocalHaproxy } from '../../ops/haproxy-applier.js';
import {
  collectHaproxyView,
  downBackends,
  formatHaproxyView,
  formatSessionsWithoutClient,
  RateTracker,
  sessionsWithoutClient,
} from '../../ops/haproxy-view.js';
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
        // Rates are deltas between refreshes: daemon listeners' accepted totals, HAProxy frontends' stot.
        const rates = new RateTracker();
        const once = async (): Promise<boolean> => {
          const report = await collectTop(fleet, { rates });
          const haproxyInfo = fleet.dataDir ? findLocalHaproxy(fleet.dataDir) : undefined;
          let haproxyError: string | undefined;
          const haproxy = haproxyInfo
            ? await collectHaproxyView(haproxyInfo).catch((e: unknown) => {
                haproxyError = (e as Error).message;
                return undefined;
              })
            : undefined;
          const feRates = new Map<string, number>();
          for (const f of haproxy?.frontends ?? []) {
            const r = rates.sample(`haproxy|${f.name}`, f.stot);
            if (r !== undefined) feRates.set(f.name, r);
          }
          if (opts.json)
            process.stdout.write(`${JSON.stringify(haproxy ? { ...report, haproxy } : report)}\n`);
          else {
            let text = formatTop(report, { by, rows: Number(opts.rows ?? 10) });
            if (haproxy) {
              // Totals honest about sessions that outlived their client (counts HAProxy does not see).
              const ghosts = formatSessionsWithoutClient(sessionsWithoutClient(report.sections.listener, haproxy));
              if (ghosts.length > 0) text = `${ghosts.join('\n')}\n${text}`;
            }
            if (haproxy && (!by || by === 'listener')) text += `\n\n${formatHaproxyView(haproxy, feRates)}`;
            if (haproxyError) text += `\n\nHAProxy (${haproxyInfo!.adminSocket}) DID NOT ANSWER: ${haproxyError}`;
            process.stdout.write(`${text}\n`);
          }
          // A DOWN backend fails the check like a node that did not answer: clients get nothing there.
          return report.nodes.every((n) => n.ok) && !haproxyError && (!haproxy || downBackends(haproxy).length === 0);
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
