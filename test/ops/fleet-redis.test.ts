/**
 * Two daemons sharing a real redis-server: per-user, per-domain and per-IP caps hold across the fleet
 * under a 10× flood split over both nodes; the ops CLI changes limits on both and `top` sums them; when a
 * node is SIGKILLed its sessions stop counting after the lease TTL.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import type { TopReport } from '../../lib/ops/top.js';
import type { Protocol } from '../../lib/spec/schema.js';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../limits/redis-server.js';
import {
  adminGet,
  configFor,
  RawClient,
  runCli,
  startProcess,
  tempDir,
  TOKEN,
  type TestDaemon,
} from './fixture.js';

async function smtpLogin(
  d: TestDaemon,
  protocol: Protocol,
  user: string | undefined,
  clients: RawClient[],
): Promise<{ ok: boolean; line: string }> {
  const c = await RawClient.open(d.port(protocol));
  clients.push(c);
  const banner = await c.waitFor(/^\d{3} /, 10_000);
  if (!banner.startsWith('220 ') || !user) return { ok: banner.startsWith('220 '), line: banner };
  await c.send('EHLO fleet.test', /^250 /, 10_000);
  const r = await c.send(
    `AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`,
    /^\d{3} /,
    10_000,
  );
  return { ok: r.startsWith('235 '), line: r };
}

async function imapLogin(
  d: TestDaemon,
  user: string,
  clients: RawClient[],
): Promise<{ ok: boolean; line: string }> {
  const c = await RawClient.open(d.port('imap'));
  clients.push(c);
  const greet = await c.waitFor(/^\* (OK|BYE)/, 10_000);
  if (!greet.startsWith('* OK')) return { ok: false, line: greet };
  const r = await c.send(`a1 LOGIN ${user} password`, /^a1 /, 10_000);
  return { ok: r.startsWith('a1 OK'), line: r };
}

/** Samples the fleet-wide count of one scope from a node's /v1/limits while `work` runs. */
async function sampled<T>(
  url: string,
  service: string,
  kind: string,
  id: string,
  work: () => Promise<T>,
): Promise<{ result: T; max: number }> {
  let max = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      const v = await adminGet<LimitsView>(url, '/v1/limits');
      max = Math.max(
        max,
        ...v.use
          .filter((u) => u.scope.service === service && u.scope.kind === kind && u.scope.id === id)
          .map((u) => u.current),
      );
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const result = await work();
  on = false;
  await loop;
  return { result, max };
}

