/**
 * The governor reads each daemon through one cheap route, GET /v1/governor/sample, instead of three
 * (/v1/connections, /v1/limits, /metrics): the same snapshot either way, each capped scope's own refusal
 * rate (the raise waits for it to stop), and an older daemon without the route still read the old way.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFleet, type NodeSample } from '../../lib/governor/signals.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { adminPut, configFor, imapLogin, RawClient, startInProcess, tempDir, TOKEN } from '../ops/fixture.js';

const ALICE = 'user:alice@example.com:imap';

const login = imapLogin;

const sorted = <T extends { scope: string }>(xs: readonly T[]) => [...xs].sort((a, b) => a.scope.localeCompare(b.scope));
const body = async (url: string) => (await (await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } })).text()).length;

test('one route gives the governor what three did; a capped scope\'s own refusals come as a rate; an older daemon is read the old way', async () => {
  const tmp = await tempDir('mf-gov-sample-');
  const d = await startInProcess(tmp.dir, configFor());
  const clients: RawClient[] = [];
  // An older daemon: no /v1/governor/sample (404), every other route passed through.
  const old = createServer((req, res) => {
    if (req.url === '/v1/governor/sample') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"NOT_FOUND","message":"GET /v1/governor/sample"}');
      return;
    }
    fetch(`${d.adminUrl}${req.url}`, { headers: { Authorization: req.headers.authorization ?? '' } })
      .then(async (r) => res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') ?? 'text/plain' }).end(await r.text()))
      .catch(() => res.writeHead(502).end());
  });
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  after(async () => {
    for (const c of clients) c.close();
    old.close();
    await d.stop();
    await tmp.cleanup();
  });

  // GIVEN alice with 3 IMAP sessions under a cap of 3 (set by the governor), bob with 1
  assert.equal((await adminPut(d.adminUrl, { scope: ALICE, value: 3 })).status, 200);
  for (let i = 0; i < 3; i++) assert.match(await login(d, 'alice@example.com', clients), /^a1 OK/);
  assert.match(await login(d, 'bob@example.com', clients), /^a1 OK/);

  const fleet = resolveFleet({ admin: [d.adminUrl], token: TOKEN });
  const oldFleet = resolveFleet({ admin: [`http://127.0.0.1:${(old.address() as AddressInfo).port}`], token: TOKEN });
  const first = await readFleet(fleet, new Map(), [ALICE]);
  const legacy = await readFleet(fleet, new Map(), [ALICE], Date.now, { legacy: true });
  const viaOld = await readFleet(oldFleet, new Map(), [ALICE]);
  assert.deepEqual(first.failed, []);
  assert.deepEqual(viaOld.failed, [], 'the 404 is not a failure: the old reads answer');
  // THEN the three readings agree on every scope (sessions, limit, override, who set it) and the session count
  assert.deepEqual(sorted(first.snapshot.scopes), sorted(legacy.snapshot.scopes));
  assert.deepEqual(sorted(viaOld.snapshot.scopes), sorted(legacy.snapshot.scopes));
  assert.equal(first.snapshot.scopes.find((s) => s.scope === ALICE)?.current, 3);
  assert.equal(first.snapshot.scopes.find((s) => s.scope === ALICE)?.limit, 3);
  assert.equal(first.snapshot.signals.connections, 4);
  assert.equal(first.snapshot.signals.eventLoopLagMs !== undefined, true, 'the lag is read');
  const s0 = first.samples.get(d.adminUrl)!;
  const l0 = legacy.samples.get(d.adminUrl)!;
  assert.equal(s0.refused, l0.refused);
  assert.deepEqual(s0.delivery, l0.delivery, 'the same delivery histogram');
  assert.ok(s0.cpuSeconds! > 0);

  // WHEN alice knocks twice more at her cap THEN the next reading gives her scope a refusal rate, bob's none
  await new Promise((r) => setTimeout(r, 50));
  assert.match(await login(d, 'alice@example.com', clients), /^a1 NO/);
  assert.match(await login(d, 'alice@example.com', clients), /^a1 NO/);
  const prev = new Map<string, NodeSample>(first.samples);
  const second = await readFleet(fleet, prev, [ALICE]);
  const secondOld = await readFleet(oldFleet, new Map([[oldFleet.nodes[0]!.url, viaOld.samples.get(oldFleet.nodes[0]!.url)!]]), [ALICE]);
  const rate = (r: typeof second, scope: string) => r.snapshot.scopes.find((s) => s.scope === scope)?.refusalsPerSecond;
  assert.ok((rate(second, ALICE) ?? 0) > 0, `alice refusing: ${rate(second, ALICE)}`);
  assert.equal(rate(second, 'user:bob@example.com:imap'), 0);
  assert.ok((rate(secondOld, ALICE) ?? 0) > 0, 'the old reads give the rate too');
  assert.equal(rate(first, ALICE), undefined, 'no rate on a first reading');
  // AND the next interval without a refusal reads 0 again
  const third = await readFleet(fleet, second.samples, [ALICE]);
  assert.equal(rate(third, ALICE), 0);

  // AND the one answer is a small part of the three it replaces (what the daemon builds and sends each tick)
  const one = await body(`${d.adminUrl}/v1/governor/sample`);
  const three = (await body(`${d.adminUrl}/v1/connections`)) + (await body(`${d.adminUrl}/v1/limits`)) + (await body(`${d.adminUrl}/metrics`));
  assert.ok(one * 3 < three, `sample ${one} bytes, the three reads ${three}`);
});
