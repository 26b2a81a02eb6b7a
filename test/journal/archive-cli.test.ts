/**
 * `mailfleet archive search|export` as an auditor runs it, on a spool (entries not yet shipped, no bucket):
 * the filters, the mbox on stdout, and one access-log line per run.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalSpool } from '../../lib/journal/spool.js';
import { run } from '../daemon/mail-harness.js';

async function journal(spool: JournalSpool, sender: string, recipients: string[], text: string): Promise<void> {
  const r = spool.begin({ protocol: 'smtp', clientIp: '192.0.2.7', sender, recipients, transaction: 't.1' });
  for await (const _ of r.tee([Buffer.from(text)])) void _;
  await r.commit();
}

describe('mailfleet archive (CLI)', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('GIVEN two spooled entries WHEN an auditor searches by Bcc recipient and exports by sender THEN one row each, an mbox on stdout, and two access-log lines', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mf-archive-cli-'));
    dirs.push(dir);
    const spool = await JournalSpool.open({ dir, fsync: false });
    await journal(spool, 'a@example.com', ['b@example.com', 'hidden@example.org'], 'Message-ID: <one@x>\r\nSubject: one\r\n\r\nbody one\r\n');
    await journal(spool, 'c@example.net', ['b@example.com'], 'Message-ID: <two@x>\r\nSubject: two\r\n\r\nbody two\r\n');
    const cli = (...a: string[]) => run(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'archive', ...a, '--spool', dir, '-c', join(dir, 'none.yaml')], undefined, 60_000, { ...process.env, MAILFLEET_AUDIT_BUCKET: '' });
    const found = (await cli('search', '--to', 'hidden@example.org', '--json')).trim().split('\n');
    assert.equal(found.length, 1);
    const e = JSON.parse(found[0]!) as { sender: string; messageId: string; location: string; acknowledged: boolean };
    assert.deepEqual([e.sender, e.messageId, e.location, e.acknowledged], ['a@example.com', 'one@x', 'spool', true]);
    const mbox = await cli('export', '--from', '@example.net');
    assert.match(mbox, /^From c@example\.net /);
    assert.ok(mbox.includes('Subject: two\n') && !mbox.includes('Subject: one'));
    const log = (await readFile(join(dir, 'access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { command: string; results: number });
    assert.deepEqual(log.map((l) => [l.command, l.results]), [['search', 1], ['export', 1]]);
  });
});
