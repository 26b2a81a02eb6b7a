/**
 * The durability contract of Maildir delivery, checked on the system calls themselves (strace): for every
 * message, deliver() resolves (the SMTP 250 follows) only after
 *   1. its data is durable: written on an O_DSYNC file, or fdatasync'd, before the rename;
 *   2. the rename tmp/ → new/ has returned;
 *   3. an fsync of the new/ directory that STARTED after that rename has returned (group commit may share
 *      one fsync among several messages, but never one that began before the rename).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

interface Call {
  readonly pid: string;
  readonly name: string;
  readonly args: string;
  readonly ret: number;
  /** Line of the call's entry and of its return in the trace (strace -f splits calls that overlap). */
  readonly entry: number;
  readonly exit: number;
}

/** strace -f output → calls with entry/exit positions. */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, { name: string; args: string; entry: number }>();
  text.split('\n').forEach((line, i) => {
    const head = /^(\d+) +(.*)$/.exec(line);
    if (!head) return;
    const [, pid, rest] = head as unknown as [string, string, string];
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished) {
      pending.set(pid, { name: unfinished[1]!, args: unfinished[2]!, entry: i });
      return;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\) += (-?\d+)/.exec(rest);
    if (resumed) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p) calls.push({ pid, name: p.name, args: p.args + resumed[2]!, ret: Number(resumed[3]), entry: p.entry, exit: i });
      return;
    }
    const whole = /^(\w+)\((.*)\) += (-?\d+)/.exec(rest);
    if (whole) calls.push({ pid, name: whole[1]!, args: whole[2]!, ret: Number(whole[3]), entry: i, exit: i });
  });
  return calls;
}

/** Every system call that writes a file's data: Node's fs uses write, writev (a stream's buffered chunks) and pwrite64/pwritev. */
const WRITES = new Set(['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2']);

describe('Maildir delivery: durable before resolve, checked on the system calls', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('GIVEN 26 concurrent deliveries into one Maildir WHEN traced THEN each resolves after its data sync, its rename and a directory fsync begun after that rename', async () => {
    const probe = spawnSync('strace', ['-V'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) assert.fail('strace is missing: install it (apt-get install strace, listed in scripts/install-system-deps.sh)');
    const work = await mkdtemp(join(tmpdir(), 'mf-sync-order-'));
    dirs.push(work);
    const root = join(work, 'mail');
    const traceFile = join(work, 'trace');
    const child = resolve(import.meta.dirname, 'maildir-sync-order-child.ts');
    const r = spawnSync(
      'strace',
      ['-f', '-qq', '--seccomp-bpf', '-s', '1024', '-e', 'trace=openat,write,writev,pwrite64,pwritev,pwritev2,fdatasync,fsync,rename,close', '-o', traceFile, process.execPath, '--import', 'tsx', child, root],
      { encoding: 'utf8', timeout: 25_000, cwd: resolve(import.meta.dirname, '../..') },
    );
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const delivered = [...r.stdout.matchAll(/^DELIVERED (\S+)$/gm)].map((m) => m[1]!);
    assert.equal(delivered.length, 26, r.stdout);
    assert.equal((await readdir(join(root, 'example.com/a/Maildir/new'))).length, 27);

    const calls = parseTrace(await readFile(traceFile, 'utf8'));
    const begin = calls.find((c) => c.name === 'write' && c.args.startsWith('1, "BEGIN'))!.entry;
    const traced = calls.filter((c) => c.entry > begin);
    const dirOpens = traced.filter((c) => c.name === 'openat' && c.args.includes('/Maildir/new"') && c.args.includes('O_DIRECTORY') && c.ret >= 0);
    /** Is fd still the one `open` returned at line `at` (not closed and reused in between)? */
    const stillOpen = (open: Call, at: number) => !traced.some((c) => c.name === 'close' && c.ret === 0 && c.args === String(open.ret) && c.entry > open.exit && c.entry < at);
    let viaDsync = 0;
    for (const base of delivered) {
      const resolved = traced.find((c) => c.name === 'write' && c.args.startsWith(`1, "DELIVERED ${base}\\n"`))!;
      const open = traced.find((c) => c.name === 'openat' && c.args.includes(`/tmp/${base}"`));
      assert.ok(open && open.ret >= 0, `${base}: spool file not opened`);
      const rename = traced.find((c) => c.name === 'rename' && c.args.includes(`/tmp/${base}"`) && c.args.includes(`/new/${base},S=`));
      assert.ok(rename && rename.ret === 0, `${base}: no rename into new/`);
      const fd = String(open.ret);
      // Only this file's calls: from its open to its close (the fd number is reused by the next open after that).
      const closed = traced.find((c) => c.name === 'close' && c.ret === 0 && c.args === fd && c.entry > open.exit);
      const end = Math.min(rename.entry, closed?.entry ?? Infinity);
      const onFd = traced.filter((c) => c.entry > open.exit && c.entry < end && (c.args === fd || c.args.startsWith(`${fd}, `)));
      // A stream's queued chunks go out in one writev; a positioned write is a pwrite64.
      const writes = onFd.filter((c) => WRITES.has(c.name));
      assert.ok(writes.length > 0 && writes.every((w) => w.exit < rename.entry), `${base}: data not written before the rename\n${[open, ...onFd, rename].map((c) => `${c.pid} ${c.name}(${c.args.slice(0, 120)}) = ${c.ret} [${c.entry}-${c.exit}]`).join('\n')}`);
      const datasync = onFd.find((c) => (c.name === 'fdatasync' || c.name === 'fsync') && c.ret === 0 && c.entry > writes.at(-1)!.exit);
      const dsync = open.args.includes('O_DSYNC') || open.args.includes('O_SYNC');
      assert.ok(dsync || (datasync && datasync.exit < rename.entry), `${base}: data neither O_DSYNC nor fdatasync'd before the rename`);
      if (dsync) viaDsync++;
      const dirSync = traced.find(
        (c) => c.name === 'fsync' && c.ret === 0 && c.entry > rename.exit && c.exit < resolved.entry && dirOpens.some((o) => o.ret === Number(c.args) && o.exit < c.entry && stillOpen(o, c.entry)),
      );
      assert.ok(dirSync, `${base}: resolved without an fsync of new/ that began after its rename`);
    }
    // The streamed 70 KB message takes the fdatasync path; the small ones the single O_DSYNC write.
    assert.ok(viaDsync >= 24 && viaDsync < 26, `O_DSYNC writes: ${viaDsync}`);
  });
});
