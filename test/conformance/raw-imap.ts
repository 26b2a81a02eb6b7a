/**
 * A raw IMAP client for scripted sessions: sends exactly the bytes a script gives and returns the
 * untagged responses and the tagged status of each command, with response literals inlined. Used by the
 * RFC 3501 conformance scripts (against mailfleetd and Dovecot) and by the item tests of issue 20.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  /** Untagged lines ("* …", "+ …"), literals inlined as {n}\r\n<bytes>. */
  readonly untagged: string[];
  /** The tagged line without the tag: "OK [READ-WRITE] Select completed". */
  readonly tagged: string;
  /** OK, NO or BAD. */
  readonly status: string;
}

export class RawImap {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private n = 0;
  private closed = false;
  greeting = '';

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  static async open(port: number): Promise<RawImap> {
    const sock = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new RawImap(sock);
    c.greeting = await c.line();
    return c;
  }

  /** Logs in with LOGIN and returns the connection. */
  static async login(port: number, user: string, password: string): Promise<RawImap> {
    const c = await RawImap.open(port);
    const r = await c.cmd(`LOGIN ${quote(user)} ${quote(password)}`);
    if (r.status !== 'OK') throw new Error(`LOGIN failed: ${r.tagged}`);
    return c;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async wait(): Promise<void> {
    if (this.closed) throw new Error('connection closed');
    await new Promise<void>((r) => this.waiters.push(r));
  }

  /** One response line with its literals inlined (without the final CRLF). */
  async line(): Promise<string> {
    let out = '';
    for (;;) {
      let nl = this.buf.indexOf('\r\n');
      while (nl < 0) {
        await this.wait();
        nl = this.buf.indexOf('\r\n');
      }
      const text = this.buf.subarray(0, nl).toString('latin1');
      this.buf = this.buf.subarray(nl + 2);
      out += text;
      const m = /\{(\d+)\}$/.exec(text);
      if (!m) return out;
      const size = Number(m[1]);
      while (this.buf.length < size) await this.wait();
      out += '\r\n' + this.buf.subarray(0, size).toString('latin1');
      this.buf = this.buf.subarray(size);
    }
  }

  /** Sends raw bytes (a line must end in CRLF). */
  send(data: string | Buffer): void {
    this.sock.write(data);
  }

  /**
   * Sends `<tag> <command>\r\n` and reads up to the tagged reply. A synchronising literal ({n}, see
   * slit()) is sent only after the server's "+"; when the server answers the command first, the rest
   * is not sent (as a real client does). {n+} literals (lit()) go at once.
   */
  async cmd(command: string, tag = `a${++this.n}`): Promise<Reply> {
    const parts = command.split(/(?<=\{\d+\}\r\n)/);
    const untagged: string[] = [];
    this.send(`${tag} ${parts[0]}`);
    for (const rest of parts.slice(1)) {
      for (;;) {
        const l = await this.line();
        if (l.startsWith(`${tag} `)) return { untagged, tagged: l.slice(tag.length + 1), status: l.slice(tag.length + 1).split(' ')[0]!.toUpperCase() };
        if (l.startsWith('+')) break;
        untagged.push(l);
      }
      this.send(rest);
    }
    this.send('\r\n');
    const r = await this.until(tag);
    return { ...r, untagged: [...untagged, ...r.untagged] };
  }

  /** Reads responses until the tagged reply of `tag`. */
  async until(tag: string): Promise<Reply> {
    const untagged: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l.startsWith(`${tag} `)) {
        const tagged = l.slice(tag.length + 1);
        return { untagged, tagged, status: tagged.split(' ')[0]!.toUpperCase() };
      }
      untagged.push(l);
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      try {
        await this.cmd('LOGOUT');
      } catch {
        /* already gone */
      }
    }
    this.sock.destroy();
  }
}

export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A synchronising literal argument (sent after the server's "+"). */
export function slit(body: string): string {
  return `{${Buffer.byteLength(body, 'latin1')}}\r\n${body}`;
}

/** A LITERAL+ argument for a message body. */
export function lit(body: string): string {
  return `{${Buffer.byteLength(body, 'latin1')}+}\r\n${body}`;
}

/** The numbers of "* SEARCH …". */
export function searchHits(r: Reply): number[] {
  const l = r.untagged.find((x) => /^\* SEARCH\b/i.test(x));
  if (!l) throw new Error(`no SEARCH response: ${JSON.stringify(r)}`);
  return l.slice(8).trim().split(/\s+/).filter(Boolean).map(Number);
}
