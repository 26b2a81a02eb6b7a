/**
 * The journal under SIGKILL, like test/daemon/smtp-durability.test.ts: a daemon with audit on, shipping to
 * s3rver in small batches, killed at a random moment during SMTP load once batches are being shipped, twice. Then:
 *   - every 250'd message is in the mailbox once and in the journal (bucket or spool) as acknowledged;
 *   - no entry is in two batches; an entry both shipped and still spooled is in a pending batch manifest
 *     (it will be shipped again under the same keys);
 *   - every acknowledged entry is a message stored in the mailbox; entries not 250'd are either marked
 *     not acknowledged (recovered from tmp/) or were committed in the instant before the 250 went out
 *     (at most one per session per kill);
 * and after one more start the spool drains: each entry is in the bucket exactly once.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSpoolDir, spoolNodeName } from '../../lib/journal/node-spools.js';
import { createInterface } from 'node:readline';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { JournalSpool } from '../../lib/journal/spool.js';
import { s3Client } from '../../lib/journal/s3.js';
import type { BatchIndex } from '../../lib/journal/uploader.js';
import { LOCAL_S3_CREDENTIALS } from '../../lib/journal/local-s3.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { taggedSmtpLoad, usersFileText } from '../daemon/smtp-harness.js';
import { startS3 } from './s3-harness.js';

const SESSIONS = 4;
const ROUNDS = 2;

interface Found {
  readonly testId: string;
  readonly acknowledged: boolean;
  readonly bodySha: string;
}

/** The X-Test-Id and the body digest of a journaled message. */
function identify(message: Buffer): { testId: string; sha: string; bodySha: string } {
  const text = message.toString('latin1');
  const testId = /X-Test-Id: (\S+)/.exec(text)![1]!;
  const sha = /X-Body-Sha256: (\S+)/.exec(text)![1]!;
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { testId, sha, bodySha: createHash('sha256').update(body, 'latin1').digest('hex') };
}

