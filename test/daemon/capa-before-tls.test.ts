/**
 * Where plaintext login is refused (allowInsecureAuth false, the default), the capability lists must not
 * invite clients to send a password in the clear (issue 16): POP3 CAPA lists USER and SASL only after STLS
 * (RFC 2595 §4), IMAP CAPABILITY says LOGINDISABLED and no AUTH= before STARTTLS (RFC 3501 §6.2.3).
 * Real clients: Python's poplib and imaplib.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { python, startImapHarness, type Harness } from './mail-harness.js';

describe('capabilities before TLS when plaintext auth is refused', () => {
  let h: Harness;
  before(async () => {
    h = await startImapHarness({ imap: { allowInsecureAuth: false }, pop3: { allowInsecureAuth: false } });
  });
  after(async () => {
    await h?.close();
  });

  it('POP3: CAPA hides USER and SASL PLAIN until STLS, and lists them after', async () => {
    const out = await python(
      `
import poplib, ssl, sys, json
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
before = sorted(p.capa().keys())
p.stls(ctx)
after = p.capa()
p.quit()
print(json.dumps({'before': before, 'after': sorted(after.keys()), 'sasl': after.get('SASL')}))
`,
      [String(h.pop3Port)],
    );
    const r = JSON.parse(out) as { before: string[]; after: string[]; sasl: string[] };
    assert.ok(r.before.includes('STLS'), r.before.join(' '));
    assert.ok(!r.before.includes('USER') && !r.before.includes('SASL'), `before STLS: ${r.before.join(' ')}`);
    assert.ok(r.after.includes('USER') && r.after.includes('SASL'), `after STLS: ${r.after.join(' ')}`);
    assert.deepEqual(r.sasl, ['PLAIN']);
  });

  it('IMAP: CAPABILITY says LOGINDISABLED without AUTH=PLAIN before STARTTLS, and AUTH=PLAIN after', async () => {
    const out = await python(
      `
import imaplib, ssl, sys, json
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
before = list(m.capabilities)
m.starttls(ssl_context=ctx)
print(json.dumps({'before': before, 'after': list(m.capabilities)}))
m.logout()
`,
      [String(h.port)],
    );
    const r = JSON.parse(out) as { before: string[]; after: string[] };
    assert.ok(r.before.includes('LOGINDISABLED') && !r.before.includes('AUTH=PLAIN'), r.before.join(' '));
    assert.ok(r.after.includes('AUTH=PLAIN') && !r.after.includes('LOGINDISABLED'), r.after.join(' '));
  });
});
