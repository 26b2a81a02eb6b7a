/**
 * bench/imap-stress/store-ops.ts: the cost of one folder change (STORE / APPEND / EXPUNGE) in the store
 * alone, with the change log (imap.changeLogBytes default) and without it (0: the whole UID list written
 * on every change, as before the log), interleaved in rounds in one process so both see the same load.
 *
 *   npx tsx bench/imap-stress/store-ops.ts [--messages 500] [--ops 200] [--rounds 5]
 *
 * Prints CPU µs of this process and wall-clock ms per operation (median over rounds) for each mode.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createMaildirFolder, Mailbox } from '../../lib/store/mailbox/index.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '500' }, ops: { type: 'string', default: '200' }, rounds: { type: 'string', default: '5' } } });
const MESSAGES = Number(values.messages);
const OPS = Number(values.ops);
const ROUNDS = Number(values.rounds);
const body = (i: number) => Buffer.from(`Subject: m${i}\r\nFrom: a@example.com\r\n\r\n${'x'.repeat(2000)}\r\n`);

async function folder(changeLogBytes: number): Promise<{ dir: string; mb: Mailbox }> {
  const dir = await mkdtemp(join(tmpdir(), 'mf-store-ops-'));
  await createMaildirFolder(dir);
  const mb = new Mailbox({ name: 'INBOX', dir, changeLogBytes });
  await mb.appendMany(Array.from({ length: MESSAGES }, (_, i) => ({ data: body(i), letters: '', date: new Date() })));
  return { dir, mb };
}

type Sample = { cpuUs: number; wallMs: number };
async function measure(fn: () => Promise<unknown>): Promise<Sample> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < OPS; i++) await fn();
  const c = process.cpuUsage(c0);
  return { cpuUs: (c.user + c.system) / OPS, wallMs: (performance.now() - t0) / OPS };
}

const modes = [
  { name: 'change log', bytes: 64 * 1024 },
  { name: 'whole list', bytes: 0 },
];
const results: Record<string, Record<string, Sample[]>> = {};
const boxes = await Promise.all(modes.map((m) => folder(m.bytes)));
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < modes.length; k++) {
      const i = (r + k) % modes.length;
      const { mb } = boxes[i]!;
      const res = (results[modes[i]!.name] ??= { STORE: [], APPEND: [], EXPUNGE: [] });
      let n = 0;
      res.STORE!.push(await measure(() => mb.setFlags([mb.messages[n++ % mb.messages.length]!.uid], n % 2 ? 'add' : 'remove', 'S')));
      const appended: number[] = [];
      res.APPEND!.push(await measure(async () => appended.push(await mb.append(body(n++), '', new Date()))));
      res.EXPUNGE!.push(await measure(() => mb.expunge([appended.pop()!])));
    }
  }
} finally {
  for (const b of boxes) await rm(b.dir, { recursive: true, force: true });
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [mode, ops] of Object.entries(results))
  console.log(`${mode.padEnd(12)} ${Object.entries(ops).map(([op, s]) => `${op} ${Math.round(med(s.map((x) => x.cpuUs)))} µs CPU, ${med(s.map((x) => x.wallMs)).toFixed(2)} ms`).join('; ')}`);
