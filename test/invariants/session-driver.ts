/**
 * One scripted client session for the conservation property test: any protocol, TLS mode, auth outcome and
 * way of ending, over a real socket (plain, STARTTLS-upgraded or implicit TLS). It reads the server's real
 * replies and fails when one is not what the protocol says for that step.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Protocol } from '../../lib/spec/schema.js';

export type TlsMode = 'plain' | 'starttls' | 'implicit';
export type AuthOutcome = 'none' | 'ok' | 'fail' | 'locked' | 'capped';
export type Ending = 'quit' | 'reset' | 'idle';

export interface SessionCase {
  readonly protocol: Protocol;
  readonly tls: TlsMode;
  readonly auth: AuthOutcome;
  readonly end: Ending;
  /** Loopback source address (127.x.y.z), so per-IP state of one case does not touch another. */
  readonly source: string;
}

export interface Accounts {
  readonly ok: { user: string; pass: string };
  /** A user whose per-user cap is already taken by a held session. */
  readonly capped: { user: string; pass: string };
  /** A login locked out before the run. */
  readonly locked: string;
  /** The login a 'fail' outcome uses. @default - nobody-<source>@example.com, so failures never lock a real login */
  readonly failLogin?: string;
}

/** Which TLS modes a protocol has. */
export function tlsModes(p: Protocol): TlsMode[] {
  return p === 'submissions' || p === 'imaps' || p === 'pop3s' ? ['implicit'] : ['plain', 'starttls'];
}

const family = (p: Protocol) => (p.startsWith('imap') ? 'imap' : p.startsWith('pop3') ? 'pop3' : 'smtp');

