/**
 * HAProxy runtime API over its unix socket (non-interactive mode: one command line per connection, the
 * server answers and closes). Works for the admin socket (`stats socket`) and the master socket (`-S`).
 */
import { createConnection } from 'node:net';
import { MailfleetError } from '../errors.js';
import { capVariable } from '../render/haproxy.js';

/** One row of `show stat`, keyed by the CSV header names (pxname, svname, scur, slim, status, …). */
export type StatRow = Readonly<Record<string, string>>;

export interface FrontendStat {
  readonly name: string;
  /** Current connections. */
  readonly scur: number;
  /** Highest seen. */
  readonly smax: number;
  /** The frontend's maxconn. */
  readonly slim: number;
  /** Total connections since start. */
  readonly stot: number;
  /** Connections refused by a rule (denied at connection or session level). */
  readonly denied: number;
  readonly status: string;
  /** Sessions per second over the last second, as HAProxy counts them (`rate`). */
  readonly rate: number;
}

/** A server line of a backend: its state as HAProxy's health checks see it. */
export interface ServerStat {
  readonly backend: string;
  readonly name: string;
  /** UP, DOWN, MAINT, DRAIN, NOLB, "no check", or a transition such as "UP 1/3" / "DOWN 1/2". */
  readonly status: string;
  /** The state alone: the first word of status (UP, DOWN, MAINT, …). */
  readonly state: string;
  /** Last check result and detail, e.g. "L4CON", "L7RSP"; empty when not checked. */
  readonly checkStatus: string;
  readonly checkDesc: string;
  /** Seconds since the last UP/DOWN change. */
  readonly lastChangeSeconds?: number;
  readonly scur: number;
  readonly stot: number;
}

/** A backend with its servers. */
export interface BackendStat {
  readonly name: string;
  /** UP while a server is UP, else DOWN (HAProxy's own BACKEND line). */
  readonly status: string;
  readonly scur: number;
  readonly stot: number;
  readonly servers: readonly ServerStat[];
}

/**
 * Which backend each frontend sends to, read from the config HAProxy runs (`default_backend`): `show stat`
 * does not say. Pure; lines outside `frontend` sections are ignored.
 */
export function frontendBackendsOf(cfg: string): Map<string, string> {
  const out = new Map<string, string>();
  let frontend: string | undefined;
  for (const line of cfg.split('\n')) {
    const section = /^(frontend|backend|listen|global|defaults|resolvers|peers|userlist)\b\s*(\S*)/.exec(line);
    if (section) {
      frontend = section[1] === 'frontend' ? section[2] : undefined;
      continue;
    }
    const b = /^\s+default_backend\s+(\S+)/.exec(line);
    if (frontend && b) out.set(frontend, b[1]!);
  }
  return out;
}

