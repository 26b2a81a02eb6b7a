/**
 * Tenant binding (issue 15, DESIGN.md): the local platform with a real HAProxy rendered from the plan in
 * front of a real mailfleetd. Which frontend serves which tenant is read from the rendered haproxy.cfg
 * (frontend name, `# tenant` comment, bind port), not from a hand list: a user logs in only on the
 * frontend of their own tenant (their domain's dedicated one, else the shared one), and a refusal names
 * the port of the right one. MX (smtp) is not bound. Clients are Python's imaplib, poplib and smtplib.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TenantBinding } from '../../lib/daemon/tenant-binding.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import { specSchema } from '../../lib/spec/schema.js';
import { python } from '../daemon/mail-harness.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { PASSWORD, startProxiedDaemon, type ProxiedDaemon } from '../haproxy/proxied-daemon.js';

interface Frontend {
  readonly name: string;
  readonly tenant: string;
  readonly protocol: string;
  readonly port: number;
}

/** The mail frontends of a rendered haproxy.cfg. */
function frontendsOf(cfg: string): Frontend[] {
  const out: Frontend[] = [];
  let cur: { name: string; tenant?: string; protocol?: string } | undefined;
  for (const line of cfg.split('\n')) {
    const fe = /^frontend (\S+)$/.exec(line);
    if (fe) cur = { name: fe[1]! };
    else if (/^\S/.test(line)) cur = undefined;
    const t = /^ {4}# tenant (\S+), (\S+) /.exec(line);
    if (cur && t) Object.assign(cur, { tenant: t[1], protocol: t[2] });
    const b = /^ {4}bind \S*:(\d+)/.exec(line);
    if (cur?.tenant && cur.protocol && b) out.push({ name: cur.name, tenant: cur.tenant, protocol: cur.protocol, port: Number(b[1]) });
  }
  return out;
}

// One login per attempt; a busy greeting (the cap of 1 still held by the previous client) is retried.
const LOGIN = `
import imaplib, poplib, smtplib, ssl, sys, json, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
pw = sys.argv[1]
def once(proto, port, user):
    if proto in ('imap', 'imaps'):
        m = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx) if proto == 'imaps' else imaplib.IMAP4('127.0.0.1', port)
        try:
            typ, data = m.login(user, pw); m.logout(); return 'OK ' + data[0].decode()
        except imaplib.IMAP4.error as e:
            m.shutdown(); return 'NO ' + str(e)
    if proto in ('pop3', 'pop3s'):
        p = poplib.POP3_SSL('127.0.0.1', port, context=ctx) if proto == 'pop3s' else poplib.POP3('127.0.0.1', port)
        try:
            p.user(user); r = p.pass_(pw).decode(); p.quit(); return r
        except poplib.error_proto as e:
            p.close(); return e.args[0].decode() if isinstance(e.args[0], bytes) else str(e)
    s = smtplib.SMTP_SSL('127.0.0.1', port, context=ctx) if proto == 'submissions' else smtplib.SMTP('127.0.0.1', port)
    try:
        s.ehlo(); code, msg = s.login(user, pw); s.quit(); return '%d %s' % (code, msg.decode())
    except smtplib.SMTPAuthenticationError as e:
        s.close(); return '%d %s' % (e.smtp_code, e.smtp_error.decode())
out = []
for proto, port, user in json.loads(sys.argv[2]):
    for attempt in range(50):
        try:
            out.append(once(proto, port, user)); break
        except (imaplib.IMAP4.abort, poplib.error_proto, smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLError):
            time.sleep(0.1)
    else:
        out.append('never served')
    time.sleep(0.05)
print(json.dumps(out))
`;

const AUTHENTICATED = ['submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s'];
const USERS = ['alice@example.com', 'carol@example.org'];

