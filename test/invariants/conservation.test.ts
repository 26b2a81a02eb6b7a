/**
 * The conservation invariant (issue 15), as a property over the real daemon: whatever a session does —
 * protocol × TLS mode (plain, STARTTLS, implicit) × auth outcome (none, success, failure, lockout, over the
 * per-user cap) × how it ends (QUIT/LOGOUT, client reset, the server's idle timeout) × path (direct, through
 * a real HAProxy) × counters (in-process, Redis) — once it is gone the daemon counts exactly what it counted
 * before: admission scopes (Redis keys through the Redis backend's own snapshot), the registry behind
 * /v1/connections, the listeners' sockets, and HAProxy's frontend sessions. Shutdown and port-full refusals
 * are checked after the property. Long-lived "holder" sessions keep one per-user slot taken throughout, so
 * the "over the cap" outcome is always reachable; they leave last and everything must then be zero.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { RunningDaemon } from '../../lib/daemon/server.js';
import { haproxyTopRows } from '../../lib/ops/haproxy-applier.js';
import { PROTOCOLS, type Protocol } from '../../lib/spec/schema.js';
import { startSmtpHarness, PASSWORD as SMTP_PASSWORD, type SmtpHarness } from '../daemon/smtp-harness.js';
import { startProxiedDaemon, PASSWORD as PROXY_PASSWORD, type ProxiedDaemon } from '../haproxy/proxied-daemon.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import { residue, waitForResidue, waitForZero, type Residue } from './conservation.js';
import { holdSession, runSession, tlsModes, type Accounts, type AuthOutcome, type Ending, type SessionCase } from './session-driver.js';

const IDLE_SECONDS = 2;
const CAPPED = { perUser: 1 };
const SPEC = {
  domains: [{ name: 'example.com' }, { name: 'example.org', limits: { submission: CAPPED, imap: CAPPED, pop3: CAPPED } }],
  smtp: { allowInsecureAuth: true, idleTimeoutSeconds: IDLE_SECONDS, authFailureDelayMs: 0 },
  imap: { allowInsecureAuth: true, idleTimeoutSeconds: IDLE_SECONDS, preAuthTimeoutSeconds: IDLE_SECONDS, authFailureDelayMs: 0 },
  pop3: { allowInsecureAuth: true, idleTimeoutSeconds: IDLE_SECONDS, preAuthTimeoutSeconds: IDLE_SECONDS, authFailureDelayMs: 0 },
  auth: { failuresPerIp: 100_000, failuresPerUser: 2 },
};

interface Fixture {
  readonly name: string;
  readonly daemon: RunningDaemon;
  port(p: Protocol): number;
  readonly accounts: Accounts;
  /** HAProxy's frontend sessions, when the path goes through it. */
  haproxySessions?(): Promise<number>;
  baseline?: Residue;
  stop(): Promise<void>;
}

/** Sessions that stay logged in as the capped user, one per service, so "over the cap" is always reachable. */
async function holdCappedUser(f: Fixture): Promise<() => void> {
  const { user, pass } = f.accounts.capped;
  const ends = [
    await holdSession('submission', f.port('submission'), user, pass, '127.0.9.9'),
    await holdSession('imap', f.port('imap'), user, pass, '127.0.9.9'),
    await holdSession('pop3', f.port('pop3'), user, pass, '127.0.9.9'),
  ];
  return () => ends.forEach((e) => e());
}

/** Locks the named login out before the run: failuresPerUser wrong passwords. */
async function lockOut(f: Fixture): Promise<void> {
  for (let i = 0; i < SPEC.auth.failuresPerUser; i++)
    await runSession({ protocol: 'imap', tls: 'plain', auth: 'fail', end: 'quit', source: '127.0.8.8' }, f.port('imap'), { ...f.accounts, failLogin: f.accounts.locked }, 0);
}

const directPort = (h: SmtpHarness) => (p: Protocol) => {
  const s = h.daemon.sockets.find((x) => x.protocol === p && x.listener.startsWith('default-'));
  if (!s) throw new Error(`no ${p} socket`);
  return s.port;
};

