/**
 * Runs a real HAProxy in master-worker mode (`haproxy -W -db -S <master.sock> -f <cfg>`), waits until its
 * runtime API answers, reloads it through the master socket, and stops it (master and workers, by PID).
 * HAProxy runs in its own process group (a terminal's Ctrl-C reaches the group of `npm start`, and SIGINT
 * is HAProxy's hard stop); its owner stops it, softly first. An optional pidfile lets the next start find
 * a HAProxy whose owner was SIGKILLed.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { MailfleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { HaproxyRuntime, runtimeCommand } from './runtime.js';

const execFileP = promisify(execFile);

export const HAPROXY_INSTALL_HINT = 'install the Debian package "haproxy" (scripts/install-system-deps.sh)';

/** The haproxy binary's version line, or undefined when it is not installed. */
export function haproxyVersion(bin = 'haproxy'): string | undefined {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

/**
 * The hard open-file limit this process (and so HAProxy) gets. HAProxy needs about two descriptors per
 * connection and refuses to start when it cannot raise its limit to that.
 */
export function openFileLimit(): number | undefined {
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const v = r.stdout?.trim();
  if (r.status !== 0 || !v || v === 'unlimited') return undefined;
  return Number(v);
}

/** Global maxconn that fits an open-file limit (two per connection, plus listeners, checks and files). */
export function maxConnectionsForFileLimit(limit: number | undefined, listeners: number): number | undefined {
  if (limit === undefined) return undefined;
  return Math.max(1, Math.floor((limit - 200 - 4 * listeners) / 2));
}

/** `haproxy -c -f <file>`: resolves with the warnings, rejects with HAProxy's own message. */
export async function checkHaproxyConfig(configFile: string, bin = 'haproxy'): Promise<string> {
  try {
    const r = await execFileP(bin, ['-c', '-f', configFile], { encoding: 'utf8' });
    return r.stdout + r.stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number | string };
    if (err.code === 'ENOENT') throw new MailfleetError('INTERNAL', `haproxy not found: ${HAPROXY_INSTALL_HINT}`, { cause: e });
    throw new MailfleetError('PLAN_INVALID', `haproxy -c rejected ${configFile}:\n${(err.stderr ?? '') + (err.stdout ?? '')}`, {
      cause: e,
    });
  }
}

export interface HaproxyProcessProps {
  readonly configFile: string;
  /** Admin socket the config declares (`stats socket`). */
  readonly adminSocket: string;
  /** Master CLI socket (`-S`). */
  readonly masterSocket: string;
  /** HAProxy's stdout/stderr (its logs go to stderr locally). */
  readonly logFile: string;
  /** @default 'haproxy' */
  readonly bin?: string;
  /** @default 10000 */
  readonly startTimeoutMs?: number;
  /** File that holds the master's PID while it runs (written at spawn, removed once it stopped). @default - none */
  readonly pidFile?: string;
  readonly logger?: Logger;
}

export interface ProcEntry {
  readonly pid: number;
  readonly type: 'master' | 'worker' | 'old-worker' | 'program';
  readonly reloads: number;
  readonly failed?: number;
}

