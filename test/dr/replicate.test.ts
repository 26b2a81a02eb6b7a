import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Replicator } from '../../lib/dr/replicate.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'mf-repl-'));
  roots.push(root);
  const src = join(root, 'primary');
  const dst = join(root, 'dr');
  const md = join(src, 'mail', 'example.com', 'alice', 'Maildir');
  for (const d of ['cur', 'new', 'tmp', '.Sent/cur', '.Sent/new', '.Sent/tmp'])
    mkdirSync(join(md, d), { recursive: true });
  mkdirSync(dst, { recursive: true });
  return { src, dst, md, drMd: join(dst, 'mail', 'example.com', 'alice', 'Maildir') };
}

describe('local replication (rsync)', () => {
  it('copies messages, folders and index files; never tmp/ or locks; carries state files over', async () => {
    const { src, dst, md, drMd } = setup();
    writeFileSync(join(md, 'new', '1.a.host'), 'Subject: one\r\n\r\nx');
    writeFileSync(join(md, 'cur', '2.b.host:2,S'), 'Subject: two\r\n\r\nx');
    writeFileSync(join(md, '.Sent', 'cur', '3.c.host:2,'), 'Subject: three\r\n\r\nx');
    writeFileSync(join(md, 'tmp', '4.half.host'), 'Subject: half');
    writeFileSync(join(md, 'mailfleet-uidlist'), 'uids');
    writeFileSync(join(md, 'mailfleet-uidlist.lock'), 'pid');
    mkdirSync(join(src, 'state'), { recursive: true });
    writeFileSync(join(src, 'state', 'limits.json'), '{"imap":{"perUser":3}}');
    const r = new Replicator({
      source: src,
      target: dst,
      trees: ['mail'],
      files: ['state/limits.json', 'users.yaml'],
    });
    const t = await r.checkpoint();
    assert.equal(r.watermark, t);
    assert.equal(readFileSync(join(drMd, 'new', '1.a.host'), 'utf8'), 'Subject: one\r\n\r\nx');
    assert.ok(existsSync(join(drMd, 'cur', '2.b.host:2,S')));
    assert.ok(existsSync(join(drMd, '.Sent', 'cur', '3.c.host:2,')));
    assert.equal(readFileSync(join(drMd, 'mailfleet-uidlist'), 'utf8'), 'uids');
    assert.ok(existsSync(join(drMd, 'tmp')), 'tmp/ exists for DR deliveries');
    assert.equal(existsSync(join(drMd, 'tmp', '4.half.host')), false, 'never a half-written message');
    assert.equal(existsSync(join(drMd, 'mailfleet-uidlist.lock')), false);
    assert.equal(readFileSync(join(dst, 'state', 'limits.json'), 'utf8'), '{"imap":{"perUser":3}}');
  });

  it('mirrors moves and expunges on the next cycle, and a user named "tmp" is still replicated', async () => {
    const { src, dst, md, drMd } = setup();
    writeFileSync(join(md, 'new', '1.a.host'), 'a');
    writeFileSync(join(md, 'new', '2.b.host'), 'b');
    const tmpUser = join(src, 'mail', 'example.com', 'tmp', 'Maildir', 'new');
    mkdirSync(tmpUser, { recursive: true });
    writeFileSync(join(tmpUser, '9.z.host'), 'z');
    const r = new Replicator({ source: src, target: dst, trees: ['mail'] });
    await r.checkpoint();
    renameSync(join(md, 'new', '1.a.host'), join(md, 'cur', '1.a.host:2,S'));
    unlinkSync(join(md, 'new', '2.b.host'));
    await r.checkpoint();
    assert.deepEqual(
      [
        existsSync(join(drMd, 'new', '1.a.host')),
        existsSync(join(drMd, 'cur', '1.a.host:2,S')),
        existsSync(join(drMd, 'new', '2.b.host')),
      ],
      [false, true, false],
    );
    assert.ok(existsSync(join(dst, 'mail', 'example.com', 'tmp', 'Maildir', 'new', '9.z.host')));
  });

  it('runs continuously; cut() stops at once and no later write reaches DR', async () => {
    const { src, dst, md, drMd } = setup();
    const r = new Replicator({ source: src, target: dst, trees: ['mail'], intervalMs: 20 });
    r.start();
    writeFileSync(join(md, 'new', '1.a.host'), 'a');
    const written = Date.now();
    const deadline = written + 5000;
    // The watermark passing the write means a whole cycle that started after it completed.
    while ((r.watermark ?? 0) <= written && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    assert.ok((r.watermark ?? 0) > written, 'a cycle completed within 5 s');
    assert.ok(existsSync(join(drMd, 'new', '1.a.host')));
    await r.cut();
    writeFileSync(join(md, 'new', '2.b.host'), 'b');
    await new Promise((res) => setTimeout(res, 150));
    assert.equal(existsSync(join(drMd, 'new', '2.b.host')), false);
    assert.equal(r.error, undefined);
  });
});
