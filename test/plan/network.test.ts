/**
 * The engine-neutral network section (lib/plan/network.ts): security-group rules and record names every
 * engine translates. Properties over random tenant sets; the engines are held to it in
 * test/engines/parity.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPlan } from '../../lib/plan/index.js';
import { privateRecordsOf, publicDnsOf, securityGroupsOf } from '../../lib/plan/network.js';
import { loadSpec, specSchema, type SpecInput } from '../../lib/spec/index.js';

/** AWS default: inbound rules per security group. */
const SG_RULE_QUOTA = 60;

describe('platform model: network', () => {
  it('every listener port is open on the proxy group, within the rule quota, for any set of dedicated tenants', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 499 }), { maxLength: 120 }), (slots) => {
        const plan = buildPlan(
          specSchema.parse({
            version: 1,
            platform: { name: 'demo' },
            domains: [{ name: 'shared.example' }, ...slots.map((slot, i) => ({ name: `t${i}.example`, listeners: 'dedicated' as const, slot }))],
          } satisfies SpecInput),
        );
        const proxy = securityGroupsOf(plan, 'primary').find((g) => g.role === 'proxy')!;
        assert.ok(proxy.ingress.length <= SG_RULE_QUOTA, `${proxy.ingress.length} rules`);
        for (const l of plan.listeners)
          assert.ok(proxy.ingress.some((r) => 'cidr' in r.peer && r.peer.cidr === '0.0.0.0/0' && r.fromPort <= l.publicPort && l.publicPort <= r.toPort), `port ${l.publicPort}`);
      }),
      { numRuns: 40 },
    );
  });

  it('every peer group a rule names exists in the region; the other region is reached by CIDR only', () => {
    const plan = buildPlan(loadSpec('examples/primary-dr.yaml').spec);
    for (const role of ['primary', 'dr'] as const) {
      const groups = securityGroupsOf(plan, role);
      const roles = new Set(groups.map((g) => g.role));
      for (const g of groups)
        for (const r of g.ingress) {
          if ('role' in r.peer) assert.ok(roles.has(r.peer.role), `${role} ${g.role} ← ${r.peer.role}`);
          else if (r.peer.scope === 'peer-region') assert.equal(r.peer.cidr, plan.regions![role === 'primary' ? 'dr' : 'primary']!.cidr ?? (role === 'primary' ? '10.41.0.0/16' : '10.40.0.0/16'));
        }
    }
    // Geo-replication reaches each region's storage nodes from the other (primary → DR, and DR → primary for
    // fail-back), brick ports included (create push-pem mounts the target volume); the DR consumer
    // replicates from the primary provider.
    const cross = (role: 'primary' | 'dr') =>
      securityGroupsOf(plan, role).flatMap((g) => g.ingress.filter((r) => 'cidr' in r.peer && r.peer.scope === 'peer-region').map((r) => `${g.role} ${r.fromPort}`));
    assert.deepEqual(cross('dr').sort(), ['storage 22', 'storage 24007', 'storage 49152']);
    assert.deepEqual(cross('primary').sort(), ['storage 22', 'storage 24007', 'storage 49152']);
  });

  it('record names are unique per zone and lie in their zone; every public shard has a name', () => {
    for (const example of ['single-region', 'primary-dr'] as const) {
      const plan = buildPlan(loadSpec(`examples/${example}.yaml`).spec);
      for (const role of plan.regions?.dr ? (['primary', 'dr'] as const) : (['primary'] as const)) {
        const records = privateRecordsOf(plan, role);
        const keys = records.map((r) => `${r.zone} ${r.name}`);
        assert.equal(new Set(keys).size, keys.length, keys.join(', '));
        for (const r of records) assert.ok(r.name.endsWith(r.zone === 'region' ? `.${role}.${plan.platform}.internal` : '.internal'), r.name);
      }
      const dns = publicDnsOf(plan)!;
      assert.deepEqual(dns.records.map((r) => r.shard), plan.nlbShards.map((s) => s.index));
      assert.equal(new Set(dns.records.map((r) => r.name)).size, dns.records.length);
    }
  });
});
