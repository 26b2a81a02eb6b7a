/**
 * One journal spool per node under a data dir that several nodes may share (cloud mail nodes keep their
 * data dir on the shared mail store):
 *
 *   <dataDir>/journal/nodes/<node>/        tmp/ ready/ batches/ of that node's spool
 *   <dataDir>/journal/nodes/<node>.lock    held (an O_EXCL lock file, refreshed) by whoever owns that spool
 *
 * A daemon takes its own node's lock before it opens its spool, and keeps it while it runs, so no other
 * process recovers its tmp/ (entries being written: recovering them would mark them not acknowledged
 * under a live writer) or ships its ready/ (which would ship entries twice).
 *
 * A node that went away for good (an Auto Scaling replacement gets another name) may leave entries not
 * yet shipped. Each daemon with an archive bucket sweeps the other nodes' spools now and then: a spool
 * whose lock is free (its daemon stopped) or stale (not refreshed for `staleMs`, or held by a dead process
 * on this host) is adopted: its lock taken, its tmp/ recovered, everything in it shipped with the same
 * uploader, then the empty spool removed. Nothing is dropped: until someone ships it, it stays on disk.
 *
 * Spools from before this layout (<dataDir>/journal/{tmp,ready,batches}) are adopted the same way, under
 * the lock <dataDir>/journal/nodes/.legacy.lock.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { FileLock } from '../store/mailbox/lock.js';
import type { S3Target } from './s3.js';
import { JournalSpool } from './spool.js';
import { JournalUploader, type JournalUploaderProps } from './uploader.js';

const NODES = 'nodes';
const LEGACY = '.legacy';

/** How long a spool lock may go unrefreshed before another node adopts the spool. */
export const DEFAULT_SPOOL_STALE_MS = 120_000;

export function journalRoot(dataDir: string): string {
  return join(dataDir, 'journal');
}

/** The spool folder of one node. */
export function nodeSpoolDir(dataDir: string, node: string): string {
  return join(journalRoot(dataDir), NODES, node);
}

function lockOf(dataDir: string, node: string): string {
  return join(journalRoot(dataDir), NODES, `${node}.lock`);
}

/** A node name that is safe as one folder name. */
export function spoolNodeName(name: string): string {
  const clean = [...name].map((c) => (/[A-Za-z0-9._-]/.test(c) ? c : '_')).join('');
  return clean === '' || clean.startsWith('.') ? `n${clean}` : clean;
}

/** Every spool folder under a data dir (each node's, and the pre-node layout's when it exists). */
export function journalSpoolDirs(dataDir: string): string[] {
  const root = journalRoot(dataDir);
  const out: string[] = [];
  if (existsSync(join(root, 'ready'))) out.push(root);
  let names: import('node:fs').Dirent[] = [];
  try {
    names = readdirSync(join(root, NODES), { withFileTypes: true });
  } catch {
    // no node spools yet
  }
  for (const d of names) if (d.isDirectory()) out.push(join(root, NODES, d.name));
  return out.sort();
}

/** Takes this node's spool lock (waiting while another process adopts it) and keeps it until released. */
export async function lockNodeSpool(dataDir: string, node: string, staleMs = DEFAULT_SPOOL_STALE_MS): Promise<FileLock> {
  await mkdir(join(journalRoot(dataDir), NODES), { recursive: true });
  const lock = new FileLock(lockOf(dataDir, node), { staleMs, timeoutMs: 2 * staleMs });
  await lock.acquire();
  return lock;
}

export interface OrphanSweepProps {
  readonly dataDir: string;
  /** This node (its own spool is never swept). */
  readonly node: string;
  readonly target: S3Target;
  readonly logger: Logger;
  /** Uploader settings for the adopted spools (batch sizes). */
  readonly uploader?: Pick<JournalUploaderProps, 'batchMaxEntries' | 'batchMaxBytes' | 'retryMinMs'>;
  /** @default DEFAULT_SPOOL_STALE_MS */
  readonly staleMs?: number;
  /** Time between sweeps. @default 60000 */
  readonly intervalMs?: number;
}

/** Adopts and ships the spools other nodes left behind (see the module comment). */
export class OrphanSpoolSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private stopped = false;

  constructor(private readonly props: OrphanSweepProps) {}

  start(firstDelayMs = 5_000): void {
    const tick = (ms: number) => {
      this.timer = setTimeout(() => {
        this.running = this.sweep().catch((e: unknown) => {
          this.props.logger.warn({ err: e }, 'audit journal: sweeping other nodes\' spools failed; next sweep retries');
          return 0;
        });
        void this.running.then(() => !this.stopped && tick(this.props.intervalMs ?? 60_000));
      }, ms);
      this.timer.unref();
    };
    tick(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass: adopts every free or stale spool of another node; returns how many were emptied. */
  async sweep(): Promise<number> {
    const root = journalRoot(this.props.dataDir);
    const candidates: Array<{ name: string; dir: string }> = [];
    if (existsSync(join(root, 'ready')) || existsSync(join(root, 'tmp'))) candidates.push({ name: LEGACY, dir: root });
    for (const d of await readdir(join(root, NODES), { withFileTypes: true }).catch(() => []))
      if (d.isDirectory() && d.name !== this.props.node) candidates.push({ name: d.name, dir: join(root, NODES, d.name) });
    let emptied = 0;
    for (const c of candidates) {
      if (this.stopped) break;
      if (await this.adopt(c.name, c.dir)) emptied++;
    }
    return emptied;
  }

  private async adopt(name: string, dir: string): Promise<boolean> {
    const lock = new FileLock(lockOf(this.props.dataDir, name), { staleMs: this.props.staleMs ?? DEFAULT_SPOOL_STALE_MS, timeoutMs: 0 });
    try {
      await lock.acquire();
    } catch {
      return false; // its owner runs (or another node adopts it right now)
    }
    try {
      // The spool keeps its own node's name (entries recovered from its tmp/ are that node's); this node ships it.
      const spool = await JournalSpool.open({ dir, node: name === LEGACY ? undefined : name });
      const uploader = new JournalUploader({ spool, target: this.props.target, logger: this.props.logger, ...this.props.uploader, shippedBy: this.props.node });
      try {
        const before = (await spool.pending()).length;
        await uploader.flush();
        if (before > 0) this.props.logger.info({ node: name, files: before }, 'audit journal: shipped a spool another node left behind');
      } finally {
        await uploader.stop();
        await spool.close();
      }
      const left = [...(await readdir(spool.ready)), ...(await readdir(spool.tmp)), ...(await readdir(spool.batches))];
      if (left.length > 0) return false;
      if (name === LEGACY) {
        for (const sub of ['tmp', 'ready', 'batches']) await rmdir(join(dir, sub)).catch(() => undefined);
      } else await rm(dir, { recursive: true, force: true });
      return true;
    } finally {
      await lock.release();
    }
  }
}
