/** A client for the HAProxy tests: connects (from a chosen loopback source) and reads the first line. */
import { createConnection, type Socket } from 'node:net';

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
