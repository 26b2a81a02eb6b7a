/**
 * A lean IMAP client for the benches: one command at a time, no parsing beyond finding the tagged line,
 * so the client costs little next to the server it measures.
 */
import { connect, type Socket } from 'node:net';

export class ImapClient {
  private chunks = '';
  private want?: { tag: string; resolve: (reply: string) => void; reject: (e: Error) => void };
  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('latin1');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => {
      this.chunks += d;
      this.check();
    });
    socket.on('close', () => this.want?.reject(new Error('connection closed')));
    socket.on('error', () => undefined);
  }

  /** Connects and waits for the greeting. */
  static open(port: number, timeoutMs = 20_000): Promise<ImapClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        const c = new ImapClient(s, timeoutMs);
        c.expect('*').then(() => resolve(c), reject);
      });
      s.once('error', reject);
    });
  }

  private check(): void {
    const w = this.want;
    if (!w) return;
    // The tagged line starts the buffer or follows a CRLF; literals in FETCH bodies never start a line
    // with our tags (single letters followed by a digit and a space).
    const at = this.chunks.startsWith(`${w.tag} `) ? 0 : this.chunks.lastIndexOf(`\r\n${w.tag} `);
    if (at < 0) return;
    const start = at === 0 ? 0 : at + 2;
    const end = this.chunks.indexOf('\r\n', start);
    if (end < 0) return;
    const reply = this.chunks.slice(0, end);
    this.chunks = this.chunks.slice(end + 2);
    this.want = undefined;
    w.resolve(reply);
  }

  private expect(tag: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${tag}`)), this.timeoutMs);
      this.want = {
        tag,
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.check();
    });
  }

  /** Sends one command (optionally with a literal, LITERAL+ not assumed) and returns the whole reply. */
  async cmd(tag: string, line: string, literal?: string): Promise<string> {
    if (literal === undefined) this.socket.write(`${tag} ${line}\r\n`);
    else {
      this.socket.write(`${tag} ${line} {${Buffer.byteLength(literal, 'latin1')}}\r\n`);
      await this.expect('+');
      this.socket.write(`${literal}\r\n`);
    }
    const reply = await this.expect(tag);
    const last = reply.slice(reply.lastIndexOf('\n') + 1);
    if (!last.startsWith(`${tag} OK`)) throw new Error(`${line.split(' ')[0]}: ${last.slice(0, 120)}`);
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }
}
