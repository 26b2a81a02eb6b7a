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
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLock } from './mailbox/lock.js';
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

/** The usage of the user whose Maildir is `maildir` (zero when no file exists yet). */
export async function readUsage(maildir: string): Promise<UsageRecord> {
  let text: string;
  try {
    text = await readFile(join(maildir, USAGE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return EMPTY;
    throw e;
  }
  return parseUsage(text);
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
 * Changes the record under the lock; `fn` sees the current record and returns the next one (or the same
 * object for no write). Returns the record after the change.
 */
export async function updateUsage(maildir: string, fn: (r: UsageRecord) => UsageRecord): Promise<UsageRecord> {
  const file = join(maildir, USAGE_FILE);
  return withLock(`${file}.lock`, async () => {
    const cur = await readUsage(maildir);
    const next = fn(cur);
    if (next === cur) return cur;
    const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
    await writeFile(tmp, `MU1 ${next.bytes} ${next.messages} ${next.warned}\n`, { mode: 0o600 });
    await rename(tmp, file);
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
export function addUsage(maildir: string, delta: Usage): Promise<UsageRecord> {
  if (delta.bytes === 0 && delta.messages === 0) return readUsage(maildir);
  let q = pendingUsage.get(maildir);
  if (!q) {
    q = { bytes: 0, messages: 0, waiters: [], running: false };
    pendingUsage.set(maildir, q);
  }
  q.bytes += delta.bytes;
  q.messages += delta.messages;
  const done = new Promise<UsageRecord>((resolve, reject) => q.waiters.push({ resolve, reject }));
  if (!q.running) void drainUsage(maildir, q);
  return done;
}

async function drainUsage(maildir: string, q: PendingUsage): Promise<void> {
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
      }));
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
