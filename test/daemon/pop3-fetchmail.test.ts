import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PASSWORD, run, startImapHarness, type Harness } from './mail-harness.js';

let h: Harness;
let work: string;
before(async () => {
  h = await startImapHarness({ users: ['erin@example.com'] });
  work = await mkdtemp(join(tmpdir(), 'mf-fetchmail-'));
});
after(async () => {
  await h?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

test('fetchmail: a whole POP3 session retrieves every message (same content) and deletes them at QUIT', async () => {
  const messages = ['From: a@b.c\r\nSubject: f1\r\n\r\nbody one\r\n', 'From: a@b.c\r\nSubject: f2\r\n\r\n.starts with a dot\r\nend\r\n'];
  for (const m of messages) await h.deliver('erin@example.com', m);
  const out = join(work, 'out');
  const rc = join(work, 'fetchmailrc');
  await writeFile(
    rc,
    `poll 127.0.0.1 protocol POP3 port ${h.pop3Port} auth password user "erin@example.com" password "${PASSWORD}" sslproto '' mda "/bin/sh -c 'cat > ${out}.$$'"\n`,
  );
  await chmod(rc, 0o700);
  const log = await run('fetchmail', ['-f', rc, '--nodetach', '--nosyslog', '-i', join(work, 'ids'), '-v'], undefined, 20_000, { ...process.env, HOME: work });
  assert.match(log, /2 messages for erin@example.com/, log);
  const got: string[] = [];
  for (const f of await readdir(work)) if (f.startsWith('out.')) got.push(await readFile(join(work, f), 'utf8'));
  // fetchmail hands the MDA LF line ends and prepends its own Received: header.
  const strip = (m: string) => m.replace(/^Received: [^]*?\n(?=\S)/, '');
  assert.deepEqual(got.map(strip).sort(), messages.map((m) => m.replace(/\r\n/g, '\n')).sort());
  const left = await readdir(join(h.maildir('erin@example.com'), 'cur'));
  assert.deepEqual(left, [], 'deleted at QUIT');
});
