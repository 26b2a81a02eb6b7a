/**
 * The usage file under concurrency: deltas group-committed in one process, several processes taking turns
 * on the O_EXCL lock; the sums stay exact.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { addUsage, readUsage } from '../../lib/store/usage.js';

const CHILD = `
import { addUsage } from './lib/store/usage.ts';
const [dir, n] = [process.argv[1], Number(process.argv[2])];
await Promise.all(Array.from({ length: n }, (_, i) => addUsage(dir, { bytes: 10 + (i % 7), messages: 1 })));
`;

function child(dir: string, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, dir, String(n)], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}`))));
  });
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => 10 + (i % 7)).reduce((a, b) => a + b, 0);

describe('usage file', () => {
  it('GIVEN 400 concurrent deltas in this process and 2 × 200 in two other processes THEN the file holds their exact sum, and each caller sees its change in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-usage-'));
    try {
      const mine = Promise.all(
        Array.from({ length: 400 }, async (_, i) => {
          const after = await addUsage(dir, { bytes: 10 + (i % 7), messages: 1 });
          assert.ok(after.messages >= 1, 'resolved with a record that holds at least this delta');
        }),
      );
      await Promise.all([mine, child(dir, 200), child(dir, 200)]);
      const u = await readUsage(dir);
      assert.deepEqual({ bytes: u.bytes, messages: u.messages }, { bytes: expected(400) + 2 * expected(200), messages: 800 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('GIVEN removals past zero within one batch THEN usage stops at zero, never negative', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-usage-'));
    try {
      await addUsage(dir, { bytes: 100, messages: 2 });
      await Promise.all([addUsage(dir, { bytes: -80, messages: -1 }), addUsage(dir, { bytes: -80, messages: -2 })]);
      const u = await readUsage(dir);
      assert.deepEqual({ bytes: u.bytes, messages: u.messages }, { bytes: 0, messages: 0 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
