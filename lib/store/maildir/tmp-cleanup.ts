/**
 * Maildir tmp/ cleanup at daemon start. A crash (or a full disk the unlink also failed on) can leave
 * files in tmp/ that nothing will ever rename; readers never see them, but they use space. Removed:
 *   - any file older than `maxAgeHours` (the Maildir spec's 36 hours: no delivery takes that long);
 *   - files this host wrote (its name ends in this host, as UniqueNames and the mailbox's names make them)
 *     from a process that no longer runs, written before this start. A process of this host that still
 *     runs (a second daemon on the same machine and mail root) keeps its files; so does every other host
 *     on shared storage, until the age rule.
 * Walks <root>/<domain>/<local>/Maildir/tmp and the tmp/ of each Maildir++ folder.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';

export interface TmpCleanupOptions {
  /** Files older than this go whoever wrote them. */
  readonly maxAgeHours: number;
  /**
   * This host, as it appears at the end of the names it writes.
   * @default - os.hostname()
   */
  readonly hostname?: string;
  /**
   * Files of dead processes of this host count as crash leftovers only if older than this instant.
   * @default - now
   */
  readonly startedAt?: Date;
}

export interface TmpCleanupResult {
  readonly removed: number;
  readonly scanned: number;
}

/** Maildir unique names: <sec>.M<usec>P<pid>Q<seq>… (our own names; a fixed pattern on file names). */
const PID = /^\d+\.M\d+P(\d+)Q\d/;
/** Mailboxes are walked this many at a time: bounded work per event-loop turn on a big root. */
const PARALLEL = 8;

export async function cleanMaildirTmp(root: string, opts: TmpCleanupOptions): Promise<TmpCleanupResult> {
  const host = opts.hostname ?? osHostname();
  // deliver.ts escapes '/' and ':' as \057 and \072; the mailbox (APPEND, COPY) as '_'.
  const suffixes = [...new Set([host.replace(/\//g, '\\057').replace(/:/g, '\\072'), host.replace(/[/:]/g, '_')])].map((h) => `.${h}`);
  const ageLimit = Date.now() - opts.maxAgeHours * 3600_000;
  const started = (opts.startedAt ?? new Date()).getTime();
  const alive = new Map<number, boolean>();
  let removed = 0;
  let scanned = 0;

  const isOurs = (name: string): number | undefined => {
    const bare = name.endsWith('.copy') ? name.slice(0, -'.copy'.length) : name;
    if (!suffixes.some((s) => bare.endsWith(s))) return undefined;
    const m = PID.exec(bare);
    return m ? Number(m[1]) : undefined;
  };
  const running = (pid: number): boolean => {
    let r = alive.get(pid);
    if (r === undefined) {
      try {
        process.kill(pid, 0);
        r = true;
      } catch (e) {
        // EPERM: it exists under another user.
        r = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
      alive.set(pid, r);
    }
    return r;
  };

  const cleanDir = async (tmp: string): Promise<void> => {
    for (const name of await list(tmp)) {
      scanned++;
      const p = join(tmp, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st?.isFile()) continue;
      const pid = isOurs(name);
      const stale = st.mtimeMs < ageLimit || (pid !== undefined && pid !== process.pid && st.mtimeMs < started && !running(pid));
      if (stale && (await unlink(p).then(() => true, () => false))) removed++;
    }
  };
  const cleanMaildir = async (maildir: string): Promise<void> => {
    await cleanDir(join(maildir, 'tmp'));
    for (const entry of await list(maildir)) if (entry.startsWith('.') && entry !== '.' && entry !== '..') await cleanDir(join(maildir, entry, 'tmp'));
  };

  const maildirs: string[] = [];
  for (const domain of await list(root)) for (const local of await list(join(root, domain))) maildirs.push(join(root, domain, local, 'Maildir'));
  for (let i = 0; i < maildirs.length; i += PARALLEL) await Promise.all(maildirs.slice(i, i + PARALLEL).map(cleanMaildir));
  return { removed, scanned };
}

/** Directory entries, or none when it is not a readable directory. */
async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
