/**
 * IMAP QUOTA (RFC 9208) from the daemon's quota service: one quota root per user, named "" (every folder
 * of the user counts toward it), with STORAGE in units of 1024 octets and MESSAGE; an unlimited resource
 * is left out. The same numbers as `mailfleet quota get` (usage and limit in KiB, rounded down).
 */
import type { QuotaService } from '../../quota/index.js';
import type { Completion } from './command.js';
import type { ImapSession } from './session.js';

export const QUOTA_ROOT = '';

export async function quotaLine(quota: QuotaService | undefined, user: string): Promise<string> {
  if (!quota) return `* QUOTA "${QUOTA_ROOT}" ()\r\n`;
  const st = await quota.status(user);
  const res: string[] = [];
  if (st.limit.storageBytes > 0) res.push(`STORAGE ${Math.floor(st.usage.bytes / 1024)} ${Math.floor(st.limit.storageBytes / 1024)}`);
  if (st.limit.messages > 0) res.push(`MESSAGE ${st.usage.messages} ${st.limit.messages}`);
  return `* QUOTA "${QUOTA_ROOT}" (${res.join(' ')})\r\n`;
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
