/**
 * Test helpers for driving HAProxy: a client that connects and reads the first line, and a stand-in mail
 * backend that parses PROXY v2 and greets like IMAP, used where a test is about HAProxy's own rules (caps,
 * live changes). Tests about what the daemon sees use the real mailfleetd.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface Greeted {
  /** First line received ('' when closed before any byte, 'RESET' on ECONNRESET). */
  readonly line: string;
  readonly socket: Socket;
}

/** Connects (optionally from a given loopback source) and resolves with the first line. */
export function greet(port: number, opts: { localAddress?: string; timeoutMs?: number } = {}): Promise<Greeted> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port, localAddress: opts.localAddress });
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no greeting on port ${port} within ${opts.timeoutMs ?? 10000} ms`));
    }, opts.timeoutMs ?? 10000);
    const done = (line: string) => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve({ line, socket });
    };
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const i = buf.indexOf('\r\n');
      if (i >= 0) done(buf.slice(0, i));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') done('RESET');
      else {
        clearTimeout(timer);
        reject(e);
      }
    });
    socket.on('close', () => done(buf));
  });
}

export interface ProxiedConnection {
  readonly source: string;
  readonly destinationPort: number;
}

export interface Greeter {
  readonly port: number;
  /** Client (non-health-check) connections currently open, and the most seen at once. */
  current(): number;
  max(): number;
  readonly seen: ProxiedConnection[];
  close(): Promise<void>;
}

const GREETING = { imap: '* OK greeter ready', pop3: '+OK greeter ready', smtp: '220 greeter ready' } as const;
const GOODBYE = { imap: '* BYE logging out\r\nhc OK', pop3: '+OK bye', smtp: '221 bye' } as const;

/** A backend behind `send-proxy-v2` that greets like the given protocol: counts clients, answers health checks. */
export async function startGreeter(port = 0, family: 'imap' | 'pop3' | 'smtp' = 'imap'): Promise<Greeter> {
  let current = 0;
  let max = 0;
  const seen: ProxiedConnection[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let header = Buffer.alloc(0);
    let counted = false;
    const onData = (c: Buffer) => {
      header = Buffer.concat([header, c]);
      if (header.length < 16) return;
      const len = header.readUInt16BE(14);
      if (header.length < 16 + len) return;
      s.off('data', onData);
      const local = (header[12]! & 0x0f) === 0;
      if (!local && header[13] === 0x11) {
        const src = [...header.subarray(16, 20)].join('.');
        seen.push({ source: src, destinationPort: header.readUInt16BE(16 + 10) });
        counted = true;
        current++;
        max = Math.max(max, current);
      }
      s.on('close', () => counted && current--);
      s.write(`${GREETING[family]}\r\n`);
      s.on('data', (d: Buffer) => {
        if (/LOGOUT|QUIT/i.test(d.toString())) s.end(`${GOODBYE[family]}\r\n`);
      });
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    current: () => current,
    max: () => max,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
