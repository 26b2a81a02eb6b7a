/**
 * One `mailfleet up` per data dir: <dataDir>/run/up.pid holds the PID of the `up` that owns it. A second
 * start finds the owner alive and refuses in one line; a file whose process is gone (or is no longer
 * `mailfleet up`: PIDs are reused) is stale and taken over. HAProxy's own pidfile sits beside its config
 * (<dataDir>/run/haproxy/haproxy.pid, lib/platform/haproxy.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MailfleetError } from '../errors.js';
import { pidAlive, processCommandLine } from '../haproxy/process.js';

export const UP_PIDFILE = 'up.pid';

export function upPidfilePath(dataDir: string): string {
  return join(resolve(dataDir), 'run', UP_PIDFILE);
}

/** The PID a pidfile names, or undefined (missing, empty or garbled). */
export function readPidfile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isMailfleetUp(pid: number): boolean {
  const argv = processCommandLine(pid);
  return pidAlive(pid) && argv !== undefined && argv.includes('up') && argv.some((a) => a.includes('mailfleet'));
}

export interface UpClaim {
  readonly file: string;
  /** The PID of a dead `up` whose pidfile was taken over. */
  readonly stalePid?: number;
  /** Removes the pidfile (only while it still names this process). */
  release(): void;
}

/** Claims the data dir for this process; throws IN_USE (one line) while another `mailfleet up` owns it. */
export function claimDataDir(dataDir: string): UpClaim {
  const file = upPidfilePath(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  let stalePid: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      const release = () => {
        if (readPidfile(file) === process.pid) rmSync(file, { force: true });
        process.off('exit', release);
      };
      // An abnormal exit (second Ctrl-C, uncaught error) leaves no pidfile naming a dead process either.
      process.on('exit', release);
      return { file, stalePid, release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = readPidfile(file);
    if (pid !== undefined && pid !== process.pid && isMailfleetUp(pid))
      throw new MailfleetError('IN_USE', `mailfleet up is already running for ${resolve(dataDir)} (pid ${pid}): stop it first (Ctrl-C in its terminal, or kill ${pid})`, {
        status: 409,
        details: { pid },
      });
    stalePid = pid;
    rmSync(file, { force: true });
  }
  throw new MailfleetError('IN_USE', `could not claim ${file}: another mailfleet up is starting for the same data dir`, { status: 409 });
}
