/**
 * rspamd down (nothing listens) or hanging (accepts, never answers): filtering.rspamd.onUnavailable decides,
 * 451 4.7.1 (the sender retries) or delivery unscanned, and each such message is counted in
 * mailfleetd_filter_unavailable_total{outcome}.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { LineClient, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';
import { freePort } from '../harness/slapd.js';

async function send(port: number, to: string, subject: string): Promise<string> {
  const c = await LineClient.open(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match(await c.cmd('MAIL FROM:<someone@elsewhere.test>'), /^250/);
    assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    return await c.cmd(`From: someone@elsewhere.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nhello\r\n.`);
  } finally {
    c.close();
  }
}

async function unavailableCount(h: SmtpHarness, outcome: string): Promise<number> {
  const m = h.daemon.ctx.metrics.registry.getSingleMetric('mailfleetd_filter_unavailable_total');
  if (!m) return 0;
  return (await m.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('rspamd unavailable: filtering.rspamd.onUnavailable', { timeout: 30_000 }, () => {
  let down: string;
  let hanging: Server;
  const held: Socket[] = [];
  let hangingUrl: string;
  before(async () => {
    // A port nobody listens on: connection refused.
    down = `http://127.0.0.1:${await freePort()}`;
    hanging = createServer((s) => held.push(s));
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    hangingUrl = `http://127.0.0.1:${(hanging.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => hanging.close(r));
  });

  it('tempfail: rspamd down → 451 4.7.1, nothing delivered, counted as tempfail', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { rspamd: { url: down, onUnavailable: 'tempfail' } } } });
    try {
      assert.match(await send(h.port('smtp'), 'bob@example.com', 'while down'), /^451 4\.7\.1 /);
      assert.deepEqual(await h.newMessages('bob@example.com'), []);
      assert.equal(await unavailableCount(h, 'tempfail'), 1);
    } finally {
      await h.close();
    }
  });

  it('tempfail: rspamd accepting but silent past timeoutMs → 451 4.7.1', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { rspamd: { url: hangingUrl, timeoutMs: 300, onUnavailable: 'tempfail' } } } });
    try {
      assert.match(await send(h.port('smtp'), 'bob@example.com', 'while hanging'), /^451 4\.7\.1 /);
      assert.equal(await unavailableCount(h, 'tempfail'), 1);
    } finally {
      await h.close();
    }
  });

  it('accept: rspamd down → 250, delivered unscanned, counted as accept', async () => {
    const h = await startSmtpHarness({ spec: { filtering: { rspamd: { url: down, onUnavailable: 'accept' } } } });
    try {
      assert.match(await send(h.port('smtp'), 'bob@example.com', 'unscanned'), /^250 /);
      assert.equal((await h.newMessages('bob@example.com')).length, 1);
      assert.equal(await unavailableCount(h, 'accept'), 1);
      assert.equal(await unavailableCount(h, 'tempfail'), 0);
    } finally {
      await h.close();
    }
  });
});
