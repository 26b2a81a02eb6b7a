/**
 * Backends going away under a running daemon: LDAP down gives temporary failures (451 4.3.0, NO
 * [UNAVAILABLE], -ERR [SYS/TEMP]), never "unknown user", and creates no Maildir; Redis down under a
 * two-node fleet falls back to per-node admission (sessions still admitted, counted in
 * mailfleetd_admission_fallbacks) and neither node crashes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import { slapdUnavailable, startSlapd, type SlapdServer } from '../harness/slapd.js';
import { fixtureLdif, PASSWORDS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD } from '../directory/ldap-fixture.js';
import { configFor, RawClient, startInProcess, startProcess, tempDir, metricsText, type TestDaemon } from '../ops/fixture.js';
import { deliver, imapCmd, imapLogin } from './fleet-client.js';

describe('LDAP down', { timeout: 60_000 }, () => {
  let slapd: SlapdServer;
  let d: TestDaemon;
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    const missing = slapdUnavailable();
    if (missing) throw new Error(`LDAP outage test cannot run: ${missing}`);
    slapd = await startSlapd({ ldif: fixtureLdif(), schemas: ['mailfleet', 'ad'] });
    process.env.MAILFLEET_FAULTS_LDAP_PW = SERVICE_PASSWORD;
    const t = await tempDir('mf-ldapdown-');
    dir = t.dir;
    cleanup = t.cleanup;
    d = await startInProcess(
      dir,
      configFor({
        directory: {
          kind: 'ldap',
          uris: [slapd.url],
          baseDn: PEOPLE,
          bindDn: SERVICE_DN,
          bindPasswordEnv: 'MAILFLEET_FAULTS_LDAP_PW',
          timeoutMs: 500,
          cacheTtlSeconds: 1,
          negativeCacheTtlSeconds: 1,
        },
      }),
    );
  });
  after(async () => {
    await d?.stop();
    await slapd?.stop();
    await cleanup?.();
  });

  it('GIVEN slapd up THEN a known user gets 250 and an unknown one 550 5.1.1 (the baseline)', async () => {
    assert.match(await deliver(d.port('smtp'), 'alice@example.com', 'ldap-up'), /^250 /);
    assert.match(await deliver(d.port('smtp'), 'nobody@example.com', 'ldap-up-unknown'), /^550 5\.1\.1 /);
  });

  it('GIVEN slapd killed THEN RCPT gets 451 4.3.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]; no Maildir is created', async () => {
    await slapd.kill();
    await new Promise((r) => setTimeout(r, 1200)); // past the 1 s caches
    for (const to of ['carol@example.org', 'nobody@example.com', 'alice@example.com'])
      assert.match(await deliver(d.port('smtp'), to, 'ldap-down'), /^451 4\.3\.0 /, to);
    const c = await RawClient.open(d.port('imap'));
    await c.waitFor(/^\* OK/);
    const login = await imapCmd(c, `LOGIN carol@example.org ${PASSWORDS.carol}`);
    assert.match(login.status, /^NO \[UNAVAILABLE\]/);
    c.close();
    const p = await RawClient.open(d.port('pop3'));
    await p.waitFor(/^\+OK/);
    await p.send('USER carol@example.org', /^[+-]/);
    const pass = await p.send(`PASS ${PASSWORDS.carol}`, /^[+-]/, 5000);
    p.close();
    assert.match(pass, /^-ERR \[SYS\/TEMP\]/);
    assert.equal(existsSync(join(dir, 'mail', 'example.org', 'carol')), false, 'no Maildir for an unverified user');
  });
});

describe('Redis down under a two-node fleet', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  const nodes: Array<TestDaemon & { proc: import('node:child_process').ChildProcess }> = [];
  const cleanups: Array<() => Promise<void>> = [];

  before(async () => {
    redis = await startRedis();
    const config = configFor({}, redis.url);
    for (let i = 0; i < 2; i++) {
      const t = await tempDir(`mf-redisdown-${i}-`);
      cleanups.push(t.cleanup);
      nodes.push(await startProcess(t.dir, config));
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await redis?.stop();
    for (const c of cleanups) await c();
  });

  async function fallbacks(n: TestDaemon): Promise<number> {
    const m = /^mailfleetd_admission_fallbacks(?:\{[^}]*\})? (\d+)/m.exec(await metricsText(n.adminUrl));
    return Number(m?.[1] ?? 0);
  }

  it('GIVEN redis-server stopped THEN both nodes still admit SMTP and IMAP sessions, count the fallback, and stay up', async () => {
    for (const n of nodes) assert.match(await deliver(n.port('smtp'), 'bob@example.com', 'redis-up'), /^250 /);
    const before = await Promise.all(nodes.map(fallbacks));
    await redis.stop();
    for (const [i, n] of nodes.entries()) {
      assert.match(await deliver(n.port('smtp'), 'bob@example.com', `redis-down-${i}`), /^250 /);
      const c = await imapLogin(n.port('imap'), 'bob@example.com');
      assert.match((await imapCmd(c, 'SELECT INBOX')).status, /^OK/);
      c.close();
    }
    const afterCounts = await Promise.all(nodes.map(fallbacks));
    for (const [i] of nodes.entries())
      assert.ok(afterCounts[i]! > before[i]!, `node ${i} counts the fallback (${before[i]} → ${afterCounts[i]})`);
    for (const n of nodes) assert.equal(n.proc.exitCode, null, 'node still running');
  });
});
