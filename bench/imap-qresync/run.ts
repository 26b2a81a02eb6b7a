/**
 * bench/imap-qresync: what a client's resynchronisation costs in bytes after a few flag changes, with
 * QRESYNC (RFC 7162) against a full FETCH FLAGS resync, mailfleetd against Dovecot in one run.
 *
 *   npx tsx bench/imap-qresync/run.ts [--messages 10000] [--changes 100] [--no-dovecot]
 *
 * For each server: a mailbox of --messages messages is written straight into the user's Maildir new/;
 * client A logs in, ENABLE QRESYNC, SELECT INBOX, FETCH 1:* (UID FLAGS) (the initial sync) and notes
 * UIDVALIDITY and HIGHESTMODSEQ; client B sets \Flagged on --changes random messages; then
 *   qresync  a new session: ENABLE QRESYNC, SELECT INBOX (QRESYNC (uidvalidity modseq))
 *   full     a new session: SELECT INBOX, FETCH 1:* (UID FLAGS)
 * Bytes are the server's responses to those commands (lines and literals as received, CRLF counted).
 * Results: printed, and merged into bench/results/imap-qresync.json.
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DOVECOT_UID, startDovecot } from '../lib/dovecot.js';
import { RawImap, type Reply } from '../../test/conformance/raw-imap.js';
import { PASSWORD, startImapHarness } from '../../test/daemon/mail-harness.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    changes: { type: 'string', default: '100' },
    'no-dovecot': { type: 'boolean', default: false },
  },
});
const MESSAGES = Number(values.messages);
const CHANGES = Number(values.changes);
const USER = 'alice@example.com';

/** Bytes of a reply as the server sent it (each line and its CRLF; literals are inlined in the lines). */
function bytes(r: Reply, tag = 'a0'): number {
  let n = Buffer.byteLength(`${tag} ${r.tagged}\r\n`, 'latin1');
  for (const l of r.untagged) n += Buffer.byteLength(l, 'latin1') + 2;
  return n;
}

function seedMaildir(dir: string, owner?: number): void {
  for (const d of ['cur', 'new', 'tmp']) {
    mkdirSync(join(dir, d), { recursive: true });
    if (owner !== undefined) chownSync(join(dir, d), owner, owner);
  }
  const sec = 1_700_000_000;
  for (let i = 1; i <= MESSAGES; i++) {
    const p = join(dir, 'new', `${sec + i}.M${i}P1Q${i}.bench`);
    writeFileSync(
      p,
      `Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nFrom: sender${i % 50}@example.org\r\nTo: ${USER}\r\nSubject: message ${i}\r\nMessage-ID: <${i}@bench>\r\n\r\nBody of message ${i}.\r\n`,
    );
    if (owner !== undefined) chownSync(p, owner, owner);
  }
}

interface Result {
  readonly server: string;
  readonly initialFullBytes: number;
  readonly qresyncBytes: number;
  readonly qresyncFetches: number;
  readonly qresyncMs: number;
  readonly fullBytes: number;
  readonly fullMs: number;
}

