/**
 * The audit journal end to end on a real daemon: what a 250'd message leaves in the journal (envelope with
 * Bcc, client IP, user, time, Message-ID, the bytes), shipped by the uploader to a real S3 API (s3rver),
 * found again by `archive search`, exported as mbox, each access logged; and an archive bucket that is
 * unreachable: nothing is dropped, the backlog metric counts it, everything ships once it is back.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { nodeSpoolDir, spoolNodeName } from '../../lib/journal/node-spools.js';
import { PassThrough } from 'node:stream';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Archive, readAccessLog } from '../../lib/journal/archive.js';
import { s3Client } from '../../lib/journal/s3.js';
import { startS3 } from './s3-harness.js';
import { LineClient, startSmtpHarness, type SmtpHarness } from '../daemon/smtp-harness.js';

const AUTH = Buffer.from('\0alice@example.com\0password').toString('base64');

async function submit(port: number, opts: { from: string; rcpts: string[]; data: string; auth?: boolean }): Promise<string> {
  const c = await LineClient.open(port);
  try {
    assert.match(await c.reply(), /^220/);
    assert.match(await c.cmd('EHLO client.test'), /^250/);
    if (opts.auth) assert.match(await c.cmd(`AUTH PLAIN ${AUTH}`), /^235/);
    assert.match(await c.cmd(`MAIL FROM:<${opts.from}>`), /^250/);
    for (const r of opts.rcpts) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250/);
    assert.match(await c.cmd('DATA'), /^354/);
    const reply = await c.cmd(`${opts.data}\r\n.`);
    await c.cmd('QUIT');
    return reply;
  } finally {
    c.close();
  }
}

async function metric(h: SmtpHarness, name: string): Promise<number> {
  const text = await h.daemon.ctx.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(name));
  return Number(line?.split(' ').pop());
}

describe('audit journal on a running daemon', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('GIVEN audit on WHEN alice submits To bob with carol in Bcc THEN the entry holds the whole envelope and bytes, ships to the bucket, is found by search and export, and both accesses are logged', async () => {
    const s3 = await startS3();
    cleanups.push(() => s3.close());
    const h = await startSmtpHarness({
      spec: { smtp: { allowInsecureAuth: true }, audit: { enabled: true, flushIntervalSeconds: 3600 } },
      daemon: { auditTarget: s3.target('audit') },
    });
    cleanups.push(() => h.close());
    const data = 'Message-ID: <m1@client.test>\r\nFrom: alice@example.com\r\nTo: bob@example.com\r\nSubject: audit\r\n\r\nFrom the start\r\nhello';
    assert.match(await submit(h.port('submission'), { from: 'alice@example.com', rcpts: ['bob@example.com', 'carol@example.org'], data, auth: true }), /^250 /);
    assert.match(await submit(h.port('smtp'), { from: 'ext@remote.test', rcpts: ['bob@example.com'], data: 'Subject: mx\r\n\r\nother' }), /^250 /);

    // Before shipping: both in the spool, committed (not ,U).
    const spoolDir = nodeSpoolDir(h.dir, spoolNodeName(hostname()));
    const ready = await readdir(join(spoolDir, 'ready'));
    assert.equal(ready.length, 2);
    assert.ok(ready.every((n) => !n.endsWith(',U')));
    assert.equal(await metric(h, 'mailfleetd_journal_backlog_entries'), 2);

    // Ship now instead of waiting for the flush interval.
    await flushUploader(h);
    assert.deepEqual(await readdir(join(spoolDir, 'ready')), []);
    assert.equal(await metric(h, 'mailfleetd_journal_backlog_entries'), 0);

    const archive = new Archive({ target: s3.target('audit'), spoolDirs: [spoolDir], actor: 'auditor-1' });
    cleanups.push(() => archive.close());
    const byBcc = await archive.search({ to: 'carol@example.org' });
    assert.equal(byBcc.length, 1, 'the Bcc recipient is in the envelope');
    const e = byBcc[0]!.entry;
    assert.equal(byBcc[0]!.location.kind, 's3');
    assert.equal(e.sender, 'alice@example.com');
    assert.deepEqual(e.recipients, ['bob@example.com', 'carol@example.org']);
    assert.equal(e.user, 'alice@example.com');
    assert.equal(e.clientIp, '127.0.0.1');
    assert.equal(e.protocol, 'submission');
    assert.equal(e.messageId, 'm1@client.test');
    assert.equal(e.acknowledged, true);
    assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 60_000);
    // The journaled bytes are the accepted message (our Received header, then what the client sent).
    const stored = await readFile(join(h.maildir('carol@example.org'), 'new', (await h.newMessages('carol@example.org'))[0]!), 'latin1');
    const received = stored.slice(stored.indexOf('Received:'));
    assert.equal(e.sha256, createHash('sha256').update(Buffer.from(received, 'latin1')).digest('hex'));

    assert.equal((await archive.search({ messageId: '<m1@client.test>' })).length, 1);
    assert.equal((await archive.search({ from: '@remote.test' })).length, 1);
    assert.equal((await archive.search({ since: new Date(Date.now() + 3_600_000) })).length, 0);
    assert.equal((await archive.search({ until: new Date(Date.now() + 3_600_000), since: new Date(Date.now() - 3_600_000) })).length, 2);

    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    assert.equal(await archive.export({ from: 'alice@example.com' }, out), 1);
    const mbox = Buffer.concat(chunks).toString('latin1');
    assert.match(mbox, /^From alice@example\.com \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
    assert.ok(mbox.includes('X-Envelope-To: <carol@example.org>\n'));
    assert.ok(mbox.includes('\n>From the start\n'), 'From_ lines in the body are quoted (mboxrd)');
    assert.ok(!mbox.includes('\r\n'));

    const log = await readAccessLog({ target: s3.target('audit') });
    assert.deepEqual(log.map((r) => [r.actor, r.command, r.results]), [
      ['auditor-1', 'search', 1],
      ['auditor-1', 'search', 1],
      ['auditor-1', 'search', 1],
      ['auditor-1', 'search', 0],
      ['auditor-1', 'search', 2],
      ['auditor-1', 'export', 1],
    ]);
    assert.deepEqual((log[5]!.query as Record<string, unknown>).from, 'alice@example.com');
  });

  it('GIVEN the archive bucket is missing WHEN messages are accepted THEN they wait in the spool with a backlog metric, retries go on, and once the bucket exists each ships exactly once', async () => {
    const s3 = await startS3([]);
    cleanups.push(() => s3.close());
    const h = await startSmtpHarness({ spec: { audit: { enabled: true, flushIntervalSeconds: 1 } }, daemon: { auditTarget: s3.target('late') } });
    cleanups.push(() => h.close());
    for (let i = 0; i < 5; i++) assert.match(await submit(h.port('smtp'), { from: 'ext@remote.test', rcpts: ['bob@example.com'], data: `Message-ID: <late-${i}@remote.test>\r\n\r\nbody ${i}` }), /^250 /);
    // Two failed attempts at least (1 s interval, then 1 s backoff).
    await waitFor(async () => (await metric(h, 'mailfleetd_journal_batches_total')) >= 0 && (await errors(h)) >= 2, 15_000);
    assert.equal(await metric(h, 'mailfleetd_journal_backlog_entries'), 5);
    assert.ok((await metric(h, 'mailfleetd_journal_backlog_oldest_seconds')) >= 1);

    const client = await s3Client(s3.target('late'));
    await client.send(new CreateBucketCommand({ Bucket: 'late' }));
    client.destroy();
    await waitFor(async () => (await metric(h, 'mailfleetd_journal_backlog_entries')) === 0, 20_000);
    const archive = new Archive({ target: s3.target('late'), spoolDirs: [nodeSpoolDir(h.dir, spoolNodeName(hostname()))] });
    cleanups.push(() => archive.close());
    const hits = await archive.search({});
    assert.deepEqual(hits.map((x) => x.entry.messageId).sort(), [0, 1, 2, 3, 4].map((i) => `late-${i}@remote.test`));
    assert.ok(hits.every((x) => x.location.kind === 's3'));
  });
});

async function errors(h: SmtpHarness): Promise<number> {
  const text = await h.daemon.ctx.metrics.registry.getSingleMetricAsString('mailfleetd_journal_batches_total');
  const line = text.split('\n').find((l) => l.includes('result="error"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function waitFor(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function flushUploader(h: SmtpHarness): Promise<void> {
  assert.ok(h.daemon.journal?.uploader, 'the daemon runs an uploader');
  await h.daemon.journal.uploader.flush();
}

describe('no 250 without a journal entry', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('GIVEN the journal spool cannot commit WHEN a message arrives THEN it is answered 451 4.3.0, never 250, and no entry is left behind', async () => {
    const h = await startSmtpHarness({ spec: { audit: { enabled: true } } });
    cleanups.push(() => h.close());
    const spool = nodeSpoolDir(h.dir, spoolNodeName(hostname()));
    // A file where ready/ should be: the commit's rename fails (permissions would not stop root).
    await rm(join(spool, 'ready'), { recursive: true });
    await writeFile(join(spool, 'ready'), '');
    const reply = await submit(h.port('smtp'), { from: 'ext@remote.test', rcpts: ['bob@example.com'], data: 'Subject: x\r\n\r\nbody' }).catch((e: Error) => e.message);
    assert.match(reply, /451 4\.3\.0/);
    assert.deepEqual(await readdir(join(spool, 'tmp')), []);
  });
});
