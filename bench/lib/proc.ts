/**
 * CPU time of bench processes from /proc: the rate alone moves with whatever else the machine runs, CPU
 * per message much less.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Cpu {
  readonly user: number;
  readonly system: number;
}

/** CPU seconds a process has used so far (user, system); clock ticks are 100 per second on Linux. */
export function cpuSeconds(pid: number): Cpu {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // After the command: utime and stime are fields 14 and 15 (index 11 and 12 after the command).
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/**
 * CPU seconds of a process tree: every living descendant of `root` plus what `root` has reaped (Postfix's
 * master spawns and waits for every Postfix daemon, so short-lived ones count too; rspamd's main process
 * forks its workers).
 */
export function treeCpuSeconds(root: number): Cpu {
  const procs = new Map<number, { ppid: number; f: string[] }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      procs.set(Number(d), { ppid: Number(f[1]), f });
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = procs.get(p)?.ppid ?? 0, hops++) if (p === root) return true;
    return false;
  };
  let user = 0;
  let system = 0;
  for (const [pid, { f }] of procs) {
    if (!inTree(pid)) continue;
    user += Number(f[11]) + (pid === root ? Number(f[13]) : 0);
    system += Number(f[12]) + (pid === root ? Number(f[14]) : 0);
  }
  return { user: user / 100, system: system / 100 };
}

export const cpuDelta = (a: Cpu, b: Cpu): Cpu => ({ user: b.user - a.user, system: b.system - a.system });
