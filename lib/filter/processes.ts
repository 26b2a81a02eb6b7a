/**
 * rspamd and clamd as child processes of the local platform and the tests: config written into a state
 * dir, the daemon started in the foreground, ready when it answers (rspamd `GET /ping` → pong, clamd
 * `PING` → PONG on its socket), stopped by its PID. Each runs under `setpriv --pdeathsig TERM` when
 * available, so it does not outlive a killed owner.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { renderRspamdConfig, type RspamdConfigProps } from './rspamd-config.js';

/** The path of an installed program (PATH, then the sbin dirs Debian puts daemons in), or undefined. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    try {
      accessSync(join(d, name), constants.X_OK);
      return join(d, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

let setpriv: string | null | undefined;
function launcher(): string[] {
  if (setpriv === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
    setpriv = r.status === 0 && r.stdout.includes('--pdeathsig') ? 'setpriv' : null;
  }
  return setpriv ? [setpriv, '--pdeathsig', 'TERM'] : [];
}

/** A started daemon. */
export interface ChildDaemon {
  readonly pid: number;
  /** Settles when it answers (resolves) or exited or timed out (rejects, stopped). */
  readonly ready: Promise<void>;
  readonly logFile: string;
  /** SIGTERM to its process group, then SIGKILL after `graceMs` (default 5000). */
  stop(graceMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startChild(
  what: string,
  cmd: string[],
  logFile: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  wait: boolean,
): Promise<ChildDaemon> {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    const argv = [...launcher(), ...cmd];
    // Its own process group: rspamd forks workers, and a forced stop must reach them too.
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  child.once('error', () => undefined);
  const stop = async (graceMs = 5000) => {
    if (exited !== undefined) return;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const t = setTimeout(() => signal('SIGKILL'), graceMs);
    await exit;
    clearTimeout(t);
  };
  const tail = () => readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  const ready = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`${what} exited during start (code ${String(exited)}):\n${tail()}`);
      if (await probe().catch(() => false)) return;
      await sleep(100);
    }
    await stop(0);
    throw new Error(`${what} did not become ready within ${timeoutMs} ms:\n${tail()}`);
  })();
  const d = { pid: child.pid!, logFile, ready, stop };
  if (!wait) {
    ready.catch(() => undefined);
    return d;
  }
  await ready;
  return d;
}

function httpPing(hostPort: string): Promise<boolean> {
  return new Promise((resolve) => {
    const r = request(`http://${hostPort}/ping`, { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'pong'));
    });
    r.on('error', () => resolve(false));
    r.on('timeout', () => r.destroy());
    r.end();
  });
}

export interface StartRspamdProps {
  /** State dir: conf/ (rendered config), db/, run/, log/rspamd.log. */
  readonly dir: string;
  readonly config: RspamdConfigProps;
  /**
   * rspamd takes ~2 s with a small public-suffix list, ~25 s with the stock one.
   * @default 60000
   */
  readonly readyTimeoutMs?: number;
  /** @default - found on PATH or in /usr/sbin */
  readonly bin?: string;
  /**
   * Resolve once started instead of once it answers (see `ready`).
   * @default false
   */
  readonly background?: boolean;
  /**
   * Config files to run instead of rendering `config` (e.g. a mail node's bundle; `config.normalBind`
   * still says where to ping), relative to conf/.
   * @default - renderRspamdConfig(config)
   */
  readonly files?: Readonly<Record<string, string>>;
}

export async function startRspamd(p: StartRspamdProps): Promise<ChildDaemon> {
  const bin = p.bin ?? findProgram('rspamd');
  if (!bin) throw new Error('rspamd is not installed (Debian: apt-get install rspamd)');
  const conf = join(p.dir, 'conf');
  for (const d of ['conf/local.d', 'db', 'run', 'log']) mkdirSync(join(p.dir, d), { recursive: true });
  for (const [name, text] of Object.entries(p.files ?? renderRspamdConfig(p.config))) {
    mkdirSync(dirname(join(conf, name)), { recursive: true });
    writeFileSync(join(conf, name), text);
  }
  const args = [
    '-f',
    '-c',
    join(conf, 'rspamd.conf'),
    `--var=LOCAL_CONFDIR=${conf}`,
    `--var=DBDIR=${join(p.dir, 'db')}`,
    `--var=RUNDIR=${join(p.dir, 'run')}`,
    `--var=LOGDIR=${join(p.dir, 'log')}`,
  ];
  // rspamd refuses to run its workers as root unless told it may (-i); the local platform runs as a user.
  if (process.getuid?.() === 0) args.push('-i');
  return startChild(
    'rspamd',
    [bin, ...args],
    join(p.dir, 'log', 'rspamd.out'),
    () => httpPing(p.config.normalBind),
    p.readyTimeoutMs ?? 60_000,
    !p.background,
  );
}

export interface StartClamdProps {
  /** State dir: clamd.conf, clamd.log; the socket is <dir>/clamd.sock unless `socket` says otherwise. */
  readonly dir: string;
  /** Signature databases (*.cvd, *.cld, or test-made *.ndb / *.hdb). */
  readonly databaseDir: string;
  /** @default <dir>/clamd.sock */
  readonly socket?: string;
  /** @default 60000 */
  readonly readyTimeoutMs?: number;
}

function clamdPing(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let got = '';
    s.setTimeout(1000, () => s.destroy());
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.on('close', () => resolve(got.startsWith('PONG')));
    s.on('error', () => resolve(false));
  });
}

export async function startClamd(p: StartClamdProps): Promise<ChildDaemon & { readonly socket: string }> {
  const bin = findProgram('clamd');
  if (!bin) throw new Error('clamd is not installed (Debian: apt-get install clamav-daemon)');
  mkdirSync(p.dir, { recursive: true });
  const socket = p.socket ?? join(p.dir, 'clamd.sock');
  const lines = [
    `LocalSocket ${socket}`,
    `DatabaseDirectory ${p.databaseDir}`,
    'Foreground yes',
    `LogFile ${join(p.dir, 'clamd.log')}`,
    `PidFile ${join(p.dir, 'clamd.pid')}`,
  ];
  // clamd drops to the clamav user when started as root; our state dir belongs to root.
  if (process.getuid?.() === 0) lines.push('User root');
  writeFileSync(join(p.dir, 'clamd.conf'), `${lines.join('\n')}\n`);
  const d = await startChild(
    'clamd',
    [bin, '-c', join(p.dir, 'clamd.conf')],
    join(p.dir, 'clamd.out'),
    () => clamdPing(socket),
    p.readyTimeoutMs ?? 60_000,
    true,
  );
  return { ...d, socket };
}
