/** Reads an SMTP server's greeting (the "accepts connections" half of RTO), then says QUIT. */
import net from 'node:net';

export function readSmtpBanner(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const fail = (e: Error) => {
      sock.destroy();
      reject(e);
    };
    sock.setTimeout(timeoutMs, () =>
      fail(new Error(`no SMTP banner from ${host}:${port} in ${timeoutMs} ms`)),
    );
    sock.on('error', fail);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      // A multi-line greeting is "220-…" lines ending with "220 …".
      const lines = buf.split('\r\n');
      const last = lines.slice(0, -1).find((l) => /^\d{3} /.test(l));
      if (last === undefined) return;
      sock.end('QUIT\r\n');
      sock.setTimeout(0);
      setTimeout(() => sock.destroy(), 1000).unref(); // do not wait on a server that never closes
      resolve(lines.slice(0, lines.indexOf(last) + 1).join('\n'));
    });
    sock.on('close', () => reject(new Error(`connection to ${host}:${port} closed before a banner`)));
  });
}
