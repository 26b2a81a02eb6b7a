/**
 * The console on the local tier as `mailfleet up` runs it: a real HAProxy in front of a real mailfleetd.
 * The snapshot lists the HAProxy frontends among the listeners and the limit form reaches HAProxy too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsoleSnapshot } from '../../lib/console/snapshot.js';
import type { LimitReport } from '../../lib/ops/limit.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startProxiedDaemon } from '../haproxy/proxied-daemon.js';

test('GIVEN the local tier THEN the console lists the HAProxy frontends, and a listener limit from the form goes to the daemon and to HAProxy', async () => {
  requireHaproxy();
  const p = await startProxiedDaemon({ limits: { smtp: { listenerConnections: 50 } } });
  after(() => p.stop());
  const url = `http://127.0.0.1:${p.daemon.adminPort}`;
  const auth = { authorization: `Bearer ${p.daemon.adminToken}`, 'content-type': 'application/json' };
  const snapshot = async (): Promise<ConsoleSnapshot> => {
    const r = await fetch(`${url}/v1/console/snapshot`, { headers: auth });
    assert.equal(r.status, 200);
    return (await r.json()) as ConsoleSnapshot;
  };

  const before = await snapshot();
  const haproxyNode = before.nodes.find((n) => n.kind === 'haproxy');
  assert.ok(haproxyNode, JSON.stringify(before.nodes));
  assert.equal(haproxyNode.ok, true);
  assert.match(haproxyNode.detail, /^answered: \d+ frontend\(s\)/);
  const fe = before.sections.listener.find((r) => r.source === 'haproxy' && r.id === 'default-smtp');
  assert.ok(fe, JSON.stringify(before.sections.listener));
  assert.equal(fe.limit, 50);

  const r = await fetch(`${url}/v1/console/limit`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ scope: 'listener:default-smtp', value: 7 }),
  });
  assert.equal(r.status, 200);
  const { reports } = (await r.json()) as { reports: LimitReport[] };
  assert.deepEqual(
    reports.map((x) => [x.applier, x.ok, x.after]),
    [
      ['daemon', true, 7],
      ['haproxy', true, 7],
    ],
  );
  assert.equal(reports[1]!.note, 'set live (process variable)');

  const after7 = await snapshot();
  assert.equal(after7.sections.listener.find((x) => x.source === 'haproxy' && x.id === 'default-smtp')?.limit, 7);
});
