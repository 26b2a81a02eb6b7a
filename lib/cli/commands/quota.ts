/**
 * `mailfleet quota set|get|list|recalc` through the daemons' admin API (lib/admin/routes/quota.ts).
 * Usage lives on the shared mail volume, so reads and recalc ask the first node that answers; a live
 * override is set on every node (each persists it in <dataDir>/quotas-state.json), like `limit set`.
 */
import { MailfleetError } from '../../errors.js';
import type { QuotaListView, QuotaRecalcView, QuotaSetView } from '../../admin/routes/quota.js';
import { AdminClient } from '../../ops/admin-client.js';
import { fanOut, fleetActor, type Fleet } from '../../ops/fleet.js';
import { table } from '../../plan/format.js';
import type { DomainQuotaStatus, UserQuotaStatus } from '../../quota/index.js';
import { runAction } from '../run.js';
import type { RegisterCommand } from '../types.js';
import { addFleetOptions, fleetFrom, type FleetCliOptions } from './fleet-options.js';

const UNITS: Readonly<Record<string, number>> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `500M`, `2G`, `1048576` → bytes; 0 = unlimited. */
export function parseBytes(text: string): number {
  const m = /^(\d{1,15}) ?([KMGT]?)(?:I?B)?$/i.exec(text.trim());
  if (!m) throw new MailfleetError('BAD_REQUEST', `not a size: ${text} (e.g. 1048576, 500M, 2G; 0 = unlimited)`, { status: 400 });
  return Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new MailfleetError('BAD_REQUEST', `not a message count: ${text} (0 = unlimited)`, { status: 400 });
  return Number(text.trim());
}

/** The first node that answers (usage is on the shared volume: any node sees the same). */
async function firstNode<T>(fleet: Fleet, fn: (c: AdminClient) => Promise<T>): Promise<T> {
  const errors: string[] = [];
  for (const n of fleet.nodes) {
    try {
      return await fn(new AdminClient(n, { timeoutMs: fleet.timeoutMs, actor: fleetActor(fleet) }));
    } catch (e) {
      if ((e as { status?: number }).status === 400) throw e;
      errors.push((e as Error).message);
    }
  }
  throw new MailfleetError('INTERNAL', `no daemon answered: ${errors.join('; ')}`);
}

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  const u = ['K', 'M', 'G', 'T'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)}${u[i]}`;
}

function pct(used: number, limit: number): string {
  return limit > 0 ? `${((used / limit) * 100).toFixed(1)}%` : '-';
}

export function formatUsers(users: readonly UserQuotaStatus[]): string {
  return table(
    ['user', 'storage', 'limit', 'used', 'messages', 'limit', 'used', 'source'],
    users.map((u) => [
      u.address,
      human(u.usage.bytes),
      u.limit.storageBytes > 0 ? human(u.limit.storageBytes) : 'unlimited',
      pct(u.usage.bytes, u.limit.storageBytes),
      u.usage.messages,
      u.limit.messages > 0 ? u.limit.messages : 'unlimited',
      pct(u.usage.messages, u.limit.messages),
      u.source.storageBytes === u.source.messages ? u.source.storageBytes : `${u.source.storageBytes}/${u.source.messages}`,
    ]),
  );
}

export function formatDomains(domains: readonly DomainQuotaStatus[]): string {
  return table(
    ['domain', 'storage', 'limit', 'messages', 'limit'],
    domains.map((d) => [
      d.domain,
      human(d.usage.bytes),
      d.limit.storageBytes > 0 ? human(d.limit.storageBytes) : 'unlimited',
      d.usage.messages,
      d.limit.messages > 0 ? d.limit.messages : 'unlimited',
    ]),
  );
}

export const registerQuota: RegisterCommand = (program) => {
  const quota = program.command('quota').description('mailbox quotas: usage and limits per user and domain, live overrides, recalc');
  addFleetOptions(
    quota
      .command('set <target>')
      .description('live quota of a user (user@domain) or a whole domain, on every daemon, persisted; --default drops the override'),
  )
    .option('--storage <size>', 'storage limit: bytes or 500M, 2G; 0 = unlimited')
    .option('--messages <n>', 'message limit; 0 = unlimited')
    .option('--default', 'drop the live override (back to directory/spec)')
    .option('--json', 'print the per-node reports as JSON')
    .action((target: string, opts: FleetCliOptions & { storage?: string; messages?: string; default?: boolean; json?: boolean }) =>
      runAction(async () => {
        let body: { storageBytes?: number; messages?: number } | null;
        if (opts.default) body = null;
        else {
          body = {};
          if (opts.storage !== undefined) body.storageBytes = parseBytes(opts.storage);
          if (opts.messages !== undefined) body.messages = parseCount(opts.messages);
          if (Object.keys(body).length === 0) throw new MailfleetError('BAD_REQUEST', 'give --storage and/or --messages, or --default', { status: 400 });
        }
        const results = await fanOut(fleetFrom(opts), (c) => c.put<QuotaSetView>(`/v1/quota/${encodeURIComponent(target)}`, body));
        if (opts.json) process.stdout.write(`${JSON.stringify(results)}\n`);
        else
          for (const r of results)
            process.stdout.write(
              r.ok ? `${r.node}: ${r.value.target} ${JSON.stringify(r.value.before ?? 'spec')} -> ${JSON.stringify(r.value.after ?? 'spec')}\n` : `${r.node}: FAILED ${r.error}\n`,
            );
        if (results.some((r) => !r.ok)) process.exitCode = 1;
      }),
    );
  addFleetOptions(quota.command('get <target>').description('usage and limits of a user (user@domain) or a domain'))
    .option('--json', 'print as JSON')
    .action((target: string, opts: FleetCliOptions & { json?: boolean }) =>
      runAction(async () => {
        const v = await firstNode(fleetFrom(opts), (c) => c.get<UserQuotaStatus | DomainQuotaStatus>(`/v1/quota/${encodeURIComponent(target)}`));
        if (opts.json) process.stdout.write(`${JSON.stringify(v)}\n`);
        else if ('address' in v) process.stdout.write(`${formatUsers([v])}\n\n${formatDomains([v.domain])}\n`);
        else process.stdout.write(`${formatDomains([v])}\n`);
      }),
    );
  addFleetOptions(quota.command('list').description('mailboxes by size, largest first, and every domain'))
    .option('--top <n>', 'only the N largest mailboxes')
    .option('--json', 'print as JSON')
    .action((opts: FleetCliOptions & { top?: string; json?: boolean }) =>
      runAction(async () => {
        const q = opts.top !== undefined ? `?top=${parseCount(opts.top)}` : '';
        const v = await firstNode(fleetFrom(opts), (c) => c.get<QuotaListView>(`/v1/quota${q}`));
        process.stdout.write(opts.json ? `${JSON.stringify(v)}\n` : `${formatUsers(v.users)}\n\n${formatDomains(v.domains)}\n`);
      }),
    );
  addFleetOptions(quota.command('recalc <user>').description('recompute a user\'s usage from the Maildir (after changes made outside the daemon)'))
    .option('--json', 'print as JSON')
    .action((user: string, opts: FleetCliOptions & { json?: boolean }) =>
      runAction(async () => {
        const v = await firstNode(fleetFrom(opts), (c) => c.put<QuotaRecalcView>(`/v1/quota/${encodeURIComponent(user)}/recalc`, {}));
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(v)}\n`
            : `${v.address}: ${v.before.bytes} bytes / ${v.before.messages} messages -> ${v.after.bytes} bytes / ${v.after.messages} messages\n`,
        );
      }),
    );
};
