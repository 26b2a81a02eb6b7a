/**
 * Quota at SMTP, in one place (the front-end calls these three hooks):
 *   RCPT   a recipient already at or over quota: 452 4.2.2 (temporary: it may be emptied); when MAIL FROM
 *          carried SIZE= (RFC 1870) and that message would not fit: 552 5.2.2. An alias is refused only
 *          when every mailbox it reaches is refused.
 *   DATA   smtp-server gives one reply per message (not LMTP's one per recipient), so once the message is
 *          spooled and its size known, mailboxes it would push over quota are dropped and the rest get it
 *          (250); the dropped ones are reported to the sender in a DSN (RFC 3464, 5.2.2). When every
 *          recipient is dropped, the reply is 552 5.2.2 and no DSN is made. RCPT already refuses whatever
 *          SIZE= or a known-full mailbox can tell, so the DSN is the rare case (a client without SIZE).
 */
import { addressParts } from '../../store/maildir/paths.js';
import type { DirectoryUser } from '../../directory/types.js';
import type { DeliveryOptions, DeliveryResult, DeliveryTarget } from '../../store/types.js';
import { bounceMessage } from '../../outbound/bounce.js';
import type { OutboundQueue } from '../../outbound/index.js';
import { quotaOf } from '../../quota/index.js';
import type { DaemonContext } from '../context.js';
import { traceHeaders } from './received.js';
import { SMTP_REPLIES, SmtpReplyError } from './replies.js';

/** The users of one RCPT that may be addressed; throws the 452/552 reply when none may. */
export async function quotaAtRcpt(ctx: DaemonContext, users: readonly DirectoryUser[], sizeParam: unknown): Promise<DirectoryUser[]> {
  const q = quotaOf(ctx);
  const size = Number(sizeParam ?? 0);
  const declared = Number.isSafeInteger(size) && size > 0;
  const ok: DirectoryUser[] = [];
  let last: { user: DirectoryUser; verdict: string } | undefined;
  for (const u of users) {
    // Already full: nothing fits. With SIZE=: this message must fit.
    const v = await q.verdict(u, declared ? size : 0, declared ? 1 : 0);
    if (v === 'ok') ok.push(u);
    else last = { user: u, verdict: q.refused(u.address, 'smtp-rcpt', v) };
  }
  if (ok.length > 0 || !last) return ok;
  if (declared) {
    // Would it fit if it were tiny? Then it is this message that is too big (permanent), else the box is full.
    const full = (await q.verdict(last.user, 0, 0)) !== 'ok';
    if (!full) throw new SmtpReplyError('QUOTA_EXCEEDED', `<${last.user.address}>: ${last.verdict}: message exceeds the quota`);
  }
  throw new SmtpReplyError('MAILBOX_FULL', `<${last.user.address}>: ${last.verdict}`);
}

/** The delivery option that drops mailboxes this message would push over quota. */
export function quotaAtData(ctx: DaemonContext, targets: readonly DeliveryTarget[]): DeliveryOptions {
  const q = quotaOf(ctx);
  return {
    admit: (size) =>
      Promise.all(
        targets.map(async (t) => {
          const v = await q.verdict(t.address, size, 1);
          if (v !== 'ok') q.refused(t.address, 'smtp-data', v);
          return v === 'ok';
        }),
      ),
  };
}

/**
 * After a delivery: warnings for the mailboxes that took it, and a DSN to the sender for those dropped.
 * The DSN goes to a local sender's mailbox, or through the relay queue for a remote one; without a
 * relay a remote sender gets none (mailfleetd does no MX routing), which is logged.
 */
export async function afterQuotaDelivery(
  ctx: DaemonContext,
  p: { targets: readonly DeliveryTarget[]; result: DeliveryResult; sender: string; head: Buffer; arrival: Date; outbound?: OutboundQueue },
): Promise<void> {
  const q = quotaOf(ctx);
  const refused = new Set(p.result.refused ?? []);
  await Promise.all(p.targets.filter((_, i) => !refused.has(i)).map((t) => q.added(t.address, p.result.size, 1)));
  if (refused.size === 0 || p.sender === '') return;
  const r = SMTP_REPLIES.QUOTA_EXCEEDED;
  const failed = [...refused].map((i) => ({ address: p.targets[i]!.address, status: r.enhanced, diagnostic: `${r.code} ${r.enhanced} ${r.text}` }));
  const dsn = bounceMessage({ hostname: ctx.config.hostname, sender: p.sender, failed, original: p.head, arrivalDate: p.arrival });
  const log = ctx.logger.child({ component: 'quota' });
  try {
    const { domain, address } = addressParts(p.sender);
    if (await ctx.directory.isLocalDomain(domain)) {
      const users = await ctx.directory.resolveRecipient(address);
      if (users.length > 0) await ctx.delivery.deliver(users.map((u) => ({ address: u.address, headers: traceHeaders('', u.address) })), dsn);
    } else if (p.outbound) await p.outbound.enqueue('', [p.sender], dsn);
    else log.info({ to: p.sender, failed: failed.map((f) => f.address) }, 'over-quota DSN for a remote sender dropped: no relay');
  } catch (e) {
    log.warn({ err: e, to: p.sender }, 'over-quota DSN not delivered');
  }
}

/** Keeps the first `max` bytes that pass through (the DSN attaches the original header only). */
export function keepHead(chunks: AsyncIterable<Buffer>, max = 65536): { chunks: AsyncGenerator<Buffer>; head(): Buffer } {
  const kept: Buffer[] = [];
  let n = 0;
  return {
    chunks: (async function* () {
      for await (const c of chunks) {
        if (n < max) {
          kept.push(c.subarray(0, max - n));
          n += Math.min(c.length, max - n);
        }
        yield c;
      }
    })(),
    head: () => Buffer.concat(kept),
  };
}
