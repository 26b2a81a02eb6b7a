/**
 * The fair gate on durable writes (lib/store/fair-gate.ts) against simulated disks on a virtual clock: a
 * disk that serves one write at a time (an IOPS-capped volume, the governor bench's slowed disk) and one
 * that serves every write at once (latency does not grow with concurrency). No wall-clock timing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FairGate } from '../../lib/store/fair-gate.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

/** A disk on a virtual clock: `serial` serves one operation at a time, else all at once; each takes `ms`. */
class SimDisk {
  now = 0;
  private pending: Array<{ resolve: () => void; reject: (e: Error) => void; fail: boolean }> = [];
  inDevice = 0;
  maxInDevice = 0;
  constructor(
    private readonly serial: boolean,
    private readonly ms: number,
  ) {}

  op(fail = false): Promise<void> {
    this.inDevice++;
    this.maxInDevice = Math.max(this.maxInDevice, this.inDevice);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject, fail }));
  }

  /** Runs until nothing is pending: serial serves the head, parallel serves everything submitted. */
  async drain(): Promise<void> {
    await tick();
    while (this.pending.length > 0) {
      this.now += this.ms;
      const done = this.serial ? [this.pending.shift()!] : this.pending.splice(0);
      for (const d of done) {
        this.inDevice--;
        if (d.fail) d.reject(new Error('EIO'));
        else d.resolve();
      }
      // Let completions start the next operations.
      for (let i = 0; i < 5; i++) await tick();
    }
  }
}

describe('FairGate', () => {
  test('GIVEN room WHEN operations come THEN they start at once, nobody waits', async () => {
    const disk = new SimDisk(false, 8);
    const gate = new FairGate({ maxInFlight: 8, now: () => disk.now });
    const all = Array.from({ length: 8 }, () => gate.run('a', () => disk.op()));
    await tick();
    assert.equal(disk.inDevice, 8);
    await disk.drain();
    await Promise.all(all);
    assert.equal(gate.stats().waited, 0);
  });

  test('GIVEN a one-at-a-time disk and a heavy owner with 30 writes queued WHEN a light owner writes THEN it waits for what is in flight only, and the limit settles at 1–2', async () => {
    const run = async (maxInFlight: number) => {
      const disk = new SimDisk(true, 8);
      const gate = new FairGate({ maxInFlight, now: () => disk.now });
      const order: string[] = [];
      // Warm the gate: it starts open and learns the disk from the first writes.
      const warm = Array.from({ length: 10 }, (_, i) => gate.run('heavy', () => disk.op().then(() => void order.push(`w${i}`))));
      await disk.drain();
      await Promise.all(warm);
      order.length = 0;
      const heavy = Array.from({ length: 30 }, (_, i) => gate.run('heavy', () => disk.op().then(() => void order.push(`h${i}`))));
      const light = gate.run('light', () => disk.op().then(() => void order.push('light')));
      await disk.drain();
      await Promise.all([...heavy, light]);
      return { position: order.indexOf('light'), limit: gate.stats().limit, maxInDevice: disk.maxInDevice };
    };
    const off = await run(0);
    const on = await run(64);
    assert.equal(off.position, 30, 'without the gate the light write is served after all 30 heavy ones');
    assert.ok(on.position <= 2, `with the gate it waits for what is in flight only (served ${on.position + 1}th)`);
    assert.ok(on.limit <= 2, `the limit settles at 1–2 on a one-at-a-time disk (${on.limit})`);
  });

  test('GIVEN a disk that serves every write at once WHEN 40 writes are always waiting THEN the limit stays at its ceiling (no throughput lost)', async () => {
    const disk = new SimDisk(false, 8);
    const gate = new FairGate({ maxInFlight: 32, now: () => disk.now });
    const all = Array.from({ length: 400 }, (_, i) => gate.run(`u${i % 5}`, () => disk.op()));
    await disk.drain();
    await Promise.all(all);
    assert.equal(gate.stats().limit, 32);
    assert.equal(disk.maxInDevice, 32);
  });

  test('GIVEN a write that fails THEN its caller gets the error and the next waiting write still runs', async () => {
    const disk = new SimDisk(true, 8);
    const gate = new FairGate({ maxInFlight: 1, now: () => disk.now });
    const bad = gate.run('a', () => disk.op(true));
    const thrown = gate.run('b', () => {
      throw new Error('sync throw');
    });
    const good = gate.run('c', () => disk.op());
    const checked = Promise.all([assert.rejects(bad, /EIO/), assert.rejects(thrown, /sync throw/), good]);
    await disk.drain();
    await checked;
    assert.deepEqual({ ...gate.stats(), waitedMs: 0 }, { limit: 1, inFlight: 0, waiting: 0, waited: 2, waitedMs: 0 });
  });

  test('maxInFlight 0 is no gate: every write goes to the disk at once', async () => {
    const disk = new SimDisk(true, 8);
    const gate = new FairGate({ maxInFlight: 0, now: () => disk.now });
    const all = Array.from({ length: 50 }, () => gate.run('a', () => disk.op()));
    await tick();
    assert.equal(disk.inDevice, 50);
    await disk.drain();
    await Promise.all(all);
  });

  test('property: every write runs once, each owner in its own order, never more in flight than the ceiling, and nothing is left in the gate after', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ owner: fc.constantFrom('a', 'b', 'c', 'd'), fail: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 8 }),
        async (ops, serial, max) => {
          const disk = new SimDisk(serial, 8);
          const gate = new FairGate({ maxInFlight: max, now: () => disk.now });
          const ran: Array<{ owner: string; i: number }> = [];
          const all = ops.map((o, i) =>
            gate
              .run(o.owner, () => {
                ran.push({ owner: o.owner, i });
                return disk.op(o.fail);
              })
              .then(
                () => 'ok',
                () => 'failed',
              ),
          );
          await disk.drain();
          const results = await Promise.all(all);
          assert.equal(ran.length, ops.length);
          assert.deepEqual(results, ops.map((o) => (o.fail ? 'failed' : 'ok')));
          for (const owner of ['a', 'b', 'c', 'd']) {
            const mine = ran.filter((r) => r.owner === owner).map((r) => r.i);
            assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `owner ${owner} in its own order`);
          }
          assert.ok(disk.maxInDevice <= max);
          const s = gate.stats();
          assert.equal(s.inFlight, 0);
          assert.equal(s.waiting, 0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
