/**
 * A real HAProxy rendered from a spec with tiny caps, in front of a real mailfleetd: the listener cap
 * holds under a 10x flood (with busy replies), the per-source cap holds (exactly N, the off-by-one), and
 * `limit set listener:` changes a cap live — by variable within the headroom, by reload above it, on a
 * full frontend — while HAProxy stays up.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { LocalHaproxy } from '../../lib/platform/haproxy.js';
import { applyListenerLimitToLocalHaproxy, formatHaproxyTop, haproxyTopRows, setHaproxyListenerLimit } from '../../lib/ops/haproxy-applier.js';
import { pidAlive } from '../../lib/haproxy/process.js';
import { readListenerLimits } from '../../lib/haproxy/state.js';
import { greet } from './greeter.js';
import { requireHaproxy, type TempSpec } from './harness.js';
import { startProxiedDaemon, type ProxiedDaemon } from './proxied-daemon.js';

const SERVED = '220 mail.test ESMTP mailfleetd ready';
const BUSY_SERVICE = '421 4.7.0 mail.test Too many connections to this service, try again later';
const BUSY_SOURCE = '421 4.7.0 mail.test Too many connections from your address, try again later';

interface Connections {
  connections: Array<{ listener: string; remoteAddress: string }>;
}

describe('HAProxy caps, live', () => {
  let p: ProxiedDaemon;
  let spec: TempSpec;
  let hx: LocalHaproxy;
  const open: Socket[] = [];
  const closeAll = async () => {
    for (const s of open.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 150)); // let HAProxy see the closes
  };

  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon({
      limits: { smtp: { listenerConnections: 5, sourceConnections: 5 } },
      domains: [
        { name: 'example.com' },
        { name: 'b.example', listeners: 'dedicated', protocols: ['submission'], limits: { submission: { listenerConnections: 20, sourceConnections: 3 } } },
      ],
    });
    spec = p.spec;
    hx = p.haproxy;
  });

  afterEach(closeAll);
  after(async () => {
    await p?.stop();
  });

  it('GIVEN an SMTP cap of 5 WHEN 50 clients from 10 addresses connect at once THEN mailfleetd serves 5 and 45 get the SMTP busy reply', async () => {
    const all = await Promise.all(
      Array.from({ length: 50 }, (_, i) => greet(spec.port('smtp'), { localAddress: `127.0.1.${(i % 10) + 1}` })),
    );
    open.push(...all.map((g) => g.socket));
    const served = all.filter((g) => g.line === SERVED).length;
    const busy = all.filter((g) => g.line === BUSY_SERVICE).length;
    assert.equal(served, 5, JSON.stringify(all.map((g) => g.line)));
    assert.equal(busy, 45);
    const c = await p.admin<Connections>('/v1/connections?listener=default-smtp');
    assert.equal(c.connections.filter((x) => x.remoteAddress.includes('127.0.1.')).length, 5, 'the daemon holds exactly the cap');
    const fe = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-smtp')!;
    assert.equal(fe.cap, 5);
    assert.ok(fe.smax <= fe.slim, `smax ${fe.smax} within maxconn ${fe.slim}`);
  });

  it('GIVEN a per-source cap of 3 WHEN one address opens 5 THEN exactly 3 are served, and another address still gets its 3', async () => {
    const port = spec.base + 10 + 1; // b.example's dedicated submission listener
    const a: string[] = [];
    for (let i = 0; i < 5; i++) {
      const g = await greet(port, { localAddress: '127.0.2.1' });
      open.push(g.socket);
      a.push(g.line);
    }
    assert.deepEqual(a, [SERVED, SERVED, SERVED, BUSY_SOURCE, BUSY_SOURCE]);
    for (let i = 0; i < 3; i++) {
      const g = await greet(port, { localAddress: '127.0.2.2' });
      open.push(g.socket);
      assert.equal(g.line, SERVED);
    }
    const table = await hx.process.runtime.tableConnCur('st-b-example-submission');
    assert.equal(table.get('::ffff:127.0.2.2'), 3);
  });

  it('GIVEN a listener at its cap WHEN limit set raises it within the headroom THEN a variable changes and the next clients are served', async () => {
    // Distinct sources, so the per-source cap (5) stays out of the way.
    let n = 0;
    const from = () => ({ localAddress: `127.0.5.${++n}` });
    for (let i = 0; i < 5; i++) open.push((await greet(spec.port('smtp'), from())).socket);
    assert.equal((await greet(spec.port('smtp'), from())).line, BUSY_SERVICE);
    const change = await setHaproxyListenerLimit({ info: hx.info }, 'default-smtp', 5 + 3);
    assert.equal(change.method, 'variable');
    assert.equal(change.previous, 5);
    const next: string[] = [];
    for (let i = 0; i < 4; i++) {
      const g = await greet(spec.port('smtp'), from());
      open.push(g.socket);
      next.push(g.line);
    }
    assert.deepEqual(next, [SERVED, SERVED, SERVED, BUSY_SERVICE]);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-smtp'], 8);
  });

  it('GIVEN a full frontend (clients queued past maxconn) WHEN limit set raises the cap above it THEN HAProxy reloads, stays up, and serves the queued clients', async () => {
    const fe = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-smtp')!;
    // Fill the frontend to its real maxconn: let everyone in for a moment.
    await hx.process.runtime.setListenerCap('default-smtp', fe.slim);
    for (let i = 0; i < fe.slim; i++) open.push((await greet(spec.port('smtp'), { localAddress: `127.0.3.${i + 1}` })).socket);
    const full = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-smtp')!;
    assert.equal(full.scur, full.slim, 'frontend is full');
    const queued = Array.from({ length: 3 }, (_, i) => greet(spec.port('smtp'), { localAddress: `127.0.4.${i + 1}`, timeoutMs: 15000 }));
    const early = await Promise.race([Promise.all(queued).then(() => 'greeted'), new Promise((r) => setTimeout(() => r('waiting'), 400))]);
    assert.equal(early, 'waiting', 'past maxconn clients wait silently in the accept queue');

    const change = await setHaproxyListenerLimit({ info: hx.info }, 'default-smtp', 40);
    assert.equal(change.method, 'reload');
    assert.equal(change.frontendMaxconn, 80);
    const lines = (await Promise.all(queued)).map((g) => (open.push(g.socket), g.line));
    assert.deepEqual(lines, [SERVED, SERVED, SERVED]);
    assert.ok(pidAlive(hx.process.pid!), 'the master is still up');
    const after = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-smtp')!;
    assert.equal(after.cap, 40);
    assert.equal(after.slim, 80);
    // The next render keeps the value.
    assert.match(readFileSync(hx.info.configFile, 'utf8'), /set-var proc\.cap_default_smtp int\(40\)/);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-smtp'], 40);
  });

  it('fails when the new cap is not a positive integer or the listener is unknown', async () => {
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'default-smtp', 0), /positive integer/);
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'nope-imap', 5), /no frontend "nope-imap"/);
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'default-smtp', 10_000_000), /exceeds/);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-smtp'], 40, 'nothing recorded for refused changes');
  });

  it("GIVEN a recorded cap WHEN limit set listener:<name> default THEN the spec's cap is live again and the record is gone", async () => {
    const change = await applyListenerLimitToLocalHaproxy(hx.info.dataDir, 'default-smtp', 'default');
    assert.equal(change?.method, 'variable');
    assert.equal(change?.cap, 5);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-smtp'], undefined);
    const top = formatHaproxyTop(await haproxyTopRows(hx.info));
    assert.match(top, /^default-smtp\s+\d+\s+5\s+80\s/m);
    assert.equal(await applyListenerLimitToLocalHaproxy(spec.dir, 'default-smtp', 9), undefined, 'no HAProxy runs from another data dir');
  });
});
