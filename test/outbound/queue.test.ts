/**
 * The outbound queue against a real SMTP server (smtp-server, the library mailfleetd's own SMTP is built
 * on) playing the smarthost: relayed recipients arrive byte-identical, 4xx recipients are retried until
 * accepted, 5xx recipients bounce to the sender with an RFC 3464 report, an entry survives a restart of
 * the queue, and a relay that is down defers without losing anything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { OutboundQueue, type RelaySettings } from '../../lib/outbound/index.js';

interface Received {
  from: string;
  to: string[];
  data: Buffer;
}

const MESSAGE = Buffer.from('From: alice@example.com\r\nTo: ok@remote.test\r\nSubject: outbound\r\nMessage-ID: <q1@example.com>\r\n\r\nhello relay\r\n');

describe('outbound queue through a real SMTP relay', { timeout: 30_000 }, () => {
  let dir: string;
  let server: SMTPServer;
  let port: number;
  const received: Received[] = [];
  let laterRefusals = 2;
  const bounces: Array<{ to: string; text: string }> = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mf-queue-'));
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(address, _session, cb) {
        if (address.address.startsWith('nouser@')) return cb(Object.assign(new Error('5.1.1 no such user here'), { responseCode: 550 }));
        if (address.address.startsWith('later@') && laterRefusals-- > 0) return cb(Object.assign(new Error('4.2.0 try again later'), { responseCode: 451 }));
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push({ from: String(session.envelope.mailFrom && session.envelope.mailFrom.address), to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks) });
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const relay = (p: number): RelaySettings => ({ host: '127.0.0.1', port: p, startTls: 'none', verifyCertificate: false, retrySeconds: 1, maxAgeHours: 1, concurrency: 2 });
  const queue = (p = port) =>
    new OutboundQueue({
      dir,
      relay: relay(p),
      hostname: 'mx.test',
      onBounce: async (to, message) => {
        bounces.push({ to, text: message.toString('latin1') });
      },
    });
  const until = async (cond: () => boolean | Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('relays a message byte-identical; a 4xx recipient is retried until accepted; a 5xx recipient bounces with a delivery-status report', async () => {
    const q = queue();
    q.start(200);
    try {
      await q.enqueue('alice@example.com', ['ok@remote.test', 'later@remote.test', 'nouser@remote.test'], MESSAGE);
      await until(() => received.some((r) => r.to.includes('later@remote.test')), 10_000);
      await until(async () => (await q.entries()).length === 0, 5000);
    } finally {
      await q.stop();
    }
    const first = received.find((r) => r.to.includes('ok@remote.test'))!;
    assert.equal(first.from, 'alice@example.com');
    assert.deepEqual(first.data, MESSAGE);
    assert.equal(received.filter((r) => r.to.includes('later@remote.test')).length, 1, 'retried recipient delivered once');
    assert.ok(!received.some((r) => r.to.includes('nouser@remote.test')));
    assert.equal(bounces.length, 1);
    assert.equal(bounces[0]!.to, 'alice@example.com');
    assert.match(bounces[0]!.text, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(bounces[0]!.text, /Final-Recipient: rfc822; nouser@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1/);
    assert.match(bounces[0]!.text, /Subject: outbound/, 'the original header is attached');
    assert.deepEqual((await readdir(dir)).sort(), [], 'nothing left in the queue');
  });

  it('GIVEN the relay is down THEN the entry waits on disk, survives a new queue (restart) and goes out once the relay answers', async () => {
    // A port that was just free: nothing listens there.
    const dead = await new Promise<number>((r) => {
      const tmp = new SMTPServer({ logger: false });
      tmp.listen(0, '127.0.0.1', () => {
        const p = (tmp.server.address() as { port: number }).port;
        tmp.close(() => r(p));
      });
    });
    const down = queue(dead);
    down.start(200);
    await down.enqueue('bob@example.com', ['ok@remote.test'], MESSAGE);
    await until(async () => (await down.entries())[0]?.attempts === 1, 5000);
    await down.stop();
    const [entry] = await queue().entries();
    assert.ok(entry, 'still queued after the failed attempt');
    assert.match(entry.lastError ?? '', /ECONNREFUSED|connect/i);
    const before = received.length;
    const up = queue(); // a restarted daemon: same folder, a relay that answers
    up.start(200);
    try {
      await until(() => received.length > before, 10_000);
      await until(async () => (await up.entries()).length === 0, 5000);
    } finally {
      await up.stop();
    }
    assert.equal(received.at(-1)!.from, 'bob@example.com');
  });
});
