/**
 * The content filter in the daemon's health (GET /healthz, what the mail node's health check reads; rule in
 * lib/filter/health.ts and docs/filtering.md "Health"): a real rspamd is stopped and started again under a
 * real mailfleetd with onUnavailable tempfail; /healthz goes 503 with the filter check failing and
 * mailfleetd_filter_up 0 while it is gone, degraded after it is back until a scan gets a verdict, ok after.
 * Then the streak rule (rspamd answering /ping but giving no verdicts: a stand-in that answers pong and
 * fails /checkv2), accept mode (reported, never 503), and the start grace.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FILTER_PING_CACHE_MS, FilterHealth, type FilterCheck } from '../../lib/filter/health.js';
import { startRspamd, type ChildDaemon } from '../../lib/filter/processes.js';
import { filteringSchema } from '../../lib/spec/schema.js';
import { LineClient, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';
import { filterStackUnavailable, startFilterStack, type FilterStack } from '../harness/rspamd.js';
import { freePort } from '../harness/slapd.js';

const missing = filterStackUnavailable();
if (missing) throw new Error(`filtering tests need rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);

interface Health {
  readonly http: number;
  readonly status: string;
  readonly filter?: FilterCheck;
  readonly error?: string;
  readonly message?: string;
}

async function health(h: SmtpHarness): Promise<Health> {
  const r = await fetch(`http://127.0.0.1:${h.adminPort}/healthz`);
  const b = (await r.json()) as { status?: string; checks?: { filter: FilterCheck }; error?: string; message?: string; details?: { status: string; checks: { filter: FilterCheck } } };
  const body = b.details ?? b;
  return { http: r.status, status: body.status!, filter: body.checks?.filter, error: b.error, message: b.message };
}

async function metric(h: SmtpHarness, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${h.adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/** One MX transaction; returns the reply to the final dot. */
async function send(port: number, subject: string): Promise<string> {
  const c = await LineClient.open(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match(await c.cmd('MAIL FROM:<someone@elsewhere.test>'), /^250/);
    assert.match(await c.cmd('RCPT TO:<bob@example.com>'), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    return await c.cmd(`From: someone@elsewhere.test\r\nTo: bob@example.com\r\nSubject: ${subject}\r\n\r\nhello\r\n.`);
  } finally {
    c.close();
  }
}

/** Past the ping cache, so the next /healthz asks rspamd again. */
const nextPing = () => new Promise((r) => setTimeout(r, FILTER_PING_CACHE_MS + 50));

describe('rspamd in the daemon health', { timeout: 120_000 }, () => {
  let stack: FilterStack;
  before(async () => {
    stack = await startFilterStack({ antivirus: false });
  });
  after(async () => {
    await stack?.stop();
  });

  it('GIVEN onUnavailable tempfail WHEN rspamd is stopped THEN /healthz is 503 with the filter check failing and filter_up 0; started again it is degraded until a scan gets a verdict, then ok', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { antivirus: false, rspamd: { url: stack.url, onUnavailable: 'tempfail', unhealthyAfterFailures: 3 } } } });
    let again: ChildDaemon | undefined;
    try {
      const up = await health(h);
      assert.equal(up.http, 200);
      assert.equal(up.status, 'ok');
      assert.deepEqual([up.filter?.state, up.filter?.ping, up.filter?.affectsHealth], ['ok', 'pong', true]);
      assert.equal(await metric(h, 'mailfleetd_filter_up'), 1);
      assert.match(await send(h.port('smtp'), 'scanned'), /^250 /);

      await stack.rspamd.stop(500);
      await nextPing();
      const down = await health(h);
      assert.equal(down.http, 503);
      assert.equal(down.status, 'unhealthy');
      assert.equal(down.error, 'FILTER_UNAVAILABLE');
      assert.match(down.message!, /does not answer \/ping \(.*ECONNREFUSED/);
      assert.equal(down.filter?.state, 'failing');
      assert.equal(await metric(h, 'mailfleetd_filter_up'), 0);
      assert.match(await send(h.port('smtp'), 'while down'), /^451 4\.7\.1 /);
      assert.equal(await metric(h, 'mailfleetd_filter_consecutive_failures'), 1);

      again = await startRspamd({ dir: join(stack.dir, 'rspamd'), config: stack.rspamdConfig });
      await nextPing();
      const back = await health(h);
      assert.equal(back.http, 200, 'a pong with one recent failed scan is degraded, not failing');
      assert.equal(back.status, 'degraded');
      assert.deepEqual([back.filter?.state, back.filter?.ping, back.filter?.consecutiveFailures], ['degraded', 'pong', 1]);
      assert.equal(await metric(h, 'mailfleetd_filter_up'), 1);

      assert.match(await send(h.port('smtp'), 'after restart'), /^250 /);
      const ok = await health(h);
      assert.deepEqual([ok.http, ok.status, ok.filter?.state, ok.filter?.consecutiveFailures], [200, 'ok', 'ok', 0]);
    } finally {
      await h.close();
      await again?.stop(500);
    }
  });
});

