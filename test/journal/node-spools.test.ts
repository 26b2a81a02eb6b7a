/**
 * Nodes sharing one data dir (cloud mail nodes keep it on the shared store) each journal into a spool of
 * their own: a restart of one never recovers another's entries in flight, no entry ships twice, and a
 * spool a node left behind (stopped, or killed: its lock stale) is adopted and shipped by another node.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { openDaemonJournal, type DaemonJournal } from '../../lib/journal/daemon.js';
import { journalSpoolDirs, nodeSpoolDir } from '../../lib/journal/node-spools.js';
import { s3Client } from '../../lib/journal/s3.js';
import { JournalSpool } from '../../lib/journal/spool.js';
import type { JournalStart } from '../../lib/journal/types.js';
import type { BatchIndex } from '../../lib/journal/uploader.js';
import { silentLogger } from '../../lib/log.js';
import { specSchema } from '../../lib/spec/schema.js';
import { startS3 } from './s3-harness.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const AUDIT = specSchema.shape.audit.parse({ enabled: true, flushIntervalSeconds: 1 });
const start = (id: string): JournalStart => ({ protocol: 'smtp', clientIp: '192.0.2.1', sender: 's@example.com', recipients: ['r@example.org'], transaction: id });

async function journalOne(j: { begin: JournalSpool['begin'] }, id: string): Promise<string> {
  const rec = j.begin(start(id));
  for await (const chunk of rec.tee([Buffer.from(`Message-ID: <${id}@x>\r\n\r\nbody\r\n`)])) void chunk;
  return rec.commit();
}

/** Every entry's Message-ID in the bucket's batch indexes, with repeats. */
async function shipped(target: Parameters<typeof s3Client>[0]): Promise<string[]> {
  const c = await s3Client(target);
  try {
    const list = (await c.send(new ListObjectsV2Command({ Bucket: target.bucket }))).Contents ?? [];
    const ids: string[] = [];
    for (const o of list.filter((x) => x.Key!.endsWith('.index.json'))) {
      const body = await (await c.send(new GetObjectCommand({ Bucket: target.bucket, Key: o.Key! }))).Body!.transformToString();
      ids.push(...(JSON.parse(body) as BatchIndex).entries.map((e) => e.messageId!));
    }
    return ids.sort();
  } finally {
    c.destroy();
  }
}

