/**
 * The coalescing directory fsync of Maildir delivery (DirectorySyncer in lib/store/maildir/deliver.ts): one
 * fsync of a directory at a time, later callers sharing the next one. A caller that arrived between the
 * running fsync settling and the queued one starting used to start a third at once: two ran together on
 * the one open fd and the first to finish closed it under the other (bench/durable-gate crashed with
 * close(undefined) in a delivery). The fsync here is the test's own, so overlap is counted, not timed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DirectorySyncer } from '../../lib/store/maildir/deliver.js';

/** An fsync that completes when the test says, counting how many run at once. */
function controlledSync() {
  const pending: Array<() => void> = [];
  const c = {
    running: 0,
    peak: 0,
    calls: 0,
    closed: 0,
    opened: 0,
    /** Opens are immediate (fd 1000, 1001, …) and closes only counted: no real descriptor is touched. */
    io: {
      open: async (_dir: string) => 1000 + c.opened++,
      sync: (_fd: number) => c.fn(),
      close: (_fd: number) => void c.closed++,
    },
    fn: () =>
      new Promise<void>((resolve) => {
        c.calls++;
        c.running++;
        c.peak = Math.max(c.peak, c.running);
        pending.push(() => {
          c.running--;
          resolve();
        });
      }),
    finishOne: () => pending.shift()?.(),
    get waiting() {
      return pending.length;
    },
  };
  return c;
}

/** Lets promise chains run their course (every step here is a promise: the test's io touches no disk). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('DirectorySyncer', () => {
  test('GIVEN a sync queued behind a running one WHEN a caller arrives after the running one settled but before the queued one started THEN it joins the queued one (never two at once)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-dirsync-'));
    try {
      const c = controlledSync();
      const syncer = new DirectorySyncer(250, c.io);
      // A's callback is registered on its promise before B queues, so it runs in the gap between A
      // settling and the queued run starting.
      let late: Promise<void> | undefined;
      const a = syncer.sync(dir).then(() => {
        late = syncer.sync(dir);
      });
      const b = syncer.sync(dir);
      await settle();
      assert.equal(c.running, 1);
      c.finishOne();
      await settle();
      assert.equal(c.peak, 1, 'two fsyncs of one directory ran at once');
      for (let idle = 0; idle < 3; ) {
        await settle();
        if (c.waiting > 0) {
          c.finishOne();
          idle = 0;
        } else idle++;
      }
      await Promise.all([a, b, late]);
      assert.equal(c.peak, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('property: whatever the order of callers and completions, at most one fsync per directory runs, every caller is answered by an fsync that began after it asked, and every fd opened is closed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('call', 'call-on-settle', 'finish'), { minLength: 1, maxLength: 40 }), async (steps) => {
        const dir = mkdtempSync(join(tmpdir(), 'mf-dirsync-'));
        try {
          const c = controlledSync();
          const syncer = new DirectorySyncer(250, c.io);
          const answered: Promise<void>[] = [];
          const ask = () => {
            const startedBefore = c.calls;
            const runningBefore = c.running;
            const p = syncer.sync(dir).then(() => {
              // The fsync that answered began after the request: more fsyncs have started than had then
              // (the one running at the time does not count: it may have begun before the rename).
              assert.ok(c.calls > startedBefore + (runningBefore > 0 ? 0 : -1), 'answered by an fsync older than the request');
            });
            answered.push(p);
            return p;
          };
          for (const s of steps) {
            if (s === 'call') void ask();
            else if (s === 'call-on-settle') void ask().then(() => void ask());
            else c.finishOne();
            await settle();
            assert.ok(c.running <= 1, `${c.running} fsyncs at once`);
          }
          // Finish fsyncs until none has come for three settles (an answered caller may ask again).
          for (let idle = 0; idle < 3; ) {
            await settle();
            assert.ok(c.running <= 1);
            if (c.waiting > 0) {
              c.finishOne();
              idle = 0;
            } else idle++;
          }
          await Promise.all(answered);
          assert.ok(c.peak <= 1);
          await settle();
          assert.equal(c.closed, c.opened, 'every directory opened is closed once its burst is over');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
