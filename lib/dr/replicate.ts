/**
 * Local storage replication for the DR drill: rsync of the primary data folder to the DR data folder in
 * a loop, the local stand-in for GlusterFS geo-replication (gsyncd also ships changes with rsync, over
 * SSH, driven by the volume changelog; here each cycle rescans the tree instead of reading a changelog).
 *
 * Safety, as geo-replication gives it: DR never sees half a file. Maildir writers create messages in
 * tmp/ and rename them into new/, so tmp/ contents are never shipped; rsync writes each file under a
 * temp dir outside the mail tree and renames it into place. Each cycle ships the messages first and the
 * mailbox index files (UID list, cache) second, so DR's index never names a message DR lacks.
 *
 * Watermark: a cycle that started at time T and completed has copied everything acknowledged before T
 * (delivery acknowledges only after the rename into new/). Acks after the watermark are at risk (RPO).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';

export interface ReplicatorProps {
  /** Primary data folder. */
  readonly source: string;
  /** DR data folder. */
  readonly target: string;
  /** Mail trees to mirror, relative to the data folders (deletions mirrored too). */
  readonly trees: readonly string[];
  /** Single files to carry over, relative to the data folders (live limit overrides, directory file). */
  readonly files?: readonly string[];
  /** More rsync exclude patterns for the trees (runtime sockets, pid files). @default [] */
  readonly exclude?: readonly string[];
  /**
   * Pause between cycles. Short, because the RPO under load is about one cycle plus this.
   * @default 250
   */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export interface CycleRecord {
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Names inside a Maildir that are per-process or mid-write: never shipped. */
// Layout <root>/<domain>/<local>/Maildir (lib/store/types.ts); folders are Maildir/.<name>.
const NEVER = ['Maildir/tmp/*', 'Maildir/.*/tmp/*', '*.lock', '.rsync-tmp'];
/** Index files shipped after the messages they describe (the UID list's change log goes with it). */
const INDEX_FILES = ['mailfleet-uidlist', 'mailfleet-uidlist.log', 'mailfleet-cache'];

export class Replicator {
  readonly intervalMs: number;
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | undefined;
  private child: ChildProcess | undefined;
  private readonly cycles: CycleRecord[] = [];
  private wake: (() => void) | undefined;
  private lastError: Error | undefined;

  constructor(private readonly props: ReplicatorProps) {
    this.intervalMs = props.intervalMs ?? 250;
    this.now = props.now ?? Date.now;
  }

  /** Start time of the last completed cycle: every ack before it is on DR. */
  get watermark(): number | undefined {
    return this.cycles.at(-1)?.startedAt;
  }

  get completedCycles(): readonly CycleRecord[] {
    return this.cycles;
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        try {
          await this.cycle();
        } catch (e) {
          if (!this.running) break; // cut() killed rsync mid-cycle: expected
          this.lastError = e as Error;
        }
        if (!this.running) break;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.intervalMs);
          t.unref();
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    })();
  }

  /**
   * Runs cycles until one completes whole (the loop must be stopped, or it runs beside it); returns its
   * start: everything acknowledged before it is on DR.
   */
  async checkpoint(): Promise<number> {
    const before = this.cycles.length;
    for (let i = 0; i < 20 && this.cycles.length === before; i++) await this.cycle();
    if (this.cycles.length === before)
      throw new MailfleetError('INTERNAL', 'replication checkpoint: no complete cycle in 20 tries');
    return this.cycles.at(-1)!.startedAt;
  }

  /**
   * The region is gone: kill rsync in flight (a partial cycle ships whole files or nothing) and stop,
   * without finishing the cycle.
   */
  async cut(): Promise<void> {
    this.running = false;
    this.child?.kill('SIGKILL');
    this.wake?.();
    await this.loop;
  }

  /** Stops after the current cycle. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async cycle(): Promise<void> {
    const startedAt = this.now();
    const { source, target } = this.props;
    const tmp = join(target, '.rsync-tmp');
    mkdirSync(tmp, { recursive: true });
    const common = ['-a', `--temp-dir=${tmp}`];
    let complete = true;
    const never = [...NEVER, ...(this.props.exclude ?? [])].map((x) => `--exclude=${x}`);
    for (const tree of this.props.trees) {
      const from = join(source, tree);
      if (!existsSync(from)) continue;
      const to = join(target, tree);
      mkdirSync(to, { recursive: true });
      // Pass 1: messages and folders; deletions (expunges) mirrored. Excluded names are never deleted.
      complete =
        (await this.rsync([
          ...common,
          '--delete',
          ...never,
          ...INDEX_FILES.map((x) => `--exclude=${x}`),
          `${from}/`,
          `${to}/`,
        ])) && complete;
      // Pass 2: the index files, now that the messages they name are there.
      complete =
        (await this.rsync([
          ...common,
          ...never,
          '--include=*/',
          ...INDEX_FILES.map((x) => `--include=${x}`),
          '--exclude=*',
          `${from}/`,
          `${to}/`,
        ])) && complete;
    }
    const files = (this.props.files ?? []).filter((f) => existsSync(join(source, f)));
    if (files.length)
      complete =
        (await this.rsync([
          ...common,
          '--relative',
          ...files.map((f) => `${source}/./${f}`),
          `${target}/`,
        ])) && complete;
    // A cycle that saw files vanish may have missed a message renamed new/ → cur/ after cur/ was
    // listed: it does not move the watermark; the next cycle will.
    if (complete) this.cycles.push({ startedAt, endedAt: this.now() });
  }

  /** Resolves true when everything was copied, false when files vanished meanwhile (exit 24). */
  private rsync(args: string[]): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const child = spawn('rsync', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.child = child;
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e) =>
        reject(
          new MailfleetError('INTERNAL', `rsync could not start (${e.message}): install rsync`, { cause: e }),
        ),
      );
      child.on('close', (code, signal) => {
        this.child = undefined;
        // 24: files vanished during the transfer (a message moved new/ → cur/): the next cycle has them.
        if (code === 0 || code === 24) resolve(code === 0);
        else reject(new MailfleetError('INTERNAL', `rsync ${signal ?? 'exit ' + code}: ${err.trim()}`));
      });
    });
  }
}