class Wire {
  private buf = '';
  private lines: string[] = [];
  private waiter?: () => void;
  closed = false;
  constructor(public socket: Socket | TLSSocket) {
    this.attach(socket);
  }
  private attach(s: Socket | TLSSocket): void {
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i).replace(/\r$/, ''));
        this.buf = this.buf.slice(i + 1);
      }
      this.waiter?.();
    });
    s.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    s.on('error', () => undefined);
  }
  /** Next line matching re (skipping others); throws with what came if the socket closed or time ran out. */
  async expect(re: RegExp, timeoutMs = 8000): Promise<string> {
    const until = Date.now() + timeoutMs;
    const seen: string[] = [];
    for (;;) {
      while (this.lines.length > 0) {
        const l = this.lines.shift()!;
        seen.push(l);
        if (re.test(l)) return l;
      }
      if (this.closed) throw new Error(`closed before ${re} (got ${JSON.stringify(seen)})`);
      if (Date.now() > until) throw new Error(`no ${re} within ${timeoutMs} ms (got ${JSON.stringify(seen)})`);
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 50).unref();
      });
    }
  }
  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }
  async closedByServer(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > until) throw new Error(`server did not close within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async upgrade(): Promise<void> {
    const raw = this.socket as Socket;
    raw.removeAllListeners('data');
    const t = tlsConnect({ socket: raw, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', () => resolve());
      t.once('error', reject);
    });
    this.socket = t;
    this.attach(t);
  }
}

function open(port: number, source: string, implicit: boolean): Promise<Wire> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, localAddress: source }, () => {
      if (!implicit) return resolve(new Wire(s));
      const t = tlsConnect({ socket: s, rejectUnauthorized: false }, () => resolve(new Wire(t)));
      t.once('error', reject);
    });
    s.once('error', reject);
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * Logs in and stays: a NOOP every 400 ms keeps the server's idle timeout away. Resolves once logged in,
 * with the function that ends the session.
 */
export async function holdSession(protocol: 'submission' | 'imap' | 'pop3', port: number, user: string, pass: string, source: string): Promise<() => void> {
  const w = await open(port, source, false);
  if (protocol === 'submission') {
    await w.expect(/^220 /);
    w.send('EHLO holder.test');
    await w.expect(/^250 /);
    w.send(`AUTH PLAIN ${b64(`\0${user}\0${pass}`)}`);
    await w.expect(/^235 /);
  } else if (protocol === 'imap') {
    await w.expect(/^\* OK/);
    w.send(`l LOGIN "${user}" "${pass}"`);
    await w.expect(/^l OK/);
  } else {
    await w.expect(/^\+OK/);
    w.send(`USER ${user}`);
    await w.expect(/^\+OK/);
    w.send(`PASS ${pass}`);
    await w.expect(/^\+OK/);
  }
  const noop = protocol === 'imap' ? 'n NOOP' : 'NOOP';
  const timer = setInterval(() => w.send(noop), 400);
  return () => {
    clearInterval(timer);
    w.socket.destroy();
  };
}

/** Runs one session to its end. `idleMs`: how long the server's idle timeout may take to close us. */
export async function runSession(c: SessionCase, port: number, acc: Accounts, idleMs: number): Promise<void> {
  const w = await open(port, c.source, c.tls === 'implicit');
  const f = family(c.protocol);
  const creds =
    c.auth === 'ok' ? [acc.ok.user, acc.ok.pass] : c.auth === 'capped' ? [acc.capped.user, acc.capped.pass] : c.auth === 'locked' ? [acc.locked, 'x'] : [acc.failLogin ?? `nobody-${c.source}@example.com`, 'wrong'];
  let refusedAndClosed = false;
  if (f === 'smtp') {
    await w.expect(/^220 /);
    w.send('EHLO driver.test');
    await w.expect(/^250 /);
    if (c.tls === 'starttls') {
      w.send('STARTTLS');
      await w.expect(/^220 /);
      await w.upgrade();
      w.send('EHLO driver.test');
      await w.expect(/^250 /);
    }
    if (c.auth !== 'none' && c.protocol !== 'smtp') {
      w.send(`AUTH PLAIN ${b64(`\0${creds[0]}\0${creds[1]}`)}`);
      const want = { ok: /^235 /, fail: /^535 /, locked: /^454 /, capped: /^421 4\.7\.0 / }[c.auth];
      await w.expect(want);
      refusedAndClosed = c.auth === 'capped';
    }
    if (refusedAndClosed) return w.closedByServer(5000);
    if (c.end === 'quit') {
      w.send('QUIT');
      await w.expect(/^221 /);
    }
  } else if (f === 'imap') {
    await w.expect(/^\* OK/);
    if (c.tls === 'starttls') {
      w.send('s STARTTLS');
      await w.expect(/^s OK/);
      await w.upgrade();
    }
    if (c.auth !== 'none') {
      w.send(`l LOGIN "${creds[0]}" "${creds[1]}"`);
      const want = { ok: /^l OK/, fail: /^l NO \[AUTHENTICATIONFAILED\]/, locked: /^l NO \[UNAVAILABLE\]/, capped: /^l NO \[UNAVAILABLE\]/ }[c.auth];
      await w.expect(want);
    }
    if (c.end === 'quit') {
      w.send('z LOGOUT');
      await w.expect(/^z OK/);
    }
  } else {
    await w.expect(/^\+OK/);
    if (c.tls === 'starttls') {
      w.send('STLS');
      await w.expect(/^\+OK/);
      await w.upgrade();
    }
    if (c.auth !== 'none') {
      w.send(`USER ${creds[0]}`);
      await w.expect(/^[+-]/);
      w.send(`PASS ${creds[1]}`);
      const want = { ok: /^\+OK/, fail: /^-ERR \[AUTH\]/, locked: /^-ERR \[SYS\/TEMP\]/, capped: /^-ERR \[IN-USE\]/ }[c.auth];
      await w.expect(want);
    }
    if (c.end === 'quit') {
      w.send('QUIT');
      await w.expect(/^\+OK/);
    }
  }
  if (c.end === 'quit') return w.closedByServer(5000);
  if (c.end === 'reset') {
    w.socket.destroy();
    return;
  }
  await w.closedByServer(idleMs);
}
