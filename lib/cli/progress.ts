/**
 * Progress for long CLI commands (synth, dr drill), as `cdk synth` shows it: each step's title, then ✔ or ✘
 * with its time, on stderr so stdout stays the command's result (an inventory, JSON) for pipes. The drawing
 * is lib/dr/progress.ts's (a spinner on a TTY, plain lines otherwise). Silenced by `--quiet` or
 * MAILFLEET_QUIET=1.
 */
import { createProgress, silentProgress, type IProgress } from '../dr/progress.js';

export type { IProgress };

export function cliProgress(quiet?: boolean, stream: NodeJS.WriteStream = process.stderr): IProgress {
  return quiet || process.env.MAILFLEET_QUIET === '1' ? silentProgress : createProgress(stream);
}

/** Runs `fn` as one titled step: ✔ with its time when it returns, ✘ when it throws (the error goes on up). */
export async function step<T>(progress: IProgress, title: string, fn: () => T | Promise<T>): Promise<T> {
  progress.start(title);
  try {
    const result = await fn();
    progress.done(title, true);
    return result;
  } catch (e) {
    progress.done(title, false);
    throw e;
  }
}