/** Parses the master CLI's `show proc`. */
export function parseShowProc(text: string): ProcEntry[] {
  const out: ProcEntry[] = [];
  let section: 'master' | 'workers' | 'old' | 'programs' = 'master';
  for (const line of text.split('\n')) {
    if (/^# workers/.test(line)) section = 'workers';
    else if (/^# old workers/.test(line)) section = 'old';
    else if (/^# programs/.test(line)) section = 'programs';
    const m = line.match(/^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/);
    if (!m) continue;
    const type = m[2] === 'master' ? 'master' : section === 'old' ? 'old-worker' : section === 'programs' ? 'program' : 'worker';
    out.push({ pid: Number(m[1]), type, reloads: Number(m[3]), failed: m[4] === undefined ? undefined : Number(m[4]) });
  }
  return out;
}

// Ref'd: a wait for a stale HAProxy runs before anything else holds the event loop, and an unref'd timer
// there let `up` exit with 13 (unsettled top-level await) and no word.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let setprivPath: string | null | undefined;
/**
 * `setpriv --pdeathsig TERM` (util-linux) has the kernel send SIGTERM to the HAProxy master when its
 * owner dies, SIGKILL included (the 'exit' hook below cannot run then); setpriv execs HAProxy, so the PID
 * and command line are HAProxy's. Without setpriv, the owner's pidfile lets the next start clean up.
 */
function pdeathsigLauncher(): string | undefined {
  if (setprivPath === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
    setprivPath = r.status === 0 && r.stdout.includes('--pdeathsig') ? 'setpriv' : null;
  }
  return setprivPath ?? undefined;
}

/**
 * HAProxy masters this process started and that still run. In their own process group they would survive
 * an abnormal exit of their owner (uncaught error, a second Ctrl-C), so they get SIGTERM on 'exit'.
 */
const liveMasters = new Set<number>();
let exitHookInstalled = false;
function killMastersOnExit(): void {
  for (const pid of liveMasters) signalGroup(pid, 'SIGTERM');
}

/** Signals a process group led by pid (a master spawned detached), else the process itself. */
function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

export class HaproxyProcess {
  readonly runtime: HaproxyRuntime;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private exitCode: number | null | undefined;
  private readonly log: Logger;
  private readonly seenPids = new Set<number>();
  private softStopping = false;

  constructor(readonly props: HaproxyProcessProps) {
    this.runtime = new HaproxyRuntime(props.adminSocket);
    this.log = props.logger ?? silentLogger;
  }

  /** PID of the master process. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === undefined;
  }

  master(cmd: string, timeoutMs?: number): Promise<string> {
    return runtimeCommand(this.props.masterSocket, cmd, timeoutMs);
  }

  async start(): Promise<void> {
    const bin = this.props.bin ?? 'haproxy';
    if (!haproxyVersion(bin)) throw new MailfleetError('INTERNAL', `haproxy not found: ${HAPROXY_INSTALL_HINT}`);
    await checkHaproxyConfig(this.props.configFile, bin);
    const fd = openSync(this.props.logFile, 'a');
    try {
      const args = ['-W', '-db', '-S', `${this.props.masterSocket},mode,600`, '-f', this.props.configFile];
      const setpriv = pdeathsigLauncher();
      this.child = spawn(setpriv ?? bin, setpriv ? ['--pdeathsig', 'TERM', bin, ...args] : args, {
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    const child = this.child;
    if (child.pid !== undefined) {
      liveMasters.add(child.pid);
      if (!exitHookInstalled) process.once('exit', killMastersOnExit);
      exitHookInstalled = true;
      if (this.props.pidFile) writeFileSync(this.props.pidFile, `${child.pid}\n`);
    }
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        if (child.pid !== undefined) liveMasters.delete(child.pid);
        resolve();
      }),
    );
    child.once('error', (e) => this.log.error({ err: e }, 'haproxy failed to spawn'));
    const deadline = Date.now() + (this.props.startTimeoutMs ?? 10000);
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined)
        throw new MailfleetError('INTERNAL', `haproxy exited during start (code ${String(this.exitCode)}):\n${this.logTail()}`);
      try {
        await this.runtime.command('show info', 1000);
        await this.rememberPids();
        this.log.info({ pid: child.pid, config: this.props.configFile }, 'haproxy started');
        return;
      } catch {
        await sleep(50);
      }
    }
    await this.stop();
    throw new MailfleetError('INTERNAL', `haproxy did not answer on ${this.props.adminSocket} in time:\n${this.logTail()}`);
  }

  async processes(): Promise<ProcEntry[]> {
    return parseShowProc(await this.master('show proc'));
  }

  private async rememberPids(): Promise<void> {
    try {
      for (const p of await this.processes()) if (p.type !== 'master') this.seenPids.add(p.pid);
    } catch {
      // The master socket may be re-executing; the PIDs are collected again on the next call.
    }
  }

  /**
   * Re-reads the config file (validated first) through the master socket and waits for the new worker.
   * The old worker keeps its established sessions until they end (or hard-stop-after); new connections
   * go to the new worker, whose counters start from zero.
   */
  async reload(timeoutMs = 10000): Promise<void> {
    if (!this.running) throw new MailfleetError('INTERNAL', 'haproxy is not running');
    const pids = await masterReload({ ...this.props, timeoutMs });
    for (const p of pids) this.seenPids.add(p);
    this.log.info({ workers: pids }, 'haproxy reloaded');
  }

  /**
   * Soft stop (SIGUSR1 to the master): stop accepting, let established sessions end by themselves. Used
   * before the daemon's graceful stop so clients get the daemon's goodbye through HAProxy, not a cut.
   */
  softStop(): void {
    if (!this.running) return;
    this.softStopping = true;
    this.child?.kill('SIGUSR1');
  }

  /**
   * Stops master and workers and waits for them to be gone. After softStop() it first gives HAProxy
   * graceMs to finish by itself (its sessions end once the daemon behind it closed them); then SIGTERM,
   * then SIGKILL after graceMs.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.child) return;
    await this.rememberPids().catch(() => undefined);
    if (this.exitCode === undefined && this.softStopping) {
      await Promise.race([this.exited, sleep(graceMs)]);
      if (this.exitCode === undefined) this.log.warn({ pid: this.child.pid, graceMs }, 'haproxy did not finish its soft stop in time; stopping it');
    }
    if (this.exitCode === undefined) {
      this.child.kill('SIGTERM');
      const pid = this.child.pid;
      const timer = setTimeout(() => pid !== undefined && signalGroup(pid, 'SIGKILL'), graceMs);
      timer.unref();
      await this.exited;
      clearTimeout(timer);
    }
    // Workers exit with their master; make sure of it, by the PIDs we saw.
    for (const pid of this.seenPids) {
      const deadline = Date.now() + graceMs;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(20);
      if (pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (this.props.pidFile) rmSync(this.props.pidFile, { force: true });
    this.log.info({ pid: this.child.pid }, 'haproxy stopped');
  }

  /** PIDs of every HAProxy process this manager has seen (master first). */
  pids(): number[] {
    return [...(this.child?.pid ? [this.child.pid] : []), ...this.seenPids];
  }

  logTail(lines = 20): string {
    if (!existsSync(this.props.logFile)) return '';
    return readFileSync(this.props.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  }
}

export interface MasterReloadProps {
  readonly configFile: string;
  readonly adminSocket: string;
  readonly masterSocket: string;
  readonly bin?: string;
  /** @default 10000 */
  readonly timeoutMs?: number;
}

/**
 * `reload` on the master socket, from any process (the ops CLI too): validates the file first, then waits
 * until the master has re-executed, a new worker runs and answers on the admin socket. Returns the PIDs of
 * the non-master processes seen. A reload the master could not load fails with HAProxy's message.
 */
export async function masterReload(props: MasterReloadProps): Promise<number[]> {
  await checkHaproxyConfig(props.configFile, props.bin);
  const master = (cmd: string) => runtimeCommand(props.masterSocket, cmd);
  const procs0 = parseShowProc(await master('show proc'));
  const before = procs0.find((p) => p.type === 'master');
  const oldWorkers = new Set(procs0.filter((p) => p.type === 'worker').map((p) => p.pid));
  // The master re-executes on reload and may drop this connection without an answer.
  await master('reload').catch(() => '');
  const deadline = Date.now() + (props.timeoutMs ?? 10000);
  while (Date.now() < deadline) {
    await sleep(50);
    let procs: ProcEntry[];
    try {
      procs = parseShowProc(await master('show proc'));
    } catch {
      continue;
    }
    const m = procs.find((p) => p.type === 'master');
    if (!m || !before || m.reloads <= before.reloads) continue;
    if ((m.failed ?? 0) > (before.failed ?? 0)) throw new MailfleetError('INTERNAL', 'haproxy reload failed: the master kept the old worker');
    const fresh = procs.find((p) => p.type === 'worker' && !oldWorkers.has(p.pid));
    if (!fresh) continue;
    try {
      await runtimeCommand(props.adminSocket, 'show info', 1000);
      return procs.filter((p) => p.type !== 'master').map((p) => p.pid);
    } catch {
      // the new worker is still binding its admin socket
    }
  }
  throw new MailfleetError('INTERNAL', `haproxy reload did not finish within ${props.timeoutMs ?? 10000} ms`);
}

/** A process's command line (argv), or undefined when it is gone or unreadable. */
export function processCommandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

/**
 * Stops a HAProxy master left behind by an owner that died (SIGKILL), found through its pidfile: only when
 * that PID still runs haproxy on this config file (PIDs are reused). Master and workers get SIGTERM as a
 * group (they serve no one: their daemon is gone), SIGKILL after graceMs. Returns the PID it stopped.
 */
export async function stopOrphanHaproxy(pid: number, configFile: string, graceMs = 5000): Promise<number | undefined> {
  const argv = processCommandLine(pid);
  if (!pidAlive(pid) || !argv || !argv[0]?.includes('haproxy') || !argv.includes(configFile)) return undefined;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(20);
  if (pidAlive(pid)) signalGroup(pid, 'SIGKILL');
  while (pidAlive(pid) && Date.now() < deadline + graceMs) await sleep(20);
  return pid;
}

/** True while the process exists and is not a zombie (an unreaped orphan counts as gone). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs: trust kill(0)
  }
}
