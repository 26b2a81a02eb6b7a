/**
 * The governor's decision core, as a pure function: hysteresis (no oscillation at the threshold), floors
 * and fair share, the audit content of each decision, observe/advise changing nothing, and a closed loop
 * against a simulated platform whose load follows the heavy tenant's cap.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { governorConfig, type GovernorConfig } from '../../lib/governor/config.js';
import { changesFor, fairShares, tick } from '../../lib/governor/core.js';
import { EMPTY_STATE, type GovernorSnapshot, type GovernorState, type ScopeLoad } from '../../lib/governor/types.js';
import { governorSchema } from '../../lib/spec/schema.js';

const cfg = (o: Record<string, unknown> = {}): GovernorConfig =>
  governorConfig(governorSchema.parse({ mode: 'enforce', targets: { connections: 100 }, settleSeconds: 1, cooldownSeconds: 5, ...o }));

const user = (name: string, current: number, limit = 20, override: number | null = null): ScopeLoad => ({
  scope: `user:${name}:imap`,
  kind: 'user',
  service: 'imap',
  current,
  limit: override ?? limit,
  override,
});

const scopeArb: fc.Arbitrary<ScopeLoad> = fc
  .record({
    kind: fc.constantFrom('user', 'ip', 'domain', 'listener', 'login' as const),
    id: fc.integer({ min: 0, max: 5 }),
    service: fc.constantFrom('imap', 'pop3'),
    current: fc.integer({ min: 0, max: 200 }),
    limit: fc.integer({ min: 1, max: 300 }),
    overridden: fc.boolean(),
    // A login scope (a user's login rate) may have no rate at all.
    unlimited: fc.boolean(),
  })
  .map((r): ScopeLoad =>
    r.kind === 'login'
      ? {
          scope: `user:s${r.id}@a.com:rates.loginsPerMinutePerUser`,
          kind: 'login',
          service: 'login',
          current: r.current * 10,
          ...(r.unlimited && !r.overridden ? {} : { limit: r.limit * 10 }),
          override: r.overridden ? r.limit * 10 : null,
        }
      : {
          scope: `${r.kind}:s${r.id}:${r.service}`,
          kind: r.kind,
          service: r.service,
          current: r.current,
          limit: r.limit,
          override: r.overridden ? r.limit : null,
        },
  );
const scopesArb = fc.uniqueArray(scopeArb, { selector: (s) => s.scope, maxLength: 12 });

/** Runs ticks over a constant set of scopes, applying each decision to the scopes (enforce). */
function run(c: GovernorConfig, signals: readonly number[], scopes: ScopeLoad[], stepMs = 1000) {
  let state: GovernorState = EMPTY_STATE;
  let live = scopes.map((s) => ({ ...s }));
  const all = [];
  for (let i = 0; i < signals.length; i++) {
    const r = tick({ at: i * stepMs, signals: { connections: signals[i]! }, scopes: live }, state, c);
    state = r.applied;
    for (const d of r.decisions) {
      all.push({ i, d });
      live = live.map((s) =>
        s.scope !== d.scope ? s : d.to === 'default' ? { ...s, limit: scopes.find((x) => x.scope === s.scope)!.limit, override: null } : { ...s, limit: d.to, override: d.to, setBy: 'mailfleet-governor' },
      );
    }
    state = { ...state, managed: Object.fromEntries(Object.entries(state.managed).map(([k, m]) => [k, { ...m, confirmed: true }])) };
  }
  return { all, state, live };
}