describe('audit journal crash safety', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('GIVEN a delivery stream with the journal on WHEN the daemon is SIGKILLed at random moments THEN every 250 has exactly one acknowledged entry and every entry is a stored message or marked not acknowledged', async () => {
    const s3 = await startS3(['audit']);
    cleanups.push(() => s3.close());
    const dir = await mkdtemp(join(tmpdir(), 'mf-jcrash-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'users.yaml'), await usersFileText());
    const spec = specSchema.parse({
      platform: { name: 'crash', hostname: 'mx.test' },
      domains: [{ name: 'example.com' }],
      directory: { kind: 'static', file: 'users.yaml' },
      audit: { enabled: true, flushIntervalSeconds: 1, batchMaxEntries: 5 },
    });
    const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides: Object.fromEntries(PROTOCOLS.map((p) => [p, 0])), adminPort: 0 });
    await writeFile(join(dir, 'mailfleetd.json'), JSON.stringify(config));
    const env = {
      ...process.env,
      MAILFLEET_LOG_LEVEL: 'silent',
      MAILFLEET_AUDIT_BUCKET: 'audit',
      MAILFLEET_AUDIT_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: LOCAL_S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_S3_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    };
    const startDaemon = async (): Promise<{ child: ChildProcess; port: number }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'serve', '--daemon-config', join(dir, 'mailfleetd.json'), '--data-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'], env });
      cleanups.push(async () => void child.kill('SIGKILL'));
      const ready = await new Promise<{ sockets: Array<{ protocol: string; port: number }> }>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout! });
        rl.on('line', (l) => {
          if (l.includes('"ready":true')) resolve(JSON.parse(l) as { sockets: Array<{ protocol: string; port: number }> });
        });
        child.once('exit', (code) => reject(new Error(`daemon exited ${code} before ready`)));
      });
      return { child, port: ready.sockets.find((s) => s.protocol === 'smtp')!.port };
    };
    const exited = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));

    const client = await s3Client(s3.target('audit'));
    cleanups.push(async () => client.destroy());
    const indexCount = async () => ((await client.send(new ListObjectsV2Command({ Bucket: 'audit', Prefix: 'journal/' }))).Contents ?? []).filter((o) => o.Key!.endsWith('.index.json')).length;
    const acked = new Map<string, string>();
    let seq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { child, port } = await startDaemon();
      const load = taggedSmtpLoad(port, {
        sessions: SESSIONS,
        nextId: () => `m${round}-${++seq}`,
        onAck: (id, sha) => acked.set(id, sha),
        messageId: true,
      });
      // Kill while batches are being shipped: after this round's first one landed, at a random moment.
      const before = await indexCount();
      for (const until = Date.now() + 20_000; (await indexCount()) === before && Date.now() < until; ) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      child.kill('SIGKILL');
      await load.stop();
      await exited(child);
    }
    process.stderr.write(`journal crash test: ${acked.size} acknowledged\n`);
    assert.ok(acked.size >= 20, `only ${acked.size} messages acknowledged: the stream did not run`);

    // The mailbox: each 250'd message once (the Maildir guarantee, unchanged with the journal in front).
    const maildir = join(dir, 'mail', 'example.com', 'bob', 'Maildir');
    const stored = new Map<string, number>();
    for (const sub of ['new', 'cur']) for (const f of await readdir(join(maildir, sub))) {
      const id = /X-Test-Id: (\S+)/.exec(await readFile(join(maildir, sub, f), 'latin1'))![1]!;
      stored.set(id, (stored.get(id) ?? 0) + 1);
    }
    for (const id of acked.keys()) assert.equal(stored.get(id), 1, `acknowledged ${id} stored ${stored.get(id) ?? 0} times`);

    const bucketEntries = async (): Promise<Map<string, Found[]>> => {
      const out = new Map<string, Found[]>();
      const list = await client.send(new ListObjectsV2Command({ Bucket: 'audit', Prefix: 'journal/' }));
      for (const o of list.Contents ?? []) {
        if (!o.Key!.endsWith('.index.json')) continue;
        const index = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: 'audit', Key: o.Key! }))).Body!.transformToString()) as BatchIndex;
        const data = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'audit', Key: index.dataKey }))).Body!.transformToByteArray());
        for (const e of index.entries) {
          const m = identify(data.subarray(e.offset, e.offset + e.length));
          assert.equal(createHash('sha256').update(data.subarray(e.offset, e.offset + e.length)).digest('hex'), e.sha256, `${e.id}: bytes match the envelope digest`);
          assert.equal(m.bodySha, m.sha, `${m.testId}: journaled body intact`);
          out.set(m.testId, [...(out.get(m.testId) ?? []), { testId: m.testId, acknowledged: e.acknowledged, bodySha: m.bodySha }]);
        }
      }
      return out;
    };

    // The spool as the next start sees it: tmp/ leftovers become ready/<id>,U (JournalSpool.open recovers).
    const spool = await JournalSpool.open({ dir: nodeSpoolDir(dir, spoolNodeName(hostname())) });
    const manifests = new Set<string>();
    for (const m of await readdir(spool.batches)) for (const n of JSON.parse(await readFile(join(spool.batches, m), 'utf8')) as string[]) manifests.add(n);
    const spooled = new Map<string, { name: string; acknowledged: boolean }>();
    for (const name of await spool.pending()) {
      for (const { entry, message } of await spool.read(name)) {
        const m = identify(message);
        assert.equal(m.bodySha, m.sha, `${name}: journaled body intact`);
        assert.ok(!spooled.has(m.testId), `${m.testId} twice in the spool`);
        spooled.set(m.testId, { name, acknowledged: entry.acknowledged });
      }
    }
    const shipped = await bucketEntries();
    assert.ok(shipped.size > 0, 'nothing was shipped before the kills');
    for (const [id, list] of shipped) assert.equal(list.length, 1, `${id} is in ${list.length} batches`);
    process.stderr.write(`journal crash test: ${shipped.size} shipped, ${spooled.size} spooled (${[...spooled.values()].filter((x) => !x.acknowledged).length} not acknowledged), ${manifests.size} in pending batches\n`);
    for (const [id, s] of spooled) if (shipped.has(id)) assert.ok(manifests.has(s.name), `${id} shipped and still spooled, but in no pending batch`);

    const journaled = (id: string) => shipped.get(id)?.[0] ?? spooled.get(id);
    for (const id of acked.keys()) assert.equal(journaled(id)?.acknowledged, true, `250'd ${id} has no acknowledged journal entry`);
    let committedUnacked = 0;
    for (const id of new Set([...shipped.keys(), ...spooled.keys()])) {
      const e = journaled(id)!;
      if (!e.acknowledged) continue;
      assert.equal(stored.get(id), 1, `journal entry ${id} is acknowledged but not in the mailbox`);
      if (!acked.has(id)) committedUnacked++;
    }
    assert.ok(committedUnacked <= SESSIONS * ROUNDS, `${committedUnacked} committed entries without a 250: more than one per session per kill`);

    // One more start: pending batches and recovered entries ship; each entry ends in the bucket exactly once.
    const { child } = await startDaemon();
    const until = Date.now() + 30_000;
    while ((await readdir(spool.ready)).length > 0 || (await readdir(spool.batches)).length > 0) {
      assert.ok(Date.now() < until, 'the spool did not drain');
      await new Promise((r) => setTimeout(r, 200));
    }
    child.kill('SIGTERM');
    await exited(child);
    const final = await bucketEntries();
    for (const [id, list] of final) assert.equal(list.length, 1, `${id} is in ${list.length} batches`);
    for (const id of acked.keys()) assert.equal(final.get(id)?.[0]?.acknowledged, true, `250'd ${id} not in the bucket as acknowledged`);
    for (const id of spooled.keys()) assert.ok(final.has(id), `spooled ${id} never shipped`);
  });
});
