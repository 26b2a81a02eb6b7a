/**
 * Soak: mixed SMTP + IMAP + POP3 load for a bounded time across two `mailfleet serve` processes sharing
 * one real GlusterFS replica-3-arbiter volume, with one data brick killed a third of the way in and
 * restarted at two thirds. Prints messages acknowledged, messages found, duplicates, max RSS, errors by
 * kind; writes bench/results/soak.json. Target: acknowledged == found, 0 duplicates, 0 crashes.
 *
 *   npx tsx bench/soak/run.ts [--seconds 60] [--smtp 4] [--imap 2] [--pop3 1]
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGlusterVolume } from '../../test/harness/gluster.js';
import { configFor, RawClient, startProcess, tempDir } from '../../test/ops/fixture.js';
import { deliver, imapCmd, imapLogin, messagesOnDisk } from '../../test/faults/fleet-client.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    smtp: { type: 'string', default: '4' },
    imap: { type: 'string', default: '2' },
    pop3: { type: 'string', default: '1' },
  },
});
const seconds = Number(values.seconds);
const USERS = ['alice@example.com', 'bob@example.com', 'carol@example.org'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const errors: Record<string, number> = {};
const err = (kind: string) => {
  const k = kind.replace(/no line matching .*/, 'reply timeout');
  errors[k] = (errors[k] ?? 0) + 1;
};
const imapSessionMs: number[] = [];
const kindOf = (reply: string) => (reply.match(/^(\d{3} \d\.\d\.\d|\d{3}|-ERR( \[[^\]]+\])?|NO( \[[^\]]+\])?|BAD)/)?.[0] ?? (reply.slice(0, 30) || 'closed'));