describe('governor core', () => {
  it('lowers the heaviest user over its fair share, never below floor or fair share, and audits inputs, scope, before and after', () => {
    const c = cfg({ targets: { connections: 10 } });
    const r = tick({ at: 0, signals: { connections: 30 }, scopes: [user('heavy@a.com', 24), user('l1@b.com', 3), user('l2@b.com', 3)] }, EMPTY_STATE, c);
    assert.equal(r.load, 'over');
    assert.equal(r.decisions.length, 1);
    const d = r.decisions[0]!;
    assert.deepEqual([d.action, d.scope, d.from, d.to], ['lower', 'user:heavy@a.com:imap', 20, 15]);
    assert.deepEqual(d.signals, [{ name: 'connections', value: 30, target: 10 }]);
    assert.equal(d.fairShare, 10);
    assert.equal(d.current, 24);
  });

  it('property: every lowering respects the floor and fair share, touches only scopes above their fair share, and lowers', () => {
    fc.assert(
      fc.property(scopesArb, fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 90 }), (scopes, floor, stepPercent) => {
        const c = cfg({ floor, stepPercent, targets: { connections: 1 } });
        const r = tick({ at: 0, signals: { connections: 1000 }, scopes }, EMPTY_STATE, c);
        const fair = fairShares(scopes);
        for (const d of r.decisions) {
          assert.equal(d.action, 'lower');
          const s = scopes.find((x) => x.scope === d.scope)!;
          const share = fair.get(`${s.kind}|${s.service}`)!;
          assert.ok(s.current > share, 'only scopes above their fair share');
          assert.equal(typeof d.to, 'number');
          assert.ok((d.to as number) >= floor, 'floor');
          assert.ok((d.to as number) >= Math.ceil(share), 'fair share');
          assert.ok((d.to as number) < (s.limit ?? Number.POSITIVE_INFINITY), 'a step down');
          if (s.limit === undefined) assert.ok((d.to as number) < s.current, 'a scope with no limit is lowered under what it does');
          assert.equal(d.from, s.limit);
          assert.ok(d.signals.length > 0 && d.why.length > 0, 'the decision names its signal');
        }
      }),
    );
  });

  it('property: observe and advise change nothing (no limit change, no governed scope), enforce carries out what it decides', () => {
    fc.assert(
      fc.property(scopesArb, fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }), (scopes, signals) => {
        for (const mode of ['observe', 'advise'] as const) {
          const c = cfg({ mode, targets: { connections: 100 } });
          let state: GovernorState = EMPTY_STATE;
          signals.forEach((v, i) => {
            const r = tick({ at: i * 1000, signals: { connections: v }, scopes }, state, c);
            assert.deepEqual(changesFor(mode, r.decisions), []);
            assert.deepEqual(r.proposed.managed, {});
            state = r.proposed;
          });
        }
        const r = tick({ at: 0, signals: { connections: signals[0]! }, scopes }, EMPTY_STATE, cfg({ targets: { connections: 100 } }));
        assert.equal(changesFor('enforce', r.decisions).length, r.decisions.length);
      }),
    );
  });

  it('property: hysteresis — load that never falls under the release threshold is never raised; load never above the target is never lowered', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 70.01, max: 140, noNaN: true }), { minLength: 1, maxLength: 200 }), (signals) => {
        const { all } = run(cfg(), signals, [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
        assert.ok(all.every((x) => x.d.action === 'lower'), 'no raise without calm');
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 1, maxLength: 200 }), (signals) => {
        const { all } = run(cfg(), signals, [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
        assert.deepEqual(all, [], 'at or under the target nothing is lowered');
      }),
    );
  });

  it('steady load at the threshold: a flat signal exactly at, or noise around, the target never flaps', () => {
    const at = run(cfg(), Array(300).fill(100), [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
    assert.deepEqual(at.all, []);
    const noisy = Array.from({ length: 300 }, (_, i) => 100 + (i % 2 === 0 ? 3 : -3));
    const n = run(cfg(), noisy, [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
    assert.ok(n.all.length > 0, 'over the target half the time: it lowers');
    assert.ok(n.all.every((x) => x.d.action === 'lower'), 'only steps down: 70 % of the target is never reached');
  });

  it('after a flood, a noisy calm (one reading in three in the band, one over the target) still raises back and releases', () => {
    // Target 100, calm under 70. The heavy user holds 60 sessions during the flood, 1 after it (as the
    // light one, so nobody is over a fair share and the reading over the target lowers nothing). After
    // it the readings go 40, 40, 85, … (mean 55), with one at 110: judged one tick at a time (the old
    // rule) the 5-tick cooldown never passed and the cap stayed down for good.
    const c = cfg();
    const after = Array.from({ length: 40 }, (_, i) => (i === 10 ? 110 : i % 3 === 2 ? 85 : 40));
    const readings = [200, 200, 200, ...after];
    let state: GovernorState = EMPTY_STATE;
    let heavy = user('heavy@a.com', 60, 100);
    const seen: Array<[number, string]> = [];
    readings.forEach((v, i) => {
      const current = i < 3 ? 60 : 1;
      const r = tick({ at: i * 1000, signals: { connections: v }, scopes: [{ ...heavy, current }, user('l@b.com', i < 3 ? 2 : 1)] }, state, c);
      state = { ...r.applied, managed: Object.fromEntries(Object.entries(r.applied.managed).map(([k, m]) => [k, { ...m, confirmed: true }])) };
      for (const d of r.decisions) {
        seen.push([i, d.action]);
        assert.equal(d.scope, heavy.scope);
        heavy = d.to === 'default' ? user('heavy@a.com', 60, 100) : { ...heavy, limit: d.to, override: d.to, setBy: 'mailfleet-governor' };
      }
    });
    const up = seen.filter(([, a]) => a === 'raise' || a === 'release');
    assert.ok(seen.some(([, a]) => a === 'release'), seen.map(([i, a]) => `${i}:${a}`).join(' '));
    // The first raise waits for the flood to leave the last cooldown's mean, then a cooldown of calm.
    assert.ok(up[0]![0] >= 3 + 5, `raised at tick ${up[0]![0]}`);
    // Load back over the target for a while is not calm: no raise while the last cooldown averages over 0.7.
    const relapse = run(c, [200, 200, 200, 40, 40, 85, 120, 120, 120, 120, 120, 120], [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
    assert.ok(relapse.all.every((x) => x.d.action === 'lower'), relapse.all.map((x) => `${x.i}:${x.d.action}`).join(' '));
  });

  it('never raises on a tick over a target, even with a calm mean and the lowering held back by settleSeconds', () => {
    const c = cfg({ settleSeconds: 5 });
    const heavy = { ...user('heavy@a.com', 1, 100, 50), setBy: 'mailfleet-governor' };
    const managed = { [heavy.scope]: { kind: 'user' as const, service: 'imap', value: 50, restoreTo: 'default' as const, restoreValue: 100, changedAt: 0, confirmed: true } };
    const quiet = Array.from({ length: 9 }, (_, i) => ({ at: 20_500 + i * 500, worst: 0.3 }));
    const state: GovernorState = { managed, flaps: {}, calmSince: 10_000, quiet, lastLowerAt: 24_000 };
    const snap = (v: number) => ({ at: 25_000, signals: { connections: v }, scopes: [heavy, user('l@b.com', 1)] });
    // A calm tick raises (the mean of 0.3 × 9 and this tick is far under 0.7) …
    assert.deepEqual(tick(snap(30), state, c).decisions.map((d) => d.action), ['raise']);
    // … a tick over the target, with the mean still calm and the next lowering 4 s away, does not.
    assert.deepEqual(tick(snap(120), state, c).decisions, []);
  });

  it('property: a band whose mean stays at or over the release threshold never raises, however it is spread', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 99.9, noNaN: true }), { minLength: 1, maxLength: 120 }), (tail) => {
        // Ticks after a flood whose readings average at least the release threshold (70): every value
        // under 70 is followed at once by 140 − v (under the target 100 when v > 40.1), lower ones become
        // 70. A window may dip under 70 for the one tick that ends on an unpaired low, never for the
        // cooldown a raise needs.
        const paired = tail.flatMap((v) => (v >= 70 ? [v] : v > 40.1 ? [v, 140 - v] : [70]));
        const { all } = run(cfg(), [200, ...paired], [user('heavy@a.com', 60, 100), user('l@b.com', 2)]);
        assert.ok(
          all.every((x) => x.d.action === 'lower'),
          `raised in a band: ${all.map((x) => `${x.i}:${x.d.action}`).join(' ')}`,
        );
      }),
    );
  });

  it('closed loop: against a platform whose load follows the heavy cap, flaps back off exponentially', () => {
    // Sessions = light 10 + min(heavy demand 80, heavy cap); target 50, calm under 45: a band narrower than
    // one raising step, so every raise overshoots into overload (the worst case for flapping).
    const c = cfg({ targets: { connections: 50 }, cooldownSeconds: 3, settleSeconds: 1, floor: 2, releaseRatio: 0.9 });
    let state: GovernorState = EMPTY_STATE;
    let cap = 100;
    let override: number | null = null;
    const actions: string[] = [];
    let overTicks = 0;
    const ticks = 2000;
    for (let i = 0; i < ticks; i++) {
      const heavy = Math.min(80, cap);
      if (10 + heavy > 50) overTicks++;
      const snap: GovernorSnapshot = {
        at: i * 1000,
        signals: { connections: 10 + heavy },
        scopes: [user('heavy@a.com', heavy, 100, override), ...Array.from({ length: 10 }, (_, k) => user(`l${k}@b.com`, 1))],
      };
      const r = tick(snap, state, c);
      state = r.applied;
      for (const d of r.decisions) {
        actions.push(d.action);
        cap = d.to === 'default' ? 100 : d.to;
        override = d.to === 'default' ? null : d.to;
      }
      state = { ...state, managed: Object.fromEntries(Object.entries(state.managed).map(([k, m]) => [k, { ...m, confirmed: true }])) };
    }
    const reversals = actions.filter((a, i) => a === 'lower' && i > 0 && actions[i - 1] !== 'lower').length;
    // Each flap doubles the wait before the next raise, up to 2^5 × cooldown = 96 s: at most 5 doublings
    // plus one flap per 96 s (without the back-off: one per 6 s, 333 in this run).
    assert.ok(reversals <= 5 + Math.ceil(ticks / 96), `reversals ${reversals}: ${actions.join(' ')}`);
    assert.ok(overTicks / ticks < 0.05, `over the target ${overTicks} of ${ticks} s`);
  });

  it('raises back in steps after the cooldown and releases to the plan value; a restart from the saved state continues', () => {
    const c = cfg({ targets: { connections: 10 }, cooldownSeconds: 5, raiseStepPercent: 10 });
    const heavyOver = [user('heavy@a.com', 24), user('l@b.com', 2)];
    let r = tick({ at: 0, signals: { connections: 26 }, scopes: heavyOver }, EMPTY_STATE, c);
    assert.equal(r.decisions[0]!.to, 15);
    // JSON round trip: what the state file holds is all a restarted governor has.
    let state: GovernorState = JSON.parse(JSON.stringify(r.applied));
    const lowered = [user('heavy@a.com', 0, 20, 15), user('l@b.com', 2)].map((s) => ({ ...s, setBy: 'mailfleet-governor' }));
    const seen: Array<[number, string, unknown]> = [];
    for (let t = 1000; t <= 30_000; t += 1000) {
      r = tick({ at: t, signals: { connections: 2 }, scopes: lowered }, state, c);
      state = JSON.parse(JSON.stringify(r.applied));
      for (const d of r.decisions) {
        seen.push([t, d.action, d.to]);
        const s = lowered.find((x) => x.scope === d.scope)!;
        Object.assign(s, d.to === 'default' ? { override: null, limit: 20 } : { override: d.to, limit: d.to });
      }
    }
    // 15 + 10 % of 20 per step, one step per 5 s cooldown, the last one drops the override. Calm is the
    // last 5 s averaging under 0.7 × the target: the overload at 0 s (2.6 ×) keeps the mean over it until
    // 4 s, so the first raise comes a cooldown after that.
    assert.deepEqual(seen, [
      [9000, 'raise', 17],
      [14000, 'raise', 19],
      [19000, 'release', 'default'],
    ]);
  });

  it('a login rate is lowered only once no session scope can go lower, from no rate at all, and given back as no rate', () => {
    const c = cfg({ targets: { cpuPercent: 100 }, stepPercent: 25, raiseStepPercent: 50, cooldownSeconds: 5, floor: 2 });
    const login = (name: string, perMinute: number, limit?: number): ScopeLoad => ({
      scope: `user:${name}:rates.loginsPerMinutePerUser`,
      kind: 'login',
      service: 'login',
      current: perMinute,
      ...(limit !== undefined ? { limit } : {}),
      override: limit ?? null,
    });
    // The heavy user's sessions can still go lower: that comes first, whatever the login rates.
    let r = tick({ at: 0, signals: { cpuPercent: 180 }, scopes: [user('heavy@a.com', 8), user('l@b.com', 2), login('heavy@a.com', 1200), login('l@b.com', 300)] }, EMPTY_STATE, c);
    assert.deepEqual(r.decisions.map((d) => [d.scope, d.to]), [['user:heavy@a.com:imap', 6]]);
    // At its fair share of sessions (5 and 5): its login rate is next, from none, 25 % under what it does.
    r = tick({ at: 0, signals: { cpuPercent: 180 }, scopes: [user('heavy@a.com', 5), user('l@b.com', 5), login('heavy@a.com', 1200), login('l@b.com', 300)] }, EMPTY_STATE, c);
    const d = r.decisions[0]!;
    assert.deepEqual([d.action, d.kind, d.scope, d.from, d.to], ['lower', 'login', 'user:heavy@a.com:rates.loginsPerMinutePerUser', undefined, 900]);
    assert.match(d.why, /makes 1200 logins per minute, fair share 750/);
    const m = r.applied.managed[d.scope]!;
    assert.deepEqual([m.restoreTo, m.restoreValue], ['default', 1200]);
    // Never under the fair share: 700 against 300 share 500, and the 25 % step (525) is above it.
    r = tick({ at: 0, signals: { cpuPercent: 180 }, scopes: [login('heavy@a.com', 700, 900), login('l@b.com', 300)] }, EMPTY_STATE, c);
    assert.equal(r.decisions[0]!.to, 525);
    r = tick({ at: 0, signals: { cpuPercent: 180 }, scopes: [login('heavy@a.com', 300, 525), login('l@b.com', 300)] }, EMPTY_STATE, c);
    assert.deepEqual(r.decisions, [], 'at its fair share it is not lowered');
    // Calm: raised in steps of 50 % of the 1200 it made, then given back as no rate at all.
    let state: GovernorState = { ...EMPTY_STATE, managed: { [d.scope]: { ...m, confirmed: true } } };
    const seen: Array<[string, unknown]> = [];
    let limit: number | undefined = 900;
    for (let t = 1000; t <= 20_000; t += 1000) {
      r = tick({ at: t, signals: { cpuPercent: 10 }, scopes: [{ ...login('heavy@a.com', 100, limit), setBy: 'mailfleet-governor' }] }, state, c);
      state = r.applied;
      for (const x of r.decisions) {
        seen.push([x.action, x.to]);
        limit = x.to === 'default' ? undefined : x.to;
      }
    }
    assert.deepEqual(seen, [['release', 'default']], 'one 50 % step of 1200 from 900 reaches what it had: no rate');
  });

  it('raises a capped scope only once its own refusals have stopped for the cooldown (a client still knocking stays capped)', () => {
    const c = cfg({ targets: { connections: 10 }, cooldownSeconds: 5, raiseStepPercent: 10 });
    let r = tick({ at: 0, signals: { connections: 26 }, scopes: [user('heavy@a.com', 24), user('l@b.com', 2)] }, EMPTY_STATE, c);
    assert.equal(r.decisions[0]!.to, 15);
    let state: GovernorState = JSON.parse(JSON.stringify(r.applied));
    // The cap holds the load down (calm), but the heavy client keeps retrying: 1.5 refusals/s until t = 20 s.
    let cap = 15;
    const lowered = (refusalsPerSecond: number) => [{ ...user('heavy@a.com', 2, 20, cap), setBy: 'mailfleet-governor', refusalsPerSecond }, user('l@b.com', 2)];
    const seen: Array<[number, string, unknown]> = [];
    for (let t = 1000; t <= 32_000; t += 1000) {
      r = tick({ at: t, signals: { connections: 4 }, scopes: lowered(t <= 20_000 ? 1.5 : 0) }, state, c);
      state = JSON.parse(JSON.stringify(r.applied));
      for (const d of r.decisions) {
        seen.push([t, d.action, d.to]);
        if (typeof d.to === 'number') cap = d.to;
      }
    }
    // Calm since 5 s, but refusing until 20 s: the first raise waits for 5 s without a refusal (25 s).
    assert.deepEqual(seen, [
      [25_000, 'raise', 17],
      [30_000, 'raise', 19],
    ]);

    // A named threshold: refusals at or under releaseRefusalsPerSecond do not hold the raise back.
    const lenient = cfg({ targets: { connections: 10 }, cooldownSeconds: 5, raiseStepPercent: 10, releaseRefusalsPerSecond: 2 });
    let s2: GovernorState = JSON.parse(JSON.stringify(tick({ at: 0, signals: { connections: 26 }, scopes: [user('heavy@a.com', 24), user('l@b.com', 2)] }, EMPTY_STATE, lenient).applied));
    cap = 15;
    const first: Array<[number, string]> = [];
    for (let t = 1000; t <= 12_000; t += 1000) {
      const x = tick({ at: t, signals: { connections: 4 }, scopes: lowered(1.5) }, s2, lenient);
      s2 = x.applied;
      for (const d of x.decisions) {
        first.push([t, d.action]);
        if (typeof d.to === 'number') cap = d.to;
      }
    }
    // Calm from 5 s (the overload at 0 s weighs on the mean until it leaves the window), the raise a cooldown later.
    assert.deepEqual(first, [[10_000, 'raise']]);
  });

  it('an operator change to a governed scope wins: the governor yields; its own lost change is reasserted', () => {
    const c = cfg({ targets: { connections: 10 } });
    const r = tick({ at: 0, signals: { connections: 26 }, scopes: [user('heavy@a.com', 24), user('l@b.com', 2)] }, EMPTY_STATE, c);
    const confirmed: GovernorState = { ...r.applied, managed: { 'user:heavy@a.com:imap': { ...r.applied.managed['user:heavy@a.com:imap']!, confirmed: true } } };
    const human = tick({ at: 500, signals: { connections: 26 }, scopes: [{ ...user('heavy@a.com', 24, 20, 18), setBy: 'alice@ops' }] }, confirmed, c);
    assert.deepEqual(human.decisions.map((d) => [d.action, d.to]), [['yield', 18]]);
    assert.deepEqual(human.applied.managed, {});
    const lost = tick({ at: 500, signals: { connections: 26 }, scopes: [user('heavy@a.com', 24)] }, r.applied, c);
    assert.deepEqual(lost.decisions.map((d) => [d.action, d.to]), [['reassert', 15]]);
  });
});