describe('two daemon processes sharing Redis', () => {
  let redis: RedisServer;
  const nodes: Array<TestDaemon & { proc: import('node:child_process').ChildProcess }> = [];
  const dirs: Array<Awaited<ReturnType<typeof tempDir>>> = [];
  const clients: RawClient[] = [];
  before(async () => {
    redis = await startRedis();
    const config = configFor(
      {
        limits: {
          submission: { perUser: 3, perDomain: 4, perIp: 100 },
          smtp: { perIp: 4 },
          imap: { perUser: 3 },
          pop3: { perDomain: 1 },
        },
        // 10× a per-user cap of logins at once over two nodes: more checks in flight fleet-wide than the
        // lockout window's slots (the lockout itself is tested in test/limits/login-race.test.ts).
        auth: { failuresPerUser: 1000, concurrentChecksPerIp: 1000 },
      },
      redis.url,
    );
    for (let i = 0; i < 2; i++) {
      const t = await tempDir('mf-fleet-');
      dirs.push(t);
      nodes.push(await startProcess(t.dir, config));
    }
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const n of nodes) await n.stop();
    await redis?.stop();
    for (const t of dirs) await t.cleanup();
  });

  it('GIVEN 10× the per-user cap split over both nodes THEN exactly the cap logs in fleet-wide, never more, the rest get 421 4.7.0 naming it', async () => {
    const { result, max } = await sampled(nodes[0]!.adminUrl, 'submission', 'user', 'alice@example.com', () =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          smtpLogin(nodes[i % 2]!, 'submission', 'alice@example.com', clients),
        ),
      ),
    );
    const fallbacks = await Promise.all(
      nodes.map(
        async (n) =>
          /mailfleetd_admission_fallbacks (\d+)/.exec(
            await (await fetch(`${n.adminUrl}/metrics`)).text(),
          )?.[1],
      ),
    );
    assert.deepEqual(fallbacks, ['0', '0'], 'both nodes counted in Redis all along');
    assert.equal(result.filter((o) => o.ok).length, 3);
    assert.ok(max <= 3, `sampled ${max}`);
    for (const o of result.filter((x) => !x.ok))
      assert.equal(o.line, '421 4.7.0 submission perUser limit of 3 reached for user alice@example.com');
    // The domain holds alice's 3; bob gets the one slot left of perDomain 4, fleet-wide.
    const bob = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        smtpLogin(nodes[i % 2]!, 'submission', 'bob@example.com', clients),
      ),
    );
    assert.equal(bob.filter((o) => o.ok).length, 1);
    for (const o of bob.filter((x) => !x.ok))
      assert.equal(o.line, '421 4.7.0 submission perDomain limit of 4 reached for domain example.com');
  });

  it('GIVEN 10× the per-IP cap split over both nodes THEN the cap holds fleet-wide', async () => {
    const { result, max } = await sampled(nodes[1]!.adminUrl, 'smtp', 'ip', '127.0.0.1', () =>
      Promise.all(Array.from({ length: 40 }, (_, i) => smtpLogin(nodes[i % 2]!, 'smtp', undefined, clients))),
    );
    assert.equal(result.filter((o) => o.ok).length, 4);
    assert.ok(max <= 4, `sampled ${max}`);
    for (const o of result.filter((x) => !x.ok))
      assert.equal(o.line, '421 4.7.0 smtp perIp limit of 4 reached for ip 127.0.0.1');
  });

  it('GIVEN 10× the IMAP per-user and POP3 per-domain caps split over both nodes THEN the caps hold fleet-wide', async () => {
    const { result: imap, max } = await sampled(nodes[0]!.adminUrl, 'imap', 'user', 'carol@example.org', () =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) => imapLogin(nodes[i % 2]!, 'carol@example.org', clients)),
      ),
    );
    assert.equal(imap.filter((o) => o.ok).length, 3);
    assert.ok(max <= 3, `sampled ${max}`);
    for (const o of imap.filter((x) => !x.ok))
      assert.equal(o.line, 'a1 NO [UNAVAILABLE] imap perUser limit of 3 reached for user carol@example.org');
    const pop = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const c = await RawClient.open(nodes[i % 2]!.port('pop3'));
        clients.push(c);
        await c.waitFor(/^\+OK/, 10_000);
        await c.send(`USER ${i % 2 ? 'alice' : 'bob'}@example.com`, /^[+-]/, 10_000);
        return c.send('PASS password', /^[+-]/, 10_000);
      }),
    );
    assert.equal(pop.filter((l) => l.startsWith('+OK')).length, 1);
    for (const l of pop.filter((x) => !x.startsWith('+OK')))
      assert.match(
        l,
        /^-ERR \[IN-USE\] pop3 (perDomain limit of 1 reached for domain example\.com|perUser limit of 1 reached for user (alice|bob)@example\.com)$/,
      );
  });

  it('GIVEN mailfleet limit set and top over both nodes THEN each node reports its change and top sums the fleet', async () => {
    const admin = nodes.flatMap((n) => ['--admin', n.adminUrl]);
    const set = await runCli([
      'limit',
      'set',
      'submission.perUser',
      '5',
      ...admin,
      '--token',
      TOKEN,
      '--json',
    ]);
    assert.equal(set.status, 0, set.stderr);
    const reports = JSON.parse(set.stdout) as Array<{
      target: string;
      before: number;
      after: number;
      ok: boolean;
    }>;
    assert.deepEqual(
      reports.map((r) => [r.target, r.before, r.after, r.ok]),
      nodes.map((n) => [n.adminUrl, 3, 5, true]),
    );
    // 2 more for alice now fit (5), across nodes.
    const more = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        smtpLogin(nodes[i % 2]!, 'submission', 'alice@example.com', clients),
      ),
    );
    assert.equal(more.filter((o) => o.ok).length, 0, 'the domain (perDomain 4) is still full');
    const top = await runCli(['top', ...admin, '--token', TOKEN, '--json']);
    assert.equal(top.status, 0, top.stderr);
    const report = JSON.parse(top.stdout) as TopReport;
    assert.equal(report.nodes.filter((n) => n.ok).length, 2);
    const alice = report.sections.user.find(
      (r) => r.service === 'submission' && r.id === 'alice@example.com',
    )!;
    assert.deepEqual([alice.current, alice.limit], [3, 5]);
    assert.equal(
      report.total,
      nodes.length === 2 ? report.nodes.reduce((n, x) => n + (x.connections ?? 0), 0) : -1,
    );
    const dom = report.sections.domain.find((r) => r.service === 'submission' && r.id === 'example.com')!;
    assert.deepEqual([dom.current, dom.limit], [4, 4]);
    assert.ok(dom.refused >= 9);
  });

  it('GIVEN a node SIGKILLed with sessions THEN after the lease TTL the other node admits again', async () => {
    const dead = nodes[1]!;
    const before = await adminGet<LimitsView>(nodes[0]!.adminUrl, '/v1/limits');
    const domBefore = before.use.find(
      (u) => u.scope.service === 'submission' && u.scope.kind === 'domain' && u.scope.id === 'example.com',
    )!;
    assert.equal(domBefore.current, 4);
    // The producer's own record: the domain's sorted set in Redis, one member per session, scored by its
    // lease expiry; members are `<nodeId>:<seq>`. The dead node's members are the ones that stop being
    // refreshed. Judged against Redis TIME, not the wall clock, so a late refresh or a slow test machine
    // cannot make a correct daemon fail.
    const key = 'mailfleet:{adm}:submission:domain:example.com';
    const r = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await r.connect();
    const scores = async (): Promise<Map<string, number>> => {
      const flat = await r.zrange(key, 0, -1, 'WITHSCORES');
      const m = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, Number(flat[i + 1]));
      return m;
    };
    const redisNow = async (): Promise<number> => {
      const [s, us] = await r.time();
      return Number(s) * 1000 + Math.floor(Number(us) / 1000);
    };
    try {
      dead.proc.kill('SIGKILL');
      await new Promise((res) => dead.proc.once('exit', res));
      const atKill = await scores();
      const polls: Array<{ before: number; after: number; current: number; local: number }> = [];
      let domAfter: LimitsView['use'][number];
      const deadline = Date.now() + 15_000;
      for (;;) {
        const t0 = await redisNow();
        const after = await adminGet<LimitsView>(nodes[0]!.adminUrl, '/v1/limits');
        const t1 = await redisNow();
        domAfter = after.use.find(
          (u) => u.scope.service === 'submission' && u.scope.kind === 'domain' && u.scope.id === 'example.com',
        )!;
        polls.push({ before: t0, after: t1, current: domAfter.current, local: domAfter.local ?? 0 });
        if (domAfter.current === domAfter.local || Date.now() > deadline) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(domAfter.current, domAfter.local, 'only the live node’s sessions still count');
      assert.ok(domAfter.current < 4);
      // Dead members: present at the kill and never re-scored since (a live node refreshes every TTL/3).
      const now = await scores();
      const deadScores = [...atKill].filter(([m, sc]) => !now.has(m) || now.get(m) === sc).map(([, sc]) => sc);
      const liveIds = new Set([...now].filter(([m, sc]) => atKill.get(m) !== sc).map(([m]) => m.split(':')[0]));
      const deadIds = new Set(
        [...atKill.keys()].filter((m) => !liveIds.has(m.split(':')[0])).map((m) => m.split(':')[0]),
      );
      assert.equal(deadIds.size, 1, `one node stopped refreshing: ${[...atKill.keys()].join(' ')}`);
      assert.equal(deadScores.length, 4 - polls[0]!.local, 'the dead node held the rest of the domain’s 4');
      const firstExpiry = Math.min(...deadScores);
      // Every poll answered wholly before the first dead lease expired still counted all of them.
      for (const p of polls.filter((x) => x.after < firstExpiry)) {
        assert.equal(p.current, p.local + deadScores.length, `counted before expiry at ${p.after} < ${firstExpiry}`);
      }
      // And the count fell only once Redis time had passed the last dead lease's expiry.
      const fell = polls.find((x) => x.current === x.local)!;
      assert.ok(fell.after >= Math.max(...deadScores), 'the dead sessions stopped counting only after their lease expired');
    } finally {
      r.disconnect();
    }
    assert.equal((await smtpLogin(nodes[0]!, 'submission', 'bob@example.com', clients)).ok, true);
  });
});