function vmHwmKiB(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const vol = await startGlusterVolume('mfsoak');
const cleanups: Array<() => Promise<void>> = [];
const nodes: Awaited<ReturnType<typeof startProcess>>[] = [];
try {
  const mailRoot = join(vol.mountPoint, 'mail');
  mkdirSync(mailRoot);
  const config = configFor({ imap: { allowInsecureAuth: true, authFailureDelayMs: 10, pollIntervalSeconds: 1 } });
  for (let i = 0; i < 2; i++) {
    const t = await tempDir(`mf-soak-node${i}-`);
    cleanups.push(t.cleanup);
    symlinkSync(mailRoot, join(t.dir, 'mail'));
    nodes.push(await startProcess(t.dir, config));
  }
  const pids = nodes.map((n) => n.proc.pid);
  let maxRssKiB = 0;
  const rssTimer = setInterval(() => (maxRssKiB = Math.max(maxRssKiB, ...pids.map(vmHwmKiB))), 1000);

  const acked: string[] = [];
  const ops = { smtp: 0, imap: 0, pop3: 0 };
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  let seq = 0;
  const smtpWorker = async (w: number) => {
    while (Date.now() < end) {
      const subject = `soak-${w}-${seq++}`;
      try {
        const r = await deliver(nodes[seq % 2]!.port('smtp'), USERS[seq % USERS.length]!, subject, 'soak body\r\n'.repeat(20));
        ops.smtp++;
        if (r.startsWith('250')) acked.push(subject);
        else err(`smtp ${kindOf(r)}`);
      } catch (e) {
        err(`smtp ${(e as Error).message}`);
      }
    }
  };
  const imapWorker = async (w: number) => {
    while (Date.now() < end) {
      const started = Date.now();
      try {
        const c = await imapLogin(nodes[w % 2]!.port('imap'), USERS[w % USERS.length]!);
        for (const cmd of ['SELECT INBOX', 'UID SEARCH ALL', 'FETCH 1:5 (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])', 'NOOP']) {
          const r = await imapCmd(c, cmd, 20_000);
          if (!r.status.startsWith('OK')) err(`imap ${cmd.split(' ')[0]} ${kindOf(r.status)}`);
        }
        c.close();
        ops.imap++;
        imapSessionMs.push(Date.now() - started);
      } catch (e) {
        err(`imap ${(e as Error).message.slice(0, 60)}`);
      }
      w++;
    }
  };
  const pop3Worker = async (w: number) => {
    while (Date.now() < end) {
      try {
        const c = await RawClient.open(nodes[w % 2]!.port('pop3'));
        await c.waitFor(/^\+OK/, 10_000);
        await c.send(`USER ${USERS[w % USERS.length]}`, /^[+-]/, 10_000);
        const pass = await c.send('PASS password', /^[+-]/, 20_000);
        if (!pass.startsWith('+OK')) err(`pop3 ${kindOf(pass)}`);
        else {
          const stat = await c.send('STAT', /^[+-]/, 20_000);
          if (!stat.startsWith('+OK')) err(`pop3 STAT ${kindOf(stat)}`);
          else if (!stat.startsWith('+OK 0')) {
            const from = c.lines.length;
            c.socket.write('RETR 1\r\n');
            await c.waitFor(/^(\.|-ERR.*)$/, 20_000, from);
          }
          await c.send('QUIT', /^[+-]/, 10_000);
        }
        c.close();
        ops.pop3++;
      } catch (e) {
        err(`pop3 ${(e as Error).message.slice(0, 60)}`);
      }
      w++;
      await sleep(50);
    }
  };

  const faults = (async () => {
    await sleep((seconds * 1000) / 3);
    await vol.killBrick(0);
    console.log(`t=${((Date.now() - t0) / 1000).toFixed(1)}s brick 0 killed`);
    await sleep((seconds * 1000) / 3);
    await vol.restartBricks();
    console.log(`t=${((Date.now() - t0) / 1000).toFixed(1)}s bricks restarted`);
  })();
  await Promise.all([
    ...Array.from({ length: Number(values.smtp) }, (_, i) => smtpWorker(i)),
    ...Array.from({ length: Number(values.imap) }, (_, i) => imapWorker(i)),
    ...Array.from({ length: Number(values.pop3) }, (_, i) => pop3Worker(i)),
    faults,
  ]);
  const healStart = Date.now();
  await vol.waitHealed(120_000);
  const healSeconds = (Date.now() - healStart) / 1000;
  clearInterval(rssTimer);
  maxRssKiB = Math.max(maxRssKiB, ...pids.map(vmHwmKiB));

  const found = messagesOnDisk(mailRoot).subjects.filter((s) => s.startsWith('soak-'));
  const unique = new Set(found);
  const ackedSet = new Set(acked);
  const lost = acked.filter((s) => !unique.has(s)).length;
  const unacknowledgedStored = [...unique].filter((s) => !ackedSet.has(s)).length;
  const crashes = nodes.filter((n) => n.proc.exitCode !== null || n.proc.signalCode !== null).length;
  const result = {
    seconds,
    workers: { smtp: Number(values.smtp), imap: Number(values.imap), pop3: Number(values.pop3) },
    operations: ops,
    acknowledged: acked.length,
    found: found.length,
    duplicates: found.length - unique.size,
    lost,
    storedButNotAcknowledged: unacknowledgedStored,
    crashes,
    maxRssMiB: Math.round(maxRssKiB / 102.4) / 10,
    healSecondsAfterLoad: Math.round(healSeconds * 10) / 10,
    errorsByKind: errors,
    imapSessionMs: {
      p50: [...imapSessionMs].sort((a, b) => a - b)[Math.floor(imapSessionMs.length / 2)] ?? 0,
      max: Math.max(0, ...imapSessionMs),
    },
    deliveriesPerSecond: Math.round((acked.length / seconds) * 10) / 10,
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `acknowledged ${result.acknowledged}, found ${result.found}, duplicates ${result.duplicates}, lost ${lost}, crashes ${crashes}, max RSS ${result.maxRssMiB} MiB` +
      ` — target ${result.acknowledged === result.found && result.duplicates === 0 && crashes === 0 ? 'MET' : 'MISSED'}`,
  );
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/soak.json', `${JSON.stringify({ measuredAt: new Date().toISOString(), ...result }, null, 2)}\n`);
  if (result.acknowledged !== result.found || result.duplicates || crashes) process.exitCode = 1;
} finally {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await vol.stop();
  for (const c of cleanups) await c();
}
