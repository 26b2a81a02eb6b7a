/**
 * End to end: real mail clients log in and send through the protocol front-ends with the LDAP backend
 * behind them, against a real slapd provider + syncrepl consumer holding two domains.
 *
 * IMAP and POP3 run the real ImapSession / Pop3Session on 127.0.0.1:0 with LdapDirectory as their
 * directory. SMTP RCPT checks and submission AUTH need the SMTP daemon (startDaemon in
 * lib/daemon/server.ts): until it lands that test fails with a message saying so.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapSession } from '../../lib/daemon/imap/index.js';
import { Pop3Session } from '../../lib/daemon/pop3/index.js';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { LocalAdmission } from '../../lib/limits/local.js';
import { silentLogger } from '../../lib/log.js';
import { LocalMailboxEvents, MailStore } from '../../lib/store/mailbox/index.js';
import { directorySchema, specSchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
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
    directory,
    admission: new LocalAdmission(() => 100),
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
          { hostname: 'mail.test', settings: spec.pop3, directory: dead, admission: new LocalAdmission(() => 100), store, logger: silentLogger },
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

describe('SMTP RCPT and submission AUTH through LDAP (the SMTP daemon)', () => {
  it('needs startDaemon from lib/daemon/server.ts (engineer A)', async () => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(['../../lib/daemon', 'server.js'].join('/'))) as Record<string, unknown>;
    } catch (e) {
      assert.fail(
        `lib/daemon/server.ts has not landed yet (${(e as Error).message.split('\n')[0]}): the end-to-end test of SMTP RCPT checks, ` +
          'submission AUTH through LDAP runs once startDaemon exists and createDirectory() builds LdapDirectory',
      );
    }
    assert.equal(typeof mod.startDaemon, 'function', 'lib/daemon/server.ts must export startDaemon');
    assert.fail('startDaemon landed: wire this test to it (spec with directory.kind ldap, smtplib RCPT to known/unknown/alias, AUTH on submission)');
  });
});
