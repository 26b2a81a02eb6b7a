/**
 * The operator view (issue 15): refusals with their reason on every row they touched, per-row connection
 * rates, overrides with who set them and when, `limit reset`, `limit set` refusing what does not exist,
 * and on the local tier the HAProxy rows of `limit list` and a DOWN backend in `top`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import { RateTracker, sessionsWithoutClient, formatSessionsWithoutClient } from '../../lib/ops/haproxy-view.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { collectTop } from '../../lib/ops/top.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startProxiedDaemon } from '../haproxy/proxied-daemon.js';
import { adminGet, adminPut, configFor, RawClient, runCli, startInProcess, tempDir, TOKEN } from './fixture.js';

async function imapLogin(port: number, user: string): Promise<{ c: RawClient; reply: string }> {
  const c = await RawClient.open(port);
  const first = await c.waitFor(/^\* /);
  if (!first.startsWith('* OK')) return { c, reply: first };
  return { c, reply: await c.send(`a1 LOGIN ${user} password`, /^a1 /) };
}

test('GIVEN refusals at connect and at login THEN every row they touched counts them with the reason, and listener rows get a rate', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(tmp.dir, configFor({ limits: { imap: { perUserIp: 1, perIp: 3 } } }));
  const clients: RawClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await d.stop();
    await tmp.cleanup();
  });
  const fleet = resolveFleet({ admin: [d.adminUrl], token: TOKEN });
  const rates = new RateTracker();
  await collectTop(fleet, { rates }); // the first sample: rates start from here

  const imap = d.port('imap');
  const first = await imapLogin(imap, 'alice@example.com');
  clients.push(first.c);
  assert.match(first.reply, /^a1 OK/);
  // A second session of alice from the same IP: refused by perUserIp at LOGIN.
  const second = await imapLogin(imap, 'alice@example.com');
  clients.push(second.c);
  assert.match(second.reply, /^a1 NO \[UNAVAILABLE\] imap perUserIp limit of 1/);
  // A fourth connection from the IP: refused by perIp at connect, on the listener.
  const third = await RawClient.open(imap);
  clients.push(third);
  await third.waitFor(/^\* OK/);
  const fourth = await RawClient.open(imap);
  clients.push(fourth);
  assert.match(await fourth.waitFor(/^\* /), /^\* BYE \[UNAVAILABLE\] imap perIp limit of 3/);

  const report = await collectTop(fleet, { rates });
  const row = (section: 'listener' | 'user' | 'ip' | 'domain', id: string) => {
    const r = report.sections[section].find((x) => x.id === id && x.service === 'imap');
    assert.ok(r, `${section} ${id}: ${JSON.stringify(report.sections[section])}`);
    return r;
  };
  // The user+IP refusal touched the user, its domain and the IP; the IP refusal touched the IP and the listener.
  assert.deepEqual(row('user', 'alice@example.com').refusals, { perUserIp: 1 });
  assert.deepEqual(row('domain', 'example.com').refusals, { perUserIp: 1 });
  assert.deepEqual(row('ip', '127.0.0.1').refusals, { perIp: 1, perUserIp: 1 });
  assert.equal(row('ip', '127.0.0.1').refused, 2);
  assert.deepEqual(row('listener', 'default-imap').refusals, { 'limit-ip': 1 });
  // Three sessions accepted since the first sample: a positive rate.
  const rate = row('listener', 'default-imap').rate;
  assert.ok(rate !== undefined && rate > 0, `rate ${String(rate)}`);

  const cli = await runCli(['top', '--admin', d.adminUrl, '--token', TOKEN, '--by', 'ip']);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /127\.0\.0\.1\s+imap\s+.*2 \(perIp 1, perUserIp 1\)/);
});

test('GIVEN limit set for a user or listener that does not exist THEN it is refused with a clear message and exit 2', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(tmp.dir, configFor());
  after(async () => {
    await d.stop();
    await tmp.cleanup();
  });
  const user = await runCli(['limit', 'set', 'user:nobody@example.com:imap', '3', '--admin', d.adminUrl, '--token', TOKEN]);
  assert.equal(user.status, 2, user.stdout + user.stderr);
  assert.match(user.stderr, /unknown user nobody@example\.com/);
  const listener = await runCli(['limit', 'set', 'listener:nope', '5', '--admin', d.adminUrl, '--token', TOKEN]);
  assert.equal(listener.status, 2, listener.stdout + listener.stderr);
  assert.match(listener.stderr, /unknown listener nope \(known: default-smtp, /);
  assert.doesNotMatch(listener.stdout + listener.stderr, /did not answer/);
  const view = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  assert.deepEqual(view.overrides, {});
  // A real user is accepted; removing an override is allowed even for a user gone since.
  assert.equal((await adminPut(d.adminUrl, { scope: 'user:alice@example.com:imap', value: 4 })).status, 200);
  assert.equal((await adminPut(d.adminUrl, { scope: 'user:gone@example.com:imap', value: null })).status, 200);
});

test('GIVEN overrides set with --by THEN limit list shows who and when, and limit reset drops them all', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(tmp.dir, configFor());
  after(async () => {
    await d.stop();
    await tmp.cleanup();
  });
  const args = ['--admin', d.adminUrl, '--token', TOKEN];
  const set = await runCli(['limit', 'set', 'imap.perUser', '7', 'smtp.perIp', '9', '--by', 'carol', ...args]);
  assert.equal(set.status, 0, set.stdout + set.stderr);
  const view = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  const detail = view.overrideDetails.find((o) => o.scope === 'imap.perUser');
  assert.equal(detail?.by, 'carol');
  assert.match(detail?.at ?? '', /^\d{4}-\d\d-\d\dT/);
  const list = await runCli(['limit', 'list', '--overrides', ...args]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /imap\.perUser\s+20\s+7\s+7\s+carol\s+\d{4}-\d\d-\d\dT\S+\s+1\/1/);

  const reset = await runCli(['limit', 'reset', ...args]);
  assert.equal(reset.status, 0, reset.stdout + reset.stderr);
  assert.match(reset.stdout, /imap\.perUser\s+7\s+20\s+override removed/);
  assert.deepEqual((await adminGet<LimitsView>(d.adminUrl, '/v1/limits')).overrides, {});
  const again = await runCli(['limit', 'reset', ...args]);
  assert.match(again.stdout, /no live overrides/);
});

test('GIVEN the local tier THEN limit list shows the HAProxy frontends with their source, and top shows a stopped daemon as backend DOWN', async () => {
  requireHaproxy();
  const p = await startProxiedDaemon({ limits: { smtp: { listenerConnections: 50 } } });
  after(() => p.stop());
  const list = await runCli(['limit', 'list', '--config', p.spec.file]);
  assert.equal(list.status, 0, list.stdout + list.stderr);
  assert.match(list.stdout, /HAProxy frontends \(local tier; source: HAProxy runtime API \S+admin\.sock, plan of \S+\)/);
  assert.match(list.stdout, /listener:default-smtp\s+50\s+50\s+100\s+0\s+mail-smtp\s+UP/);

  const up = await runCli(['top', '--config', p.spec.file, '--by', 'listener']);
  assert.equal(up.status, 0, up.stdout + up.stderr);
  assert.match(up.stdout, /HAProxy: every backend UP/);

  await p.daemon.stop(0);
  // fall 3 × inter 2s: HAProxy marks the servers DOWN within about 6 s, each backend on its own check
  // schedule, so wait for the SMTP one (the clean-clone CI once read top when 2 of 7 were DOWN, SMTP not yet).
  const smtpDown = /default-smtp\s+0\s+50\s+100\s+\d+\s+\d+\s+\S+\s+\d+\s+OPEN\s+mail-smtp\s+DOWN/;
  let top = await runCli(['top', '--config', p.spec.file, '--by', 'listener']);
  for (let i = 0; i < 30 && !smtpDown.test(top.stdout); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    top = await runCli(['top', '--config', p.spec.file, '--by', 'listener']);
  }
  assert.match(top.stdout, /HAProxy: \d+ backend\(s\) DOWN — backend mail-\S+ DOWN: mailfleetd DOWN/);
  assert.match(top.stdout, smtpDown);
  assert.equal(top.status, 1);
});

test('GIVEN the daemons count more sessions on a listener than HAProxy holds connections to it THEN top names the surplus as sessions without a client', () => {
  const ghosts = sessionsWithoutClient(
    [
      { id: 'default-submission', current: 20 },
      { id: 'default-imap', current: 3 },
    ],
    { frontends: [{ name: 'default-submission', scur: 0 }, { name: 'default-imap', scur: 3 }] },
  );
  assert.deepEqual(ghosts, [{ listener: 'default-submission', daemon: 20, haproxy: 0 }]);
  assert.match(formatSessionsWithoutClient(ghosts)[0]!, /listener default-submission: the daemons count 20 session\(s\), HAProxy holds 0 connection\(s\): 20 without a client/);
});