describe('the filter check rule without a real rspamd', { timeout: 30_000 }, () => {
  // A scanner that answers /ping but gives no verdict (HTTP 500 on /checkv2): rspamd up but broken.
  let broken: Server;
  let brokenUrl: string;
  before(async () => {
    broken = createServer((req, res) => {
      if (req.url === '/ping') res.end('pong\n');
      else {
        res.statusCode = 500;
        res.end('{"error":"broken"}');
      }
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    brokenUrl = `http://127.0.0.1:${(broken.address() as { port: number }).port}`;
  });
  after(async () => {
    broken.closeAllConnections();
    await new Promise((r) => broken.close(r));
  });

  it('GIVEN unhealthyAfterFailures 2 WHEN /ping answers but scans get no verdict THEN one failed scan is degraded and two are a 503', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { antivirus: false, rspamd: { url: brokenUrl, onUnavailable: 'tempfail', unhealthyAfterFailures: 2 } } } });
    try {
      assert.deepEqual([(await health(h)).http, (await health(h)).status], [200, 'ok']);
      assert.match(await send(h.port('smtp'), 'one'), /^451 4\.7\.1 /);
      const one = await health(h);
      assert.deepEqual([one.http, one.status, one.filter?.consecutiveFailures], [200, 'degraded', 1]);
      assert.match(await send(h.port('smtp'), 'two'), /^451 4\.7\.1 /);
      const two = await health(h);
      assert.deepEqual([two.http, two.status, two.filter?.state], [503, 'unhealthy', 'failing']);
      assert.match(two.message!, /gave no verdict for 2 scans in a row \(.*HTTP 500\)/);
    } finally {
      await h.close();
    }
  });

  it('GIVEN onUnavailable accept WHEN scans get no verdict THEN the filter check is reported failing but /healthz stays 200 degraded (mail still flows)', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { antivirus: false, rspamd: { url: brokenUrl, onUnavailable: 'accept', unhealthyAfterFailures: 1 } } } });
    try {
      assert.match(await send(h.port('smtp'), 'unscanned'), /^250 /);
      const r = await health(h);
      assert.deepEqual([r.http, r.status, r.filter?.state, r.filter?.affectsHealth], [200, 'degraded', 'failing', false]);
      assert.equal(await metric(h, 'mailfleetd_filter_up'), 0);
    } finally {
      await h.close();
    }
  });

  it('GIVEN an rspamd that has not answered since start WHEN within the start grace THEN degraded (starting); past it, failing', async () => {
    const filtering = filteringSchema.parse({ rspamd: { url: `http://127.0.0.1:${await freePort()}` } });
    let t = 1_000_000;
    const fh = new FilterHealth({ filtering, registry: new Registry(), now: () => t, startGraceMs: 10_000 });
    const early = await fh.check();
    assert.deepEqual([early.state, early.starting], ['degraded', true]);
    t += 10_001;
    const late = await fh.check();
    assert.deepEqual([late.state, late.starting], ['failing', false]);
  });
});
