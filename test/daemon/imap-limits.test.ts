import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { PASSWORD, startImapHarness, type Harness } from './mail-harness.js';

const harnesses: Harness[] = [];
after(async () => {
  for (const h of harnesses) await h.close();
});

/** A raw client: send lines, wait for a regexp in the transcript, see whether the server closed. */
class Raw {
  text = '';
  closed = false;
  private readonly s: Socket;
  constructor(port: number) {
    this.s = connect(port, '127.0.0.1');
    this.s.on('data', (d) => (this.text += d.toString('latin1')));
    this.s.on('close', () => (this.closed = true));
    this.s.on('error', () => {});
  }
  send(x: string): void {
    this.s.write(x);
  }
  async until(re: RegExp, ms = 3000): Promise<string> {
    const t0 = Date.now();
    while (!re.test(this.text)) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${re}; got:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.text;
  }
  async waitClosed(ms = 3000): Promise<void> {
    const t0 = Date.now();
    while (!this.closed) {
      if (Date.now() - t0 > ms) throw new Error(`not closed; got:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  end(): void {
    this.s.destroy();
  }
}

async function harness(imap: Record<string, unknown>, perUser?: number): Promise<Harness> {
  const h = await startImapHarness({ imap, perUser });
  harnesses.push(h);
  return h;
}

test('fails when a synchronising literal is over maxLiteralBytes: NO [TOOBIG] and no "+" invitation', async () => {
  const h = await harness({ maxLiteralBytes: 1000 });
  const c = new Raw(h.port);
  await c.until(/^\* OK/);
  c.send(`a LOGIN alice@example.com ${PASSWORD}\r\nb APPEND INBOX {1001}\r\n`);
  const t = await c.until(/b NO \[TOOBIG\]/);
  assert.doesNotMatch(t, /^\+ /m);
  c.send('c APPEND INBOX {5+}\r\nhello\r\n');
  await c.until(/c OK \[APPENDUID \d+ 1\]/);
  c.send('d APPEND INBOX {2000+}\r\n');
  await c.until(/d BAD \[TOOBIG\][^\r]*\r\n\* BYE \[TOOBIG\]/);
  await c.waitClosed();
});

test('fails when a client sends too many bad commands, or too many commands before login', async () => {
  const h = await harness({ maxBadCommands: 3, maxUnauthenticatedCommands: 4 });
  const a = new Raw(h.port);
  a.send('1 FOO\r\n2 BAR\r\n3 BAZ\r\n');
  await a.until(/\* BYE Too many invalid commands/);
  await a.waitClosed();
  const b = new Raw(h.port);
  b.send('1 NOOP\r\n2 NOOP\r\n3 NOOP\r\n4 NOOP\r\n5 NOOP\r\n');
  await b.until(/4 OK[^\r]*\r\n\* BYE Too many commands before authentication/);
  await b.waitClosed();
});

test('fails when a session stays idle before login longer than preAuthTimeoutSeconds', async () => {
  const h = await harness({ preAuthTimeoutSeconds: 1 });
  const c = new Raw(h.port);
  await c.until(/\* BYE Autologout/, 2500);
  await c.waitClosed();
});

test('fails when the per-user cap is reached: NO [UNAVAILABLE], the session stays unauthenticated', async () => {
  const h = await harness({}, 1);
  const a = new Raw(h.port);
  a.send(`a LOGIN alice@example.com ${PASSWORD}\r\n`);
  await a.until(/a OK/);
  const b = new Raw(h.port);
  b.send(`a LOGIN alice@example.com ${PASSWORD}\r\nb SELECT INBOX\r\n`);
  await b.until(/a NO \[UNAVAILABLE\] imap [^\r]*limit of 1[^\r]*\r\nb BAD SELECT is not valid in the not-authenticated state/);
  a.send('z LOGOUT\r\n');
  await a.waitClosed();
  b.send(`c LOGIN alice@example.com ${PASSWORD}\r\n`);
  await b.until(/c OK/);
  b.end();
});

test('fails when LOGIN is attempted in plaintext without allowInsecureAuth: LOGINDISABLED and NO [PRIVACYREQUIRED]', async () => {
  const h = await harness({ allowInsecureAuth: false });
  const c = new Raw(h.port);
  const greet = await c.until(/\r\n/);
  assert.match(greet, /STARTTLS LOGINDISABLED/);
  c.send(`a LOGIN alice@example.com ${PASSWORD}\r\n`);
  await c.until(/a NO \[PRIVACYREQUIRED\]/);
  c.end();
});