describe('tenant binding through the local HAProxy', { timeout: 90_000 }, () => {
  let p: ProxiedDaemon;
  let frontends: Frontend[];

  before(async () => {
    requireHaproxy();
    p = await startProxiedDaemon(
      {
        domains: [
          { name: 'example.com' },
          { name: 'example.org', listeners: 'dedicated', limits: { imap: { listenerConnections: 1, sourceConnections: 1 } } },
        ],
      },
      USERS,
    );
    frontends = frontendsOf(readFileSync(p.haproxy.info.configFile, 'utf8'));
  });
  after(async () => {
    await p?.stop();
  });

  /** The frontend a user of `domain` belongs on for `protocol`: their tenant's own, else the shared one. */
  const ownFrontend = (domain: string, protocol: string) =>
    frontends.find((f) => f.tenant === domain && f.protocol === protocol) ?? frontends.find((f) => f.tenant === 'default' && f.protocol === protocol)!;

  it('GIVEN example.org dedicated WHEN each user logs in on every authenticated frontend THEN only their own tenant\'s frontend admits them; others name its port', async () => {
    const dedicated = frontends.filter((f) => f.tenant === 'example.org');
    assert.ok(dedicated.some((f) => f.protocol === 'imap'), `the rendered config has example.org's frontends: ${JSON.stringify(frontends)}`);
    const attempts = frontends.filter((f) => AUTHENTICATED.includes(f.protocol)).flatMap((f) => USERS.map((u) => ({ f, u })));
    const replies = JSON.parse(await python(LOGIN, [PASSWORD, JSON.stringify(attempts.map(({ f, u }) => [f.protocol, f.port, u]))], 60_000)) as string[];
    attempts.forEach(({ f, u }, i) => {
      const own = ownFrontend(u.split('@')[1]!, f.protocol);
      const r = replies[i]!;
      const what = `${u} on ${f.name} (port ${f.port}): ${r}`;
      if (own.name === f.name) assert.match(r, /^(OK|\+OK|235)/, what);
      else {
        assert.match(r, /^(NO \S*\[UNAVAILABLE\]|-ERR \[SYS\/PERM\]|535 5\.7\.1)/, what);
        assert.ok(r.includes(`port ${own.port} (listener ${own.name})`), `names the right port: ${what}`);
      }
    });
  });

  it('GIVEN listener:example-org-imap capped at 1 and held by carol WHEN carol logs in on the shared IMAP port THEN she is refused and told her own port', async () => {
    const own = ownFrontend('example.org', 'imap');
    const shared = ownFrontend('example.com', 'imap');
    const out = await python(
      `
import imaplib, sys
held = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); held.login('carol@example.org', sys.argv[3])
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[2]))
try:
    print('OK ' + m.login('carol@example.org', sys.argv[3])[1][0].decode())
except imaplib.IMAP4.error as e:
    print('NO ' + str(e))
held.logout()
`,
      [String(own.port), String(shared.port), PASSWORD],
    );
    assert.match(out.trim(), new RegExp(`^NO .*\\[UNAVAILABLE\\] example\\.org is not served on this port: use mail\\.test port ${own.port} \\(listener ${own.name}\\)`));
  });

  it('MX (port 25 equivalent) is not bound: mail for the dedicated tenant is accepted on the shared MX', async () => {
    const mx = frontends.find((f) => f.protocol === 'smtp' && f.tenant === 'default')!;
    const out = await python(
      `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1])); s.ehlo()
print(s.sendmail('x@remote.test', ['carol@example.org'], 'Subject: t\\r\\n\\r\\nhi\\r\\n') == {})
s.quit()
`,
      [String(mx.port)],
    );
    assert.equal(out.trim(), 'True');
  });
});

describe('TenantBinding from the plan', () => {
  const spec = specSchema.parse({
    platform: { name: 'binding-test', hostname: 'mail.example.net' },
    domains: [{ name: 'example.com' }, { name: 'Example.ORG', listeners: 'dedicated' }, { name: 'b.example', listeners: 'dedicated', protocols: ['submission'] }],
  });
  const plan = buildPlan(spec);

  it('a tenant with dedicated submission only uses the shared IMAP listener; MX and unplanned listeners are never bound', () => {
    const b = TenantBinding.fromConfig(daemonConfig(plan, { mode: 'local-direct' }));
    assert.equal(b.check('default-imap', 'b.example'), undefined);
    assert.equal(b.check('b-example-submission', 'b.example'), undefined);
    assert.equal(b.check('default-submission', 'b.example')?.listener, 'b-example-submission');
    assert.equal(b.check('default-smtp', 'example.org'), undefined);
    assert.equal(b.check('imap:0', 'example.org'), undefined);
    assert.equal(b.check(undefined, 'example.org'), undefined);
    assert.equal(b.check('example-org-imap', 'EXAMPLE.org'), undefined, 'domains compare case-insensitively');
  });

  it('names the public port in the cloud and the local port on the local platform', () => {
    const imap = plan.listeners.find((l) => l.name === 'example-org-imap')!;
    const cloud = TenantBinding.fromConfig(daemonConfig(plan, { mode: 'cloud' })).check('default-imap', 'example.org')!;
    assert.equal(cloud.text, `example.org is not served on this port: use mail.example.net port ${imap.publicPort} (listener example-org-imap)`);
    const local = TenantBinding.fromConfig(daemonConfig(plan, { mode: 'local-behind-proxy' })).check('example-org-imaps', 'example.com')!;
    assert.equal(local.port, plan.listeners.find((l) => l.name === 'default-imaps')!.localPort);
  });
});
