/**
 * End to end: real mail clients log in and send through the protocol front-ends with the LDAP backend
 * behind them, against a real slapd provider + syncrepl consumer holding two domains.
 *
 * IMAP and POP3 run the real ImapSession / Pop3Session on 127.0.0.1:0 with LdapDirectory as their
 * directory. SMTP RCPT checks and submission AUTH need the SMTP daemon (startDaemon in
 * lib/daemon/server.ts), started on port 0 with the LDAP directory built by createDirectory().
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapSession } from '../../lib/daemon/imap/index.js';
import { Pop3Session } from '../../lib/daemon/pop3/index.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { LoginGate } from '../../lib/daemon/login-gate.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';
import { PROTOCOLS, directorySchema, specSchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
import { python, testCert } from '../daemon/mail-harness.js';
import { freePort, startSlapdPair, type SlapdPair } from '../harness/slapd.js';
import { PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, fixtureLdif } from './ldap-fixture.js';

const AUTH_FAILURE_DELAY_MS = 400;
const CACHE_TTL_SECONDS = 1;

let pair: SlapdPair;
let root: string;
let directory: LdapDirectory;
let store: MailStore;
const sockets = new Set<Socket>();
const servers: Server[] = [];
let imapPort: number;
let pop3Port: number;

/** A front-end on 127.0.0.1:0 running one session object per connection. */
async function serve(session: (socket: Socket, id: string) => void): Promise<number> {
  let n = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    session(socket, `c${++n}`);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

function ldapSpecInput(): Record<string, unknown> {
  return {
    kind: 'ldap',
    uris: [pair.provider.url, pair.consumer.url],
    baseDn: PEOPLE,
    bindDn: SERVICE_DN,
    bindPasswordEnv: 'MAILFLEET_TEST_LDAP_PW',
    timeoutMs: 1000,
    cacheTtlSeconds: CACHE_TTL_SECONDS,
    negativeCacheTtlSeconds: CACHE_TTL_SECONDS,
  };
}

before(async () => {
  pair = await startSlapdPair({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'] });
  root = await mkdtemp(join(tmpdir(), 'mailfleet-ldap-e2e-'));
  directory = new LdapDirectory({
    spec: directorySchema.parse(ldapSpecInput()) as LdapDirectorySpec,
    baseDir: root,
    logger: silentLogger,
    env: { MAILFLEET_TEST_LDAP_PW: SERVICE_PASSWORD },
  });
  const spec = specSchema.parse({
    platform: { name: 'ldap-e2e' },
    domains: [{ name: 'example.com' }, { name: 'example.org' }],
    imap: { allowInsecureAuth: true, authFailureDelayMs: AUTH_FAILURE_DELAY_MS },
    pop3: { allowInsecureAuth: true, authFailureDelayMs: AUTH_FAILURE_DELAY_MS },
  });
  const events = new LocalMailboxEvents();
  store = new MailStore({ maildirOf: (a) => join(root, a.split('@')[1]!, a.split('@')[0]!, 'Maildir'), events, pollIntervalMs: 60_000 });
  const deps = {
    hostname: 'mail.test',
    settings: spec.imap,
    logins: new LoginGate({ directory, admission: new LocalAdmission(() => 100) }),
    store,
    tls: testCert(),
    logger: silentLogger,
  };
  imapPort = await serve((socket, id) => new ImapSession({ id, socket, remoteAddress: socket.remoteAddress ?? '127.0.0.1', secure: false }, deps));
  pop3Port = await serve(
    (socket, id) => new Pop3Session({ id, socket, remoteAddress: socket.remoteAddress ?? '127.0.0.1', secure: false }, { ...deps, settings: spec.pop3 }),
  );
});

after(async () => {
  for (const s of sockets) s.destroy();
  for (const server of servers) await new Promise<void>((r) => server.close(() => r()));
  await directory?.close();
  await pair?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** imaplib login; prints {"ok": bool, "text": reply, "ms": elapsed}. */
async function imapLogin(login: string, password: string): Promise<{ ok: boolean; text: string; ms: number }> {
  const out = await python(
    `
import imaplib, sys, json, time
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
t0 = time.monotonic()
try:
    typ, data = m.login(sys.argv[2], sys.argv[3])
    r = {'ok': typ == 'OK', 'text': data[0].decode()}
    m.select('INBOX')
    m.logout()
except imaplib.IMAP4.error as e:
    r = {'ok': False, 'text': str(e)}
r['ms'] = (time.monotonic() - t0) * 1000
print(json.dumps(r))
`,
    [String(imapPort), login, password],
  );
  return JSON.parse(out) as { ok: boolean; text: string; ms: number };
}

/** poplib USER/PASS; prints {"ok": bool, "text": reply, "ms": elapsed}. */
async function pop3Login(login: string, password: string): Promise<{ ok: boolean; text: string; ms: number }> {
  const out = await python(
    `
import poplib, sys, json, time
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
t0 = time.monotonic()
try:
    p.user(sys.argv[2])
    r = {'ok': True, 'text': p.pass_(sys.argv[3]).decode()}
    p.stat()
    p.quit()
except poplib.error_proto as e:
    r = {'ok': False, 'text': str(e)}
r['ms'] = (time.monotonic() - t0) * 1000
print(json.dumps(r))
`,
    [String(pop3Port), login, password],
  );
  return JSON.parse(out) as { ok: boolean; text: string; ms: number };
}

describe('POP3 logins through LDAP (poplib, real Pop3Session)', () => {
  it('logs in, and answers a wrong password with -ERR [AUTH] after the auth failure delay', async () => {
    assert.equal((await pop3Login('alice@example.com', PASSWORDS.alice)).ok, true);
    assert.equal((await pop3Login('carol', PASSWORDS.carol)).ok, true);
    const r = await pop3Login('bob@example.com', 'wrong-password');
    assert.equal(r.ok, false);
    assert.match(r.text, /-ERR \[AUTH\]/);
    assert.ok(r.ms >= AUTH_FAILURE_DELAY_MS - 20, `refused after ${r.ms.toFixed(0)} ms, delay is ${AUTH_FAILURE_DELAY_MS}`);
  });

  it('answers -ERR [SYS/TEMP] when no LDAP server answers, not an auth failure', async () => {
    const dead = new LdapDirectory({
      spec: directorySchema.parse({ ...ldapSpecInput(), uris: [`ldap://127.0.0.1:${await freePort()}/`] }) as LdapDirectorySpec,
      baseDir: root,
      logger: silentLogger,
      env: { MAILFLEET_TEST_LDAP_PW: SERVICE_PASSWORD },
    });
    const spec = specSchema.parse({ platform: { name: 'ldap-e2e' }, domains: [{ name: 'example.com' }], pop3: { allowInsecureAuth: true } });
    const port = await serve(
      (socket, id) =>
        new Pop3Session(
          { id, socket, remoteAddress: '127.0.0.1', secure: false },
          { hostname: 'mail.test', settings: spec.pop3, logins: new LoginGate({ directory: dead, admission: new LocalAdmission(() => 100) }), store, logger: silentLogger },
        ),
    );
    const out = await python(
      `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
p.user('alice@example.com')
try:
    p.pass_(sys.argv[2]); print('accepted')
except poplib.error_proto as e:
    print(str(e))
`,
      [String(port), PASSWORDS.alice],
    );
    assert.match(out, /-ERR \[SYS\/TEMP\]/);
    await dead.close();
  });
});

describe('IMAP logins through LDAP (imaplib, real ImapSession, slapd provider + consumer)', () => {
  it('logs in users of both domains by address and by uid', async () => {
    assert.equal((await imapLogin('alice@example.com', PASSWORDS.alice)).ok, true);
    assert.equal((await imapLogin('carol@example.org', PASSWORDS.carol)).ok, true);
    assert.equal((await imapLogin('bob', PASSWORDS.bob)).ok, true);
  });

  it('answers a wrong password with NO [AUTHENTICATIONFAILED] after the auth failure delay', async () => {
    const r = await imapLogin('alice@example.com', 'wrong-password');
    assert.equal(r.ok, false);
    assert.match(r.text, /AUTHENTICATIONFAILED/);
    assert.ok(r.ms >= AUTH_FAILURE_DELAY_MS - 20, `refused after ${r.ms.toFixed(0)} ms, delay is ${AUTH_FAILURE_DELAY_MS}`);
    const injected = await imapLogin('al*', PASSWORDS.alice);
    assert.equal(injected.ok, false, 'filter metacharacters never match');
  });

  it('refuses a user disabled in LDAP (ldapmodify on the provider) within the cache TTL', async () => {
    assert.equal((await imapLogin('carol@example.org', PASSWORDS.carol)).ok, true);
    await pair.provider.modify(`dn: uid=carol,${PEOPLE}\nchangetype: modify\nreplace: mailfleetDisabled\nmailfleetDisabled: TRUE\n`);
    try {
      const t0 = Date.now();
      let r = await imapLogin('carol@example.org', PASSWORDS.carol);
      while (r.ok && Date.now() - t0 < CACHE_TTL_SECONDS * 1000 + 500) r = await imapLogin('carol@example.org', PASSWORDS.carol);
      assert.equal(r.ok, false, 'still logging in after the cache TTL');
      assert.match(r.text, /AUTHENTICATIONFAILED/);
      await new Promise((res) => setTimeout(res, CACHE_TTL_SECONDS * 1000 + 100));
      assert.deepEqual(await directory.resolveRecipient('carol@example.org'), [], 'no more mail for a disabled user after the TTL');
    } finally {
      await pair.provider.modify(`dn: uid=carol,${PEOPLE}\nchangetype: modify\ndelete: mailfleetDisabled\n`);
    }
  });
});

describe('SMTP RCPT and submission AUTH through LDAP (the real daemon, startDaemon)', () => {
  let daemon: RunningDaemon;
  let dataDir: string;
  const portOf = (protocol: string) => daemon.sockets.find((s) => s.protocol === protocol)!.port;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mailfleet-ldap-smtp-'));
    // The service secret comes from a file next to the spec (resolved against baseDir), as in production.
    await writeFile(join(dataDir, 'ldap-bind.secret'), `${SERVICE_PASSWORD}\n`);
    const { bindPasswordEnv: _env, ...ldap } = ldapSpecInput();
    const spec = specSchema.parse({
      platform: { name: 'ldap-e2e', hostname: 'mx.test' },
      domains: [{ name: 'example.com' }, { name: 'example.org' }],
      directory: { ...ldap, bindPasswordFile: 'ldap-bind.secret' },
      smtp: { allowInsecureAuth: true },
    });
    const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
    const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
    // No injected directory: createDirectory() must build the LDAP backend from the daemon config.
    daemon = await startDaemon(config, { dataDir, baseDir: dataDir, logger: silentLogger, tls: testCert(), admin: false });
  });

  after(async () => {
    await daemon?.stop(2000);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('accepts RCPT for users and aliases found in LDAP, refuses unknown ones, and delivers to every alias target', async () => {
    const out = await python(
      `
import smtplib, sys, json
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
s.ehlo('client.test')
s.mail('sender@remote.test')
r = {}
for rcpt in ['alice@example.com', 'bob@example.com', 'sales@example.com', 'nobody@example.com', 'alice@elsewhere.test']:
    code, msg = s.rcpt(rcpt)
    r[rcpt] = code
s.rset()
s.sendmail('sender@remote.test', ['sales@example.com'], b'Subject: via alias\\r\\nMessage-ID: <ldap-alias@test>\\r\\n\\r\\nhello\\r\\n')
s.quit()
print(json.dumps(r))
`,
      [String(portOf('smtp'))],
    );
    const codes = JSON.parse(out) as Record<string, number>;
    assert.equal(codes['alice@example.com'], 250);
    assert.equal(codes['bob@example.com'], 250, 'mail attribute matched case-insensitively (Bob@Example.com)');
    assert.equal(codes['sales@example.com'], 250, 'mailAlternateAddress shared by alice and bob');
    assert.ok(codes['nobody@example.com']! >= 550 && codes['nobody@example.com']! < 560, `unknown user: ${codes['nobody@example.com']}`);
    assert.ok(codes['alice@elsewhere.test']! >= 550, 'not a relay for foreign domains');
    const inbox = (user: string) => readdir(join(dataDir, 'mail', 'example.com', user, 'Maildir', 'new')).catch(() => [] as string[]);
    assert.equal((await inbox('alice')).length, 1, 'the alias delivered to alice');
    assert.equal((await inbox('bob')).length, 1, 'the alias delivered to bob');
  });

  it('authenticates submission with the LDAP password and refuses a wrong one with 535', async () => {
    const out = await python(
      `
import smtplib, sys, json
def attempt(user, pw):
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)
    s.ehlo('client.test')
    try:
        code, _ = s.login(user, pw)
    except smtplib.SMTPAuthenticationError as e:
        code = e.smtp_code
    s.quit()
    return code
print(json.dumps([attempt('alice@example.com', sys.argv[2]), attempt('carol', sys.argv[3]), attempt('alice@example.com', 'wrong-password')]))
`,
      [String(portOf('submission')), PASSWORDS.alice, PASSWORDS.carol],
    );
    assert.deepEqual(JSON.parse(out), [235, 235, 535]);
  });
});
