/**
 * Real HAProxy in front of a real mailfleetd: the daemon sees the client's address through PROXY v2 (its
 * per-IP cap and /v1/connections use it), and the frontend port as destination (so it knows the listener).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { greet } from './greeter.js';
import { requireHaproxy } from './harness.js';
import { startProxiedDaemon, type ProxiedDaemon } from './proxied-daemon.js';

interface Connections {
  total: number;
  connections: Array<{ listener: string; remoteAddress: string; localPort: number }>;
}

const HAPROXY_BUSY = /Too many connections (to this service|from your address)/;

describe('PROXY v2 from HAProxy to mailfleetd', () => {
  let p: ProxiedDaemon;
  const open: Socket[] = [];
  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon({
      // HAProxy lets 10 per source through; the daemon's own per-IP cap (2) must bite on the real address.
      limits: { smtp: { sourceConnections: 10, perIp: 2 }, submission: { sourceConnections: 10 } },
      domains: [{ name: 'example.com' }, { name: 'b.example', listeners: 'dedicated', protocols: ['submission'] }],
    });
  });
  after(async () => {
    for (const s of open) s.destroy();
    await p?.stop();
  });

  it('GIVEN clients on two loopback addresses WHEN they connect through HAProxy THEN /v1/connections lists their own addresses and listeners', async () => {
    const a = await greet(p.spec.port('smtp'), { localAddress: '127.0.0.7' });
    const b = await greet(p.spec.base + 10 + 1, { localAddress: '127.0.0.9' }); // b.example's submission listener
    open.push(a.socket, b.socket);
    assert.match(a.line, /^220 /);
    assert.match(b.line, /^220 /);
    const c = await p.admin<Connections>('/v1/connections');
    const mine = c.connections.filter((x) => x.remoteAddress.endsWith('127.0.0.7') || x.remoteAddress.endsWith('127.0.0.9'));
    assert.deepEqual(
      mine.map((x) => [x.remoteAddress.replace(/^::ffff:/, ''), x.listener, x.localPort]).sort(),
      [
        ['127.0.0.7', 'default-smtp', p.spec.port('smtp')],
        ['127.0.0.9', 'b-example-submission', p.spec.base + 11],
      ],
    );
    for (const s of open.splice(0)) s.destroy();
  });

  it("GIVEN the daemon's per-IP cap of 2 WHEN one address opens 3 through HAProxy THEN the daemon refuses the third, and another address still gets 2", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await greet(p.spec.port('smtp'), { localAddress: '127.0.0.20' });
      open.push(g.socket);
      lines.push(g.line);
    }
    assert.match(lines[0]!, /^220 /);
    assert.match(lines[1]!, /^220 /);
    assert.match(lines[2]!, /^421 4\.7\.0 /, 'the third is refused by the daemon');
    assert.doesNotMatch(lines[2]!, HAPROXY_BUSY, 'not by HAProxy');
    for (let i = 0; i < 2; i++) {
      const g = await greet(p.spec.port('smtp'), { localAddress: '127.0.0.21' });
      open.push(g.socket);
      assert.match(g.line, /^220 /, 'a different client address has its own count');
    }
  });
});
