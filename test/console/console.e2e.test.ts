/**
 * The console end to end in headless Chromium (Debian's chromium driven by playwright-core): a real
 * daemon, real IMAP logins, the page finds the hot user, lowers its limit from the form, and the next
 * login of that user is refused while another user still gets in. Then, on the local tier: a daemon behind
 * a real HAProxy is killed and the page shows its backend DOWN. Screenshots: test-artifacts/console/.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CONSOLE_REFRESH_MS } from '../../lib/console/snapshot.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import { startLocalHaproxy } from '../../lib/platform/haproxy.js';
import { loadSpec } from '../../lib/spec/index.js';
import { requireHaproxy, writeTempSpec } from '../haproxy/harness.js';
import { configFor, RawClient, startInProcess, startProcess, tempDir, TOKEN } from '../ops/fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join('test-artifacts', 'console');
const HOT = 'alice@example.com';
const OTHER = 'bob@example.com';

async function login(port: number, user: string, tag = 'a1'): Promise<{ c: RawClient; reply: string }> {
  const c = await RawClient.open(port);
  await c.waitFor(/^\* OK/);
  const reply = await c.send(`${tag} LOGIN ${user} password`, new RegExp(`^${tag} `));
  return { c, reply };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1200, height: 900 },
  });
}

test('GIVEN load from real IMAP clients WHEN the operator opens the console THEN the hot user is on top, a lower limit from the form refuses its new logins and others still log in', async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/install-system-deps.sh)`);
  await mkdir(ARTIFACTS, { recursive: true });
  const tmp = await tempDir('mf-console-e2e-');
  const profile = await mkdtemp(join(tmpdir(), 'mf-chromium-'));
  const d = await startInProcess(tmp.dir, configFor());
  const clients: RawClient[] = [];
  const open: { browser?: BrowserContext } = {};
  after(async () => {
    for (const c of clients) c.close();
    await open.browser?.close();
    await d.stop();
    await tmp.cleanup();
    await rm(profile, { recursive: true, force: true });
  });

  const browser = await launch(profile);
  open.browser = browser;
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${d.adminUrl}/console`);
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.getByRole('button', { name: 'Open console' }).click();
  await page.getByText(/1 of 1 node\(s\) answered/).waitFor({ timeout: 5000 });

  // Load: six sessions of the hot user, one of another.
  const imap = d.port('imap');
  for (let i = 0; i < 6; i++) {
    const { c, reply } = await login(imap, HOT);
    assert.match(reply, /^a1 OK/);
    clients.push(c);
  }
  const other = await login(imap, OTHER);
  assert.match(other.reply, /^a1 OK/);
  clients.push(other.c);

  await page.getByRole('tab', { name: 'Users' }).click();
  const loadedAt = Date.now();
  const topRow = page.locator('#rows tr').first();
  // Within one refresh interval (plus the snapshot's own time).
  await topRow.locator('th', { hasText: HOT }).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  await page.locator('#rows tr', { hasText: HOT }).locator('td.num').first().filter({ hasText: /^6$/ }).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  const seenAfterMs = Date.now() - loadedAt;
  assert.ok(seenAfterMs <= CONSOLE_REFRESH_MS + 1500, `hot user seen after ${seenAfterMs} ms`);
  assert.match((await page.locator('#rows tr').nth(1).textContent()) ?? '', new RegExp(OTHER));
  await shot(page, '1-hot-user-on-top');

  // Lower its limit from the form (the row's button fills the scope).
  await topRow.getByRole('button', { name: `set a limit for ${HOT}` }).click();
  assert.equal(await page.getByLabel('Scope').inputValue(), `user:${HOT}:imap`);
  await page.getByLabel('Value').fill('2');
  await page.getByRole('button', { name: 'Set limit' }).click();
  const result = page.locator('#limit-result');
  await result.getByText('Applied on every target.').waitFor({ timeout: 5000 });
  const perNode = (await result.locator('li').allTextContents()).join('\n');
  assert.match(perNode, new RegExp(`${d.adminUrl}: user:${HOT}:imap \\d+ → 2 — override set`));
  await shot(page, '2-limit-lowered');

  // New logins of the hot user are refused; the other user still gets in; the six stay.
  const refused = await login(imap, HOT);
  clients.push(refused.c);
  assert.match(refused.reply, /^a1 NO \[UNAVAILABLE\] imap perUser limit of 2 reached for user alice@example\.com/);
  const still = await login(imap, OTHER);
  clients.push(still.c);
  assert.match(still.reply, /^a1 OK/);
  const kept = await clients[0]!.send('a2 NOOP', /^a2 /);
  assert.match(kept, /^a2 OK/);

  // The console shows the refusal and the new limit on the next refresh.
  const hotRow = page.locator('#rows tr', { hasText: HOT });
  await hotRow.locator('td.num').nth(1).filter({ hasText: /^2$/ }).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  await hotRow.locator('td.num').nth(2).filter({ hasText: /^1$/ }).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  assert.match((await hotRow.locator('.pct').textContent()) ?? '', /^300%$/);
  // Its sparkline has drawn the polls seen so far, ending with the latest value.
  assert.equal(await hotRow.locator('svg.spark circle').count(), 1);
  assert.ok(((await hotRow.locator('svg.spark polyline').getAttribute('points')) ?? '').split(' ').length >= 2);
  await shot(page, '3-refusal-counted');

  // Without the token the data calls fail even from the page's origin.
  const status = await page.evaluate(async () => (await fetch('/v1/console/snapshot')).status);
  assert.equal(status, 401);
});

test('GIVEN a daemon behind the local HAProxy WHEN it is killed THEN the console shows its backend DOWN, not "every node answered"', async () => {
  requireHaproxy();
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing`);
  await mkdir(ARTIFACTS, { recursive: true });
  // The daemon behind HAProxy runs as its own process (so it can be killed); the console is served by a
  // second daemon of the same host, which finds the local HAProxy in its data dir as `mailfleet up` sets it.
  const spec = await writeTempSpec();
  const plan = buildPlan(loadSpec(spec.file).spec);
  const behind = await tempDir('mf-console-behind-');
  const host = await tempDir('mf-console-host-');
  const profile = await mkdtemp(join(tmpdir(), 'mf-chromium-'));
  const open: { browser?: BrowserContext; stops: Array<() => Promise<void>> } = { stops: [] };
  after(async () => {
    await open.browser?.close();
    for (const stop of open.stops.reverse()) await stop().catch(() => undefined);
    await behind.cleanup();
    await host.cleanup();
    spec.cleanup();
    await rm(profile, { recursive: true, force: true });
  });
  const daemon = await startProcess(behind.dir, daemonConfig(plan, { mode: 'local-behind-proxy', adminPort: 0 }));
  open.stops.push(() => daemon.stop());
  const haproxy = await startLocalHaproxy({ plan, dataDir: host.dir, specFile: spec.file });
  open.stops.push(() => haproxy.stop());
  const consoleHost = await startInProcess(host.dir, { ...configFor(), opsDaemons: [daemon.adminUrl] });
  open.stops.push(() => consoleHost.stop());

  const browser = await launch(profile);
  open.browser = browser;
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`${consoleHost.adminUrl}/console`);
  await page.getByLabel('Admin token').fill(TOKEN);
  await page.getByRole('button', { name: 'Open console' }).click();
  await page.getByText(/1 of 2 node\(s\) answered|2 of 2 node\(s\) answered/).waitFor({ timeout: 10_000 });
  const imapBackend = page.locator('#backend-rows tr[data-backend="mail-imap-sticky"]');
  await imapBackend.locator('td.state').first().filter({ hasText: /^UP/ }).waitFor({ timeout: 10_000 });
  await shot(page, '4-backends-up');

  daemon.proc.kill('SIGKILL');
  // HAProxy marks the server DOWN after `fall 3` failed checks `inter 2s` apart; the page polls every 2 s.
  await imapBackend.locator('td.state').first().filter({ hasText: /^DOWN/ }).waitFor({ timeout: 20_000 });
  await page.getByText(/HAProxy backend\(s\) DOWN: .*mail-imap-sticky/).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  assert.match((await imapBackend.textContent()) ?? '', /mailfleetd\s*DOWN/);
  // The frontend row says where its clients go: the listener tab shows the frontend's backend DOWN.
  const fe = page.locator('#rows tr', { hasText: 'default-imap' }).filter({ hasText: 'haproxy frontend' }).first();
  await fe.locator('td.state.down').filter({ hasText: /^DOWN/ }).waitFor({ timeout: CONSOLE_REFRESH_MS + 1500 });
  const nodes = (await page.locator('#nodes li.down').allTextContents()).join('\n');
  assert.match(nodes, /backend mail-imap-sticky DOWN: mailfleetd DOWN/);
  await shot(page, '5-backend-down');
});
