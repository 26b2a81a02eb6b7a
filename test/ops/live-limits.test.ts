import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import { collectTop, formatTop } from '../../lib/ops/top.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import {
  adminGet,
  adminPut,
  configFor,
  RawClient,
  runCli,
  startInProcess,
  tempDir,
  TOKEN,
  type TestDaemon,
} from './fixture.js';

const BANNER = /^220 /;
const REFUSED = /^421 4\.7\.0 smtp perIp limit of (\d+) reached for ip 127\.0\.0\.1$/;

async function openSmtp(d: TestDaemon): Promise<{ c: RawClient; first: string }> {
  const c = await RawClient.open(d.port('smtp'));
  const first = await c.waitFor(/^\d{3} /);
  return { c, first };
}

async function waitConnections(url: string, n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await adminGet<{ total: number }>(url, '/v1/connections');
    if (r.total === n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`connections never reached ${n}`);
}

test('GIVEN a daemon over a lowered cap THEN existing sessions stay, new ones are refused until under it; a raise admits; a restart keeps the change', async () => {
  const tmp = await tempDir();
  const config = configFor({ limits: { smtp: { perIp: 3 } } });
  let d = await startInProcess(tmp.dir, config);
  const clients: RawClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await d.stop();
    await tmp.cleanup();
  });

  for (let i = 0; i < 3; i++) {
    const { c, first } = await openSmtp(d);
    assert.match(first, BANNER);
    clients.push(c);
  }
  const over = await openSmtp(d);
  assert.match(over.first, REFUSED);
  assert.equal(REFUSED.exec(over.first)![1], '3');

  // Lower to 2 while 3 are open.
  const put = await adminPut(d.adminUrl, { scope: 'smtp.perIp', value: 2 });
  assert.equal(put.status, 200);
  assert.deepEqual((put.json as { changes: unknown[] }).changes, [
    { scope: 'smtp.perIp', previousOverride: null, override: 2, before: 3, after: 2, changed: true },
  ]);
  for (const c of clients) assert.match(await c.send('NOOP', /^250 /), /^250 /, 'existing sessions are kept');
  const refused = await openSmtp(d);
  assert.match(refused.first, REFUSED);
  assert.equal(REFUSED.exec(refused.first)![1], '2', 'the reply names the new value');

  // Two leave: 1 open, under the cap of 2 again.
  clients.shift()!.close();
  clients.shift()!.close();
  await waitConnections(d.adminUrl, 1);
  const back = await openSmtp(d);
  assert.match(back.first, BANNER);
  clients.push(back.c);
  assert.match((await openSmtp(d)).first, REFUSED, '2 open, cap 2');

  // Raise through the CLI, as an operator would.
  const cli = await runCli(['limit', 'set', 'smtp.perIp', '4', '--admin', d.adminUrl, '--token', TOKEN]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(
    cli.stdout,
    new RegExp(`${d.adminUrl.replace(/[.]/g, '\\.')}\\s+smtp\\.perIp\\s+2\\s+4\\s+override set`),
  );
  for (let i = 0; i < 2; i++) {
    const { c, first } = await openSmtp(d);
    assert.match(first, BANNER, 'raised cap admits');
    clients.push(c);
  }
  assert.match((await openSmtp(d)).first, REFUSED);

  // top sees the listener and the IP with limit and use.
  const report = await collectTop(resolveFleet({ admin: [d.adminUrl], token: TOKEN }));
  const ipRow = report.sections.ip.find((r) => r.id === '127.0.0.1')!;
  assert.deepEqual([ipRow.current, ipRow.limit, ipRow.use], [4, 4, 1]);
  assert.ok(ipRow.refused >= 4);
  assert.match(formatTop(report), /default-smtp\s+smtp\s+4\s+2000\s+0%/);

  // Restart: the change is still there, and enforced.
  for (const c of clients.splice(0)) c.close();
  await d.stop();
  const state = JSON.parse(readFileSync(join(tmp.dir, 'limits-state.json'), 'utf8'));
  assert.deepEqual(state.overrides, { 'smtp.perIp': 4 });
  assert.equal(state.history.length, 2);
  d = await startInProcess(tmp.dir, config);
  const view = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  assert.deepEqual(
    view.limits.find((r) => r.scope === 'smtp.perIp'),
    { scope: 'smtp.perIp', value: 4, plan: 3, override: 4 },
  );
  for (let i = 0; i < 4; i++) {
    const { c, first } = await openSmtp(d);
    assert.match(first, BANNER);
    clients.push(c);
  }
  assert.equal(REFUSED.exec((await openSmtp(d)).first)?.[1], '4');
});

test('fails with 400 naming the scope for an impossible value, and 401 without the token', async () => {
  const tmp = await tempDir();
  const d = await startInProcess(tmp.dir, configFor());
  after(async () => {
    await d.stop();
    await tmp.cleanup();
  });
  const bad = await adminPut(d.adminUrl, [
    { scope: 'imap.perUser', value: 5 },
    { scope: 'imap.perDomain', value: 0 },
  ]);
  assert.equal(bad.status, 400);
  assert.match(
    (bad.json as { message: string }).message,
    /limit scope "imap.perDomain": value must be a positive integer, got 0/,
  );
  const view = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  assert.deepEqual(view.overrides, {}, 'nothing of a refused batch applies');
  const unauth = await fetch(`${d.adminUrl}/v1/limits`, { method: 'PUT', body: '{}' });
  assert.equal(unauth.status, 401);
  const cli = await runCli([
    'limit',
    'set',
    'listener:nope-imap',
    '3',
    '--admin',
    d.adminUrl,
    '--token',
    TOKEN,
  ]);
  // Every node answered no: a usage error (exit 2) naming the listener, not "did not answer" (issue 15).
  assert.equal(cli.status, 2);
  assert.match(cli.stderr, /unknown listener nope-imap \(known: /);
});
