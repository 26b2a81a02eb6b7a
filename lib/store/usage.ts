/**
 * Mailbox usage (bytes and messages over every folder of a user), kept incrementally in one small file
 * per user beside the folders: `<Maildir>/mailfleet-usage`. Every change of the store adds its delta
 * (delivery, APPEND, COPY/MOVE, EXPUNGE, folder DELETE) under the file's O_EXCL lock (lock.ts, which
 * GlusterFS and NFS honour) and writes the whole file to a temp name and renames it: two daemons on one
 * volume read-modify-write the same file one after the other, so they agree on the numbers, and a
 * reader never sees half a file. Nothing here walks the Maildir, except `measureMaildir` (quota recalc).
 *
 * Sizes are RFC822.SIZE (the index's wire size), so the sums equal what IMAP shows per message.
 * Changes made outside the daemon (files removed by hand) are not seen: `mailfleet quota recalc`
 * recomputes from the Maildir.
 */
import { statSync } from 'node:fs';
import { open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HeldLock } from './mailbox/lock.js';
import { wireSize } from './mailbox/mailbox.js';

export const USAGE_FILE = 'mailfleet-usage';

export interface Usage {
  readonly bytes: number;
  readonly messages: number;
}

export interface UsageRecord extends Usage {
  /** Highest warning percentage already sent for the current climb (0: none); lowered as usage drops. */
  readonly warned: number;
}

const EMPTY: UsageRecord = Object.freeze({ bytes: 0, messages: 0, warned: 0 });
let tmpCounter = 0;

/**
 * Usage files as last read here, by path, with the stat that dated them (inode, size, mtime: a rewrite is
 * a rename of a new file). A quota check before each APPEND and after it read the whole file (open, fstat,
 * read, close); a hit is one stat. Bounded: the oldest entry goes past USAGE_CACHE_ENTRIES.
 */
const usageCache = new Map<string, { stamp: string; rec: UsageRecord }>();
const USAGE_CACHE_ENTRIES = 10_000;

