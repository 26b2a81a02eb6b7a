/**
 * A real HAProxy rendered from a spec with tiny caps, in front of a PROXY v2 backend: the listener cap
 * holds under a 10x flood (with busy replies), the per-source cap holds (exactly N, the off-by-one), and
 * `limit set listener:` changes a cap live — by variable within the headroom, by reload above it, on a
 * full frontend — while HAProxy stays up.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { startLocalHaproxy, type LocalHaproxy } from '../../lib/platform/haproxy.js';
import { applyListenerLimitToLocalHaproxy, formatHaproxyTop, haproxyTopRows, setHaproxyListenerLimit } from '../../lib/ops/haproxy-applier.js';
import { pidAlive } from '../../lib/haproxy/process.js';
import { readListenerLimits } from '../../lib/haproxy/state.js';
import { greet, startGreeter, type Greeter } from './greeter.js';
import { INTERNAL_OFFSET, requireHaproxy, writeTempSpec, type TempSpec } from './harness.js';

const BUSY_SERVICE = '* BYE [UNAVAILABLE] Too many connections to this service, try again later';
const BUSY_SOURCE = '* BYE [UNAVAILABLE] Too many connections from your address, try again later';

describe('HAProxy caps, live', () => {
  let spec: TempSpec;
  let greeter: Greeter;
  let hx: LocalHaproxy;
  const open: Socket[] = [];
  const closeAll = async () => {
    for (const s of open.splice(0)) s.destroy();
    await new Promise((r) => setTimeout(r, 150)); // let HAProxy see the closes
  };

  before(async () => {
    requireHaproxy();
    spec = await writeTempSpec({
      limits: { imap: { listenerConnections: 5, sourceConnections: 5 } },
      domains: [
        { name: 'example.com' },
        { name: 'b.example', listeners: 'dedicated', protocols: ['imap'], limits: { imap: { listenerConnections: 20, sourceConnections: 3 } } },
      ],
    });
    greeter = await startGreeter(spec.port('imap') + INTERNAL_OFFSET, 'imap');
    const loaded = loadSpec(spec.file);
    hx = await startLocalHaproxy({ plan: buildPlan(loaded.spec), dataDir: loaded.spec.local.dataDir, specFile: spec.file });
  });

  afterEach(closeAll);
  after(async () => {
    await hx?.stop();
    await greeter?.close();
    spec?.cleanup();
  });

  it('GIVEN a cap of 5 WHEN 50 clients from 10 addresses connect at once THEN 5 are served and 45 get the IMAP busy reply', async () => {
    const all = await Promise.all(
      Array.from({ length: 50 }, (_, i) => greet(spec.port('imap'), { localAddress: `127.0.1.${(i % 10) + 1}` })),
    );
    open.push(...all.map((g) => g.socket));
    const served = all.filter((g) => g.line === '* OK greeter ready').length;
    const busy = all.filter((g) => g.line === BUSY_SERVICE).length;
    assert.equal(served, 5, JSON.stringify(all.map((g) => g.line)));
    assert.equal(busy, 45);
    assert.equal(greeter.max(), 5, 'the backend never saw more than the cap');
    const fe = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-imap')!;
    assert.equal(fe.cap, 5);
    assert.ok(fe.smax <= fe.slim, `smax ${fe.smax} within maxconn ${fe.slim}`);
  });

  it('GIVEN a per-source cap of 3 WHEN one address opens 5 THEN exactly 3 are served, and another address still gets its 3', async () => {
    const port = spec.base + 10 + 3; // b.example's dedicated IMAP listener
    const a: string[] = [];
    for (let i = 0; i < 5; i++) {
      const g = await greet(port, { localAddress: '127.0.2.1' });
      open.push(g.socket);
      a.push(g.line);
    }
    assert.deepEqual(a, ['* OK greeter ready', '* OK greeter ready', '* OK greeter ready', BUSY_SOURCE, BUSY_SOURCE]);
    for (let i = 0; i < 3; i++) {
      const g = await greet(port, { localAddress: '127.0.2.2' });
      open.push(g.socket);
      assert.equal(g.line, '* OK greeter ready');
    }
    const table = await hx.process.runtime.tableConnCur('st-b-example-imap');
    assert.equal(table.get('::ffff:127.0.2.2'), 3);
  });

  it('GIVEN a listener at its cap WHEN limit set raises it within the headroom THEN a variable changes and the next clients are served', async () => {
    // Distinct sources, so the per-source cap (5) stays out of the way.
    let n = 0;
    const from = () => ({ localAddress: `127.0.5.${++n}` });
    for (let i = 0; i < 5; i++) open.push((await greet(spec.port('imap'), from())).socket);
    assert.equal((await greet(spec.port('imap'), from())).line, BUSY_SERVICE);
    const change = await setHaproxyListenerLimit({ info: hx.info }, 'default-imap', 5 + 3);
    assert.equal(change.method, 'variable');
    assert.equal(change.previous, 5);
    const next: string[] = [];
    for (let i = 0; i < 4; i++) {
      const g = await greet(spec.port('imap'), from());
      open.push(g.socket);
      next.push(g.line);
    }
    assert.deepEqual(next, ['* OK greeter ready', '* OK greeter ready', '* OK greeter ready', BUSY_SERVICE]);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-imap'], 8);
  });

  it('GIVEN a full frontend (clients queued past maxconn) WHEN limit set raises the cap above it THEN HAProxy reloads, stays up, and serves the queued clients', async () => {
    const fe = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-imap')!;
    // Fill the frontend to its real maxconn: let everyone in for a moment.
    await hx.process.runtime.setListenerCap('default-imap', fe.slim);
    for (let i = 0; i < fe.slim; i++) open.push((await greet(spec.port('imap'), { localAddress: `127.0.3.${i + 1}` })).socket);
    const full = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-imap')!;
    assert.equal(full.scur, full.slim, 'frontend is full');
    const queued = Array.from({ length: 3 }, (_, i) => greet(spec.port('imap'), { localAddress: `127.0.4.${i + 1}`, timeoutMs: 15000 }));
    const early = await Promise.race([Promise.all(queued).then(() => 'greeted'), new Promise((r) => setTimeout(() => r('waiting'), 400))]);
    assert.equal(early, 'waiting', 'past maxconn clients wait silently in the accept queue');

    const change = await setHaproxyListenerLimit({ info: hx.info }, 'default-imap', 40);
    assert.equal(change.method, 'reload');
    assert.equal(change.frontendMaxconn, 80);
    const lines = (await Promise.all(queued)).map((g) => (open.push(g.socket), g.line));
    assert.deepEqual(lines, ['* OK greeter ready', '* OK greeter ready', '* OK greeter ready']);
    assert.ok(pidAlive(hx.process.pid!), 'the master is still up');
    const after = (await haproxyTopRows(hx.info)).find((r) => r.name === 'default-imap')!;
    assert.equal(after.cap, 40);
    assert.equal(after.slim, 80);
    // The next render keeps the value.
    assert.match(readFileSync(hx.info.configFile, 'utf8'), /set-var proc\.cap_default_imap int\(40\)/);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-imap'], 40);
  });

  it('fails when the new cap is not a positive integer or the listener is unknown', async () => {
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'default-imap', 0), /positive integer/);
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'nope-imap', 5), /no frontend "nope-imap"/);
    await assert.rejects(setHaproxyListenerLimit({ info: hx.info }, 'default-imap', 10_000_000), /exceeds/);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-imap'], 40, 'nothing recorded for refused changes');
  });

  it("GIVEN a recorded cap WHEN limit set listener:<name> default THEN the spec's cap is live again and the record is gone", async () => {
    const change = await applyListenerLimitToLocalHaproxy(hx.info.dataDir, 'default-imap', 'default');
    assert.equal(change?.method, 'variable');
    assert.equal(change?.cap, 5);
    assert.equal(readListenerLimits(hx.info.limitsFile)['default-imap'], undefined);
    const top = formatHaproxyTop(await haproxyTopRows(hx.info));
    assert.match(top, /^default-imap\s+\d+\s+5\s+80\s/m);
    assert.equal(await applyListenerLimitToLocalHaproxy(spec.dir, 'default-imap', 9), undefined, 'no HAProxy runs from another data dir');
  });
});
