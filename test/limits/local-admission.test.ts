import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LocalAdmission, MAX_COUNTERS } from '../../lib/limits/local.js';
import { LimitTable } from '../../lib/limits/table.js';
import type { Lease, ScopeKey } from '../../lib/limits/types.js';
import { testConfig } from './fixture.js';

const USERS = ['a@example.com', 'b@example.com', 'c@example.org'];
const IPS = ['192.0.2.1', '192.0.2.2'];

function scopesOf(user: string, ip: string): ScopeKey[] {
  return [
    { kind: 'ip', service: 'imap', id: ip },
    { kind: 'user', service: 'imap', id: user },
    { kind: 'userip', service: 'imap', id: `${user}|${ip}` },
    { kind: 'domain', service: 'imap', id: user.split('@')[1]! },
  ];
}

type Op =
  | { op: 'acquire'; user: number; ip: number }
  | { op: 'release'; index: number }
  | { op: 'set'; scope: string; value: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      user: fc.nat(USERS.length - 1),
      ip: fc.nat(IPS.length - 1),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), index: fc.nat(50) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('set' as const),
      scope: fc.constantFrom(
        'imap.perUser',
        'imap.perUserIp',
        'imap.perDomain',
        'imap.perIp',
        'imap.perDomain@example.org',
      ),
      value: fc.integer({ min: 1, max: 6 }),
    }),
  },
);

test('GIVEN random acquire/release/limit-change interleavings THEN a slot is granted only under every limit, and counts match', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const table = new LimitTable({
        config: testConfig({ limits: { imap: { perUser: 3, perUserIp: 2, perDomain: 5, perIp: 4 } } }),
      });
      const adm = LocalAdmission.fromTable(table);
      const model = new Map<string, number>();
      const key = (s: ScopeKey) => `${s.kind}:${s.id}`;
      const live: Array<{ lease: Lease; scopes: ScopeKey[] }> = [];
      for (const o of ops) {
        if (o.op === 'set') table.apply([{ scope: o.scope, value: o.value }]);
        else if (o.op === 'release') {
          const item = live.splice(o.index % Math.max(1, live.length), 1)[0];
          if (!item) continue;
          item.lease.release();
          item.lease.release(); // idempotent
          for (const s of item.scopes) model.set(key(s), model.get(key(s))! - 1);
        } else {
          const scopes = scopesOf(USERS[o.user]!, IPS[o.ip]!);
          const full = scopes.find((s) => (model.get(key(s)) ?? 0) >= table.limitOf(s));
          const r = adm.acquireSync(scopes);
          if (full) {
            assert.equal(r.ok, false);
            if (!r.ok) assert.deepEqual(r.scope, full, 'the first full scope is reported');
          } else {
            assert.equal(r.ok, true);
            if (r.ok) live.push({ lease: r, scopes });
            for (const s of scopes) model.set(key(s), (model.get(key(s)) ?? 0) + 1);
          }
        }
        for (const [k, n] of model) {
          const [kind, id] = [k.slice(0, k.indexOf(':')), k.slice(k.indexOf(':') + 1)];
          assert.equal(adm.count({ kind: kind as ScopeKey['kind'], service: 'imap', id }), n);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('GIVEN a full user scope THEN the refusal names the limit and its value; a lowered cap keeps existing leases', () => {
  const table = new LimitTable({ config: testConfig() });
  const adm = LocalAdmission.fromTable(table);
  const u = [{ kind: 'user', service: 'pop3', id: 'a@example.com' }] as const;
  const leases = [adm.acquireSync(u), adm.acquireSync(u), adm.acquireSync(u)];
  assert.ok(leases.every((l) => l.ok));
  const r = adm.acquireSync(u);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.text, 'pop3 perUser limit of 3 reached for user a@example.com');
  table.apply([{ scope: 'user:a@example.com:pop3', value: 1 }]);
  assert.equal(adm.count(u[0]), 3, 'lowering drops nobody');
  for (const l of leases) if (l.ok) l.release();
  assert.equal(adm.acquireSync(u).ok, true);
  assert.equal(adm.acquireSync(u).ok, false);
  const ui = adm.acquireSync([{ kind: 'userip', service: 'pop3', id: 'b@example.com|192.0.2.5' }], {
    user: { limits: { pop3: { perUserIp: 0 } } },
  });
  assert.equal(ui.ok, false);
  if (!ui.ok)
    assert.equal(ui.text, 'pop3 perUserIp limit of 0 reached for user b@example.com from 192.0.2.5');
});

test('GIVEN a flood refused from very many addresses THEN idle counters are dropped and memory stays bounded; scopes checked before a full one leave nothing behind', () => {
  const adm = new LocalAdmission((k) => (k.kind === 'listener' ? 0 : 10));
  for (let i = 0; i < MAX_COUNTERS + 10; i++)
    adm.acquireSync([
      { kind: 'ip', service: 'smtp', id: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      { kind: 'listener', service: 'smtp', id: 'default-smtp' },
    ]);
  const snap = adm.snapshotSync();
  assert.equal(
    snap.filter((u) => u.scope.kind === 'ip').length,
    0,
    'a passing scope before a full one keeps no counter',
  );
  assert.equal(snap.find((u) => u.scope.kind === 'listener')!.refused, MAX_COUNTERS + 10);
  const adm2 = new LocalAdmission(() => 0);
  for (let i = 0; i < MAX_COUNTERS + 10; i++)
    adm2.acquireSync([{ kind: 'ip', service: 'smtp', id: `ip${i}` }]);
  assert.ok(adm2.snapshotSync().length <= MAX_COUNTERS);
});
