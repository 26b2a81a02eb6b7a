/**
 * What the governor's polling costs the daemon it measures. The daemon runs as its own process with
 * `--sessions` IMAP sessions open (a few users) and one delivery done (a non-empty delivery histogram);
 * this process then reads it as the governor does, `--polls` times back to back, each way in turn over
 * `--rounds` rounds:
 *   three — GET /v1/connections + GET /v1/limits + GET /metrics (the governor's reads before)
 *   sample — GET /v1/governor/sample (now)
 * and reports the daemon's own CPU per poll (from /proc/<pid>/stat: user + system) and what that is at
 * the bench's 0.5 s interval and the default 5 s one. CPU time, not wall time: the box being shared
 * slows both ways alike but does not add to the daemon's CPU seconds.
 *
 *   npx tsx bench/governor/poll-cost.ts [--sessions 60] [--polls 200] [--rounds 3]
 */
import { loadavg } from 'node:os';
import { readFleet, type NodeSample } from '../../lib/governor/signals.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { configFor, RawClient, tempDir, TOKEN } from '../../test/ops/fixture.js';
import { startDaemon } from './daemon.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const SESSIONS = arg('sessions', 60);
const POLLS = arg('polls', 200);
const ROUNDS = arg('rounds', 3);
const USERS = ['alice@example.com', 'bob@example.com', 'carol@example.org'];

const tmp = await tempDir('mf-bench-poll-');
const d = await startDaemon(tmp.dir, configFor({ limits: { imap: { perUser: 1000, perIp: 1000 } } }), 0);
const clients: RawClient[] = [];
for (let i = 0; i < SESSIONS; i++) {
  const c = await RawClient.open(d.port('imap'));
  clients.push(c);
  await c.waitFor(/^\* OK/, 30_000);
  await c.send(`a1 LOGIN ${USERS[i % USERS.length]} password`, /^a1 /, 30_000);
}
{
  const c = await RawClient.open(d.port('submission'));
  await c.waitFor(/^220 /, 30_000);
  await c.send('EHLO bench.test', /^250 /, 30_000);
  await c.send(`AUTH PLAIN ${Buffer.from('\0bob@example.com\0password').toString('base64')}`, /^235 /, 30_000);
  await c.send('MAIL FROM:<bob@example.com>', /^250 /, 30_000);
  await c.send('RCPT TO:<bob@example.com>', /^250 /, 30_000);
  await c.send('DATA', /^354 /, 30_000);
  await c.send('Subject: x\r\n\r\nx\r\n.', /^250 /, 30_000);
  c.close();
}
const fleet = resolveFleet({ admin: [d.adminUrl], token: TOKEN });
const managed = ['user:alice@example.com:imap'];

async function measure(legacy: boolean): Promise<{ cpuMs: number; wallMs: number }> {
  let prev: ReadonlyMap<string, NodeSample> = new Map();
  const cpu0 = d.cpuSeconds();
  const t0 = performance.now();
  for (let i = 0; i < POLLS; i++) prev = (await readFleet(fleet, prev, managed, Date.now, { legacy })).samples;
  return { cpuMs: ((d.cpuSeconds() - cpu0) * 1000) / POLLS, wallMs: (performance.now() - t0) / POLLS };
}

// Warm both paths (JIT, first-use allocations) before measuring.
await measure(true);
await measure(false);
const got: Record<'three' | 'sample', Array<{ cpuMs: number; wallMs: number }>> = { three: [], sample: [] };
for (let r = 0; r < ROUNDS; r++)
  for (const way of r % 2 === 0 ? (['three', 'sample'] as const) : (['sample', 'three'] as const)) got[way].push(await measure(way === 'three'));

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`poll-cost: ${SESSIONS} IMAP sessions open, ${POLLS} polls per measurement, ${ROUNDS} rounds alternating; load average ${loadavg().map((x) => x.toFixed(1)).join(' / ')}`);
for (const way of ['three', 'sample'] as const) {
  const cpu = med(got[way].map((x) => x.cpuMs));
  console.log(
    `  ${way.padEnd(6)}: daemon CPU ${cpu.toFixed(2)} ms per poll (rounds: ${got[way].map((x) => x.cpuMs.toFixed(2)).join(', ')}), wall ${med(got[way].map((x) => x.wallMs)).toFixed(1)} ms; ` +
      `at 0.5 s: ${(cpu / 5).toFixed(2)} % of a core, at 5 s: ${(cpu / 50).toFixed(3)} %`,
  );
}
for (const c of clients) c.close();
await d.stop();
await tmp.cleanup();
process.exit(0);
