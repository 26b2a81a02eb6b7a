/**
 * Child of maildir-sync-order.test.ts, run under strace: concurrent deliveries into one Maildir (small
 * buffers, one message over 64 KiB from a stream) and a `DELIVERED <base>` line on stdout the moment each
 * deliver() resolves. Stdout is a pipe, written synchronously on Linux, so that write marks the resolve
 * in the trace.
 *   node --import tsx test/store/maildir-sync-order-child.ts <root>
 */
import { Readable } from 'node:stream';
import { MaildirDelivery } from '../../lib/store/maildir/deliver.js';

const d = new MaildirDelivery({ root: process.argv[2]! });
// The Maildir exists before the traced part, so every delivery takes the steady-state path.
await d.deliver([{ address: 'a@example.com' }], Buffer.from('warm\r\n'));
process.stdout.write('BEGIN\n');
const bodies: Array<Buffer | Readable> = Array.from({ length: 24 }, (_, i) => Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`));
bodies.push(Readable.from([Buffer.alloc(70_000, 97), Buffer.from('\r\nend\r\n')]));
bodies.push(Readable.from([Buffer.from('Subject: s\r\n\r\n'), Buffer.from('streamed\r\n')]));
// Staggered starts, so renames land while a directory fsync is already running (the case group commit must
// not answer with that fsync).
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await Promise.all(
  bodies.map(async (b, i) => {
    await sleep(i % 9);
    const r = await d.deliver([{ address: 'a@example.com' }], b);
    process.stdout.write(`DELIVERED ${r.ids[0]}\n`);
  }),
);
process.stdout.write('END\n');
