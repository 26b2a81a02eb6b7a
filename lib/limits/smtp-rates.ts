/**
 * Which SMTP rate buckets a transaction takes, and when (the SMTP front-end calls these two hooks):
 *   MAIL FROM   one message from the client IP (messagesPerMinutePerIp), from the sender
 *               (messagesPerMinutePerSender: the authenticated user on submission, the envelope sender
 *               on MX) and, on submission, from the sender's domain (messagesPerMinutePerDomain)
 *   RCPT TO     recipientsPerMessage (a cap per transaction); on submission one recipient of the
 *               sender's hourly budget (recipientsPerHourPerSender); on MX one message to each local
 *               recipient domain, taken at its first recipient (messagesPerMinutePerDomain)
 * Rates come from the LimitTable (the sender's or recipient's domain rates, then the platform's, live
 * overrides on top). A refusal carries the reply: 450 4.7.1 (retry later) or 452 4.5.3 (too many recipients).
 * Clients in smtp.rateLimitExceptions (default loopback, like Postfix's $mynetworks) skip the buckets;
 * recipientsPerMessage applies to everyone.
 */
import { isIPv6, type BlockList } from 'node:net';
import { networkList } from './networks.js';
import type { IAdmission } from './types.js';
import { limitsOf } from './daemon.js';
import { rateText, type RateCheck, type RateRefusal } from './rates.js';

export interface SmtpRateRefusal extends RateRefusal {
  /** 450 with 4.7.1, or 452 with 4.5.3 for recipientsPerMessage. */
  readonly code: 450 | 452;
  readonly enhanced: '4.7.1' | '4.5.3';
}

export interface MailFromInput {
  readonly submission: boolean;
  readonly remoteAddress: string;
  /** The authenticated user (submission) or the envelope sender (MX; '' for the null sender). */
  readonly sender: string;
}

export interface RcptToInput extends MailFromInput {
  /** Recipients already accepted in this transaction. */
  readonly accepted: number;
  readonly recipientDomain: string;
  /** True for the first accepted recipient of this domain in the transaction. */
  readonly firstForDomain: boolean;
}

function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  return at > 0 ? address.slice(at + 1).toLowerCase() : undefined;
}

function deferral(r: RateRefusal): SmtpRateRefusal {
  return { ...r, code: 450, enhanced: '4.7.1' };
}

/** The SMTP rate hooks of a daemon whose admission came from createAdmission (undefined otherwise). */
export function smtpRateControl(
  admission: IAdmission,
  exceptions: readonly string[] = [],
): SmtpRateControl | undefined {
  const limits = limitsOf(admission);
  return limits ? new SmtpRateControl(limits, exceptions) : undefined;
}

export class SmtpRateControl {
  private readonly exempt: BlockList;
  private readonly exemptCache = new Map<string, boolean>();

  constructor(
    private readonly limits: NonNullable<ReturnType<typeof limitsOf>>,
    exceptions: readonly string[] = [],
  ) {
    this.exempt = networkList(exceptions);
  }

  isExempt(address: string): boolean {
    // BlockList.check parses the address on every call (about 0.7 % of an SMTP profile): remember answers.
    let v = this.exemptCache.get(address);
    if (v === undefined) {
      v = this.exempt.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
      if (this.exemptCache.size >= 10_000) this.exemptCache.clear();
      this.exemptCache.set(address, v);
    }
    return v;
  }

  async onMailFrom(i: MailFromInput): Promise<SmtpRateRefusal | undefined> {
    if (this.isExempt(i.remoteAddress)) return undefined;
    const checks: RateCheck[] = [{ rate: 'messagesPerMinutePerIp', id: i.remoteAddress }];
    const sender = i.sender.toLowerCase();
    if (sender) checks.push({ rate: 'messagesPerMinutePerSender', id: sender });
    const d = domainOf(sender);
    if (i.submission && d) checks.push({ rate: 'messagesPerMinutePerDomain', id: d });
    const r = await this.limits.rates.take(checks);
    return r.ok ? undefined : deferral(r);
  }

  async onRcptTo(i: RcptToInput): Promise<SmtpRateRefusal | undefined> {
    const sender = i.sender.toLowerCase();
    const max = this.limits.table.rateOf(
      'recipientsPerMessage',
      i.submission ? domainOf(sender) : i.recipientDomain,
    );
    if (i.accepted >= max) {
      const counted = this.limits.rateRefusals;
      counted.set('recipientsPerMessage', (counted.get('recipientsPerMessage') ?? 0) + 1);
      return {
        ok: false,
        rate: 'recipientsPerMessage',
        id: sender,
        limit: max,
        retryAfterSeconds: 0,
        text: rateText('recipientsPerMessage', sender, max),
        code: 452,
        enhanced: '4.5.3',
      };
    }
    if (this.isExempt(i.remoteAddress)) return undefined;
    const checks: RateCheck[] = [];
    if (i.submission && sender) checks.push({ rate: 'recipientsPerHourPerSender', id: sender });
    if (!i.submission && i.firstForDomain)
      checks.push({ rate: 'messagesPerMinutePerDomain', id: i.recipientDomain.toLowerCase() });
    if (checks.length === 0) return undefined;
    const r = await this.limits.rates.take(checks);
    return r.ok ? undefined : deferral(r);
  }
}
