/**
 * The heavy tenant's load generator, a process of its own: in the bench's process its 40 loops delayed the
 * light users' own replies on the bench's event loop (the light figures measured the load generator too).
 * Different customers run on different machines; here at least on a different event loop.
 *
 * Argument: one JSON object { port, address, user, loops, retryMs, retryMaxMs }. It prints "ready", then
 * waits for one stdin line with the epoch ms to stop at, runs `loops` submission loops (a refused client
 * backs off as in client.ts) and prints one JSON line per attempt: { at: epoch ms, ok, reply? }.
 */
import { createInterface } from 'node:readline';
import { backoff, sendOne } from './client.js';

const a = JSON.parse(process.argv[2]!) as { port: number; address: string; user: string; loops: number; retryMs: number; retryMaxMs: number };
const out: string[] = [];
const flush = setInterval(() => {
  if (out.length) process.stdout.write(out.splice(0).join(''));
}, 100);
console.log('ready');
const end = await new Promise<number>((r) => createInterface({ input: process.stdin }).once('line', (l) => r(Number(l))));
const loops: Promise<void>[] = [];
for (let i = 0; i < a.loops; i++)
  loops.push(
    (async () => {
      let refusals = 0;
      while (Date.now() < end) {
        const r = await sendOne(a.port, a.address, a.user).catch((e: Error) => ({ refused: true, reply: `error: ${e.message.slice(0, 40)}` }));
        out.push(JSON.stringify({ at: Date.now(), ok: !r.refused, ...(r.reply ? { reply: r.reply } : {}) }) + '\n');
        if (r.refused) await new Promise((x) => setTimeout(x, Math.max(0, Math.min(backoff(++refusals, a.retryMs, a.retryMaxMs), end - Date.now()))));
        else refusals = 0;
      }
    })(),
  );
await Promise.all(loops);
clearInterval(flush);
process.stdout.write(out.join(''), () => process.exit(0));
