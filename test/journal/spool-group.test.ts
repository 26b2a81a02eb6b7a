/**
 * Group commit of the journal spool (issue 22: one fsync per message cost 39 % of the SMTP rate): entries
 * committed together share one spool file, each still read back whole, and a group a crash left in tmp/
 * is recovered with every entry marked not acknowledged.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { entryTrailer } from '../../lib/journal/entry.js';
import { entriesInName, JournalSpool, UNACKED_SUFFIX } from '../../lib/journal/spool.js';
import type { JournalEnvelope, JournalStart } from '../../lib/journal/types.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function spoolDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'mf-spool-'));
  dirs.push(d);
  return d;
}

const start = (i: number): JournalStart => ({ protocol: 'smtp', clientIp: '192.0.2.1', sender: `s${i}@example.com`, recipients: [`r${i}@example.org`], transaction: `t${i}` });

async function drain(g: AsyncGenerator<Buffer>): Promise<void> {
  for await (const chunk of g) void chunk;
}

describe('journal spool group commit', () => {
  it('GIVEN 20 messages committed at once WHEN their commits resolve THEN they share fewer spool files than messages, and every entry reads back whole, in order, acknowledged', async () => {
    const dir = await spoolDir();
    const spool = await JournalSpool.open({ dir });
    const recs = Array.from({ length: 20 }, (_, i) => spool.begin(start(i)));
    await Promise.all(recs.map((r, i) => drain(r.tee([Buffer.from(`Message-ID: <m${i}@x>\r\n\r\nbody ${i}\r\n`)]))));
    const names = await Promise.all(recs.map((r) => r.commit()));
    const files = await spool.pending();
    assert.ok(files.length < 20, `${files.length} files for 20 commits`);
    assert.deepEqual(new Set(names), new Set(files));
    assert.equal(files.reduce((n, f) => n + entriesInName(f), 0), 20);
    const read = (await Promise.all(files.map((f) => spool.read(f)))).flat();
    assert.deepEqual(read.map((r) => r.entry.messageId).sort(), Array.from({ length: 20 }, (_, i) => `m${i}@x`).sort());
    for (const r of read) {
      assert.equal(r.entry.acknowledged, true);
      assert.equal(r.message.toString(), `Message-ID: <${r.entry.messageId}>\r\n\r\nbody ${r.entry.messageId!.slice(1, -2)}\r\n`);
    }
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    await spool.close();
  });

  it('GIVEN a whole group and a torn group left in tmp/ by a crash WHEN the spool opens THEN the whole one is in ready/ with every entry not acknowledged and the torn one is gone', async () => {
    const dir = await spoolDir();
    await JournalSpool.open({ dir });
    const entry = (i: number): Buffer => {
      const message = Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`);
      const env: JournalEnvelope = { v: 1, id: `id${i}`, time: new Date().toISOString(), node: 'n', ...start(i), size: message.length, sha256: '' };
      return Buffer.concat([message, entryTrailer(env)]);
    };
    await writeFile(join(dir, 'tmp', '1.a.n,N2'), Buffer.concat([entry(1), entry(2)]));
    const torn = Buffer.concat([entry(3), entry(4)]);
    await writeFile(join(dir, 'tmp', '2.b.n,N2'), torn.subarray(0, torn.length - 3));
    const spool = await JournalSpool.open({ dir });
    assert.deepEqual(await spool.pending(), [`1.a.n,N2${UNACKED_SUFFIX}`]);
    const read = await spool.read(`1.a.n,N2${UNACKED_SUFFIX}`);
    assert.deepEqual(read.map((r) => [r.entry.id, r.entry.acknowledged, r.message.toString()]), [
      ['id1', false, 'Subject: 1\r\n\r\nx\r\n'],
      ['id2', false, 'Subject: 2\r\n\r\nx\r\n'],
    ]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });
});
