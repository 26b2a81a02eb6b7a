import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AuthFailureWindow, ipv6Prefix64 } from '../../lib/limits/auth-failures.js';

function clocked(props: ConstructorParameters<typeof AuthFailureWindow>[0] = {}) {
  let t = 1_000_000;
  const w = new AuthFailureWindow({ ...props, now: () => t });
  return { w, advance: (ms: number) => (t += ms) };
}

describe('AuthFailureWindow', () => {
  it('locks a login after failuresPerUser failures from any IPs, and opens when the oldest ages out', () => {
    const { w, advance } = clocked({ failuresPerIp: 100, failuresPerUser: 3, windowSeconds: 60 });
    assert.equal(w.recordFailureSync('10.0.0.1', 'Bob'), undefined);
    advance(10_000);
    assert.equal(w.recordFailureSync('10.0.0.2', 'bob'), undefined);
    advance(10_000);
    assert.deepEqual(w.recordFailureSync('10.0.0.3', 'BOB '), { scope: 'user', retryAfterSeconds: 40 });
    assert.deepEqual(w.checkSync('10.9.9.9', 'bob'), { scope: 'user', retryAfterSeconds: 40 });
    assert.equal(w.checkSync('10.0.0.1', 'alice'), undefined);
    advance(40_000);
    assert.equal(w.checkSync('10.9.9.9', 'bob'), undefined, 'the first failure left the window');
  });

  it('locks an IP after failuresPerIp failures on any logins; the IP lockout wins over the user one', () => {
    const { w } = clocked({ failuresPerIp: 3, failuresPerUser: 3, windowSeconds: 60 });
    w.recordFailureSync('192.0.2.7', 'a');
    w.recordFailureSync('192.0.2.7', 'b');
    assert.deepEqual(w.recordFailureSync('192.0.2.7', 'c'), { scope: 'ip', retryAfterSeconds: 60 });
    assert.equal(w.checkSync('192.0.2.8', 'a'), undefined);
  });

  it('a success clears the login, never the IP (a valid account must not reset its IP count)', () => {
    const { w } = clocked({ failuresPerIp: 3, failuresPerUser: 2, windowSeconds: 60 });
    w.recordFailureSync('192.0.2.1', 'mine');
    w.recordFailureSync('192.0.2.1', 'victim');
    w.recordSuccessSync('mine');
    assert.equal(w.checkSync('192.0.2.1', 'x'), undefined);
    assert.deepEqual(w.recordFailureSync('192.0.2.1', 'victim'), { scope: 'ip', retryAfterSeconds: 60 });
  });

  it('reserve() counts a check in flight as a failure: with one slot left only one reservation is granted', async () => {
    const { w } = clocked({ failuresPerIp: 100, failuresPerUser: 3, windowSeconds: 60 });
    w.recordFailureSync('10.0.0.1', 'bob');
    w.recordFailureSync('10.0.0.1', 'bob');
    const first = w.reserveSync('10.0.0.2', 'bob');
    assert.ok(first.ok);
    const second = w.reserveSync('10.0.0.3', 'bob');
    assert.deepEqual(second, { ok: false, lockout: { scope: 'user', retryAfterSeconds: 60 } });
    await first.reservation.failed();
    assert.equal(w.checkSync('10.0.0.9', 'bob')?.scope, 'user', 'the failed check stays counted');
  });

  it('a reservation settled as success gives the IP slot back and clears the login; cancel gives both back', async () => {
    const { w } = clocked({ failuresPerIp: 2, failuresPerUser: 2, windowSeconds: 60 });
    w.recordFailureSync('10.0.0.1', 'bob');
    const ok = w.reserveSync('10.0.0.1', 'bob');
    assert.ok(ok.ok);
    await ok.reservation.succeeded();
    await ok.reservation.failed(); // settles once: ignored
    assert.equal(w.checkSync('10.0.0.1', 'bob'), undefined);
    const c = w.reserveSync('10.0.0.1', 'alice');
    assert.ok(c.ok);
    await c.reservation.cancel();
    assert.equal(w.recordFailureSync('10.0.0.5', 'alice'), undefined, 'alice has one failure, not two');
    assert.equal(w.recordFailureSync('10.0.0.1', 'carol')?.scope, 'ip', 'the IP has its own failures only');
  });

  it('counts IPv6 clients per /64', () => {
    const { w } = clocked({ failuresPerIp: 2, failuresPerUser: 100 });
    w.recordFailureSync('2001:db8:1:2::1', 'a');
    assert.equal(w.recordFailureSync('2001:db8:1:2:ffff::9', 'b')?.scope, 'ip');
    assert.equal(w.checkSync('2001:db8:1:3::1', 'c'), undefined);
    assert.equal(ipv6Prefix64('2001:0db8:0000:0001::5'), '2001:db8:0:1::/64');
    assert.equal(ipv6Prefix64('::1'), '0:0:0:0::/64');
  });

  it('never remembers more than trackedKeys keys, whatever the sequence (forgetting only unlocks)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 50 })), { maxLength: 300 }), fc.integer({ min: 1, max: 20 }), (seq, max) => {
        const { w } = clocked({ failuresPerIp: 2, failuresPerUser: 2, trackedKeys: max });
        for (const [ip, u] of seq) {
          w.recordFailureSync(`10.0.0.${ip}`, `u${u}`);
          assert.ok(w.size <= max);
        }
      }),
    );
  });
});