async function measure(server: string, port: number): Promise<Result> {
  // Initial sync (client A), with the state a QRESYNC client keeps.
  const a = await RawImap.login(port, USER, PASSWORD);
  await a.cmd('ENABLE QRESYNC');
  const sel = await a.cmd('SELECT INBOX');
  const uidv = Number(/UIDVALIDITY (\d+)/.exec(sel.untagged.join('\n'))?.[1]);
  const hms = Number(/HIGHESTMODSEQ (\d+)/.exec(sel.untagged.join('\n'))?.[1]);
  if (!uidv || !hms)
    throw new Error(`${server}: no UIDVALIDITY/HIGHESTMODSEQ in ${sel.untagged.join(' | ')}`);
  const initial = await a.cmd('FETCH 1:* (UID FLAGS)');
  const exists = initial.untagged.filter((l) => / FETCH /.test(l)).length;
  if (exists !== MESSAGES) throw new Error(`${server}: ${exists} messages, expected ${MESSAGES}`);
  await a.close();

  // Another client changes flags on CHANGES distinct random messages.
  const b = await RawImap.login(port, USER, PASSWORD);
  await b.cmd('SELECT INBOX');
  const picked = new Set<number>();
  while (picked.size < CHANGES) picked.add(1 + Math.floor(Math.random() * MESSAGES));
  for (const seq of picked) await b.cmd(`STORE ${seq} +FLAGS.SILENT (\\Flagged)`);
  await b.close();

  // Resync with QRESYNC.
  const q = await RawImap.login(port, USER, PASSWORD);
  await q.cmd('ENABLE QRESYNC');
  let t = performance.now();
  const qr = await q.cmd(`SELECT INBOX (QRESYNC (${uidv} ${hms}))`, 'a0');
  const qresyncMs = performance.now() - t;
  const qresyncFetches = qr.untagged.filter((l) => / FETCH /.test(l)).length;
  await q.close();

  // Resync by fetching every message's flags.
  const f = await RawImap.login(port, USER, PASSWORD);
  t = performance.now();
  const fs = await f.cmd('SELECT INBOX', 'a0');
  const ff = await f.cmd('FETCH 1:* (UID FLAGS)', 'a0');
  const fullMs = performance.now() - t;
  await f.close();
  return {
    server,
    initialFullBytes: bytes(initial),
    qresyncBytes: bytes(qr),
    qresyncFetches,
    qresyncMs,
    fullBytes: bytes(fs) + bytes(ff),
    fullMs,
  };
}

const results: Result[] = [];
const h = await startImapHarness({ users: [USER] });
try {
  // The first login creates the user's Maildir; the messages go straight into new/.
  await (await RawImap.login(h.port, USER, PASSWORD)).close();
  seedMaildir(h.maildir(USER));
  results.push(await measure('mailfleetd', h.port));
} finally {
  await h.close();
}

if (!values['no-dovecot']) {
  const dir = mkdtempSync(join(tmpdir(), 'mf-bench-qresync-'));
  const dc = await startDovecot({ dir, users: [{ address: USER, password: PASSWORD }] });
  try {
    const md = dc.maildirOf(USER);
    // Dovecot's home chain belongs to its mail uid.
    let p = md;
    const chain: string[] = [];
    while (!existsSync(p)) {
      chain.unshift(p);
      p = join(p, '..');
    }
    for (const c of chain) {
      mkdirSync(c);
      chownSync(c, DOVECOT_UID, DOVECOT_UID);
    }
    seedMaildir(md, DOVECOT_UID);
    results.push(await measure('dovecot', dc.port));
  } finally {
    await dc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`bench/imap-qresync: ${MESSAGES} messages, ${CHANGES} flag changes, then one resync`);
console.log(
  'server       initial FETCH   QRESYNC resync (FETCHes, ms)   full FETCH FLAGS resync (ms)   full / QRESYNC',
);
for (const r of results) {
  console.log(
    `${r.server.padEnd(12)} ${String(r.initialFullBytes).padStart(10)} B   ${String(r.qresyncBytes).padStart(8)} B (${r.qresyncFetches}, ${r.qresyncMs.toFixed(0)} ms)`.padEnd(
      66,
    ) +
      `${String(r.fullBytes).padStart(10)} B (${r.fullMs.toFixed(0)} ms)      ${(r.fullBytes / r.qresyncBytes).toFixed(0)}x`,
  );
}
const file = join(import.meta.dirname, '..', 'results', 'imap-qresync.json');
const prev = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
writeFileSync(
  file,
  JSON.stringify(
    { ...prev, [new Date().toISOString()]: { messages: MESSAGES, changes: CHANGES, results } },
    null,
    2,
  ) + '\n',
);
process.exit(0);