/** Sends one command line (several commands may be joined with ';') and returns the whole answer. */
export function runtimeCommand(socketPath: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new MailfleetError('INTERNAL', `HAProxy socket ${socketPath}: no answer to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    // Half-close after the command, as socat does: the master CLI answers only then.
    sock.on('connect', () => sock.end(command + '\n'));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new MailfleetError('INTERNAL', `HAProxy socket ${socketPath}: ${e.message}`, { cause: e }));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** Parses the CSV of `show stat` (header line "# pxname,svname,..."). HAProxy never quotes these fields. */
export function parseShowStat(csv: string): StatRow[] {
  const lines = csv.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (!header?.startsWith('#')) return [];
  const cols = header.replace(/^#\s*/, '').split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? '']));
  });
}

const num = (s: string | undefined) => (s === undefined || s === '' ? 0 : Number(s));

/** Client of one HAProxy process's admin socket. */
export class HaproxyRuntime {
  constructor(readonly socketPath: string) {}

  command(cmd: string, timeoutMs?: number): Promise<string> {
    return runtimeCommand(this.socketPath, cmd, timeoutMs);
  }

  async showStat(): Promise<StatRow[]> {
    return parseShowStat(await this.command('show stat'));
  }

  /** Frontends only, without the stats/health page. */
  async frontends(rows?: readonly StatRow[]): Promise<FrontendStat[]> {
    return (rows ?? (await this.showStat()))
      .filter((r) => r.svname === 'FRONTEND' && r.pxname !== 'stats' && r.pxname !== 'health')
      .map((r) => ({
        name: r.pxname!,
        scur: num(r.scur),
        smax: num(r.smax),
        slim: num(r.slim),
        stot: num(r.stot),
        denied: num(r.dcon) + num(r.dses),
        status: r.status ?? '',
        rate: num(r.rate),
      }));
  }

  /** Backends (without the table-only ones, which have no servers) with their servers' states. */
  async backends(rows?: readonly StatRow[]): Promise<BackendStat[]> {
    const stat = rows ?? (await this.showStat());
    const servers = new Map<string, ServerStat[]>();
    for (const r of stat) {
      if (r.svname === 'FRONTEND' || r.svname === 'BACKEND') continue;
      const status = r.status ?? '';
      const list = servers.get(r.pxname!) ?? [];
      list.push({
        backend: r.pxname!,
        name: r.svname!,
        status,
        state: status.split(' ')[0] ?? '',
        checkStatus: (r.check_status ?? '').replace(/^\*/, ''),
        checkDesc: r.check_desc ?? r.last_chk ?? '',
        lastChangeSeconds: r.lastchg ? Number(r.lastchg) : undefined,
        scur: num(r.scur),
        stot: num(r.stot),
      });
      servers.set(r.pxname!, list);
    }
    return stat
      .filter((r) => r.svname === 'BACKEND' && servers.has(r.pxname!))
      .map((r) => ({ name: r.pxname!, status: r.status ?? '', scur: num(r.scur), stot: num(r.stot), servers: servers.get(r.pxname!)! }));
  }

  /** `show info` as a map (Maxconn, CurrConns, Pid, …). */
  async info(): Promise<Record<string, string>> {
    const text = await this.command('show info');
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => l.match(/^([^:]+):\s*(.*)$/))
        .filter((m): m is RegExpMatchArray => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
  }

  /** The live connection cap of a listener (its process variable); undefined when the listener is unknown. */
  async listenerCap(listener: string): Promise<number | undefined> {
    const text = await this.command(`experimental-mode on; get var ${capVariable(listener)}`);
    const m = text.match(/value=<(-?\d+)>/);
    return m ? Number(m[1]) : undefined;
  }

  /** Live caps of many listeners, a hundred `get var` per socket round trip (the CLI line holds ~16 KiB). */
  async listenerCaps(listeners: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < listeners.length; i += 100) {
      const batch = listeners.slice(i, i + 100);
      const text = await this.command(['experimental-mode on', ...batch.map((l) => `get var ${capVariable(l)}`)].join('; '));
      const byVar = new Map(batch.map((l) => [capVariable(l), l]));
      for (const m of text.matchAll(/^(proc\.\S+): type=\S+ value=<(-?\d+)>/gm)) {
        const l = byVar.get(m[1]!);
        if (l !== undefined) out.set(l, Number(m[2]));
      }
    }
    return out;
  }

  /**
   * Sets a listener's live cap. `set var` is experimental in 2.6, hence the mode switch on the same line.
   * Changing a variable never touches the frontend's maxconn, so it is safe on a full frontend.
   */
  async setListenerCap(listener: string, cap: number): Promise<void> {
    if (!Number.isSafeInteger(cap) || cap < 1)
      throw new MailfleetError('BAD_REQUEST', `listener cap must be a positive integer, got ${String(cap)}`, { status: 400 });
    const text = await this.command(`experimental-mode on; set var ${capVariable(listener)} int(${cap})`);
    if (text.trim() !== '') throw new MailfleetError('INTERNAL', `HAProxy refused to set ${capVariable(listener)}: ${text.trim()}`);
  }

  /** `show table <name>`: current entries of a stick table (key → conn_cur). */
  async tableConnCur(table: string): Promise<Map<string, number>> {
    const text = await this.command(`show table ${table}`);
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const key = line.match(/\bkey=(\S+)/);
      const cur = line.match(/\bconn_cur=(\d+)/);
      if (key && cur) out.set(key[1]!, Number(cur[1]));
    }
    return out;
  }
}
