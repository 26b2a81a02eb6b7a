/** Port conventions shared by the checks and the plan. */
import type { DomainSpec, Protocol } from './schema.js';

/** Standard ports of the shared listeners in the cloud. */
export const STANDARD_PORT: Readonly<Record<Protocol, number>> = Object.freeze({
  smtp: 25,
  submission: 587,
  submissions: 465,
  imap: 143,
  imaps: 993,
  pop3: 110,
  pop3s: 995,
});

/** A dedicated tenant takes a block of ports; each protocol has a fixed offset inside it. */
export const DEDICATED_BLOCK = 10;
export const PROTOCOL_OFFSET: Readonly<Record<Protocol, number>> = Object.freeze({
  smtp: 0,
  submission: 1,
  submissions: 2,
  imap: 3,
  imaps: 4,
  pop3: 5,
  pop3s: 6,
});

/** First cloud port of dedicated tenant blocks (20000–24999 holds 500 tenants). */
export const CLOUD_DEDICATED_BASE = 20000;
/** Behind HAProxy in the cloud, the daemon listens on 10000 + the standard port, with PROXY v2. */
export const CLOUD_DAEMON_OFFSET = 10000;

export const DEFAULT_DEDICATED_PROTOCOLS: readonly Protocol[] = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s'];

export function dedicatedProtocols(d: Pick<DomainSpec, 'protocols'>): readonly Protocol[] {
  return d.protocols ?? DEFAULT_DEDICATED_PROTOCOLS;
}
