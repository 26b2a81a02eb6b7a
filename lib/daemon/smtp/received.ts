/** The Received: trace header (RFC 5321 §4.4) mailfleetd prepends to every message it accepts. */

export interface ReceivedProps {
  /** What the client said in HELO/EHLO (may be empty or false before HELO). */
  readonly helo?: string | false;
  readonly remoteAddress: string;
  readonly hostname: string;
  /** smtp-server's transmission type: SMTP, ESMTP, ESMTPS, ESMTPSA, ... */
  readonly transmissionType?: string;
  readonly id: string;
  /** Only when the transaction has exactly one recipient (more would leak Bcc). */
  readonly recipient?: string;
  /** Authenticated user: not shown (privacy), but marked by the A in ESMTPSA. */
  readonly user?: string;
}

export function receivedHeader(p: ReceivedProps): string {
  const helo = sanitise(p.helo || 'unknown');
  const ip = p.remoteAddress.includes(':') ? `IPv6:${p.remoteAddress}` : p.remoteAddress;
  const forPart = p.recipient ? `\r\n\tfor <${sanitise(p.recipient)}>` : '';
  return `Received: from ${helo} ([${ip}])\r\n\tby ${sanitise(p.hostname)} (mailfleetd) with ${p.transmissionType ?? 'ESMTP'} id ${p.id}${forPart};\r\n\t${rfc2822Date(new Date())}\r\n`;
}

/**
 * The lines a delivery agent puts in front of each mailbox's copy (RFC 5321 §4.4; Postfix local/virtual
 * and Dovecot LDA do the same): `Return-Path: <envelope sender>` (`<>` for bounces) and
 * `Delivered-To: <mailbox>`, which also lets mail loops be spotted.
 */
export function traceHeaders(sender: string, mailbox: string): string {
  return `Return-Path: <${sanitise(sender)}>\r\nDelivered-To: ${sanitise(mailbox)}\r\n`;
}

/** Client-supplied text must never break the header onto new lines or smuggle fields. */
function sanitise(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
  return s.replace(/[\x00-\x1f\x7f()<>;\\"]/g, '').slice(0, 255);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function rfc2822Date(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)}`;
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tz}`;
}
