import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildPlan, daemonConfig, NLB_MAX_LISTENERS, formatPlan } from '../../lib/plan/index.js';
import { parseSpec, PROTOCOLS, type SpecInput, specSchema } from '../../lib/spec/index.js';

function spec(input: Partial<SpecInput> & { domains: SpecInput['domains'] }) {
  return specSchema.parse({ version: 1, platform: { name: 'demo' }, ...input });
}

const domainArb = fc
  .record({
    dedicated: fc.boolean(),
    protocols: fc.option(fc.subarray([...PROTOCOLS], { minLength: 1 }), { nil: undefined }),
  })
  .map(({ dedicated, protocols }) => ({ dedicated, protocols: dedicated ? protocols : undefined }));

describe('plan', () => {
  it('gives every tenant × protocol one listener, shared listeners on standard ports', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated' }] }));
    assert.equal(plan.listeners.filter((l) => l.tenant === 'default').length, 7);
    assert.equal(plan.listeners.filter((l) => l.tenant === 'b.example').length, 6);
    const imap = plan.listeners.find((l) => l.name === 'default-imap')!;
    assert.equal(imap.publicPort, 143);
    assert.equal(imap.daemonPort, 10143);
    assert.equal(imap.affinity, 'source');
    assert.equal(plan.listeners.find((l) => l.name === 'b-example-imaps')!.publicPort, 20004);
  });

  it('applies domain overrides only to that tenant', () => {
    const plan = buildPlan(
      spec({ domains: [{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated', limits: { imap: { listenerConnections: 77 } } }] }),
    );
    assert.equal(plan.listeners.find((l) => l.name === 'b-example-imap')!.limits.listenerConnections, 77);
    assert.equal(plan.listeners.find((l) => l.name === 'default-imap')!.limits.listenerConnections, 5000);
    assert.equal(plan.limits.domains['b.example']!.imap.listenerConnections, 77);
  });

  it('property: listeners are unique, ports never clash, no NLB exceeds the quota, tenants stay on one NLB', () => {
    fc.assert(
      fc.property(fc.array(domainArb, { minLength: 1, maxLength: 120 }), (ds) => {
        const plan = buildPlan(
          spec({
            domains: ds.map((d, i) => ({
              name: `t${i}.example`,
              listeners: d.dedicated ? 'dedicated' : 'shared',
              ...(d.protocols ? { protocols: d.protocols } : {}),
            })),
          }),
        );
        const names = plan.listeners.map((l) => l.name);
        assert.equal(new Set(names).size, names.length);
        const ports = plan.listeners.map((l) => l.publicPort);
        assert.equal(new Set(ports).size, ports.length);
        const local = plan.listeners.map((l) => l.localPort);
        assert.equal(new Set(local).size, local.length);
        for (const s of plan.nlbShards) assert.ok(s.listeners.length <= NLB_MAX_LISTENERS);
        const shardOf = new Map<string, number>();
        for (const l of plan.listeners) {
          if (shardOf.has(l.tenant)) assert.equal(shardOf.get(l.tenant), l.nlbShard);
          shardOf.set(l.tenant, l.nlbShard);
        }
        assert.equal(plan.nlbShards.reduce((a, s) => a + s.listeners.length, 0), plan.listeners.length);
        assert.ok(plan.proxy.globalMaxConnections >= Math.max(...plan.listeners.map((l) => l.limits.listenerConnections)));
      }),
      { numRuns: 60 },
    );
  });

  it('property: appending a tenant never moves an existing listener to another NLB or port', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 150 }), (n) => {
        const mk = (k: number) =>
          buildPlan(spec({ domains: Array.from({ length: k }, (_, i) => ({ name: `t${i}.example`, listeners: 'dedicated' as const })) }));
        const before = mk(n);
        const after = mk(n + 1);
        for (const l of before.listeners) {
          const same = after.listeners.find((x) => x.name === l.name)!;
          assert.equal(same.nlbShard, l.nlbShard);
          assert.equal(same.publicPort, l.publicPort);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('200 dedicated tenants shard into NLBs of at most 50 listeners', () => {
    const plan = buildPlan(spec({ domains: Array.from({ length: 200 }, (_, i) => ({ name: `t${i}.example`, listeners: 'dedicated' as const })) }));
    assert.equal(plan.listeners.length, 7 + 200 * 6);
    assert.equal(plan.nlbShards.length, Math.ceil(1 + 200 / 8)); // 7 shared, then 8 tenants × 6 = 48 per NLB
    assert.ok(plan.nlbShards.every((s) => s.listeners.length <= 50));
  });

  it('sizes the mail tier by connections, within min and max', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example' }], limits: { imap: { listenerConnections: 90000 } }, tiers: { maxConnectionsPerMailNode: 10000 } }));
    assert.equal(plan.sizing.mailNodes.desired, 10); // clamped at maxNodes
  });

  it('daemon config: direct mode binds each listener; proxied mode maps PROXY destination ports to listeners', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated' }] }));
    const direct = daemonConfig(plan, { mode: 'local-direct' });
    assert.equal(direct.sockets.length, plan.listeners.length);
    assert.ok(direct.sockets.every((s) => !s.proxyProtocol && s.listener));
    const proxied = daemonConfig(plan, { mode: 'local-behind-proxy' });
    assert.equal(proxied.sockets.length, 7);
    const imap = proxied.sockets.find((s) => s.protocol === 'imap')!;
    assert.equal(imap.port, 12143);
    assert.equal(imap.listenerByDestinationPort![2143], 'default-imap');
    assert.equal(imap.listenerByDestinationPort![30003], 'b-example-imap');
    const cloud = daemonConfig(plan, { mode: 'cloud' });
    assert.equal(cloud.sockets.find((s) => s.protocol === 'imaps')!.listenerByDestinationPort![20004], 'b-example-imaps');
  });

  it('formats a readable table', () => {
    const text = formatPlan(buildPlan(parseSpec('version: 1\nplatform: { name: demo }\ndomains: [{ name: a.example }]\n')));
    assert.match(text, /default-imaps\s+default\s+imaps\s+implicit\s+993\s+2993/);
    assert.match(text, /HAProxy global maxconn/);
  });
});

describe('inherited limits', () => {
  it('a domain lowering its listener cap below the inherited per-source cap renders a valid proxy cap', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example', listeners: 'dedicated', limits: { imap: { listenerConnections: 10 } } }] }));
    const l = plan.listeners.find((x) => x.name === 'a-example-imap')!;
    assert.equal(l.limits.listenerConnections, 10);
    assert.equal(l.limits.sourceConnections, 10);
  });

  it('keeps a domain perDomain cap from rewriting perUser, so refusals name the limit that was set', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example', limits: { imap: { perDomain: 3 } } }] }));
    assert.equal(plan.limits.domains['a.example']!.imap.perDomain, 3);
    assert.equal(plan.limits.domains['a.example']!.imap.perUser, 20);
  });
});
