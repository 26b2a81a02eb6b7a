import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { isMailfleetError } from '../../lib/errors.js';
import { addressParts, MaildirDelivery, maildirPath, UniqueNames } from '../../lib/store/maildir/index.js';

describe('Maildir paths', () => {
  it('GIVEN an address WHEN mapped THEN the layout is <root>/<domain>/<localpart>/Maildir, lower-cased, folders as .Name', () => {
    assert.equal(maildirPath('/r', 'Alice@Example.COM'), '/r/example.com/alice/Maildir');
    assert.equal(maildirPath('/r', 'alice@example.com', 'Sent'), '/r/example.com/alice/Maildir/.Sent');
    assert.equal(maildirPath('/r', 'alice@example.com', 'INBOX'), '/r/example.com/alice/Maildir');
    assert.equal(maildirPath('/r', 'o.brien+tag@example.com'), '/r/example.com/o.brien+tag/Maildir');
  });

  it('fails when an address part could leave the root or is not a plain name', () => {
    for (const bad of ['../x@example.com', '.x@example.com', 'a/b@example.com', 'a\\b@example.com', 'a\0@example.com', 'a b@example.com', `${'a'.repeat(65)}@example.com`, 'x@../etc', 'x@exa/mple.com', 'x@.example.com', 'x@', '@example.com', 'noat'])
      assert.throws(() => maildirPath('/r', bad), (e: unknown) => isMailfleetError(e, 'BAD_REQUEST'), bad);
    for (const bad of ['..', '.x', 'a/b', 'a..b', 'x.', 'a\nb'])
      assert.throws(() => maildirPath('/r', 'a@example.com', bad), (e: unknown) => isMailfleetError(e, 'BAD_REQUEST'), bad);
  });

  it('property: any accepted address maps strictly inside the root', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 40 }), (local, domain) => {
        let p: string;
        try {
          p = maildirPath('/root/mail', `${local}@${domain}`);
        } catch {
          return;
        }
        const { localPart, domain: d } = addressParts(`${local}@${domain}`);
        assert.equal(p, `/root/mail/${d}/${localPart}/Maildir`);
        assert.ok(!p.slice('/root/mail/'.length).split('/').some((c) => c === '..' || c === '.' || c === ''));
      }),
      { numRuns: 3000 },
    );
  });

  it('GIVEN many names in one process THEN they are unique and follow the Maildir spec', () => {
    const u = new UniqueNames('host/with:odd');
    const names = Array.from({ length: 5000 }, () => u.next());
    assert.equal(new Set(names).size, names.length);
    assert.match(names[0]!, /^\d+\.M\d+P\d+Q1R[0-9a-f]{8}\.host\\057with\\072odd$/);
  });
});

describe('Maildir delivery', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'mf-maildir-'));
    dirs.push(d);
    return d;
  };

  it('GIVEN three targets WHEN delivered from a stream THEN each new/ holds the whole message once (hard links), tmp/ is empty, the hook runs per target', async () => {
    const root = await tmp();
    const seen: string[] = [];
    const d = new MaildirDelivery({ root, onDelivered: (a, f, n) => seen.push(`${a}|${f ?? ''}|${n}`) });
    const body = Buffer.from(`Subject: t\r\n\r\n${'x'.repeat(200_000)}\r\n`);
    const r = await d.deliver([{ address: 'a@example.com' }, { address: 'b@example.com' }, { address: 'a@example.com', folder: 'Sent' }], Readable.from([body.subarray(0, 1000), body.subarray(1000)]));
    assert.equal(r.size, body.length);
    for (const p of ['example.com/a/Maildir', 'example.com/b/Maildir', 'example.com/a/Maildir/.Sent']) {
      const files = await readdir(join(root, p, 'new'));
      assert.equal(files.length, 1, p);
      assert.equal(files[0], `${r.ids[0]},S=${body.length}`);
      assert.deepEqual(await readFile(join(root, p, 'new', files[0]!)), body);
      assert.deepEqual(await readdir(join(root, p, 'tmp')), []);
      assert.deepEqual(await readdir(join(root, p, 'cur')), []);
    }
    assert.equal((await stat(join(root, 'example.com/a/Maildir/new', `${r.ids[0]},S=${body.length}`))).nlink, 3);
    assert.equal(seen.length, 3);
  });

  it('GIVEN the same mailbox twice WHEN delivered THEN it gets one copy', async () => {
    const root = await tmp();
    const d = new MaildirDelivery({ root });
    await d.deliver([{ address: 'a@example.com' }, { address: 'A@example.com' }], Buffer.from('x\r\n'));
    assert.equal((await readdir(join(root, 'example.com/a/Maildir/new'))).length, 1);
  });

  it('fails with STORE_UNAVAILABLE when the store cannot be written, leaving nothing behind; a failing stream leaves no file either', async () => {
    const root = await tmp();
    await writeFile(join(root, 'example.com'), 'not a directory');
    const d = new MaildirDelivery({ root });
    await assert.rejects(d.deliver([{ address: 'a@example.com' }], Buffer.from('x')), (e: unknown) => isMailfleetError(e, 'STORE_UNAVAILABLE'));
    const root2 = await tmp();
    const d2 = new MaildirDelivery({ root: root2 });
    const broken = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(d2.deliver([{ address: 'a@example.com' }], broken), (e: unknown) => isMailfleetError(e, 'STORE_UNAVAILABLE'));
    for (const sub of ['tmp', 'new', 'cur']) assert.deepEqual(await readdir(join(root2, 'example.com/a/Maildir', sub)), [], sub);
  });

  it('GIVEN 200 concurrent deliveries to one mailbox THEN all land (directory fsyncs are shared, none is lost)', async () => {
    const root = await tmp();
    const d = new MaildirDelivery({ root });
    await Promise.all(Array.from({ length: 200 }, (_, i) => d.deliver([{ address: 'a@example.com' }], Buffer.from(`m${i}\r\n`))));
    const files = await readdir(join(root, 'example.com/a/Maildir/new'));
    assert.equal(files.length, 200);
    const bodies = new Set(await Promise.all(files.map((f) => readFile(join(root, 'example.com/a/Maildir/new', f), 'utf8'))));
    assert.equal(bodies.size, 200);
  });
});
