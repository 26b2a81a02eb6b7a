/**
 * "Port in use" as one line that says who holds it: the listening socket's inode from /proc/net/tcp{,6},
 * then the process owning that inode from /proc/<pid>/fd, else `ss -ltnpH` (both see other users'
 * processes only with privileges; the message then says so).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { MailfleetError } from '../errors.js';
import { processCommandLine } from '../haproxy/process.js';

export interface PortHolder {
  readonly pid: number;
  /** The holder's command line, shortened. */
  readonly command: string;
}

const TCP_LISTEN = '0A';
const MAX_COMMAND_CHARS = 80;

/** Inodes of the TCP sockets listening on this port (any address). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== TCP_LISTEN) continue;
      const local = f[1]!;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]!);
    }
  }
  return inodes;
}

function shortCommand(pid: number, fallback = '?'): string {
  const argv = processCommandLine(pid);
  const cmd = argv && argv.length > 0 ? argv.join(' ') : fallback;
  return cmd.length > MAX_COMMAND_CHARS ? `${cmd.slice(0, MAX_COMMAND_CHARS - 1)}…` : cmd;
}

function fromProc(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  // Lowest PID first: a parent that shares the socket with its children (HAProxy's master) is named.
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .sort((a, b) => a - b);
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return { pid, command: shortCommand(pid) };
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}

function fromSs(port: number): PortHolder | undefined {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 || !r.stdout) return undefined;
  const m = r.stdout.match(/users:\(\("([^"]*)",pid=(\d+)/);
  if (!m) return undefined;
  return { pid: Number(m[2]), command: shortCommand(Number(m[2]), m[1]) };
}

/** Who listens on a TCP port, when this user may see it. */
export function portHolder(port: number): PortHolder | undefined {
  return fromProc(port) ?? fromSs(port);
}

/** The one-line refusal for a port that is taken. */
export function portInUseError(host: string | undefined, port: number, what?: string, cause?: unknown): MailfleetError {
  const holder = portHolder(port);
  const by = holder ? `by pid ${holder.pid} (${holder.command})` : 'by a process this user cannot see (try: sudo ss -ltnp)';
  const where = `${host ?? '127.0.0.1'}:${port}${what ? `, ${what}` : ''}`;
  return new MailfleetError('IN_USE', `port ${port} (${where}) is already in use ${by}`, { status: 409, cause, details: { port, holder } });
}

export function isAddressInUse(e: unknown): e is NodeJS.ErrnoException & { address?: string; port?: number } {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === 'EADDRINUSE';
}

/** Binds and releases host:port (no SO_REUSEPORT, so a HAProxy holding it is seen); rejects with portInUseError. */
export function probePort(host: string, port: number, what?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e) => reject(isAddressInUse(e) ? portInUseError(host, port, what, e) : e));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}
