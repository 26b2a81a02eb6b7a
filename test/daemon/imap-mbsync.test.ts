import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PASSWORD, run, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
let work: string;
before(async () => {
  h = await startImapHarness();
  work = await mkdtemp(join(tmpdir(), 'mf-mbsync-'));
});
after(async () => {
  await h?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    // Lock files come and go: the daemon keeps a folder's lock a moment after a change (folderLockHoldMs).
    if (e.isFile() && !e.name.endsWith('.lock')) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length));
  }
  return out.sort();
}

test('mbsync: a full sync copies every folder (same content; isync writes LF and X-TUID), a re-sync changes nothing on either side', async () => {
  const messages = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\nFrom: a@b.c\r\n\r\nsecond\r\n.dot\r\n'];
  for (const m of messages) await h.deliver('alice@example.com', m);
  const local = join(work, 'local');
  await mkdir(local, { recursive: true });
  const rc = join(work, 'mbsyncrc');
  await writeFile(
    rc,
    [
      'IMAPAccount acc',
      'Host 127.0.0.1',
      `Port ${h.port}`,
      'User alice@example.com',
      `Pass ${PASSWORD}`,
      'SSLType None',
      'AuthMechs LOGIN',
      '',
      'IMAPStore remote',
      'Account acc',
      '',
      'MaildirStore local',
      `Path ${local}/`,
      `Inbox ${local}/INBOX`,
      'SubFolders Verbatim',
      '',
      'Channel ch',
      'Far :remote:',
      'Near :local:',
      'Patterns *',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
  );
  const first = await run('mbsync', ['-V', '-c', rc, '-a'], undefined, 20_000);
  assert.match(first, /far side: 2 messages/);
  const got: string[] = [];
  for (const d of ['new', 'cur']) {
    for (const f of await readdir(join(local, 'INBOX', d))) got.push((await readFile(join(local, 'INBOX', d, f), 'utf8')).replace(/^X-TUID: .*\n/m, ''));
  }
  // mbsync stores Maildir files with LF line ends and its own X-TUID header; content otherwise identical.
  assert.deepEqual(got.sort(), messages.map((m) => m.replace(/\r\n/g, '\n')).sort());
  for (const f of ['Drafts', 'Sent', 'Trash', 'Junk']) assert.ok((await readdir(local)).includes(f), `${f} created locally`);

  const serverBefore = await files(h.maildir('alice@example.com'));
  const listBefore = await readFile(join(h.maildir('alice@example.com'), 'mailfleet-uidlist'), 'utf8');
  const localBefore = await files(local);
  const second = await run('mbsync', ['-V', '-c', rc, '-a'], undefined, 20_000);
  assert.doesNotMatch(second, /Creating|no UIDVALIDITY|UIDVALIDITY.*changed/, second);
  assert.match(second, /far side: 2 messages[^]*near side: 2 messages|near side: 2 messages[^]*far side: 2 messages/, second);
  assert.deepEqual(await files(local), localBefore, 'local side unchanged');
  assert.deepEqual(await files(h.maildir('alice@example.com')), serverBefore, 'server side unchanged');
  assert.equal(await readFile(join(h.maildir('alice@example.com'), 'mailfleet-uidlist'), 'utf8'), listBefore, 'UIDs and flags unchanged');
});
