/**
 * The console's governor view against a real daemon: a governor in advise mode (the Governor class
 * `mailfleet governor run` runs, state dir <data dir>/governor) proposes lowering the heavy user and changes
 * nothing; the console lists the proposal with its command; POST apply sets the limit on the daemon through
 * the `mailfleet limit set` path, recorded as made by the console, and the trail records who applied it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import type { GovernorView } from '../../lib/console/governor.js';
import { governorConfig } from '../../lib/governor/config.js';
import { formatGovernorLog } from '../../lib/governor/format.js';
import { Governor } from '../../lib/governor/loop.js';
import { GovernorStore, type GovernorLogEntry } from '../../lib/governor/store.js';
import { resolveFleet } from '../../lib/ops/fleet.js';
import { governorSchema } from '../../lib/spec/schema.js';
import { adminGet, configFor, RawClient, startInProcess, tempDir, TOKEN } from '../ops/fixture.js';

const ALICE = 'user:alice@example.com:imap';
const tmp = await tempDir('mf-console-gov-');
const d = await startInProcess(tmp.dir, configFor());
const clients: RawClient[] = [];
after(async () => {
  for (const c of clients) c.close();
  await d.stop();
  await tmp.cleanup();
});

function call(path: string, init: RequestInit = {}, token: string = TOKEN): Promise<Response> {
  return fetch(`${d.adminUrl}${path}`, {
    ...init,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
  });
}

async function login(user: string): Promise<void> {
  const c = await RawClient.open(d.port('imap'));
  clients.push(c);
  await c.waitFor(/^\* OK/, 10_000);
  assert.match(await c.send(`a LOGIN ${user} password`, /^a /, 10_000), /^a OK/);
}

test('the governor page and its script are served without a token; its data and apply need the token', async () => {
  const page = await call('/console/governor', {}, '');
  assert.equal(page.status, 200);
  assert.match(await page.text(), /Decision log/);
  const js = await call('/console/governor.js', {}, '');
  const src = await js.text();
  assert.doesNotThrow(() => new Function(src));
  assert.doesNotMatch(src, /\bimport\b|\bexport\b/);
  assert.match(await (await call('/console', {}, '')).text(), /href="\/console\/governor"/);
  assert.equal((await call('/v1/console/governor', {}, '')).status, 401);
  assert.equal((await call('/v1/console/governor/apply', { method: 'POST', body: '{"id":"x"}' }, 'wrong-token-wrong-token-1234')).status, 401);
});

test('GIVEN advise mode proposes lowering alice WHEN the console applies it THEN the daemon holds the limit, set by the console, and the trail says who applied it', async () => {
  for (let i = 0; i < 4; i++) await login('alice@example.com');
  await login('bob@example.com');
  const governor = new Governor({
    fleet: resolveFleet({ admin: [d.adminUrl], token: TOKEN }),
    config: governorConfig(governorSchema.parse({ mode: 'advise', targets: { connections: 3 }, scopes: ['user'], floor: 1 })),
    stateDir: join(tmp.dir, 'governor'),
  });
  governor.start();
  try {
    await governor.tickOnce();
  } finally {
    governor.stop();
  }
  // Advise changed nothing.
  assert.deepEqual((await adminGet<LimitsView>(d.adminUrl, '/v1/limits')).overrides, {});

  const view = (await (await call('/v1/console/governor')).json()) as GovernorView;
  assert.equal(view.mode, 'advise');
  assert.equal(view.proposals.length, 1, JSON.stringify(view.proposals));
  const p = view.proposals[0]!;
  assert.equal(p.scope, ALICE);
  assert.equal(typeof p.to, 'number');
  assert.ok((p.to as number) < 4);
  assert.match(p.command ?? '', /^mailfleet limit set user:alice@example\.com:imap \d+/);
  assert.ok(view.entries.some((e) => e.status === 'proposed'));

  const r = await call('/v1/console/governor/apply', { method: 'POST', body: JSON.stringify({ id: p.id }) });
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { entry: GovernorLogEntry };
  assert.equal(body.entry.status, 'applied');

  const limits = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  assert.equal(limits.overrides[ALICE], p.to);
  assert.equal(limits.overrideDetails.find((o) => o.scope === ALICE)?.by, 'mailfleet-console');

  const trail = new GovernorStore(join(tmp.dir, 'governor')).readLog();
  const applied = trail.find((e) => e.by === 'console');
  assert.equal(applied?.status, 'applied');
  assert.equal(applied?.proposal, p.id);
  assert.equal(applied?.decision?.scope, ALICE);
  assert.equal(applied?.reports?.[0]?.after, p.to);
  assert.match(formatGovernorLog(trail), /applied by console/);

  // Applied once: no longer offered, and a second apply is refused.
  assert.deepEqual(((await (await call('/v1/console/governor')).json()) as GovernorView).proposals, []);
  assert.equal((await call('/v1/console/governor/apply', { method: 'POST', body: JSON.stringify({ id: p.id }) })).status, 409);
  assert.equal((await call('/v1/console/governor/apply', { method: 'POST', body: JSON.stringify({ id: 'nope' }) })).status, 404);
});