async function waitFor(what: () => Promise<boolean>, ms: number, label: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > until) throw new Error(`timed out: ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('one journal spool per node under a shared data dir', () => {
  it('GIVEN two nodes on one data dir WHEN one restarts while the other has an entry in flight THEN that entry stays the other node\'s, and every entry ships exactly once', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mf-nodespool-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const s3 = await startS3(['audit']);
    cleanups.push(() => s3.close());
    const target = s3.target('audit');
    const open = (node: string) => openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, target, node, sweepIntervalMs: 200 });
    let a: DaemonJournal = await open('node-a');
    const b = await open('node-b');
    await journalOne(a.spool, 'a1');
    await journalOne(b.spool, 'b1');
    // node-b is writing an entry (in its tmp/, not committed) while node-a restarts.
    const inFlight = b.spool.begin(start('b2'));
    for await (const chunk of inFlight.tee([Buffer.from('Message-ID: <b2@x>\r\n\r\nbody\r\n')])) void chunk;
    await a.close();
    a = await open('node-a');
    await inFlight.commit(); // with one shared spool, node-a's start had moved it to ready/ as not acknowledged: the rename here failed
    await journalOne(a.spool, 'a2');
    await waitFor(async () => (await shipped(target)).length >= 4, 20_000, 'four entries shipped');
    await new Promise((r) => setTimeout(r, 1500)); // a second flush and a sweep: nothing more may ship
    assert.deepEqual(await shipped(target), ['a1@x', 'a2@x', 'b1@x', 'b2@x']);
    const b2 = (await Promise.all((await b.spool.pending()).map((n) => b.spool.read(n)))).flat();
    assert.deepEqual(b2, [], 'node-b shipped its own entries');
    await a.close();
    await b.close();
    assert.deepEqual(journalSpoolDirs(dataDir), [nodeSpoolDir(dataDir, 'node-a'), nodeSpoolDir(dataDir, 'node-b')]);
  });

  it('GIVEN a node stopped with entries unshipped (no bucket then) or killed (its lock left by a dead process) THEN another node adopts its spool, ships it, and removes it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mf-nodespool-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const s3 = await startS3(['audit']);
    cleanups.push(() => s3.close());
    const target = s3.target('audit');
    // node-old ran without a bucket and stopped cleanly: its entries wait in its spool, its lock is free.
    const old = await openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, node: 'node-old' });
    await journalOne(old.spool, 'o1');
    await old.close();
    // node-dead was killed: its spool and a lock naming a process that no longer runs on this host.
    const dead = await JournalSpool.open({ dir: nodeSpoolDir(dataDir, 'node-dead') });
    await journalOne(dead, 'd1');
    await dead.close();
    await writeFile(join(dataDir, 'journal', 'nodes', 'node-dead.lock'), `${(await import('node:os')).hostname()} 2147483646 ${Date.now()}\n`);
    // A spool of the layout before per-node folders.
    const legacy = await JournalSpool.open({ dir: join(dataDir, 'journal') });
    await journalOne(legacy, 'l1');
    await legacy.close();

    const live = await openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, target, node: 'node-live', sweepIntervalMs: 200 });
    cleanups.push(() => live.close());
    await waitFor(async () => (await shipped(target)).length >= 3, 20_000, 'the left-behind entries shipped');
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(await shipped(target), ['d1@x', 'l1@x', 'o1@x']);
    assert.equal(existsSync(nodeSpoolDir(dataDir, 'node-old')), false);
    assert.equal(existsSync(nodeSpoolDir(dataDir, 'node-dead')), false);
    assert.deepEqual(await readdir(join(dataDir, 'journal', 'ready')).catch(() => []), []);
    assert.deepEqual(journalSpoolDirs(dataDir), [nodeSpoolDir(dataDir, 'node-live')]);
  });

  it('GIVEN a killed node\'s spool adopted by another node THEN the archive keeps the accepting node\'s name (key and index) and names the shipper apart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mf-nodespool-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const s3 = await startS3(['audit']);
    cleanups.push(() => s3.close());
    const target = s3.target('audit');
    // node-dead journaled while its way to the bucket was cut, then was killed (its lock names a dead process).
    const dead = await openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, node: 'node-dead' });
    await journalOne(dead.spool, 'd1');
    await dead.spool.close();
    await writeFile(join(dataDir, 'journal', 'nodes', 'node-dead.lock'), `${(await import('node:os')).hostname()} 2147483646 ${Date.now()}\n`);
    const live = await openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, target, node: 'node-live', sweepIntervalMs: 200 });
    cleanups.push(() => live.close());
    await waitFor(async () => (await shipped(target)).length >= 1, 20_000, 'the adopted entry shipped');
    const c = await s3Client(target);
    try {
      const keys = ((await c.send(new ListObjectsV2Command({ Bucket: target.bucket }))).Contents ?? []).map((o) => o.Key!);
      const indexKey = keys.find((k) => k.endsWith('.index.json'))!;
      const index = JSON.parse(await (await c.send(new GetObjectCommand({ Bucket: target.bucket, Key: indexKey }))).Body!.transformToString()) as BatchIndex;
      // Before: the adopter's spool had its own host name, so key, index and the entry said the shipper.
      assert.match(indexKey, /\/node-dead\//);
      assert.equal(index.node, 'node-dead');
      assert.equal(index.shippedBy, 'node-live');
      assert.deepEqual(index.entries.map((e) => e.node), ['node-dead']);
    } finally {
      c.destroy();
    }
  });

  it('GIVEN another node\'s spool whose lock is held and fresh THEN it is left alone', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mf-nodespool-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const s3 = await startS3(['audit']);
    cleanups.push(() => s3.close());
    const target = s3.target('audit');
    // A live node elsewhere (another host name in its lock, refreshed now) without a bucket of its own.
    await mkdir(nodeSpoolDir(dataDir, 'node-other'), { recursive: true });
    const other = await JournalSpool.open({ dir: nodeSpoolDir(dataDir, 'node-other') });
    await journalOne(other, 'x1');
    await writeFile(join(dataDir, 'journal', 'nodes', 'node-other.lock'), `some-other-host 4242 ${Date.now()}\n`);
    const live = await openDaemonJournal(AUDIT, { dataDir, logger: silentLogger, target, node: 'node-live', sweepIntervalMs: 200 });
    cleanups.push(() => live.close());
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await shipped(target), []);
    assert.equal((await other.pending()).length, 1);
    await other.close();
  });
});
