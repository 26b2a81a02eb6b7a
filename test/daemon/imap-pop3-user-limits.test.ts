/**
 * Per-user limits from the directory on IMAP and POP3: a user whose static users file entry carries
 * `limits: { imap: { perUser: 2 }, pop3: { perUser: 1 } }` is capped at those values in the real daemon,
 * while a user without an entry gets the platform's caps (imap.perUser 5 here).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { hashPassword } from '../../lib/directory/static.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { python, testCert } from './mail-harness.js';

const PASSWORD = 'password';
const PLATFORM_PER_USER = 5;
const ALICE_IMAP = 2;

let root: string;
let daemon: RunningDaemon;
const portOf = (p: string) => daemon.sockets.find((x) => x.protocol === p)!.port;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'mf-user-limits-'));
  const hash = await hashPassword(PASSWORD);
  await writeFile(
    join(root, 'users.yaml'),
    [
      'users:',
      '  - address: alice@example.com',
      `    passwordHash: ${hash}`,
      `    limits: { imap: { perUser: ${ALICE_IMAP} }, pop3: { perUser: 1 } }`,
      '  - address: bob@example.com',
      `    passwordHash: ${hash}`,
      '',
    ].join('\n'),
  );
  const spec = specSchema.parse({
    platform: { name: 'test', hostname: 'mail.test' },
    domains: [{ name: 'example.com' }],
    limits: { imap: { perUser: PLATFORM_PER_USER, perUserIp: PLATFORM_PER_USER }, pop3: { perUser: PLATFORM_PER_USER, perUserIp: PLATFORM_PER_USER } },
    imap: { allowInsecureAuth: true, authFailureDelayMs: 0 },
    pop3: { allowInsecureAuth: true, authFailureDelayMs: 0 },
  });
  const portOverrides = Object.fromEntries(PROTOCOLS.map((p) => [p, 0]));
  const config = daemonConfig(buildPlan(spec), { mode: 'local-direct', host: '127.0.0.1', portOverrides, adminPort: 0 });
  daemon = await startDaemon(config, { dataDir: root, baseDir: root, logger: silentLogger, tls: testCert(), admin: false });
});

after(async () => {
  await daemon?.stop(1000);
  if (root) await rm(root, { recursive: true, force: true });
});

/** Opens `n` IMAP sessions of one user at once (all held open), LOGIN on each in turn; returns each reply. */
async function imapLogins(user: string, n: number): Promise<string[]> {
  const out = await python(
    `
import imaplib, sys, json
res, held = [], []
for i in range(int(sys.argv[3])):
    m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
    held.append(m)
    try:
        typ, data = m.login(sys.argv[2], 'password')
        res.append(typ + ' ' + data[0].decode())
    except imaplib.IMAP4.error as e:
        res.append('NO ' + str(e))
for m in held:
    try: m.logout()
    except Exception: pass
print(json.dumps(res))
`,
    [String(portOf('imap')), user, String(n)],
  );
  return JSON.parse(out) as string[];
}

/** Two POP3 sessions of one user at once; returns the second PASS reply. */
async function secondPop3Login(user: string): Promise<string> {
  return (
    await python(
      `
import poplib, sys
a = poplib.POP3('127.0.0.1', int(sys.argv[1])); a.user(sys.argv[2]); a.pass_('password')
b = poplib.POP3('127.0.0.1', int(sys.argv[1])); b.user(sys.argv[2])
try:
    print(b.pass_('password').decode())
except poplib.error_proto as e:
    print(str(e))
a.quit()
`,
      [String(portOf('pop3')), user],
    )
  ).trim();
}

describe('per-user limits from the directory (IMAP, POP3)', () => {
  it('GIVEN alice with imap perUser 2 in users.yaml WHEN she opens 3 IMAP sessions THEN the third LOGIN is refused; bob gets the platform cap', async () => {
    const alice = await imapLogins('alice@example.com', ALICE_IMAP + 1);
    assert.deepEqual(alice.slice(0, ALICE_IMAP).map((r) => r.split(' ')[0]), ['OK', 'OK'], alice.join('\n'));
    assert.match(alice[ALICE_IMAP]!, /^NO /, `third session of alice: ${alice[ALICE_IMAP]}`);
    const bob = await imapLogins('bob@example.com', PLATFORM_PER_USER + 1);
    assert.equal(bob.filter((r) => r.startsWith('OK')).length, PLATFORM_PER_USER, bob.join('\n'));
    assert.match(bob[PLATFORM_PER_USER]!, /^NO /);
  });

  it('GIVEN alice with pop3 perUser 1 THEN a second POP3 session is refused by admission, before the maildrop lock that refuses bob', async () => {
    const alice = await secondPop3Login('alice@example.com');
    assert.match(alice, /-ERR \[IN-USE\]/);
    assert.doesNotMatch(alice, /locked by another POP3 session/, 'refused by the per-user limit, not by the lock');
    assert.match(await secondPop3Login('bob@example.com'), /locked by another POP3 session/);
  });
});
