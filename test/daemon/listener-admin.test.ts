/**
 * The shared listener and the admin API on a real daemon: port cap (421 4.7.0), PROXY v2 (real client
 * address, listener from the destination port, bad headers closed), /v1/connections with the user,
 * token rules, metrics, graceful stop.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { python } from './mail-harness.js';
import { LineClient, startSmtpHarness, type SmtpHarness } from './smtp-harness.js';

async function admin(h: SmtpHarness, path: string, token?: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${h.adminPort}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: r.status, body: await r.text() };
}

describe('listener and admin API', () => {
  const harnesses: SmtpHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it('GIVEN a port cap of 2 WHEN a third client connects THEN it gets 421 4.7.0 and is closed, and a slot frees on close', async () => {
    const h = await startSmtpHarness({ spec: { limits: { smtp: { portConnections: 2 } } } });
    harnesses.push(h);
    const a = await LineClient.open(h.port('smtp'));
    const b = await LineClient.open(h.port('smtp'));
    assert.match(await a.reply(), /^220 /);
    assert.match(await b.reply(), /^220 /);
    const c = await LineClient.open(h.port('smtp'));
    assert.match(await c.reply(), /^421 4\.7\.0 smtp port \d+ is full \(2 connections\)/);
    assert.equal(await c.reply(), '');
    a.close();
    await new Promise((r) => setTimeout(r, 100));
    const d = await LineClient.open(h.port('smtp'));
    assert.match(await d.reply(), /^220 /);
    b.close();
    d.close();
    const m = await admin(h, '/metrics');
    assert.match(m.body, /mailfleetd_connections_refused_total\{listener="default-smtp",protocol="smtp",reason="port-full"\} 1/);
  });

  it('GIVEN the admin API WHEN called THEN /healthz and /metrics need no token, /v1/connections needs it and lists the authenticated user', async () => {
    const h = await startSmtpHarness({ spec: { smtp: { allowInsecureAuth: true } } });
    harnesses.push(h);
    assert.equal((await admin(h, '/healthz')).status, 200);
    assert.equal((await admin(h, '/v1/connections')).status, 401);
    assert.equal((await admin(h, '/v1/connections', 'wrong-token-wrong-token')).status, 401);
    assert.equal((await admin(h, '/nope')).status, 404);
    const tokenFile = join(h.dir, 'admin.token');
    assert.equal((await readFile(tokenFile, 'utf8')).trim(), h.adminToken);
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);

    const c = await LineClient.open(h.port('submission'));
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0bob@example.com\0password').toString('base64')}`), /^235 /);
    const r = await admin(h, '/v1/connections', h.adminToken);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body) as { total: number; connections: Array<Record<string, unknown>> };
    assert.equal(body.total, 1);
    assert.equal(body.connections[0]!.user, 'bob@example.com');
    assert.equal(body.connections[0]!.listener, 'default-submission');
    assert.equal(body.connections[0]!.remoteAddress, '127.0.0.1');
    c.close();
  });

  it('GIVEN a PROXY v2 socket WHEN HAProxy-style headers arrive THEN the session sees the real client and the listener of the destination port', async () => {
    const h = await startSmtpHarness({ mode: 'local-behind-proxy', spec: { domains: [{ name: 'example.com' }, { name: 'example.org', listeners: 'dedicated', protocols: ['submission'] }] } });
    harnesses.push(h);
    const port = h.port('smtp');
    const header = encodeProxyV2({ source: { address: '203.0.113.9', port: 40000 }, destination: { address: '10.0.0.5', port: 2525 } });
    const c = await LineClient.open(port, header);
    assert.match(await c.reply(), /^220 /);
    await c.cmd('EHLO relay.test');
    await c.cmd('MAIL FROM:<x@remote.test>');
    assert.match(await c.cmd('RCPT TO:<alice@example.com>'), /^250/);
    const list = JSON.parse((await admin(h, '/v1/connections', h.adminToken)).body) as { connections: Array<Record<string, unknown>> };
    assert.equal(list.connections[0]!.remoteAddress, '203.0.113.9');
    assert.equal(list.connections[0]!.listener, 'default-smtp');
    assert.match(await c.cmd('DATA'), /^354/);
    assert.match(await c.cmd('Subject: proxied\r\n\r\nhi\r\n.'), /^250 2\.0\.0 /);
    c.close();
    const [f] = await h.newMessages('alice@example.com');
    assert.match(await readFile(join(h.maildir('alice@example.com'), 'new', f!), 'utf8'), /^Return-Path: <x@remote\.test>\r\nDelivered-To: alice@example\.com\r\nReceived: from relay\.test \(\[203\.0\.113\.9\]\)/);

    // The dedicated tenant's submission port maps to its own listener.
    const sub = h.daemon.ctx.config.sockets.find((s) => s.protocol === 'submission')!;
    const dedicatedPort = Number(Object.entries(sub.listenerByDestinationPort!).find(([, n]) => n.includes('example-org'))![0]);
    const d = await LineClient.open(h.port('submission'), encodeProxyV2({ source: { address: '2001:db8::7', port: 1 }, destination: { address: '2001:db8::1', port: dedicatedPort } }));
    assert.match(await d.reply(), /^220 /);
    const l2 = JSON.parse((await admin(h, '/v1/connections', h.adminToken)).body) as { connections: Array<Record<string, unknown>> };
    assert.deepEqual(
      l2.connections.map((x) => [x.listener, x.remoteAddress]),
      [['example-org-submission', '2001:db8::7']],
    );
    d.close();
  });

  it('fails to start a session when the PROXY header is missing or malformed: closed without a banner', async () => {
    const h = harnesses[harnesses.length - 1]!;
    const plain = await LineClient.open(h.port('smtp'), Buffer.from('EHLO no-proxy-header\r\n'));
    assert.equal(await plain.reply(), '');
    const v1 = await LineClient.open(h.port('smtp'), Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'));
    assert.equal(await v1.reply(), '');
    const m = (await admin(h, '/metrics')).body;
    assert.match(m, /reason="proxy-invalid"\} 2/);
  });

  it('GIVEN a delivery in flight WHEN the daemon stops THEN the message is acknowledged and stored before the sockets close', async () => {
    const h = await startSmtpHarness();
    const port = h.port('smtp');
    const c = await LineClient.open(port);
    await c.reply();
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<x@remote.test>');
    await c.cmd('RCPT TO:<bob@example.com>');
    assert.match(await c.cmd('DATA'), /^354/);
    c.socket.write('Subject: in-flight\r\n\r\n');
    const stopping = h.daemon.stop(5000);
    await new Promise((r) => setTimeout(r, 100));
    // New connections are no longer accepted.
    await assert.rejects(python('import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)', [String(port)]));
    c.socket.write('body\r\n.\r\n');
    assert.match(await c.reply(), /^250 2\.0\.0 /);
    assert.match(await c.reply(), /^421 4\.3\.2 /);
    await stopping;
    assert.equal((await h.newMessages('bob@example.com')).length, 1);
    await h.close();
  });
});
