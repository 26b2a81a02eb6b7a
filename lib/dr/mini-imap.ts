/**
 * A minimal IMAP4rev1 client for drill probes and verification: LOGIN, SELECT, FETCH with literals,
 * LOGOUT, STARTTLS. Only what the drill needs, so the CLI carries no IMAP client dependency at run time;
 * tests cross-check its answers with python3 imaplib.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface MiniImapOptions {
  readonly host: string;
  readonly port: number;
  /** @default 'none' */
  readonly tls?: 'none' | 'starttls' | 'implicit';
  /** Per command. @default 5000 */
  readonly timeoutMs?: number;
  /** Accept self-signed certificates (local platform). @default true */
  readonly insecure?: boolean;
}

/** One server response: its text with literals cut out (shown as {n}), and the literals in order. */
export interface ImapResponse {
  readonly text: string;
  readonly literals: readonly Buffer[];
}

export interface CommandResult {
  readonly status: 'OK' | 'NO' | 'BAD';
  readonly text: string;
  readonly untagged: readonly ImapResponse[];
}

export class MiniImapClient {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed: Error | undefined;
  private tagN = 0;

  private constructor(
    private sock: net.Socket,
    private readonly opts: MiniImapOptions,
  ) {
    this.attach(sock);
  }

  static async connect(opts: MiniImapOptions): Promise<MiniImapClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s =
        opts.tls === 'implicit'
          ? tls.connect({
              host: opts.host,
              port: opts.port,
              rejectUnauthorized: !(opts.insecure ?? true),
              servername: opts.host,
            })
          : net.connect({ host: opts.host, port: opts.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`IMAP connect to ${opts.host}:${opts.port} timed out`));
      }, timeoutMs);
      t.unref();
      s.once(opts.tls === 'implicit' ? 'secureConnect' : 'connect', () => {
        clearTimeout(t);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    const c = new MiniImapClient(sock, opts);
    const greeting = await c.readResponse();
    if (!/^\* (OK|PREAUTH)/i.test(greeting.text)) {
      sock.destroy();
      throw new Error(`IMAP greeting: ${greeting.text}`);
    }
    if (opts.tls === 'starttls') {
      const r = await c.command('STARTTLS');
      if (r.status !== 'OK') throw new Error(`STARTTLS: ${r.text}`);
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect(
          { socket: sock, servername: opts.host, rejectUnauthorized: !(opts.insecure ?? true) },
          () => resolve(s),
        );
        s.once('error', reject);
      });
      c.attach(secure);
    }
    return c;
  }

  private attach(sock: net.Socket): void {
    this.sock.removeAllListeners('data');
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    const end = (e?: Error) => {
      this.closed ??= e ?? new Error('IMAP connection closed');
      this.waiting?.();
    };
    sock.on('error', end);
    sock.on('close', () => end());
  }

  /** Parses one response (a line plus any literals it announces) from the buffer, or undefined. */
  private takeResponse(): ImapResponse | undefined {
    let pos = 0;
    let text = '';
    const literals: Buffer[] = [];
    for (;;) {
      const eol = this.buf.indexOf('\r\n', pos);
      if (eol < 0) return undefined;
      const line = this.buf.subarray(pos, eol).toString('utf8');
      const m = /\{(\d+)\+?\}$/.exec(line);
      if (!m) {
        text += line;
        this.buf = this.buf.subarray(eol + 2);
        return { text, literals };
      }
      const n = Number(m[1]);
      if (this.buf.length < eol + 2 + n) return undefined;
      text += line;
      literals.push(Buffer.from(this.buf.subarray(eol + 2, eol + 2 + n)));
      pos = eol + 2 + n;
    }
  }

  private async readResponse(): Promise<ImapResponse> {
    const deadline = Date.now() + (this.opts.timeoutMs ?? 5000);
    for (;;) {
      const r = this.takeResponse();
      if (r) return r;
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `IMAP ${this.opts.host}:${this.opts.port}: no response in ${this.opts.timeoutMs ?? 5000} ms`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        t.unref();
        this.waiting = () => {
          clearTimeout(t);
          this.waiting = undefined;
          resolve();
        };
      });
    }
  }

  async command(cmd: string): Promise<CommandResult> {
    const tag = `d${++this.tagN}`;
    this.sock.write(`${tag} ${cmd}\r\n`);
    const untagged: ImapResponse[] = [];
    for (;;) {
      const r = await this.readResponse();
      if (r.text.startsWith(`${tag} `)) {
        const m = /^\S+ (OK|NO|BAD)\b ?(.*)$/i.exec(r.text);
        return {
          status: (m?.[1]?.toUpperCase() ?? 'BAD') as CommandResult['status'],
          text: m?.[2] ?? r.text,
          untagged,
        };
      }
      untagged.push(r);
    }
  }

  private async ok(cmd: string, shown = cmd): Promise<CommandResult> {
    const r = await this.command(cmd);
    if (r.status !== 'OK') throw new Error(`IMAP ${shown}: ${r.status} ${r.text}`);
    return r;
  }

  async login(user: string, password: string): Promise<void> {
    await this.ok(`LOGIN ${quote(user)} ${quote(password)}`, 'LOGIN');
  }

  /** Selects a mailbox read-only (EXAMINE: the drill never changes flags); returns EXISTS. */
  async select(mailbox: string): Promise<number> {
    const r = await this.ok(`EXAMINE ${quote(mailbox)}`);
    const ex = r.untagged.map((u) => /^\* (\d+) EXISTS/i.exec(u.text)).find(Boolean);
    return ex ? Number(ex[1]) : 0;
  }

  /** UID and Message-ID of every message in the selected mailbox. */
  async messageIds(): Promise<Array<{ uid: number; messageId: string }>> {
    const r = await this.ok('UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])');
    const out: Array<{ uid: number; messageId: string }> = [];
    for (const u of r.untagged) {
      const uid = /\bUID (\d+)/i.exec(u.text);
      if (!/^\* \d+ FETCH/i.test(u.text) || !uid) continue;
      const header = u.literals.map((b) => b.toString('utf8')).join('');
      const mid = /^message-id:\s*(<[^>]*>)/im.exec(header);
      out.push({ uid: Number(uid[1]), messageId: mid?.[1] ?? '' });
    }
    return out;
  }

  async logout(): Promise<void> {
    try {
      if (!this.closed) await this.command('LOGOUT');
    } catch {
      // best effort: the server may close first
    } finally {
      this.sock.destroy();
    }
  }
}

function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
