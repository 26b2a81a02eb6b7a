/**
 * Delivery status notifications (RFC 3464, multipart/report; RFC 3462): a human-readable part, the
 * machine-readable message/delivery-status part, and the original message's header (not its body, so a
 * bounce never carries a large attachment twice).
 */
import { randomBytes } from 'node:crypto';

export interface FailedRecipient {
  readonly address: string;
  /** Enhanced status code, e.g. 5.1.1. */
  readonly status: string;
  /** The relay's reply, or why it expired. */
  readonly diagnostic: string;
}

export interface BounceProps {
  /** Reporting MTA (our hostname). */
  readonly hostname: string;
  /** The original envelope sender: the bounce goes to it. */
  readonly sender: string;
  readonly failed: readonly FailedRecipient[];
  /** The original message (its header is attached). */
  readonly original: Buffer;
  readonly arrivalDate: Date;
  /** @default new Date() */
  readonly date?: Date;
}

export function bounceMessage(p: BounceProps): Buffer {
  const boundary = `mailfleet-dsn-${randomBytes(8).toString('hex')}`;
  const date = (p.date ?? new Date()).toUTCString().replace('GMT', '+0000');
  const headerEnd = p.original.indexOf('\r\n\r\n');
  const originalHeader = (headerEnd < 0 ? p.original : p.original.subarray(0, headerEnd + 2)).toString('latin1');
  const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 900);
  const human = [
    `This is the mail system at ${p.hostname}.`,
    '',
    'Your message could not be delivered to the following recipients:',
    '',
    ...p.failed.map((f) => `  <${f.address}>: ${oneLine(f.diagnostic)}`),
    '',
  ].join('\r\n');
  const status = [
    `Reporting-MTA: dns; ${p.hostname}`,
    `Arrival-Date: ${p.arrivalDate.toUTCString().replace('GMT', '+0000')}`,
    '',
    ...p.failed.flatMap((f) => [
      `Final-Recipient: rfc822; ${f.address}`,
      'Action: failed',
      `Status: ${f.status}`,
      `Diagnostic-Code: smtp; ${oneLine(f.diagnostic)}`,
      '',
    ]),
  ].join('\r\n');
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${p.hostname}>`,
    `To: <${p.sender}>`,
    'Subject: Undelivered Mail Returned to Sender',
    `Date: ${date}`,
    `Message-ID: <${Date.now().toString(36)}.${randomBytes(6).toString('hex')}@${p.hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    human,
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    status,
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
    originalHeader.trimEnd(),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return Buffer.from(text, 'latin1');
}
