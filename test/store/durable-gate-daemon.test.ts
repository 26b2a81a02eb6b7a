/**
 * The durable-write gate as the daemon runs it (maildir.durableWrites): off by default, on when the spec
 * says, every submission delivered through it, and nothing left in flight or waiting once the clients are
 * gone (the gauges /metrics reports are the gate's own counters).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configFor, metricsText, RawClient, startInProcess, tempDir } from '../ops/fixture.js';

async function submit(port: number, user: string): Promise<string> {
  const c = await RawClient.open(port);
  try {
    await c.waitFor(/^220 /, 10_000);
    await c.send('EHLO client.test', /^250 /);
    assert.match(await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`, /^\d{3} /), /^235 /);
    await c.send(`MAIL FROM:<${user}>`, /^250 /);
    await c.send(`RCPT TO:<${user}>`, /^250 /);
    await c.send('DATA', /^354 /);
    return await c.send(`Subject: gate\r\n\r\n${'x'.repeat(500)}\r\n.`, /^\d{3} /, 10_000);
  } finally {
    c.close();
  }
}

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describe('durable-write gate in the daemon', () => {
  test('GIVEN maxInFlight 2 WHEN two users submit 12 messages at once THEN all are delivered and the gate ends empty, its limit within 1–2', async () => {
    const tmp = await tempDir();
    const d = await startInProcess(tmp.dir, configFor({ maildir: { durableWrites: { maxInFlight: 2 } } }));
    try {
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(d.port('submission'), i % 2 ? 'bob@example.com' : 'alice@example.com')));
      for (const r of replies) assert.match(r, /^250 /);
      const m = await metricsText(d.adminUrl);
      assert.equal(gauge(m, 'mailfleetd_durable_gate_in_flight'), 0);
      assert.equal(gauge(m, 'mailfleetd_durable_gate_waiting'), 0);
      const limit = gauge(m, 'mailfleetd_durable_gate_limit');
      assert.ok(limit >= 1 && limit <= 2, `limit ${limit}`);
      assert.ok(Number.isFinite(gauge(m, 'mailfleetd_durable_gate_waits_total')));
    } finally {
      await d.stop();
      await tmp.cleanup();
    }
  });

  test('GIVEN the default spec THEN the gate is off (limit 0) and deliveries go straight to the disk', async () => {
    const tmp = await tempDir();
    const d = await startInProcess(tmp.dir, configFor());
    try {
      assert.match(await submit(d.port('submission'), 'alice@example.com'), /^250 /);
      const m = await metricsText(d.adminUrl);
      assert.equal(gauge(m, 'mailfleetd_durable_gate_limit'), 0);
      assert.equal(gauge(m, 'mailfleetd_durable_gate_waits_total'), 0);
    } finally {
      await d.stop();
      await tmp.cleanup();
    }
  });
});
