import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { RefusalLog } from '../../lib/limits/refusal-log.js';

/** A real pino logger writing JSON lines into an array. */
function capture(level = 'info'): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits for a condition (timers run late on a busy machine), failing after 2 s. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !ok(); await sleep(10)) if (Date.now() - t0 > 2000) assert.fail(`timed out waiting for ${what}`);
}

test('GIVEN a flood of 1000 refusals of one reason THEN one line at once and one count line per interval, not 1000 lines', async () => {
  const { logger, lines } = capture();
  const log = new RefusalLog({ logger, intervalMs: 50 });
  for (let i = 0; i < 1000; i++) log.note({ listener: 'default-smtp', remote: `10.0.0.${i % 250}`, reason: 'limit-ip' }, 'smtp perIp limit of 20 reached');
  await sleep(10);
  assert.equal(lines.length, 1, 'only the first refusal is logged at once');
  assert.equal(lines[0]!.msg, 'smtp perIp limit of 20 reached');
  assert.equal(lines[0]!.remote, '10.0.0.0');
  await until('the count line', () => lines.length >= 2);
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.refused, 999, 'the rest are counted in one line');
  assert.equal(lines[1]!.reason, 'limit-ip');
  log.close();
});

test('GIVEN two reasons THEN each gets its own first line; a reason quiet for a whole interval logs its next refusal at once', async () => {
  const { logger, lines } = capture();
  const log = new RefusalLog({ logger, intervalMs: 30 });
  log.note({ listener: 'l', remote: '1.1.1.1', reason: 'limit-ip' }, 'ip full');
  log.note({ listener: 'l', remote: '1.1.1.1', reason: 'port-full' }, 'port full');
  assert.deepEqual(lines.map((l) => l.msg), ['ip full', 'port full']);
  await sleep(300); // intervals with nothing counted
  log.note({ listener: 'l', remote: '2.2.2.2', reason: 'limit-ip' }, 'ip full again');
  assert.equal(lines.at(-1)!.msg, 'ip full again');
  assert.equal(lines.filter((l) => 'refused' in l).length, 0, 'no count line when nothing was counted');
  log.close();
});

test('GIVEN refusals counted WHEN closed THEN the count is reported, and each refusal is still there at debug', () => {
  const { logger, lines } = capture('debug');
  const log = new RefusalLog({ logger, intervalMs: 60_000 });
  for (let i = 0; i < 5; i++) log.note({ listener: 'l', remote: '1.1.1.1', reason: 'limit-user' }, 'user full');
  assert.equal(lines.length, 5, 'first at info, four at debug');
  assert.equal(lines.filter((l) => l.level === 20).length, 4);
  log.close();
  assert.equal(lines.at(-1)!.refused, 4);
});
