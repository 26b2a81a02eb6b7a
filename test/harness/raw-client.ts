/** A raw line client for protocol tests (SMTP, IMAP, POP3): real sockets, every received line kept. */
import { connect, type Socket } from 'node:net';

/** A raw client: reads CRLF lines, sends commands; `lines` keeps everything received. */
export class RawClient {
  readonly lines: string[] = [];
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i).replace(/\r$/, ''));
        this.buf = this.buf.slice(i + 1);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** localAddress: another loopback source (127.0.0.2, ...) to look like a different client IP. */
  static open(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for a line matching re (searching from line `from`); '' if the connection closed first. */
  async waitFor(re: RegExp, timeoutMs = 5000, from = 0): Promise<string> {
    const r = await this.readUntil(re, timeoutMs, from);
    return r ? r.lines.at(-1)! : '';
  }

  /**
   * The lines from `from` up to and including the first one matching re, and the index after it;
   * undefined if the connection closed first.
   */
  async readUntil(re: RegExp, timeoutMs = 5000, from = 0): Promise<{ lines: string[]; next: number } | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l, k) => k >= from && re.test(l));
      if (i >= 0) return { lines: this.lines.slice(from, i + 1), next: i + 1 };
      if (this.closed) return undefined;
      if (Date.now() > deadline)
        throw new Error(`no line matching ${re} within ${timeoutMs} ms (got ${JSON.stringify(this.lines.slice(from))})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50).unref();
      });
    }
  }

  /** Sends a line and waits for the reply matching re among lines that arrive after it. */
  async send(line: string, re: RegExp, timeoutMs = 5000): Promise<string> {
    const from = this.lines.length;
    this.socket.write(`${line}\r\n`);
    return this.waitFor(re, timeoutMs, from);
  }

  close(): void {
    this.socket.destroy();
  }
}
