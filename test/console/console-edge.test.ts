/**
 * Issue 23, the edge lists in the console: on the local tier (a real HAProxy rendered from the plan in
 * front of a real mailfleetd), the console's edge routes list the deny and allow lists as the running
 * HAProxy holds them and change them through the `mailfleet edge` code path: a network blocked from the
 * console is refused by HAProxy at once, the list shows it, unblocked it is served again. Then the same
 * through the page in headless Chromium. Clients pick their loopback source (127.0.0.x) to be told apart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import type { ConsoleEdgeView } from '../../lib/console/edge.js';
import { edgeListsPath } from '../../lib/haproxy/edge.js';
import type { EdgeChange } from '../../lib/ops/edge.js';
import { greet } from '../haproxy/greeter.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startProxiedDaemon, type ProxiedDaemon } from '../haproxy/proxied-daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join('test-artifacts', 'console');

describe('the console edge view on the local tier', { timeout: 120_000 }, () => {
  let p: ProxiedDaemon;
  let url: string;
  let auth: Record<string, string>;
  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon();
    url = `http://127.0.0.1:${p.daemon.adminPort}`;
    auth = { authorization: `Bearer ${p.daemon.adminToken}`, 'content-type': 'application/json' };
  });
  after(async () => {
    await p?.stop();
  });

  const view = async (): Promise<ConsoleEdgeView> => {
    const r = await fetch(`${url}/v1/console/edge`, { headers: auth });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as ConsoleEdgeView;
  };
  const post = (body: unknown, headers = auth) => fetch(`${url}/v1/console/edge`, { method: 'POST', headers, body: JSON.stringify(body) });
  /** The first line an IMAP client from `source` gets through HAProxy ('' or RESET: refused before any byte). */
  const imapFrom = async (source: string): Promise<string> => {
    const g = await greet(p.spec.port('imap'), { localAddress: source });
    g.socket.destroy();
    return g.line;
  };

  it('GIVEN no entries THEN the view says HAProxy runs and both lists are empty', async () => {
    assert.deepEqual(await view(), { haproxy: true, rows: [] });
  });

  it('GIVEN the console blocks 127.0.0.2/32 THEN HAProxy refuses that source at once, serves 127.0.0.1, and the list shows the entry live; unblock lets it back', async () => {
    assert.match(await imapFrom('127.0.0.2'), /^\* OK/);
    const r = await post({ action: 'block', network: '127.0.0.2/32' });
    assert.equal(r.status, 200);
    const change = (await r.json()) as EdgeChange;
    assert.deepEqual({ ...change, recordedIn: undefined }, { list: 'deny', network: '127.0.0.2/32', action: 'added', live: true, recordedIn: undefined });

    const t0 = performance.now();
    const refused = await imapFrom('127.0.0.2');
    assert.ok(refused === '' || refused === 'RESET', `blocked source got "${refused}"`);
    assert.ok(performance.now() - t0 < 1000);
    assert.match(await imapFrom('127.0.0.1'), /^\* OK/);

    const v = await view();
    assert.equal(v.rows.length, 1);
    const row = v.rows[0]!;
    assert.deepEqual({ ...row, setAt: undefined }, { list: 'deny', network: '127.0.0.2/32', source: 'live', setAt: undefined, setBy: 'mailfleet-console', active: true });

    const u = await post({ action: 'unblock', network: '127.0.0.2/32' });
    assert.equal(u.status, 200);
    assert.equal(((await u.json()) as EdgeChange).action, 'removed');
    assert.match(await imapFrom('127.0.0.2'), /^\* OK/);
    assert.deepEqual((await view()).rows, []);
  });

  it('GIVEN a bad network or action THEN the POST is a 400 naming it and nothing is recorded or changed', async () => {
    const bad = await post({ action: 'block', network: '300.1.2.3/8' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /"300\.1\.2\.3\/8" is not an address or CIDR/);
    const wide = await post({ action: 'block', network: '127.0.0.0/33' });
    assert.equal(wide.status, 400);
    const action = await post({ action: 'drop', network: '127.0.0.4' });
    assert.equal(action.status, 400);
    assert.match(((await action.json()) as { message: string }).message, /"block" \| "unblock" \| "allow" \| "unallow"/);
    const missing = await post({ action: 'block' });
    assert.equal(missing.status, 400);
    assert.deepEqual((await view()).rows, []);
    assert.match(await imapFrom('127.0.0.1'), /^\* OK/);
  });

  it('GIVEN no token or a wrong one THEN the edge routes answer 401 and nothing is blocked', async () => {
    const none = await post({ action: 'block', network: '127.0.0.5' }, { 'content-type': 'application/json' });
    assert.equal(none.status, 401);
    const wrong = await post({ action: 'block', network: '127.0.0.5' }, { authorization: 'Bearer nope', 'content-type': 'application/json' });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(`${url}/v1/console/edge`)).status, 401);
    assert.match(await imapFrom('127.0.0.5'), /^\* OK/);
    const file = edgeListsPath(join(p.spec.dir, 'var'));
    assert.ok(!existsSync(file) || !readFileSync(file, 'utf8').includes('127.0.0.5'));
  });

  it('GIVEN the page in headless Chromium WHEN the operator blocks a network from the edge form THEN the row shows it held by HAProxy, the source is refused, and the row\'s unblock lets it back', async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-system-deps.sh)`);
    await mkdir(ARTIFACTS, { recursive: true });
    const profile = await mkdtemp(join(tmpdir(), 'mf-chromium-'));
    let browser: BrowserContext | undefined;
    try {
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1200, height: 900 },
      });
      const page = browser.pages()[0] ?? (await browser.newPage());
      await page.goto(`${url}/console`);
      await page.getByLabel('Admin token').fill(p.daemon.adminToken);
      await page.getByRole('button', { name: 'Open console' }).click();
      await page.getByText('Both lists are empty').waitFor({ timeout: 5000 });

      await page.getByLabel('Action').selectOption('block');
      await page.getByLabel('Address or CIDR').fill('127.0.0.6/32');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText('deny 127.0.0.6/32: added, live on the running HAProxy.').waitFor({ timeout: 5000 });
      const row = page.locator('#edge-rows tr[data-network="127.0.0.6/32"]');
      await row.waitFor({ timeout: 5000 });
      assert.deepEqual(
        (await row.locator('td, th').allTextContents()).slice(0, 6).filter((_, i) => i !== 3),
        ['deny', '127.0.0.6/32', 'live', 'mailfleet-console', 'yes'],
      );
      const refused = await imapFrom('127.0.0.6');
      assert.ok(refused === '' || refused === 'RESET', `blocked source got "${refused}"`);
      await page.screenshot({ path: join(ARTIFACTS, '6-edge-blocked.png'), fullPage: true });

      await page.getByLabel('Address or CIDR').fill('10.0.0.0/99');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.getByText(/Not applied: "10\.0\.0\.0\/99" is not an address or CIDR/).waitFor({ timeout: 5000 });

      await row.getByRole('button', { name: 'unblock 127.0.0.6/32' }).click();
      await page.getByText('deny 127.0.0.6/32: removed, live on the running HAProxy.').waitFor({ timeout: 5000 });
      await page.getByText('Both lists are empty').waitFor({ timeout: 5000 });
      assert.match(await imapFrom('127.0.0.6'), /^\* OK/);
    } finally {
      await browser?.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});
