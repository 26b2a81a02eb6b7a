/**
 * The password-check slots of the login gate (FairSlots in lib/daemon/login-gate.ts): at most `max` checks
 * at once, at most `perKey` of them for one login name, waiting names served round-robin. Before the
 * per-name bound, one user re-authenticating in a loop held every slot and everyone else's login waited for
 * a hash to finish (the governor bench).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FairSlots } from '../../lib/daemon/login-gate.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('FairSlots', () => {
  test('GIVEN one name holding its one slot with 5 more waiting WHEN another name asks THEN it gets a free slot at once', async () => {
    const slots = new FairSlots(2, 1);
    const heavy = Array.from({ length: 6 }, () => slots.take('heavy'));
    await tick();
    assert.equal(slots.running, 1, 'the heavy name holds one slot, not both');
    let lightGot = false;
    const light = slots.take('light').then((release) => ((lightGot = true), release));
    await tick();
    assert.ok(lightGot, 'the light name did not wait behind the heavy one');
    assert.equal(slots.running, 2);
    (await light)();
    for (const h of heavy) (await h)();
    assert.equal(slots.running, 0);
  });

  test('without a per-name bound (the old shape) one name takes every slot and the other waits', async () => {
    const slots = new FairSlots(2);
    const heavy = Array.from({ length: 6 }, () => slots.take('heavy'));
    await tick();
    let lightGot = false;
    const light = slots.take('light').then((release) => ((lightGot = true), release));
    await tick();
    assert.equal(lightGot, false);
    // The heavy name queued first, so the first freed slot is its; the light one is served after it.
    (await heavy[0]!)();
    await tick();
    assert.equal(lightGot, false);
    (await heavy[1]!)();
    await tick();
    assert.ok(lightGot, 'served next, round-robin');
    (await light)();
    for (const h of heavy.slice(2)) (await h)();
  });

  test('property: never more than max running, never more than perKey per name, every take served, none left', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), async (keys, max, perKey) => {
        const slots = new FairSlots(max, perKey);
        const held = new Map<string, number>();
        let peak = 0;
        let served = 0;
        await Promise.all(
          keys.map(async (k) => {
            const release = await slots.take(k);
            held.set(k, (held.get(k) ?? 0) + 1);
            assert.ok(held.get(k)! <= perKey, `${k} holds ${held.get(k)} > ${perKey}`);
            peak = Math.max(peak, slots.running);
            await tick();
            held.set(k, held.get(k)! - 1);
            served++;
            release();
          }),
        );
        assert.equal(served, keys.length);
        assert.ok(peak <= max);
        assert.equal(slots.running, 0);
      }),
      { numRuns: 200 },
    );
  });
});
