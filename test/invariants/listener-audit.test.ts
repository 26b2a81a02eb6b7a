/**
 * The listener's self-audit (issue 15): a session whose close the listener never hears of (a library that
 * removes every listener of the socket, as smtp-server's STARTTLS does) is found closed and released at
 * the next audit, counted in mailfleetd_connection_drift_repaired_total.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { connect } from 'node:net';
import { createDaemonMetrics } from '../../lib/daemon/metrics.js';
import { DaemonListener, type AcceptedConnection } from '../../lib/daemon/net/listener.js';
import { ConnectionRegistry } from '../../lib/daemon/net/registry.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';

describe('listener self-audit', () => {
  it('GIVEN a session that drops the socket close listeners WHEN the client leaves THEN the audit releases its lease and registry entry and counts the repair', async () => {
    const admission = new LocalAdmission(() => 10);
    const registry = new ConnectionRegistry();
    const metrics = createDaemonMetrics();
    let accepted: AcceptedConnection | undefined;
    const l = new DaemonListener({
      socket: { protocol: 'smtp', service: 'smtp', host: '127.0.0.1', port: 0, tls: 'none', proxyProtocol: false, maxConnections: 10, listener: 'default-smtp' },
      busy: () => undefined,
      handle: (conn) => {
        accepted = conn;
        // What a library does when it takes the socket over: every listener, ours included, is gone.
        conn.socket.removeAllListeners();
        conn.socket.on('error', () => undefined);
      },
      admission,
      registry,
      logger: silentLogger,
      metrics,
      auditIntervalMs: 0,
    });
    const port = await l.listen();
    const c = connect(port, '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    while (!accepted) await new Promise((r) => setTimeout(r, 5));
    assert.equal(registry.size, 1);
    c.destroy();
    accepted.socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    // The close went unheard: still counted.
    assert.equal(registry.size, 1);
    assert.equal(l.connectionCount, 1);
    assert.equal(l.audit(), 1);
    assert.equal(registry.size, 0);
    assert.equal(l.connectionCount, 0);
    assert.deepEqual((await admission.snapshot()).filter((u) => u.current > 0), []);
    assert.match(await metrics.registry.metrics(), /mailfleetd_connection_drift_repaired_total\{listener="default-smtp",protocol="smtp"\} 1/);
    assert.equal(l.audit(), 0, 'a second audit finds nothing');
    await l.close(100);
  });
});
