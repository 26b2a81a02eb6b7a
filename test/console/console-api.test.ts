import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { specSchema } from '../../lib/spec/schema.js';
import type { ConsoleSnapshot } from '../../lib/console/snapshot.js';
import { configFor, RawClient, startInProcess, tempDir, TOKEN } from '../ops/fixture.js';

const tmp = await tempDir('mf-console-');
const d = await startInProcess(tmp.dir, configFor());
after(async () => {
  await d.stop();
  await tmp.cleanup();
});

function call(path: string, init: RequestInit = {}, token?: string): Promise<Response> {
  return fetch(`${d.adminUrl}${path}`, {
    ...init,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
  });
}

test('the console page and its script are served without a token and hold no data', async () => {
  const page = await call('/console');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  const html = await page.text();
  assert.match(html, /<label for="limit-scope">/);
  assert.match(html, /aria-live="polite"/);
  const js = await call('/console/app.js');
  assert.equal(js.status, 200);
  // The served script must parse as plain browser JavaScript (no TypeScript, no module syntax).
  const src = await js.text();
  assert.doesNotThrow(() => new Function(src));
  assert.doesNotMatch(src, /\bimport\b|\bexport\b/);
});

test('fails when the console data calls come without the token, or with a wrong one (401)', async () => {
  for (const token of [undefined, 'wrong-token-wrong-token-1234']) {
    const snap = await call('/v1/console/snapshot', {}, token);
    assert.equal(snap.status, 401);
    const set = await call('/v1/console/limit', { method: 'POST', body: JSON.stringify({ scope: 'imap.perUser', value: 1 }) }, token);
    assert.equal(set.status, 401);
  }
  // Nothing changed by the refused call.
  const limits = (await (await call('/v1/limits', {}, TOKEN)).json()) as { overrides: Record<string, number> };
  assert.deepEqual(limits.overrides, {});
});

test('GIVEN an open IMAP session THEN the snapshot lists it under listener, user and IP with the node answered', async () => {
  const c = await RawClient.open(d.port('imap'));
  try {
    await c.waitFor(/^\* OK/);
    await c.send('a1 LOGIN alice@example.com password', /^a1 /);
    const r = await call('/v1/console/snapshot', {}, TOKEN);
    assert.equal(r.status, 200);
    const s = (await r.json()) as ConsoleSnapshot;
    assert.equal(s.refreshMs, 2000);
    assert.equal(s.nodes.length, 1);
    assert.equal(s.nodes[0]!.ok, true);
    assert.match(s.nodes[0]!.detail, /^answered: /);
    assert.equal(s.sections.user[0]?.id, 'alice@example.com');
    assert.equal(s.sections.user[0]?.current, 1);
    assert.ok((s.sections.user[0]?.limit ?? 0) > 0);
    assert.equal(s.sections.ip[0]?.id, '127.0.0.1');
    assert.ok(s.sections.listener.some((l) => l.service === 'imap' && l.current === 1));
  } finally {
    c.close();
  }
});

test('the console limit form applies through the mailfleet limit path and answers per node; a bad scope is a 400', async () => {
  const r = await call('/v1/console/limit', { method: 'POST', body: JSON.stringify({ scope: 'user:bob@example.com:imap', value: '3' }) }, TOKEN);
  assert.equal(r.status, 200);
  const { reports } = (await r.json()) as { reports: Array<{ target: string; ok: boolean; after?: number; scope: string }> };
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.target, d.adminUrl);
  assert.equal(reports[0]!.ok, true);
  assert.equal(reports[0]!.after, 3);
  const bad = await call('/v1/console/limit', { method: 'POST', body: JSON.stringify({ scope: 'nonsense', value: 3 }) }, TOKEN);
  assert.equal(bad.status, 400);
});

test('the local admin API (and so the console) binds loopback only', async () => {
  const spec = specSchema.parse({ platform: { name: 'console-bind', hostname: 'mx.test' }, domains: [{ name: 'example.com' }] });
  assert.equal(daemonConfig(buildPlan(spec), { mode: 'local-direct' }).admin.host, '127.0.0.1');
  assert.equal(daemonConfig(buildPlan(spec), { mode: 'local-behind-proxy' }).admin.host, '127.0.0.1');
  assert.equal(d.daemon.adminHost, '127.0.0.1');
  const port = Number(new URL(d.adminUrl).port);
  const external = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal && i.family === 'IPv4')
    .map((i) => i!.address);
  for (const addr of external) {
    const reached = await new Promise<boolean>((resolve) => {
      const s = connect(port, addr, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    assert.equal(reached, false, `admin port ${port} answered on ${addr}`);
  }
});

test('GIVEN a fleet with a node that does not listen THEN the snapshot says which node did not answer and still shows the others', async () => {
  const { createServer } = await import('node:net');
  // A port that was free a moment ago and is closed now: nothing answers there.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const deadPort = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const dead = `http://127.0.0.1:${deadPort}`;
  const { collectSnapshot } = await import('../../lib/console/snapshot.js');
  const s = await collectSnapshot({
    nodes: [{ url: d.adminUrl, token: TOKEN }, { url: dead, token: TOKEN }],
    timeoutMs: 1000,
  });
  assert.deepEqual(
    s.nodes.map((n) => n.ok),
    [true, false],
  );
  assert.equal(s.nodes[1]!.node, dead);
  assert.match(s.nodes[1]!.detail, /^did not answer: .*ECONNREFUSED/);
  assert.match(s.nodes[0]!.detail, /^answered: mx\.test, /);
});

test("GIVEN the spec's ops.daemons WHEN the console of one daemon is asked THEN it aggregates the named nodes and names the one that did not answer", async () => {
  const tmpB = await tempDir('mf-console-b-');
  const b = await startInProcess(tmpB.dir, configFor());
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const dead = `http://127.0.0.1:${(probe.address() as { port: number }).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
  const config = configFor({ ops: { daemons: [b.adminUrl, dead] } });
  assert.deepEqual(config.opsDaemons, [b.adminUrl, dead]);
  const tmpA = await tempDir('mf-console-a-');
  const a = await startInProcess(tmpA.dir, config);
  const c = await RawClient.open(b.port('imap'));
  try {
    await c.waitFor(/^\* OK/);
    assert.match(await c.send('a1 LOGIN carol@example.org password', /^a1 /), /^a1 OK/);
    const r = await fetch(`${a.adminUrl}/v1/console/snapshot`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200);
    const s = (await r.json()) as ConsoleSnapshot;
    assert.deepEqual(
      s.nodes.map((n) => [n.node, n.ok]),
      [
        [b.adminUrl, true],
        [dead, false],
      ],
    );
    assert.match(s.nodes[1]!.detail, /^did not answer: .*ECONNREFUSED/);
    // B's session shows on A's console.
    assert.equal(s.sections.domain[0]?.id, 'example.org');
    assert.equal(s.sections.user[0]?.id, 'carol@example.org');
  } finally {
    c.close();
    await a.stop();
    await b.stop();
    await tmpA.cleanup();
    await tmpB.cleanup();
  }
});
