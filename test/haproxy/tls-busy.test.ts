/**
 * Issue 15: over a listener's cap, implicit-TLS ports used to answer with a bare reset. Now HAProxy hands
 * the connection to an internal frontend that completes the TLS handshake (the daemon's certificate) and
 * gives the protocol's busy reply inside TLS. Measured with real clients (Python's imaplib, smtplib, poplib)
 * against a real HAProxy rendered from the plan, in front of a real mailfleetd; and the daemon's own
 * implicit-TLS port cap without HAProxy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { greet } from './greeter.js';
import { requireHaproxy } from './harness.js';
import { startProxiedDaemon, type ProxiedDaemon } from './proxied-daemon.js';
import { python } from '../daemon/mail-harness.js';
import { startSmtpHarness } from '../daemon/smtp-harness.js';

/** Opens one TLS session per port that stays open (the slot), then a second one and prints what it got. */
const CLIENT = String.raw`
import imaplib, poplib, smtplib, ssl, sys
kind, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def open_one():
    if kind == 'imaps': return imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
    if kind == 'pop3s': return poplib.POP3_SSL('127.0.0.1', port, context=ctx)
    return smtplib.SMTP_SSL('127.0.0.1', port, context=ctx, timeout=10)
first = open_one()
try:
    open_one()
    print('SECOND-SERVED')
except Exception as e:
    print(type(e).__name__, str(e))
`;

describe('busy replies on implicit-TLS ports', () => {
  let p: ProxiedDaemon;
  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon({
      limits: {
        submission: { listenerConnections: 1, sourceConnections: 1 },
        imap: { listenerConnections: 1, sourceConnections: 1 },
        pop3: { listenerConnections: 1, sourceConnections: 1 },
      },
    });
  });
  after(async () => {
    await p?.stop();
  });

  it('GIVEN imaps capped at 1 behind HAProxy WHEN imaplib opens a second session THEN it completes TLS and reads * BYE [UNAVAILABLE]', async () => {
    const out = await python(CLIENT, ['imaps', String(p.spec.port('imaps'))]);
    assert.match(out, /\* BYE \[UNAVAILABLE\] Too many connections to this service/);
  });

  it('GIVEN submissions capped at 1 behind HAProxy WHEN smtplib opens a second session THEN it completes TLS and reads 421 4.7.0', async () => {
    const out = await python(CLIENT, ['submissions', String(p.spec.port('submissions'))]);
    assert.match(out, /SMTPConnectError.*421.*4\.7\.0 mail\.test Too many connections/);
  });

  it('GIVEN pop3s capped at 1 behind HAProxy WHEN poplib opens a second session THEN it completes TLS and reads -ERR [SYS/TEMP]', async () => {
    const out = await python(CLIENT, ['pop3s', String(p.spec.port('pop3s'))]);
    assert.match(out, /error_proto.*-ERR \[SYS\/TEMP\] Too many connections/);
  });

  it('GIVEN a busy TLS reply WHEN a plaintext client connects to the TLS port THEN it gets no plaintext line (the reply is only ever inside TLS)', async () => {
    const g = await greet(p.spec.port('imaps'), { timeoutMs: 3000 }).catch(() => ({ line: 'TIMEOUT', socket: undefined }));
    g.socket?.destroy();
    assert.doesNotMatch(g.line, /BYE|OK/);
  });

  it('GIVEN the daemon alone with a submissions port cap of 1 WHEN a second smtplib session comes THEN it reads 421 4.7.0 inside TLS', async () => {
    const h = await startSmtpHarness({ spec: { limits: { submission: { portConnections: 1 } } } });
    try {
      const out = await python(CLIENT, ['submissions', String(h.port('submissions'))]);
      assert.match(out, /SMTPConnectError.*421.*4\.7\.0 .*port \d+ is full/);
    } finally {
      await h.close();
    }
  });
});
