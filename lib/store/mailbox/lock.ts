/**
 * A lock that works across processes and across nodes of a shared filesystem: an O_EXCL-created file
 * (GlusterFS and NFS honour exclusive create; flock is not reliable across nodes there). The file names
 * its holder (host, pid, time). A holder that keeps the lock refreshes its mtime; a lock whose mtime is
 * older than `staleMs`, whose holder is a dead process on this host, or that is still empty 2 s after it
 * was made (its holder killed before writing its name), is taken over.
 */
import { open, rename, stat, unlink, utimes, readFile } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
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

  /** release() for an exit hook, where nothing asynchronous runs any more. */
  releaseSync(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = undefined;
    if (!this.held) return;
    this.held = false;
    try {
      unlinkSync(this.path);
    } catch {
      /* gone already */
    }
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

/** Locks a HeldLock keeps between passes, released at exit (see HeldLock). */
const lingering = new Set<FileLock>();
let exitHook = false;

export interface HeldLockOptions extends FileLockOptions {
  /**
   * How long the lock is kept after a pass ends, for the next pass of this holder to run without taking
   * it again. 0 releases it after every pass.
   * @default 0
   */
  readonly holdMs?: number;
  /**
   * Longest the lock is kept across consecutive passes before it is released (and taken again by the
   * next pass), so holders in other processes and on other nodes get their turn.
   * @default 100
   */
  readonly maxHoldMs?: number;
  /** Called each time the lock is given up (its owner may forget this HeldLock). @default - nothing */
  readonly onRelease?: () => void;
}

/**
 * The same O_EXCL lock file as FileLock, kept by one holder across its passes: a pass that starts within
 * `holdMs` of the last one ending (a group-commit batch queued behind it, the next command of a session)
 * runs under the lock it already holds, where taking it anew costs four file operations (create, write,
 * close, unlink). Passes of one HeldLock run one after the other. Other processes and nodes see an
 * ordinary lock held a little longer (at most maxHoldMs + holdMs in a row), so nodes of older versions
 * interoperate unchanged. A lock still kept when the process exits is removed by an exit hook; a killed
 * process leaves it for the usual takeover (dead pid on this host, or staleMs elsewhere), as a pass would.
 */
export class HeldLock {
  private lock?: FileLock;
  private since = 0;
  private timer?: NodeJS.Timeout;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly opts: HeldLockOptions = {},
  ) {}

  /** True while the lock is kept between passes (for tests). */
  get holding(): boolean {
    return this.lock !== undefined;
  }

  /** Runs `fn` holding the lock; calls are serialised. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const go = async (): Promise<T> => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      if (!this.lock) {
        const lock = new FileLock(this.path, this.opts);
        await lock.acquire();
        this.lock = lock;
        this.since = Date.now();
      }
      try {
        return await fn();
      } finally {
        await this.afterPass();
      }
    };
    const run = this.queue.then(go, go);
    this.queue = run.catch(() => {});
    return run;
  }

  private async afterPass(): Promise<void> {
    const hold = this.opts.holdMs ?? 0;
    if (hold > 0 && Date.now() - this.since < (this.opts.maxHoldMs ?? 100)) {
      lingering.add(this.lock!);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', () => {
          for (const l of lingering) l.releaseSync();
        });
      }
      // Through the queue: a pass queued before the timer fired runs first, under the lock.
      this.timer = setTimeout(() => void this.release(), hold);
      return;
    }
    await this.drop();
  }

  /** Gives the lock up now if no pass holds it (a later run() takes it again). */
  release(): Promise<void> {
    const go = async () => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      await this.drop();
    };
    const run = this.queue.then(go, go);
    this.queue = run.catch(() => {});
    return run;
  }

  private async drop(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    if (!lock) return;
    lingering.delete(lock);
    await lock.release();
    this.opts.onRelease?.();
  }
}
