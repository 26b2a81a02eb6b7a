/**
 * The storage the fleet shares: a real replica-3-arbiter GlusterFS volume survives one brick down,
 * refuses writes with two down (quorum), and heals back to zero pending entries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGlusterVolume, type GlusterVolume } from '../harness/gluster.js';

describe('GlusterFS replica 3 arbiter 1 volume', { timeout: 180_000 }, () => {
  let vol: GlusterVolume;
  before(async () => {
    vol = await startGlusterVolume('mfvoltest');
  });
  after(async () => {
    await vol?.stop();
  });

  it('keeps writing with one data brick down, then heals to 0 with every file intact', async () => {
    const dir = join(vol.mountPoint, 'stream');
    mkdirSync(dir);
    const written = new Map<string, string>();
    const write = (i: number) => {
      const body = `message ${i} ${'x'.repeat(i * 13)}`;
      writeFileSync(join(dir, `m${i}`), body);
      written.set(`m${i}`, createHash('sha256').update(body).digest('hex'));
    };
    for (let i = 0; i < 20; i++) write(i);
    await vol.killBrick(0);
    assert.equal((await vol.bricks())[0]!.online, false);
    for (let i = 20; i < 60; i++) write(i);
    assert.ok((await vol.pendingHeals()) > 0, 'writes with a brick down leave entries to heal');
    await vol.restartBricks();
    await vol.waitHealed(60_000);
    assert.equal(await vol.pendingHeals(), 0);
    const names = readdirSync(dir).sort();
    assert.equal(names.length, 60);
    for (const [name, hash] of written)
      assert.equal(createHash('sha256').update(readFileSync(join(dir, name))).digest('hex'), hash, name);
  });

  it('refuses writes with two bricks down (quorum lost) instead of pretending', async () => {
    await vol.killBrick(0);
    await vol.killBrick(1);
    assert.throws(() => writeFileSync(join(vol.mountPoint, 'no-quorum'), 'x'), /ENOTCONN|EROFS|EIO/);
    await vol.restartBricks();
    for (let i = 0; i < 40; i++) {
      try {
        writeFileSync(join(vol.mountPoint, 'after-quorum'), 'back');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.equal(readFileSync(join(vol.mountPoint, 'after-quorum'), 'utf8'), 'back');
  });
});
