/** Append-stable plan: a tenant with a slot keeps its ports and its NLB shard whatever happens to the others. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { isMailfleetError } from '../../lib/errors.js';
import { checkSpec } from '../../lib/spec/check.js';
import { loadSpec, PROTOCOLS, specSchema, type SpecInput } from '../../lib/spec/index.js';
import type { Protocol } from '../../lib/spec/schema.js';

type Tenant = { name: string; slot: number; protocols?: Protocol[] };

function planOf(tenants: readonly Tenant[]): Plan | undefined {
  const spec = specSchema.parse({
    version: 1,
    platform: { name: 'demo' },
    domains: [{ name: 'shared.example' }, ...tenants.map((t) => ({ name: t.name, listeners: 'dedicated' as const, slot: t.slot, ...(t.protocols ? { protocols: t.protocols } : {}) }))],
  } satisfies SpecInput);
  try {
    return buildPlan(spec);
  } catch (e) {
    // An explicit slot may put a shard over 50 listeners: the plan refuses it (and says which slot).
    if (isMailfleetError(e) && /over 50 listeners/.test(e.message)) return undefined;
    throw e;
  }
}

/** Each tenant's ports and shard, by tenant. */
function placement(plan: Plan): Map<string, string> {
  const out = new Map<string, string[]>();
  for (const l of plan.listeners) out.set(l.tenant, [...(out.get(l.tenant) ?? []), `${l.protocol}:${l.publicPort}/${l.localPort}@${l.nlbShard}`]);
  return new Map([...out].map(([k, v]) => [k, v.join(',')]));
}

const tenantsArb = fc
  .uniqueArray(
    fc.record({
      slot: fc.integer({ min: 0, max: 499 }),
      protocols: fc.option(fc.subarray([...PROTOCOLS], { minLength: 1 }), { nil: undefined }),
    }),
    { selector: (t) => t.slot, minLength: 1, maxLength: 60 },
  )
  .map((ts) => ts.map((t, i) => ({ name: `t${i}.example`, slot: t.slot, protocols: t.protocols })));

/** One edit: add a tenant at a free slot, remove one, or reorder them all. */
const editArb = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), slot: fc.integer({ min: 0, max: 499 }), at: fc.nat() }),
  fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('reorder' as const), seed: fc.nat() }),
);

type Edit = { kind: 'add' | 'remove' | 'reorder'; slot?: number; at?: number; seed?: number };

function apply(tenants: Tenant[], edit: Edit): Tenant[] {
  const out = [...tenants];
  if (edit.kind === 'add') {
    if (out.some((t) => t.slot === edit.slot)) return out;
    out.splice(edit.at! % (out.length + 1), 0, { name: 'new.example', slot: edit.slot! });
  } else if (edit.kind === 'remove') {
    if (out.length > 0) out.splice(edit.at! % out.length, 1);
  }
  else {
    let s = edit.seed! + 1;
    for (let i = out.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  return out;
}

describe('append-stable plan (slots)', () => {
  it('property: adding, removing or reordering tenants never moves another tenant\'s ports or NLB shard', () => {
    fc.assert(
      fc.property(tenantsArb, fc.array(editArb, { minLength: 1, maxLength: 5 }), (tenants, edits) => {
        const before = planOf(tenants);
        fc.pre(before !== undefined);
        let current: Tenant[] = tenants;
        for (const e of edits) current = apply(current, e);
        const after = planOf(current);
        fc.pre(after !== undefined);
        const a = placement(before!);
        const b = placement(after!);
        for (const [tenant, where] of b) if (a.has(tenant)) assert.equal(where, a.get(tenant), tenant);
        // Shards keep their index even when emptied: every listener's shard exists and holds it.
        for (const l of after!.listeners) assert.ok(after!.nlbShards[l.nlbShard]!.listeners.includes(l.name));
        assert.ok(after!.nlbShards.every((s, i) => s.index === i && s.listeners.length <= 50));
      }),
      { numRuns: 150 },
    );
  });

  it('GIVEN primary-dr.yaml with a slot on initech WHEN a tenant is inserted before it THEN initech keeps 20011 and 20014', () => {
    const { spec } = loadSpec('examples/primary-dr.yaml');
    const pinned = { ...spec, domains: spec.domains.map((d) => (d.name === 'initech.example' ? { ...d, slot: 1 } : d)) };
    const ports = (p: Plan) => p.listeners.filter((l) => l.tenant === 'initech.example').map((l) => l.publicPort);
    assert.deepEqual(ports(buildPlan(pinned)), [20011, 20014]);
    const grown = { ...pinned, domains: [pinned.domains[0]!, { name: 'acme.example', listeners: 'dedicated' as const }, ...pinned.domains.slice(1)] };
    assert.deepEqual(checkSpec(grown), []);
    assert.deepEqual(ports(buildPlan(grown)), [20011, 20014]);
  });

  it('without slots the ports are as before (first free slot in spec order): primary-dr.yaml keeps hooli 20001… and initech 20011, 20014', () => {
    const plan = buildPlan(loadSpec('examples/primary-dr.yaml').spec);
    assert.deepEqual(plan.listeners.filter((l) => l.tenant !== 'default').map((l) => l.publicPort), [20001, 20002, 20003, 20004, 20005, 20006, 20011, 20014]);
  });

  it('a slot taken twice, or one that overfills its NLB, is a spec error naming the slot', () => {
    const seven = [...PROTOCOLS];
    const dup = specSchema.parse({ version: 1, platform: { name: 'demo' }, domains: [{ name: 'a.example', listeners: 'dedicated', slot: 3 }, { name: 'b.example', listeners: 'dedicated', slot: 3 }] });
    assert.match(checkSpec(dup).map((i) => i.message).join('\n'), /slot 3 is taken by a\.example/);
    const full = specSchema.parse({
      version: 1,
      platform: { name: 'demo' },
      domains: Array.from({ length: 7 }, (_, i) => ({ name: `t${i}.example`, listeners: 'dedicated', slot: i, protocols: seven })),
    });
    assert.match(checkSpec(full).map((i) => i.message).join('\n'), /slot 6 puts NLB shard 0 over 50 listeners/);
  });
});
