/** The warning message a mailbox gets when its usage crosses one of quotas.warnPercents. */
import { randomBytes } from 'node:crypto';
import type { UserQuotaStatus } from './types.js';

export interface WarningProps {
  readonly hostname: string;
  readonly address: string;
  readonly percent: number;
  readonly status: UserQuotaStatus;
  /** @default new Date() */
  readonly date?: Date;
}

export function warningMessage(p: WarningProps): Buffer {
  const date = (p.date ?? new Date()).toUTCString().replace('GMT', '+0000');
  const { usage, limit } = p.status;
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${p.hostname}>`,
    `To: <${p.address}>`,
    `Subject: Your mailbox is ${p.percent}% full`,
    `Date: ${date}`,
    `Message-ID: <quota.${Date.now().toString(36)}.${randomBytes(6).toString('hex')}@${p.hostname}>`,
    'Auto-Submitted: auto-generated',
    'X-Mailfleet-Quota-Warning: ' + String(p.percent),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Your mailbox ${p.address} has reached ${p.percent}% of its quota.`,
    '',
    `  storage:  ${usage.bytes} of ${limit.storageBytes > 0 ? `${limit.storageBytes} bytes` : 'unlimited'}`,
    `  messages: ${usage.messages} of ${limit.messages > 0 ? limit.messages : 'unlimited'}`,
    '',
    'When the mailbox is full, new mail is refused. Delete old messages (and empty the Trash) to make room.',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
