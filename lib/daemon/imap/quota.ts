/**
 * IMAP QUOTA (RFC 9208) from the daemon's quota service. Two quota roots:
 * - "" — the user's own: every folder of the user counts toward it;
 * - the user's domain name (e.g. "example.com") — the domain total (spec quotas.domains[d].total or a live
 *   domain override), listed only when the domain has a limit. A message into any folder counts toward both.
 * STORAGE is in units of 1024 octets, MESSAGE in messages; an unlimited resource is left out. The same
 * numbers as `mailfleet quota get` (usage and limit in KiB, rounded down).
 */
import type { QuotaService } from '../../quota/index.js';
import type { QuotaLimit } from '../../quota/types.js';
import type { Usage } from '../../store/usage.js';
import type { Completion } from './command.js';
import type { ImapSession } from './session.js';
import { istring } from './wire.js';

export const QUOTA_ROOT = '';

function resources(usage: Pick<Usage, 'bytes' | 'messages'>, limit: QuotaLimit): string {
  const res: string[] = [];
  if (limit.storageBytes > 0) res.push(`STORAGE ${Math.floor(usage.bytes / 1024)} ${Math.floor(limit.storageBytes / 1024)}`);
  if (limit.messages > 0) res.push(`MESSAGE ${usage.messages} ${limit.messages}`);
  return res.join(' ');
}

function rootName(root: string): string {
  const w = istring(root);
  return typeof w === 'string' ? w : `"${root}"`;
}

type QuotaStatus = Awaited<ReturnType<QuotaService['status']>>;

/** The user's roots, from one status read: "" and, when the domain has a limit, the domain. */
function rootsOf(st: QuotaStatus | undefined): string[] {
  const d = st?.domain.limit;
  return d && (d.storageBytes > 0 || d.messages > 0) ? [QUOTA_ROOT, st!.domain.domain] : [QUOTA_ROOT];
}

/** The `* QUOTA` line of `root`, or undefined when it is not one of the user's roots. */
function lineOf(st: QuotaStatus | undefined, root: string): string | undefined {
  if (!st) return root === QUOTA_ROOT ? `* QUOTA "${QUOTA_ROOT}" ()\r\n` : undefined;
  if (root === QUOTA_ROOT) return `* QUOTA "${QUOTA_ROOT}" (${resources(st.usage, st.limit)})\r\n`;
  const d = st.domain;
  if (root.toLowerCase() !== d.domain || !rootsOf(st).includes(d.domain)) return undefined;
  return `* QUOTA ${rootName(d.domain)} (${resources(d.usage, d.limit)})\r\n`;
}

/**
 * The `* QUOTA` line of one of the user's roots, or undefined when `root` is not one of them (another
 * domain's total is not the user's to read).
 */
export async function quotaLine(quota: QuotaService | undefined, user: string, root: string = QUOTA_ROOT): Promise<string | undefined> {
  return lineOf(quota && (await quota.status(user)), root);
}

/** `* QUOTAROOT` and the `* QUOTA` of each root, for GETQUOTAROOT (one status read for all of them). */
export async function quotaRootLines(quota: QuotaService | undefined, user: string, wireName: string): Promise<string> {
  const st = quota && (await quota.status(user));
  const roots = rootsOf(st);
  const lines = [`* QUOTAROOT ${wireName} ${roots.map(rootName).join(' ')}\r\n`];
  // The user's own root last: clients that fold every QUOTA response into one (imapflow keeps the last
  // value of each resource) then show the user's numbers, which are what a user can act on.
  for (const r of [...roots].reverse()) lines.push(lineOf(st, r)!);
  return lines.join('');
}

/**
 * APPEND and COPY: NO [OVERQUOTA] (RFC 9208 §4.3) when `bytes` in `messages` more would not fit.
 * MOVE is not asked: within one user it moves usage, it does not add any (and a full mailbox must still
 * be able to move mail to Trash).
 */
export async function overQuota(s: ImapSession, bytes: number, messages: number): Promise<Completion | undefined> {
  const q = s.deps.quota;
  if (!q || messages === 0) return undefined;
  const v = await q.verdict(s.user!, bytes, messages);
  if (v === 'ok') return undefined;
  return { status: 'NO', code: 'OVERQUOTA', text: q.refused(s.user!, 'imap', v) };
}

/** After APPEND/COPY: warnings at the thresholds, and this node's domain sums. */
export async function quotaAdded(s: ImapSession, bytes: number, messages: number): Promise<void> {
  await s.deps.quota?.added(s.user!, bytes, messages);
}
