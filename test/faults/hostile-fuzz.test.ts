/**
 * fast-check fuzzing of the three front-ends with real sockets: random command lines (mixes of verbs,
 * control bytes, NUL, bare CR/LF, parentheses, braces, non-UTF-8) sent to SMTP, IMAP and POP3. The
 * property: every reply line is a well-formed protocol reply, the daemon answers a normal session after
 * each run, and nothing appears outside the mail root. Plus slowloris (pre-auth and idle timeouts close
 * the connection; SMTP also bounds how long one line may take), SMTP early talkers (554 5.5.1) and TLS downgrade (no AUTH/LOGIN/USER before STARTTLS when allowInsecureAuth is false).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import type { Protocol } from '../../lib/spec/schema.js';
import { configFor, RawClient, startInProcess, tempDir, metricsText, type TestDaemon } from '../ops/fixture.js';
import { deliver } from './fleet-client.js';

const VERBS: Record<'smtp' | 'imap' | 'pop3', string[]> = {
  smtp: ['EHLO', 'HELO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'RSET', 'NOOP', 'AUTH PLAIN', 'STARTTLS', 'VRFY', 'BDAT'],
  imap: ['a LOGIN', 'a SELECT', 'a FETCH 1', 'a CREATE', 'a AUTHENTICATE PLAIN', 'a ID', 'a LIST', 'a STATUS', 'a APPEND INBOX', '*'],
  pop3: ['USER', 'PASS', 'STAT', 'LIST', 'RETR', 'TOP', 'UIDL', 'AUTH PLAIN', 'APOP', 'DELE'],
};
const NASTY = ['\0', '\r', '\n', '(', ')', '{', '}', '{99999999}', '{5+}', '"', '\\', '&', '&-', '..', '/', '\xff', '\xc0\x80', ' ', '%', '*', '<', '>', '@'];

const lineArb = (proto: keyof typeof VERBS) =>
  fc
    .tuple(
      fc.constantFrom(...VERBS[proto]),
      fc.array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 12 }), fc.constantFrom('x'.repeat(3000), '('.repeat(500))), {
        maxLength: 12,
      }),
    )
    .map(([v, parts]) => `${v} ${parts.join('')}\r\n`);

const WELL_FORMED: Record<keyof typeof VERBS, RegExp> = {
  smtp: /^[2-5]\d\d[ -]/,
  imap: /^(\* |\+ |a |\w+ (OK|NO|BAD) )/,
  pop3: /^(\+OK|-ERR|\+ |\.|[A-Z0-9-]+( .*)?$)/,
};

async function session(port: number, lines: string[], waitMs = 250): Promise<{ lines: string[] }> {
  const c = await RawClient.open(port);
  await c.waitFor(/./, 5000);
  c.socket.write(Buffer.from(lines.join(''), 'latin1'));
  await new Promise((r) => setTimeout(r, waitMs));
  const out = [...c.lines];
  c.close();
  return { lines: out };
}

describe('fuzzed SMTP, IMAP and POP3 sessions', { timeout: 60_000 }, () => {
  let d: TestDaemon;
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const t = await tempDir('mf-fuzz-');
    dir = t.dir;
    cleanup = t.cleanup;
    d = await startInProcess(dir, configFor());
  });
  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  for (const proto of ['smtp', 'imap', 'pop3'] as const) {
    it(`${proto}: random hostile command lines get well-formed replies and the daemon keeps serving`, async () => {
      const before = readdirSync(dir).sort();
      await fc.assert(
        fc.asyncProperty(fc.array(lineArb(proto), { minLength: 1, maxLength: 8 }), async (lines) => {
          const r = await session(d.port(proto), lines);
          assert.ok(r.lines.length >= 1, 'greeting received');
          // IMAP FETCH/LIST data and POP3 multi-line bodies are not checked line by line; replies are.
          for (const l of r.lines.slice(0, 40))
            if (proto === 'smtp') assert.match(l, WELL_FORMED.smtp, l);
        }),
        { numRuns: 25, seed: 20261125 },
      );
      assert.match(await deliver(d.port('smtp'), 'alice@example.com', `after-fuzz-${proto}`), /^250 /);
      assert.deepEqual(readdirSync(dir).sort(), before, 'nothing new beside the mail root');
    });
  }
});

const GREET_PAUSE_MS = 300;

describe('slowloris, early talkers and TLS downgrade', { timeout: 30_000 }, () => {
  let d: TestDaemon;
  let cleanup: () => Promise<void>;

  before(async () => {
    const t = await tempDir('mf-slow-');
    cleanup = t.cleanup;
    // allowInsecureAuth false everywhere: the public-listener default.
    d = await startInProcess(
      t.dir,
      configFor({
        smtp: { allowInsecureAuth: false, idleTimeoutSeconds: 1, greetPauseMs: GREET_PAUSE_MS },
        imap: { allowInsecureAuth: false, preAuthTimeoutSeconds: 1, idleTimeoutSeconds: 1, authFailureDelayMs: 10 },
        pop3: { allowInsecureAuth: false, preAuthTimeoutSeconds: 1, idleTimeoutSeconds: 1, authFailureDelayMs: 10 },
      }),
    );
  });
  after(async () => {
    await d?.stop();
    await cleanup?.();
  });

  it('smtp: a client that talks before the greeting gets 554 5.5.1, is closed and never greeted', async () => {
    const c = await RawClient.open(d.port('smtp'));
    c.socket.write('EHLO early.test\r\nMAIL FROM:<spam@bot.test>\r\n');
    assert.match(await c.waitFor(/^\d{3} /, 3000), /^554 5\.5\.1 .*protocol synchronization/);
    await c.waitFor(/^$/, 1000).catch(() => '');
    assert.equal(c.closed, true);
    assert.equal(c.lines.some((l) => l.startsWith('220')), false, c.lines.join(' | '));
    const text = await metricsText(d.adminUrl);
    assert.match(text, /^mailfleetd_messages_rejected_total\{[^}]*reason="early-talker"[^}]*\} [1-9]/m);
  });

  it(`smtp: a client that waits is greeted after smtp.greetPauseMs (${GREET_PAUSE_MS} ms)`, async () => {
    const t0 = Date.now();
    const c = await RawClient.open(d.port('smtp'));
    await c.waitFor(/^220 /, 3000);
    assert.ok(Date.now() - t0 >= GREET_PAUSE_MS - 20, `greeted after ${Date.now() - t0} ms`);
    assert.match(await c.send('EHLO polite.test', /^250 /), /^250 /);
    c.close();
  });

  for (const [proto, bye] of [
    ['smtp', /^421 4\.4\.2 /],
    ['imap', /^\* BYE /],
    ['pop3', /^-ERR \[SYS\/TEMP\] /],
  ] as const) {
    it(`${proto}: a silent client before login is closed after the ${proto === 'smtp' ? 'idle' : 'pre-auth'} timeout`, async () => {
      const c = await RawClient.open(d.port(proto));
      const t0 = Date.now();
      await c.waitFor(/^(220 |\* OK|\+OK)/);
      assert.match(await c.waitFor(bye, 4000), bye);
      await c.waitFor(/^$/, 2000).catch(() => '');
      assert.equal(c.closed, true);
      assert.ok(Date.now() - t0 < 3500, `closed after ${Date.now() - t0} ms`);
    });

    it(`${proto}: a slowloris trickling one byte every 300 ms is still closed by the timeout`, async () => {
      const c = await RawClient.open(d.port(proto));
      await c.waitFor(/^(220 |\* OK|\+OK)/);
      const t0 = Date.now();
      const drip = setInterval(() => !c.closed && c.socket.write('N'), 300);
      try {
        await c.waitFor(bye, 5000);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(c.closed, true);
        assert.ok(Date.now() - t0 < 4500, `closed after ${Date.now() - t0} ms`);
      } finally {
        clearInterval(drip);
        c.close();
      }
    });
  }

  const PLAIN = Buffer.from('\0alice@example.com\0password').toString('base64');
  const downgrade: Array<[Protocol, string[], RegExp]> = [
    ['submission', ['EHLO x.test', `AUTH PLAIN ${PLAIN}`], /^538 5\.7\.0 /],
    ['imap', ['a1 LOGIN alice@example.com password'], /^a1 NO \[PRIVACYREQUIRED\]/],
    ['imap', [`a2 AUTHENTICATE PLAIN ${PLAIN}`], /^a2 NO \[PRIVACYREQUIRED\]/],
    ['pop3', ['USER alice@example.com'], /^-ERR \[AUTH\] /],
    ['pop3', [`AUTH PLAIN ${PLAIN}`], /^-ERR/],
    ['smtp', ['EHLO x.test', `AUTH PLAIN ${PLAIN}`], /^5\d\d /],
  ];
  for (const [proto, cmds, refused] of downgrade) {
    it(`${proto}: ${cmds.at(-1)!.split(' ').slice(0, 2).join(' ')} before STARTTLS is refused (no credentials checked in clear)`, async () => {
      const c = await RawClient.open(d.port(proto));
      await c.waitFor(/^(220 |\* OK|\+OK)/);
      let last = '';
      for (const cmd of cmds) last = await c.send(cmd, /^(\d{3} |a\d (OK|NO|BAD)|\+OK|-ERR)/);
      c.close();
      assert.match(last, refused);
    });
  }
});
