/**
 * Two `mailfleet serve` processes on one real GlusterFS replica-3-arbiter volume (the fleet's shared
 * storage, sharing one redis-server as the spec's `redis`): deliveries and IMAP through both keep one UID
 * list; a delivery on node A reaches an IDLE session on node B within 1 s through Redis pub/sub, and
 * within the poll interval while Redis is down; one brick killed mid-stream loses nothing and heals to 0;
 * two bricks down answer 451 4.3.0 / NO [UNAVAILABLE] and store nothing.
 *
 * Only one volume can exist per machine (glusterd's port 24007 is fixed), so every GlusterFS test lives
 * in this file and shares one volume.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { glusterUnavailable, startGlusterVolume, type GlusterVolume } from '../harness/gluster.js';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import { configFor, RawClient, startProcess, tempDir, type TestDaemon } from '../ops/fixture.js';
import { deliver, imapCmd, imapLogin, messagesOnDisk, uids } from './fleet-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('two daemons on one GlusterFS replica-3-arbiter volume', { timeout: 150_000 }, () => {
  let vol: GlusterVolume;
  let mailRoot: string;
  const nodes: TestDaemon[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let redis: RedisServer;
  const POLL_S = 3;

  before(async () => {
    const missing = glusterUnavailable();
    if (missing) throw new Error(`GlusterFS fault suite cannot run here: ${missing}`);
    vol = await startGlusterVolume('mfvol');
    mailRoot = join(vol.mountPoint, 'mail');
    mkdirSync(mailRoot);
    redis = await startRedis();
    // perIp raised: with Redis the per-IP cap is fleet-wide, and the tests send 30 parallel deliveries from 127.0.0.1.
    const config = configFor(
      { imap: { allowInsecureAuth: true, authFailureDelayMs: 10, pollIntervalSeconds: POLL_S }, limits: { smtp: { perIp: 100 } } },
      redis.url,
    );
    for (let i = 0; i < 2; i++) {
      const t = await tempDir(`mf-gluster-node${i}-`);
      cleanups.push(t.cleanup);
      // The daemon's mail root is <dataDir>/mail: point it at the shared volume.
      symlinkSync(mailRoot, join(t.dir, 'mail'));
      nodes.push(await startProcess(t.dir, config));
    }
  });

  after(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await redis?.stop();
    await vol?.stop();
    for (const c of cleanups) await c();
  });

  it('GIVEN deliveries through both nodes THEN IMAP on both sees one UID list, no duplicate or lost UID', async () => {
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => deliver(nodes[i % 2]!.port('smtp'), 'alice@example.com', `both-${i}`)),
    );
    assert.deepEqual(replies.filter((r) => !r.startsWith('250')), [], 'every delivery acknowledged');
    const seen: number[][] = [];
    for (const n of nodes) {
      const c = await imapLogin(n.port('imap'), 'alice@example.com');
      assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
      seen.push(await uids(c));
      c.close();
    }
    assert.equal(seen[0]!.length, 30);
    assert.equal(new Set(seen[0]).size, 30, 'no duplicate UID');
    assert.deepEqual(seen[1], seen[0], 'both nodes see the same UIDs');
    const disk = messagesOnDisk(mailRoot).subjects.filter((s) => s.startsWith('both-'));
    assert.equal(disk.length, 30);
    assert.equal(new Set(disk).size, 30, 'each message stored once');
  });

  it('GIVEN an IDLE session on node B WHEN node A delivers THEN B sees EXISTS within 1 s via Redis, and within the poll interval while Redis is down', async () => {
    const c = await imapLogin(nodes[1]!.port('imap'), 'bob@example.com');
    assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
    let from = c.lines.length;
    await c.send('i1 IDLE', /^\+ /);
    let t0 = Date.now();
    assert.match(await deliver(nodes[0]!.port('smtp'), 'bob@example.com', 'cross-idle-redis'), /^250/);
    await c.waitFor(/^\* 1 EXISTS/, 5000, from);
    let ms = Date.now() - t0;
    assert.ok(ms < 1000, `EXISTS after ${ms} ms through Redis (poll interval ${POLL_S} s)`);

    await redis.stop();
    from = c.lines.length;
    t0 = Date.now();
    assert.match(await deliver(nodes[0]!.port('smtp'), 'bob@example.com', 'cross-idle-poll'), /^250/);
    await c.waitFor(/^\* 2 EXISTS/, (POLL_S + 5) * 1000, from);
    ms = Date.now() - t0;
    assert.ok(ms < POLL_S * 1000 + 1500, `EXISTS after ${ms} ms with Redis down (poll interval ${POLL_S} s)`);
    await c.send('DONE', /^i1 OK/);
    c.close();
    redis = await startRedis(redis.port); // the rest of the file runs with Redis, as a fleet would
  });

  it('GIVEN a delivery stream through both nodes WHEN one data brick is killed THEN nothing acknowledged is lost and heal reaches 0', async () => {
    const acked: string[] = [];
    const failed: string[] = [];
    let killed = false;
    const stream = (async () => {
      for (let i = 0; i < 40; i++) {
        const subject = `brick-${i}`;
        const r = await deliver(nodes[i % 2]!.port('smtp'), 'carol@example.org', subject);
        (r.startsWith('250') ? acked : failed).push(subject);
        if (i === 10) {
          await vol.killBrick(0);
          killed = true;
        }
      }
    })();
    await stream;
    assert.ok(killed);
    assert.equal((await vol.bricks())[0]!.online, false);
    assert.deepEqual(failed, [], 'one brick down must not fail deliveries');
    // Reads continue with the brick down, on both nodes.
    for (const n of nodes) {
      const c = await imapLogin(n.port('imap'), 'carol@example.org');
      assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
      assert.equal((await uids(c)).length, 40);
      const f = await imapCmd(c, 'UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
      assert.match(f.status, /^OK/);
      c.close();
    }
    assert.ok((await vol.pendingHeals()) > 0, 'writes with a brick down leave entries to heal');
    await vol.restartBricks();
    await vol.waitHealed(60_000);
    assert.equal(await vol.pendingHeals(), 0);
    const disk = messagesOnDisk(mailRoot).subjects.filter((s) => s.startsWith('brick-'));
    assert.deepEqual([...disk].sort(), [...acked].sort(), 'on disk == acknowledged, once each');
  });

  it('keeps plain file writes intact through a brick kill and heal (volume sanity)', async () => {
    const dir = join(vol.mountPoint, 'stream');
    mkdirSync(dir);
    const written = new Map<string, string>();
    const write = (i: number) => {
      const body = `message ${i} ${'x'.repeat(i * 13)}`;
      writeFileSync(join(dir, `m${i}`), body);
      written.set(`m${i}`, createHash('sha256').update(body).digest('hex'));
    };
    for (let i = 0; i < 10; i++) write(i);
    await vol.killBrick(1);
    for (let i = 10; i < 30; i++) write(i);
    await vol.restartBricks();
    await vol.waitHealed(60_000);
    assert.equal(readdirSync(dir).length, 30);
    for (const [name, hash] of written)
      assert.equal(createHash('sha256').update(readFileSync(join(dir, name))).digest('hex'), hash, name);
  });

  it('GIVEN two bricks down THEN SMTP answers 451 4.3.0 (never 250), IMAP says NO [UNAVAILABLE], nothing is stored', async () => {
    await vol.killBrick(0);
    await vol.killBrick(1);
    assert.throws(() => writeFileSync(join(vol.mountPoint, 'no-quorum'), 'x'), /ENOTCONN|EROFS|EIO/);
    const replies: string[] = [];
    for (let i = 0; i < 4; i++)
      replies.push(await deliver(nodes[i % 2]!.port('smtp'), 'alice@example.com', `noquorum-${i}`));
    for (const r of replies) assert.match(r, /^451 4\.3\.0 /, `delivery reply: ${r}`);
    for (const n of nodes) {
      // The daemon may refuse at LOGIN already (it opens the INBOX then); either way the client sees UNAVAILABLE.
      const c = await RawClient.open(n.port('imap'));
      await c.waitFor(/^\* OK/, 10_000);
      const login = await imapCmd(c, 'LOGIN bob@example.com password');
      if (login.status.startsWith('OK')) {
        const sel = await imapCmd(c, 'SELECT INBOX');
        if (sel.status.startsWith('OK')) {
          // A node with the list already cached may open the box; reading a body must still refuse.
          const f = await imapCmd(c, 'FETCH 1 (BODY[])');
          assert.match(f.status, /^NO \[UNAVAILABLE\]/, `FETCH: ${f.status}`);
        } else assert.match(sel.status, /^NO \[UNAVAILABLE\]/, `SELECT: ${sel.status}`);
      } else assert.match(login.status, /^NO \[UNAVAILABLE\]/, `LOGIN: ${login.status}`);
      c.close();
    }
    await vol.restartBricks();
    for (let i = 0; i < 80; i++) {
      try {
        writeFileSync(join(vol.mountPoint, 'after-quorum'), 'back');
        break;
      } catch {
        await sleep(250);
      }
    }
    assert.match(await deliver(nodes[0]!.port('smtp'), 'alice@example.com', 'after-quorum'), /^250/);
    const subjects = messagesOnDisk(mailRoot).subjects;
    assert.equal(subjects.filter((s) => s.startsWith('noquorum-')).length, 0, 'no message stored without quorum');
    assert.equal(subjects.filter((s) => s === 'after-quorum').length, 1);
  });
});
