import { MailfleetError } from '../../errors.js';
import {
  formatLimitListing,
  formatLimitReports,
  listLimits,
  parseLimitRequest,
  resetLimits,
  setLimits,
} from '../../ops/limit.js';
import type { Fleet } from '../../ops/fleet.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';
import { addFleetOptions, fleetFrom, type FleetCliOptions } from './fleet-options.js';

const SCOPE_HELP = `scopes: <service>.<field>[@domain] (field: portConnections perListener perIp perUser perUserIp perDomain),
  listener:<name>, user:<address>:<service>, ip:<ip>:<service>, rates.<rate>[@domain]; value: a positive integer or 'default'`;

function fleetWithActor(opts: FleetCliOptions & { by?: string }): Fleet {
  const fleet = fleetFrom(opts);
  const by = opts.by?.trim();
  return by ? { ...fleet, actor: by.slice(0, 100) } : fleet;
}

export const registerLimit: RegisterCommand = (program) => {
  const limit = program
    .command('limit')
    .description('live limits on every daemon of the fleet (and the HAProxy tier for listener:<name>)');
  addFleetOptions(
    limit
      .command('set <scope> <value> [more...]')
      .description(`set limits live, persisted on every node; more pairs may follow; value 'default' drops the override\n${SCOPE_HELP}`),
  )
    .option('--by <name>', 'who makes the change, recorded with it (default: your OS user)')
    .option('--json', 'print the per-node reports as JSON')
    .action((scope: string, value: string, more: string[], opts: FleetCliOptions & { json?: boolean; by?: string }) =>
      runAction(async () => {
        const args = [scope, value, ...more];
        if (args.length % 2 !== 0)
          throw new MailfleetError('BAD_REQUEST', 'give <scope> <value> pairs', { status: 400 });
        const requests = [];
        for (let i = 0; i < args.length; i += 2) requests.push(parseLimitRequest(args[i]!, args[i + 1]!));
        const reports = await setLimits(fleetWithActor(opts), requests);
        process.stdout.write(opts.json ? `${JSON.stringify(reports)}\n` : `${formatLimitReports(reports)}\n`);
        if (reports.some((r) => !r.ok)) process.exitCode = 1;
      }),
    );
  addFleetOptions(
    limit
      .command('reset [scopes...]')
      .description('drop live overrides (each scope back to its plan value); without scopes, every override on every daemon and the local HAProxy'),
  )
    .option('--by <name>', 'who makes the change, recorded with it (default: your OS user)')
    .option('--json', 'print the per-node reports as JSON')
    .action((scopes: string[], opts: FleetCliOptions & { json?: boolean; by?: string }) =>
      runAction(async () => {
        const reports = await resetLimits(fleetWithActor(opts), scopes);
        if (opts.json) process.stdout.write(`${JSON.stringify(reports)}\n`);
        else process.stdout.write(reports.length === 0 ? 'no live overrides\n' : `${formatLimitReports(reports)}\n`);
        if (reports.some((r) => !r.ok)) process.exitCode = 1;
      }),
    );
  addFleetOptions(
    limit.command('list').description('effective limits on every node: plan value, live value, overrides'),
  )
    .option('--json', 'print as JSON')
    .option('--overrides', 'only scopes with a live override')
    .action((opts: FleetCliOptions & { json?: boolean; overrides?: boolean }) =>
      runAction(async () => {
        const listing = await listLimits(fleetFrom(opts));
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(listing)}\n`
            : `${formatLimitListing(listing, { overridesOnly: opts.overrides })}\n`,
        );
        if (listing.nodes.some((n) => !n.ok)) process.exitCode = 1;
      }),
    );
};
