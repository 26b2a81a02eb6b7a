/** Runs `npm start -- --config <spec> --data-dir <dir>` the way a user does, in its own process group. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { pidAlive } from '../../lib/haproxy/process.js';

export interface NpmStart {
  readonly child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  readonly exited: Promise<number | null>;
  /** SIGINT to the process group (what a terminal's Ctrl-C does); resolves with the exit code or 'timeout'. */
  interrupt(timeoutMs?: number): Promise<number | null | 'timeout'>;
  /** PIDs of the group still alive. */
  groupPids(): number[];
  kill(): void;
}

export function requireTool(bin: string, pkg: string): void {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) throw new Error(`${bin} is not installed: apt-get install ${pkg}`);
}

export async function npmStart(specFile: string, dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<NpmStart> {
  const child = spawn('npm', ['start', '--silent', '--', '--config', specFile, '--data-dir', dataDir], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, MAILFLEET_LOG_LEVEL: 'warn' },
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const groupPids = () =>
    spawnSync('ps', ['-o', 'pid=', '-g', String(child.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0 && pidAlive(n));
  const deadline = Date.now() + 25000;
  while (!out.includes('Ctrl-C') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  if (!out.includes('Ctrl-C')) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    throw new Error(`npm start printed no endpoint table within 25 s:\n${out}`);
  }
  return {
    child,
    output: () => out,
    exited,
    groupPids,
    async interrupt(timeoutMs = 20000) {
      process.kill(-child.pid!, 'SIGINT');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs))]);
      const end = Date.now() + 10000;
      while (groupPids().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      return code;
    },
    kill() {
      if (child.exitCode !== null && groupPids().length === 0) return;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    },
  };
}

/** `npm start` that is expected to end on its own (a refusal): its exit code and output. */
export function npmStartOnce(specFile: string, dataDir: string, timeoutMs = 30000): Promise<{ code: number | null; out: string }> {
  const child = spawn('npm', ['start', '--silent', '--', '--config', specFile, '--data-dir', dataDir], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      resolve({ code: null, out: `${out}\n(killed after ${timeoutMs} ms)` });
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The node process that runs `mailfleet up` under npm, sh and tsx: the innermost one naming mailfleet.ts. */
export function upNodePid(up: NpmStart): number {
  const rows = spawnSync('ps', ['-o', 'pid=,ppid=,args=', '-g', String(up.child.pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && m[3]!.includes('mailfleet.ts'))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]) }));
  const child = rows.find((r) => !rows.some((c) => c.ppid === r.pid));
  if (!child) throw new Error(`no mailfleet up node process in group ${up.child.pid}`);
  return child.pid;
}

/** swaks delivery; returns its transcript (throws with it on failure). */
export function swaks(port: number, to: string, subject: string): string {
  const r = spawnSync('swaks', ['--server', `127.0.0.1:${port}`, '--from', 'bob@example.net', '--to', to, '--h-Subject', subject, '--body', 'hello'], {
    encoding: 'utf8',
    timeout: 20000,
  });
  if (r.status !== 0) throw new Error(`swaks failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
