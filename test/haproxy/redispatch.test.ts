/**
 * A mail node dies while HAProxy still counts it up (its health checks need `fall` failures, some seconds):
 * a client HAProxy sends there (by its stick entry, or by leastconn) must reach the other node, not fail.
 * The cloud haproxy.cfg as rendered runs in a private network namespace with two cloud-mode daemons behind
 * its server-templates (netns-redispatch.ts); nothing of the mail backends is rewritten.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireHaproxy, writeTempSpec } from './harness.js';

interface Outcome {
  imapBackend: string;
  smtpBackend: string;
  doomed: string;
  survivor: string;
  imap: { line: string; ms: number; heldBy: string[] };
  smtp: { line: string; ms: number; heldBy: string[] };
  doomedStatusAfter: { imap?: string; smtp?: string };
  redispatches: { imap: number; smtp: number };
  stickEntry: string;
  survivorServerId?: string;
}

describe('cloud HAProxy: a connection to a mail node that just died goes to another node (option redispatch)', () => {
  it('GIVEN two mail nodes WHEN the node an IMAP client sticks to, and the node leastconn picks for a new SMTP client, dies THEN both clients are greeted by the other node and the stick entry follows it', async () => {
    requireHaproxy();
    const spec = await writeTempSpec({ proxy: { trustedNetworks: ['127.0.0.0/8'] } });
    try {
      const child = join(dirname(fileURLToPath(import.meta.url)), 'netns-redispatch.ts');
      const r = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', child, spec.file, spec.dir], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
      });
      assert.equal(r.status, 0, `netns-redispatch failed (unshare needs root / CAP_SYS_ADMIN):\n${r.stderr}`);
      const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as Outcome;
      const seen = JSON.stringify(o);
      assert.equal(o.imapBackend, 'mail-imap-sticky', 'IMAP has source affinity by default');
      // Otherwise the checks had already taken the node out, and the old config would pass too.
      assert.match(`${o.doomedStatusAfter.imap} ${o.doomedStatusAfter.smtp}`, /^UP\b.* UP\b/, `HAProxy still counted the dead node up: ${seen}`);
      assert.match(o.imap.line, /^\* OK/, `the sticky IMAP client is greeted: ${seen}`);
      assert.match(o.smtp.line, /^220 /, `the new SMTP client is greeted: ${seen}`);
      assert.deepEqual(o.imap.heldBy, [o.survivor], seen);
      assert.deepEqual(o.smtp.heldBy, [o.survivor], seen);
      assert.ok(o.redispatches.imap >= 1 && o.redispatches.smtp >= 1, `HAProxy redispatched in both backends: ${seen}`);
      assert.match(o.stickEntry, new RegExp(`server_id=${o.survivorServerId} `), `the stick entry now names the survivor: ${seen}`);
    } finally {
      spec.cleanup();
    }
  });
});