describe('conservation: after every client has gone, every counter is back where it was', () => {
  const fixtures: Fixture[] = [];
  const releases: Array<() => void> = [];
  let redis: RedisServer | undefined;

  before(async () => {
    requireHaproxy();
    const accounts = (pass: string): Accounts => ({ ok: { user: 'alice@example.com', pass }, capped: { user: 'carol@example.org', pass }, locked: 'locked@example.com' });
    const direct = await startSmtpHarness({ spec: SPEC });
    fixtures.push({ name: 'direct, in-process', daemon: direct.daemon, port: directPort(direct), accounts: accounts(SMTP_PASSWORD), stop: () => direct.close() });
    redis = await startRedis();
    const viaRedis = await startSmtpHarness({ spec: { ...SPEC, redis: { url: redis.url } } });
    fixtures.push({ name: 'direct, Redis', daemon: viaRedis.daemon, port: directPort(viaRedis), accounts: accounts(SMTP_PASSWORD), stop: () => viaRedis.close() });
    const proxied: ProxiedDaemon = await startProxiedDaemon(SPEC, ['alice@example.com', 'carol@example.org']);
    fixtures.push({
      name: 'HAProxy, in-process',
      daemon: proxied.daemon,
      port: (p) => proxied.spec.port(p),
      accounts: accounts(PROXY_PASSWORD),
      haproxySessions: async () => (await haproxyTopRows(proxied.haproxy.info)).reduce((n, r) => n + r.scur, 0),
      stop: () => proxied.stop(),
    });
    for (const f of fixtures) {
      await lockOut(f);
      releases.push(await holdCappedUser(f));
      await new Promise((r) => setTimeout(r, 300));
      const r = await residue(f.daemon);
      assert.equal(r.registry, 3, `${f.name}: the three holders are counted`);
      // The holders' own sockets only: behind HAProxy a health-check connection may be open at this moment
      // (it never becomes a session); a baseline that caught one waited for a socket that had left (CI).
      f.baseline = { ...r, sockets: r.registry };
    }
  });

  after(async () => {
    for (const r of releases) r();
    for (const f of fixtures) await f.stop().catch(() => undefined);
    await redis?.stop();
  });

  it('property: any session, once gone, leaves the counters as they were', async () => {
    const sessionCase = fc
      .record({
        fixture: fc.nat({ max: fixtures.length - 1 }),
        protocol: fc.constantFrom(...PROTOCOLS),
        tlsPick: fc.nat({ max: 1 }),
        auth: fc.constantFrom<AuthOutcome>('none', 'ok', 'fail', 'locked', 'capped'),
        end: fc.constantFrom<Ending>('quit', 'quit', 'reset', 'reset', 'idle'),
        octet: fc.integer({ min: 1, max: 250 }),
      })
      .map(({ fixture, protocol, tlsPick, auth, end, octet }) => {
        const modes = tlsModes(protocol);
        // Port 25 has no AUTH: its sessions are unauthenticated whatever was drawn.
        const c: SessionCase = { protocol, tls: modes[tlsPick % modes.length]!, auth: protocol === 'smtp' ? 'none' : auth, end, source: `127.0.${(octet % 7) + 1}.${octet}` };
        return { fixture, c };
      });
    await fc.assert(
      fc.asyncProperty(sessionCase, async ({ fixture, c }) => {
        const f = fixtures[fixture]!;
        await runSession(c, f.port(c.protocol), f.accounts, (IDLE_SECONDS + 4) * 1000);
        await waitForResidue(f.daemon, f.baseline!, 3000);
        if (f.haproxySessions) {
          const until = Date.now() + 3000;
          // Only the three holders remain on HAProxy's frontends.
          while ((await f.haproxySessions()) !== 3) {
            if (Date.now() > until) assert.fail(`${f.name}: HAProxy still counts ${await f.haproxySessions()} sessions`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }),
      { numRuns: 45, endOnFailure: true },
    );
  });

  it('GIVEN sessions in every protocol and TLS mode open WHEN the daemon stops THEN nothing is left counted', async () => {
    const h = await startSmtpHarness({ spec: SPEC });
    const accounts: Accounts = { ok: { user: 'alice@example.com', pass: SMTP_PASSWORD }, capped: { user: 'carol@example.org', pass: SMTP_PASSWORD }, locked: 'locked@example.com' };
    const port = directPort(h);
    const running: Array<Promise<unknown>> = [];
    for (const protocol of PROTOCOLS)
      for (const tls of tlsModes(protocol))
        // 'idle' with a long wait: the sessions are still open when the daemon stops.
        running.push(runSession({ protocol, tls, auth: protocol === 'smtp' ? 'none' : 'ok', end: 'idle', source: '127.0.5.5' }, port(protocol), accounts, 30_000).catch(() => undefined));
    const until = Date.now() + 10_000;
    while (h.daemon.ctx.connections.size < running.length && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    assert.equal(h.daemon.ctx.connections.size, running.length, 'every session is open');
    await h.daemon.stop(3000);
    await waitForZero(h.daemon, 1000);
    await Promise.all(running);
    await h.close().catch(() => undefined);
  });

  it('GIVEN a port cap of 1 WHEN nine more clients are refused THEN only the one session is counted, and nothing after it leaves', async () => {
    const h = await startSmtpHarness({ spec: { ...SPEC, limits: { imap: { portConnections: 1 } } } });
    try {
      const port = directPort(h)('imap');
      const { connect } = await import('node:net');
      const first = connect({ host: '127.0.0.1', port });
      await new Promise((r) => first.once('data', r));
      const refused = await Promise.all(
        Array.from({ length: 9 }, () =>
          new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port });
            let got = '';
            s.on('data', (d) => (got += d.toString('latin1')));
            s.on('close', () => resolve(got));
            s.on('error', () => undefined);
          }),
        ),
      );
      assert.ok(refused.every((r) => r.startsWith('* BYE [UNAVAILABLE]')), JSON.stringify(refused));
      assert.equal((await residue(h.daemon)).registry, 1);
      first.destroy();
      await waitForZero(h.daemon, 2000);
    } finally {
      await h.close();
    }
  });
});
