/**
 * What the governor keeps on disk, in its state dir:
 *   governor-log.jsonl   the audit trail, append-only, one JSON line per event, fsynced per line;
 *   governor-state.json  what it governs and its timers, replaced durably (lib/state-json.ts) before
 *                        every change is sent (write-ahead), so a governor killed mid-change resumes it;
 *   governor.lock        the pid of the running governor: one per state dir;
 *   governor.prom        its metrics, in the Prometheus text format (node_exporter textfile collector).
 * The limits themselves live on the daemons and HAProxy (their own state files): a governor that dies
 * leaves them as they are.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';
import { writeJsonDurably } from '../state-json.js';
import type { GovernorMode } from './config.js';
import { EMPTY_STATE, type Decision, type GovernorState, type LoadState, type SignalReading } from './types.js';

export const GOVERNOR_LOG_FILE = 'governor-log.jsonl';
export const GOVERNOR_STATE_FILE = 'governor-state.json';
export const GOVERNOR_LOCK_FILE = 'governor.lock';
export const GOVERNOR_METRICS_FILE = 'governor.prom';

/** One target's answer to an applied change (a compact LimitReport). */
export interface AppliedReport {
  readonly target: string;
  readonly ok: boolean;
  readonly before?: number;
  readonly after?: number;
  readonly error?: string;
}

/**
 * One line of the audit trail. A decision in enforce mode writes two: 'applying' before the change is
 * sent and 'applied' (or 'failed') with every target's answer; in observe and advise one, 'proposed'.
 */
export interface GovernorLogEntry {
  readonly at: string;
  readonly event: 'start' | 'decision';
  readonly mode: GovernorMode;
  readonly status?: 'proposed' | 'applying' | 'applied' | 'failed' | 'noted';
  readonly load?: LoadState;
  readonly readings?: readonly SignalReading[];
  readonly decision?: Decision;
  /** The equivalent `mailfleet limit set` command (what a person runs in advise mode). */
  readonly command?: string;
  readonly reports?: readonly AppliedReport[];
  readonly error?: string;
  /** start: the scopes it governs after a restart. */
  readonly resumed?: readonly string[];
  /** Who applied an advise-mode proposal (the console's Apply), when not the governor itself. */
  readonly by?: 'console';
  /** The proposal (`<at> <scope>`) an entry `by` the console applied. */
  readonly proposal?: string;
}

export class GovernorStore {
  readonly logFile: string;
  readonly stateFile: string;
  readonly lockFile: string;
  readonly metricsFile: string;

  constructor(readonly dir: string) {
    this.logFile = join(dir, GOVERNOR_LOG_FILE);
    this.stateFile = join(dir, GOVERNOR_STATE_FILE);
    this.lockFile = join(dir, GOVERNOR_LOCK_FILE);
    this.metricsFile = join(dir, GOVERNOR_METRICS_FILE);
  }

  readState(): GovernorState {
    if (!existsSync(this.stateFile)) return EMPTY_STATE;
    const s = JSON.parse(readFileSync(this.stateFile, 'utf8')) as Partial<GovernorState>;
    return { ...s, managed: s.managed ?? {}, flaps: s.flaps ?? {} };
  }

  writeState(state: GovernorState): void {
    writeJsonDurably(this.stateFile, state);
  }

  append(entry: GovernorLogEntry): void {
    mkdirSync(this.dir, { recursive: true });
    const fd = openSync(this.logFile, 'a', 0o644);
    try {
      writeSync(fd, `${JSON.stringify(entry)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The trail, oldest first; a line torn by a crash mid-write is skipped. */
  readLog(): GovernorLogEntry[] {
    if (!existsSync(this.logFile)) return [];
    const out: GovernorLogEntry[] = [];
    for (const line of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as GovernorLogEntry);
      } catch {
        // torn tail
      }
    }
    return out;
  }

  /** Takes the state dir for this process; a lock left by a dead process (kill -9) is taken over. */
  lock(): void {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.lockFile)) {
      const pid = Number(readFileSync(this.lockFile, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
        throw new MailfleetError('BAD_REQUEST', `another governor (pid ${pid}) runs on ${this.dir}`, { status: 400 });
    }
    writeFileSync(this.lockFile, `${process.pid}\n`);
  }

  unlock(): void {
    rmSync(this.lockFile, { force: true });
  }

  writeMetrics(text: string): void {
    const tmp = `${this.metricsFile}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.metricsFile); // a scraper never reads half a file
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
