/**
 * `mailfleet limit set listener:<name> N` and `mailfleet top` on the local tier as `mailfleet up` runs it:
 * a real HAProxy in front of a real mailfleetd, everything found from the spec (admin URL, token, data dir).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startProxiedDaemon } from '../haproxy/proxied-daemon.js';
import { runCli } from './fixture.js';

test('GIVEN the local tier WHEN limit set listener:default-smtp THEN the daemon and HAProxy both take the cap, and top shows both', async () => {
  requireHaproxy();
  const p = await startProxiedDaemon({ limits: { smtp: { listenerConnections: 50 } } });
  after(() => p.stop());
  const set = await runCli(['limit', 'set', 'listener:default-smtp', '7', '--config', p.spec.file]);
  assert.equal(set.status, 0, set.stdout + set.stderr);
  assert.match(set.stdout, /http:\/\/127\.0\.0\.1:\d+\s+listener:default-smtp\s+2000\s+7\s+override set/);
  assert.match(
    set.stdout,
    /haproxy \(local\)\s+listener:default-smtp\s+50\s+7\s+set live \(process variable\)/,
  );
  const view = await p.admin<LimitsView>('/v1/limits');
  assert.equal(view.overrides['listener:default-smtp'], 7);

  const top = await runCli(['top', '--config', p.spec.file, '--by', 'listener']);
  assert.equal(top.status, 0, top.stdout + top.stderr);
  assert.match(top.stdout, /HAProxy frontends \(local tier, HAProxy runtime API /);
  assert.match(top.stdout, /default-smtp\s+\d+\s+7\s/);
});
