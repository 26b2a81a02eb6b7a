/** The bench's mail client: one message through submission, one IMAP login (used by the light users in run.ts and the heavy one in heavy.ts). */
import { RawClient } from '../../test/ops/fixture.js';

/** One message through submission; ms from end of DATA to the reply, or refused (with the reply) at AUTH or DATA. */
export async function sendOne(port: number, address: string, user: string): Promise<{ refused: boolean; reply?: string; ms?: number }> {
  const c = await RawClient.open(port, address);
  try {
    await c.waitFor(/^220 /, 30_000);
    await c.send('EHLO bench.test', /^250 /, 30_000);
    const auth = await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`, /^\d{3} /, 30_000);
    if (!auth.startsWith('235')) return { refused: true, reply: auth };
    await c.send(`MAIL FROM:<${user}>`, /^250 /, 30_000);
    await c.send(`RCPT TO:<${user}>`, /^250 /, 30_000);
    await c.send('DATA', /^354 /, 30_000);
    const t0 = performance.now();
    const r = await c.send(`Subject: bench\r\n\r\n${'x'.repeat(2000)}\r\n.`, /^\d{3} /, 30_000);
    const ms = performance.now() - t0;
    c.socket.write('QUIT\r\n');
    return r.startsWith('250') ? { refused: false, ms } : { refused: true, reply: r, ms };
  } finally {
    c.close();
  }
}

export async function imapLogin(port: number, address: string, user: string): Promise<number> {
  const t0 = performance.now();
  const c = await RawClient.open(port, address);
  try {
    await c.waitFor(/^\* OK/, 30_000);
    await c.send(`a1 LOGIN ${user} password`, /^a1 /, 30_000);
    return performance.now() - t0;
  } finally {
    c.close();
  }
}

/** Exponential backoff with equal jitter after `refusals` refusals in a row: half fixed, half random. */
export function backoff(refusals: number, firstMs: number, maxMs: number): number {
  const base = Math.min(maxMs, firstMs * 2 ** (refusals - 1));
  return base / 2 + Math.random() * (base / 2);
}