function usageStamp(file: string): string | undefined {
  try {
    const st = statSync(file, { throwIfNoEntry: false });
    return st && `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function remember(file: string, stamp: string, rec: UsageRecord): void {
  usageCache.delete(file);
  usageCache.set(file, { stamp, rec });
  if (usageCache.size > USAGE_CACHE_ENTRIES) usageCache.delete(usageCache.keys().next().value!);
}

/**
 * The usage of the user whose Maildir is `maildir` (zero when no file exists yet): for checks outside the
 * lock (quota verdicts, GETQUOTA), from the cache when a stat says the file is the one read before.
 */
export async function readUsage(maildir: string): Promise<UsageRecord> {
  const file = join(maildir, USAGE_FILE);
  const stamp = usageStamp(file);
  if (stamp === undefined) return EMPTY;
  const hit = usageCache.get(file);
  if (hit?.stamp === stamp) return hit.rec;
  const rec = await readUsageFile(file);
  // Dated by the stat taken before the read: a file replaced in between reads as changed next time.
  remember(file, stamp, rec);
  return rec;
}

/** Bytes a usage file can hold (`MU1` and three numbers); a longer one is read whole. */
const USAGE_READ_BYTES = 128;

/** Reads the file itself: open, one read, close (readFile's fstat is a fourth file operation). */
async function readUsageFile(file: string): Promise<UsageRecord> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return EMPTY;
    throw e;
  }
  try {
    const buf = Buffer.allocUnsafe(USAGE_READ_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead < buf.length) return parseUsage(buf.toString('utf8', 0, bytesRead));
  } finally {
    await fh.close();
  }
  return parseUsage(await readFile(file, 'utf8'));
}

/** `MU1 <bytes> <messages> <warned>`; anything else reads as zero (recalc repairs it). */
export function parseUsage(text: string): UsageRecord {
  const f = text.trim().split(' ');
  if (f[0] !== 'MU1' || f.length < 4) return EMPTY;
  const n = f.slice(1, 4).map(Number);
  if (n.some((x) => !Number.isSafeInteger(x) || x < 0)) return EMPTY;
  return { bytes: n[0]!, messages: n[1]!, warned: n[2]! };
}

/**
 * Usage-file locks kept between updates (lock.ts HeldLock), by lock path. An entry is dropped when its
 * lock is given up, so the map holds only the users updated in the last few ms.
 */
const usageLocks = new Map<string, HeldLock>();

/**
 * Changes the record under the lock; `fn` sees the current record and returns the next one (or the same
 * object for no write). Returns the record after the change. `holdMs` keeps the lock that long for the
 * next update of this process (HeldLock; 0 releases it at once, as before).
 */
export async function updateUsage(maildir: string, fn: (r: UsageRecord) => UsageRecord, holdMs = 0): Promise<UsageRecord> {
  const file = join(maildir, USAGE_FILE);
  const lockPath = `${file}.lock`;
  let lock = usageLocks.get(lockPath);
  if (!lock) usageLocks.set(lockPath, (lock = new HeldLock(lockPath, { holdMs, onRelease: () => usageLocks.get(lockPath) === lock && usageLocks.delete(lockPath) })));
  return lock.run(async () => {
    // Under the lock the file itself is read, never the cache: another node may have just written it.
    const cur = await readUsageFile(file);
    const next = fn(cur);
    if (next === cur) return cur;
    const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
    await writeFile(tmp, `MU1 ${next.bytes} ${next.messages} ${next.warned}\n`, { mode: 0o600 });
    await rename(tmp, file);
    const stamp = usageStamp(file);
    if (stamp !== undefined) remember(file, stamp, next);
    return next;
  });
}

/** Deltas of one usage file waiting in this process, and whether a locked update of it is running. */
interface PendingUsage {
  bytes: number;
  messages: number;
  waiters: Array<{ resolve: (r: UsageRecord) => void; reject: (e: unknown) => void }>;
  running: boolean;
}
const pendingUsage = new Map<string, PendingUsage>();

/**
 * Adds a delta (negative to remove); never goes below zero. Resolves with the record after, once the
 * change is in the file.
 *
 * Deltas to one file are group-committed in this process: while one locked update runs, later deltas
 * add up and go in together with the next one. Twenty sessions delivering to one mailbox used to queue
 * on the O_EXCL lock one by one (each waiter polling with back-off), which cut SMTP throughput to a
 * fraction; now a process takes the lock once per batch. Other processes and nodes still take turns on
 * the lock, so the sums stay exact across them.
 */
export function addUsage(maildir: string, delta: Usage, holdMs = 0): Promise<UsageRecord> {
  if (delta.bytes === 0 && delta.messages === 0) return readUsage(maildir);
  let q = pendingUsage.get(maildir);
  if (!q) {
    q = { bytes: 0, messages: 0, waiters: [], running: false };
    pendingUsage.set(maildir, q);
  }
  q.bytes += delta.bytes;
  q.messages += delta.messages;
  const done = new Promise<UsageRecord>((resolve, reject) => q.waiters.push({ resolve, reject }));
  if (!q.running) void drainUsage(maildir, q, holdMs);
  return done;
}

async function drainUsage(maildir: string, q: PendingUsage, holdMs: number): Promise<void> {
  q.running = true;
  while (q.waiters.length > 0) {
    const waiters = q.waiters.splice(0);
    const d = { bytes: q.bytes, messages: q.messages };
    q.bytes = 0;
    q.messages = 0;
    try {
      const after = await updateUsage(maildir, (r) => ({
        bytes: Math.max(0, r.bytes + d.bytes),
        messages: Math.max(0, r.messages + d.messages),
        warned: r.warned,
      }), holdMs);
      for (const w of waiters) w.resolve(after);
    } catch (e) {
      for (const w of waiters) w.reject(e);
    }
  }
  q.running = false;
  pendingUsage.delete(maildir);
}

/**
 * What the Maildir holds (every folder's cur/ and new/): the one full walk, for `quota recalc`. A name's
 * `,S=<size>` (our deliveries) is trusted; other files are read once for their wire size.
 */
export async function measureMaildir(maildir: string): Promise<Usage> {
  let bytes = 0;
  let messages = 0;
  const folders = [maildir];
  for (const e of await readdir(maildir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() && e.name.startsWith('.') && e.name !== '.' && e.name !== '..') folders.push(join(maildir, e.name));
  }
  for (const f of folders) {
    for (const sub of ['cur', 'new']) {
      const dir = join(f, sub);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (name.startsWith('.')) continue;
        const size = sizeFromName(name) ?? (await fileWireSize(join(dir, name)));
        if (size === undefined) continue;
        bytes += size;
        messages++;
      }
    }
  }
  return { bytes, messages };
}

function sizeFromName(name: string): number | undefined {
  const base = name.split(':2,')[0]!;
  const i = base.indexOf(',S=');
  if (i < 0) return undefined;
  const digits = base.slice(i + 3).split(',')[0]!;
  const n = Number(digits);
  return digits !== '' && Number.isSafeInteger(n) ? n : undefined;
}

async function fileWireSize(p: string): Promise<number | undefined> {
  try {
    const st = await stat(p);
    if (!st.isFile()) return undefined;
    return wireSize(await readFile(p));
  } catch {
    return undefined; // expunged meanwhile
  }
}
