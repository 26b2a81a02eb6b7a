/**
 * bench/imap-sort: SORT and THREAD over one 10,000-message mailbox on local disk, mailfleetd against
 * Dovecot in the same run (issue 21: `SORT (ARRIVAL)` and `THREAD REFERENCES` under 200 ms, warm index).
 *
 *   npx tsx bench/imap-sort/run.ts [--messages 10000] [--runs 7] [--label current] [--no-dovecot]
 *
 * The same messages (threads of up to 10 with References, "Re:" subjects, list tags, varied dates and
 * senders) are written straight into each server's Maildir new/. One warm-up of every command (it fills
 * mailfleetd's summary cache and Dovecot's index and sort/thread caches), then --runs timed rounds of
 * SORT (ARRIVAL), SORT (SUBJECT), SORT (REVERSE DATE), THREAD REFERENCES, THREAD ORDEREDSUBJECT, each
 * timed from the command's send to its tagged reply. Prints median and max per command, the ratio
 * mailfleetd / dovecot, and writes bench/results/imap-sort.json under --label.
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DOVECOT_UID, startDovecot, type RunningDovecot } from '../lib/dovecot.js';
import { PASSWORD, startImapHarness } from '../../test/daemon/mail-harness.js';
import { RawImap } from '../../test/conformance/raw-imap.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '7' },
    label: { type: 'string', default: 'current' },
    'no-dovecot': { type: 'boolean', default: false },
  },
});
const N = Number(values.messages);
const RUNS = Number(values.runs);
const USER = 'sorter@example.com';
const COMMANDS = ['SORT (ARRIVAL) UTF-8 ALL', 'SORT (SUBJECT) UTF-8 ALL', 'SORT (REVERSE DATE) UTF-8 ALL', 'THREAD REFERENCES UTF-8 ALL', 'THREAD ORDEREDSUBJECT UTF-8 ALL'];
const TARGET_MS = 200;

/** Message k: thread k/10, its (k%10)-th reply, References to the earlier ones of its thread. */
function message(k: number): string {
  const thread = Math.floor(k / 10);
  const pos = k % 10;
  const refs = Array.from({ length: pos }, (_, j) => `<m${thread * 10 + j}@bench>`).join(' ');
  const day = 1 + (k * 7919) % 28;
  const lines = [
    `Date: ${['Mon', 'Tue', 'Wed'][k % 3]}, ${day} Mar 2024 ${String(k % 24).padStart(2, '0')}:${String(k % 60).padStart(2, '0')}:00 +0${k % 9}00`,
    `From: "Sender ${k % 97}" <user${(k * 31) % 997}@example.${k % 5}.org>`,
    `To: list${thread % 13}@example.com`,
    `Subject: ${pos === 0 ? '' : 'Re: '}${thread % 4 === 0 ? '[list] ' : ''}topic ${(thread * 7) % 1000} about sorting`,
    `Message-ID: <m${k}@bench>`,
    ...(pos > 0 ? [`References: ${refs}`, `In-Reply-To: <m${k - 1}@bench>`] : []),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${'body line of the bench message\r\n'.repeat(1 + (k % 20))}`;
}

function seed(maildir: string, uid?: number): void {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, d), { recursive: true });
  for (let k = 0; k < N; k++) {
    // Names in arrival order (seconds, then a counter), the mtime as the INTERNALDATE.
    const p = join(maildir, 'new', `${1_700_000_000 + k}.M${k}P1Q${k}.bench`);
    writeFileSync(p, message(k));
  }
  if (uid !== undefined) {
    const own = (p: string) => chownSync(p, uid, uid);
    let p = maildir;
    own(p);
    for (const d of ['cur', 'new', 'tmp']) own(join(p, d));
    for (let k = 0; k < N; k++) own(join(maildir, 'new', `${1_700_000_000 + k}.M${k}P1Q${k}.bench`));
    // The user's home and the Maildir's parents too (Dovecot's mail process runs as DOVECOT_UID).
    for (p = join(maildir, '..'); p.includes('/home/'); p = join(p, '..')) own(p);
  }
}

async function measure(name: string, port: number): Promise<Record<string, number[]>> {
  const c = await RawImap.login(port, USER, PASSWORD);
  const t0 = performance.now();
  const sel = await c.cmd('SELECT INBOX');
  console.log(`${name}: SELECT ${Math.round(performance.now() - t0)} ms (${sel.untagged.find((l) => / EXISTS$/.test(l))})`);
  const out: Record<string, number[]> = {};
  for (const cmd of COMMANDS) {
    const t = performance.now();
    const r = await c.cmd(cmd);
    if (r.status !== 'OK') throw new Error(`${name} ${cmd}: ${r.tagged}`);
    console.log(`${name}: ${cmd} cold ${Math.round(performance.now() - t)} ms, ${r.untagged[0]!.length} bytes`);
    out[cmd] = [];
  }
  for (let i = 0; i < RUNS; i++) {
    for (const cmd of COMMANDS) {
      const t = performance.now();
      await c.cmd(cmd);
      out[cmd]!.push(performance.now() - t);
    }
  }
  await c.close();
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const mf = await startImapHarness({ users: [USER] });
  let dc: RunningDovecot | undefined;
  const dcDir = mkdtempSync(join(tmpdir(), 'mf-bench-sort-dovecot-'));
  const results: Record<string, Record<string, number[]>> = {};
  try {
    seed(mf.maildir(USER));
    results.mailfleetd = await measure('mailfleetd', mf.port);
    if (!values['no-dovecot']) {
      dc = await startDovecot({ dir: dcDir, users: [{ address: USER, password: PASSWORD }] });
      seed(dc.maildirOf(USER), DOVECOT_UID);
      results.dovecot = await measure('dovecot', dc.port);
    }
  } finally {
    await mf.close();
    await dc?.stop();
    rmSync(dcDir, { recursive: true, force: true });
  }
  console.log(`\n${N} messages, warm, ${RUNS} runs: median / max ms${results.dovecot ? ', mailfleetd / dovecot (median)' : ''}`);
  const summary: Record<string, Record<string, number>> = {};
  for (const cmd of COMMANDS) {
    const m = results.mailfleetd![cmd]!;
    const d = results.dovecot?.[cmd];
    const row = { mailfleetdMedianMs: median(m), mailfleetdMaxMs: Math.max(...m), ...(d ? { dovecotMedianMs: median(d), dovecotMaxMs: Math.max(...d) } : {}) };
    summary[cmd] = row;
    const ratio = d ? `  ratio ${(median(m) / median(d)).toFixed(2)}` : '';
    const mark = median(m) < TARGET_MS ? 'ok' : `OVER ${TARGET_MS} ms`;
    console.log(`${cmd.padEnd(32)} mailfleetd ${median(m).toFixed(1)} / ${Math.max(...m).toFixed(1)}${d ? `   dovecot ${median(d).toFixed(1)} / ${Math.max(...d).toFixed(1)}` : ''}${ratio}  [${mark}]`);
  }
  const file = join('bench', 'results', 'imap-sort.json');
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  all[values.label!] = { messages: N, runs: RUNS, at: new Date().toISOString(), commands: summary };
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  console.log(`\nwrote ${file} (${values.label})`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
