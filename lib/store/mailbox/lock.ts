/**
 * A lock that works across processes and across nodes of a shared filesystem: an O_EXCL-created file
 * (GlusterFS and NFS honour exclusive create; flock is not reliable across nodes there). The file names
 * its holder (host, pid, time). A holder that keeps the lock refreshes its mtime; a lock whose mtime is
 * older than `staleMs`, whose holder is a dead process on this host, or that is still empty 2 s after it
 * was made (its holder killed before writing its name), is taken over.
 */
import { open, rename, stat, unlink, utimes, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { MailfleetError } from '../../errors.js';

export interface FileLockOptions {
  /** A lock not refreshed for this long is considered abandoned. @default 30000 */
  readonly staleMs?: number;
  /** How long acquire() waits for a busy lock before failing. @default 10000; 0 = try once */
  readonly timeoutMs?: number;
}

const HOST = hostname();
/** How long a lock file may stay empty (created, its holder's name not yet written) before it counts as abandoned. */
const EMPTY_GRACE_MS = 2_000;

export class FileLock {
  private refresher?: NodeJS.Timeout;
  private held = false;

  constructor(
    readonly path: string,
    private readonly opts: FileLockOptions = {},
  ) {}

  /** Takes the lock; throws MailfleetError('MAILBOX_LOCKED') when it stays busy past the timeout. */
  async acquire(): Promise<void> {
    const staleMs = this.opts.staleMs ?? 30_000;
    const deadline = Date.now() + (this.opts.timeoutMs ?? 10_000);
    let delay = 2;
    for (;;) {
      try {
        const fh = await open(this.path, 'wx', 0o600);
        await fh.writeFile(`${HOST} ${process.pid} ${Date.now()}\n`);
        await fh.close();
        this.held = true;
        // Long holders (a POP3 session) keep the lock fresh so nobody takes it over.
        this.refresher = setInterval(() => void utimes(this.path, new Date(), new Date()).catch(() => {}), Math.max(1000, staleMs / 3));
        this.refresher.unref();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new MailfleetError('STORE_UNAVAILABLE', `cannot create lock ${this.path}`, { cause: e });
        }
      }
      if (await this.isStale(staleMs)) {
        // Move it aside first: of two processes that both saw it stale, only one rename succeeds.
        const aside = `${this.path}.stale.${process.pid}.${Date.now()}`;
        try {
          await rename(this.path, aside);
          await unlink(aside).catch(() => {});
        } catch {
          /* someone else took it over */
        }
        continue;
      }
      if (Date.now() >= deadline) throw new MailfleetError('MAILBOX_LOCKED', `lock busy: ${this.path}`);
      await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
      delay = Math.min(delay * 2, 50);
    }
  }

  async release(): Promise<void> {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
    if (!this.held) return;
    this.held = false;
    await unlink(this.path).catch(() => {});
  }

  private async isStale(staleMs: number): Promise<boolean> {
    try {
      const st = await stat(this.path);
      if (Date.now() - st.mtimeMs > staleMs) return true;
      const text = await readFile(this.path, 'utf8');
      // Empty: its holder died between creating the file and writing its name (a SIGKILL in that window).
      // A live holder writes it at once, so an empty file older than EMPTY_GRACE_MS is abandoned.
      if (text === '' && Date.now() - st.mtimeMs > EMPTY_GRACE_MS) return true;
      const [host, pid] = text.split(' ');
      if (host === HOST && pid && Number(pid) !== process.pid) {
        try {
          process.kill(Number(pid), 0);
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === 'ESRCH';
        }
      }
      return false;
    } catch {
      return false; // vanished or unreadable between calls: retry the create
    }
  }
}

/** Runs `fn` holding the lock at `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts?: FileLockOptions): Promise<T> {
  const lock = new FileLock(path, opts);
  await lock.acquire();
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
