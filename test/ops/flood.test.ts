/**
 * Exactness under flood: 10× the cap connect (and log in) in parallel, per IP, per port, per user and per
 * domain, on SMTP, IMAP and POP3. While the flood runs a sampler reads the daemon's counters every few
 * ms; the admitted count must never pass the cap, exactly the cap must be admitted (every client stays
 * connected), and every refused client must have the documented reply naming the limit and its value.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Protocol } from '../../lib/spec/schema.js';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { configFor, RawClient, startInProcess, tempDir } from './fixture.js';

type Outcome = { ok: boolean; line: string };
type Daemon = Awaited<ReturnType<typeof startInProcess>>;

const USERS_COM = ['alice@example.com', 'bob@example.com'];

/** One client's session up to the decisive reply; the connection stays open. */
async function session(
  d: Daemon,
  protocol: Protocol,
  user: string | undefined,
  clients: RawClient[],
  prefix?: Buffer,
): Promise<Outcome> {
  const c = await RawClient.open(d.port(protocol));
  clients.push(c);
  if (prefix) c.socket.write(prefix);
  if (protocol === 'smtp' || protocol === 'submission') {
    const banner = await c.waitFor(/^\d{3} /, 10_000);
    if (!banner.startsWith('220 ') || !user) return { ok: banner.startsWith('220 '), line: banner };
    await c.send('EHLO flood.test', /^250 /, 10_000);
    const r = await c.send(
      `AUTH PLAIN ${Buffer.from(`\0${user}\0password`).toString('base64')}`,
      /^\d{3} /,
      10_000,
    );
    return { ok: r.startsWith('235 '), line: r };
  }
  if (protocol === 'imap') {
    const greet = await c.waitFor(/^\* (OK|BYE)/, 10_000);
    if (!greet.startsWith('* OK') || !user) return { ok: greet.startsWith('* OK'), line: greet };
    const r = await c.send(`a1 LOGIN ${user} password`, /^a1 /, 10_000);
    return { ok: r.startsWith('a1 OK'), line: r };
  }
  const greet = await c.waitFor(/^[+-]/, 10_000);
  if (!greet.startsWith('+OK') || !user) return { ok: greet.startsWith('+OK'), line: greet };
  await c.send(`USER ${user}`, /^[+-]/, 10_000);
  const r = await c.send('PASS password', /^[+-]/, 10_000);
  return { ok: r.startsWith('+OK'), line: r };
}

interface Case {
  readonly name: string;
  readonly protocol: Protocol;
  readonly spec: Record<string, unknown>;
  readonly cap: number;
  readonly user?: (i: number) => string;
  /** What the sampler counts: admission scope use, or admitted sessions of the listener. */
  readonly sample: (d: Daemon) => Promise<number>;
  readonly refused: RegExp;
  /** A reply at least one refused client must have got (when `refused` allows several). */
  readonly mustSee?: RegExp;
}

const scopeUse = (kind: string, id: string) => async (d: Daemon) =>
  (await d.daemon.ctx.admission.snapshot())
    .filter((u) => u.scope.kind === kind && u.scope.id === id)
    .reduce((n, u) => n + u.current, 0);
const sessions = (protocol: Protocol) => async (d: Daemon) =>
  d.daemon.ctx.connections.list().filter((c) => c.protocol === protocol).length;

const CASES: Case[] = [
  {
    name: 'SMTP per IP',
    protocol: 'smtp',
    spec: { limits: { smtp: { perIp: 4 } } },
    cap: 4,
    sample: scopeUse('ip', '127.0.0.1'),
    refused: /^421 4\.7\.0 smtp perIp limit of 4 reached for ip 127\.0\.0\.1$/,
  },
  {
    name: 'SMTP per port',
    protocol: 'smtp',
    spec: { limits: { smtp: { portConnections: 4 } } },
    cap: 4,
    sample: sessions('smtp'),
    refused: /^421 4\.7\.0 smtp port \d+ is full \(4 connections\), try again later$/,
  },
  {
    name: 'SMTP per user',
    protocol: 'submission',
    spec: { limits: { submission: { perUser: 3, perIp: 100 } } },
    cap: 3,
    user: () => 'alice@example.com',
    sample: scopeUse('user', 'alice@example.com'),
    refused: /^421 4\.7\.0 submission perUser limit of 3 reached for user alice@example\.com$/,
  },
  {
    name: 'SMTP per domain',
    protocol: 'submission',
    spec: { limits: { submission: { perDomain: 3, perIp: 100 } } },
    cap: 3,
    user: (i) => USERS_COM[i % 2]!,
    sample: scopeUse('domain', 'example.com'),
    refused: /^421 4\.7\.0 submission perDomain limit of 3 reached for domain example\.com$/,
  },
  {
    name: 'IMAP per IP',
    protocol: 'imap',
    spec: { limits: { imap: { perIp: 4 } } },
    cap: 4,
    sample: scopeUse('ip', '127.0.0.1'),
    refused: /^\* BYE \[UNAVAILABLE\] imap perIp limit of 4 reached for ip 127\.0\.0\.1$/,
  },
  {
    name: 'IMAP per port',
    protocol: 'imap',
    spec: { limits: { imap: { portConnections: 4 } } },
    cap: 4,
    sample: sessions('imap'),
    refused: /^\* BYE \[UNAVAILABLE\] imap port \d+ is full \(4 connections\), try again later$/,
  },
  {
    name: 'IMAP per user',
    protocol: 'imap',
    spec: { limits: { imap: { perUser: 3 } } },
    cap: 3,
    user: () => 'alice@example.com',
    sample: scopeUse('user', 'alice@example.com'),
    refused: /^a1 NO \[UNAVAILABLE\] imap perUser limit of 3 reached for user alice@example\.com$/,
  },
  {
    name: 'IMAP per domain',
    protocol: 'imap',
    spec: { limits: { imap: { perDomain: 3 } } },
    cap: 3,
    user: (i) => USERS_COM[i % 2]!,
    sample: scopeUse('domain', 'example.com'),
    refused: /^a1 NO \[UNAVAILABLE\] imap perDomain limit of 3 reached for domain example\.com$/,
  },
  {
    name: 'POP3 per IP',
    protocol: 'pop3',
    spec: { limits: { pop3: { perIp: 4 } } },
    cap: 4,
    sample: scopeUse('ip', '127.0.0.1'),
    refused: /^-ERR \[SYS\/TEMP\] pop3 perIp limit of 4 reached for ip 127\.0\.0\.1$/,
  },
  {
    name: 'POP3 per port',
    protocol: 'pop3',
    spec: { limits: { pop3: { portConnections: 4 } } },
    cap: 4,
    sample: sessions('pop3'),
    refused: /^-ERR \[SYS\/TEMP\] pop3 port \d+ is full \(4 connections\), try again later$/,
  },
  // POP3 holds a maildrop lock per user, so one session per user is the most a mailbox allows anyway.
  {
    name: 'POP3 per user',
    protocol: 'pop3',
    spec: { limits: { pop3: { perUser: 1 } } },
    cap: 1,
    user: () => 'alice@example.com',
    sample: scopeUse('user', 'alice@example.com'),
    refused: /^-ERR \[IN-USE\] pop3 perUser limit of 1 reached for user alice@example\.com$/,
  },
  // With the lock, a second session of one user holds a domain slot for a moment before it is refused as
  // locked, which can refuse another user's login: so the domain case also runs at 1 to count exactly.
  {
    name: 'POP3 per domain',
    protocol: 'pop3',
    spec: { limits: { pop3: { perDomain: 1 } } },
    cap: 1,
    user: (i) => USERS_COM[i % 2]!,
    sample: scopeUse('domain', 'example.com'),
    refused:
      /^-ERR \[IN-USE\] pop3 (perDomain limit of 1 reached for domain example\.com|perUser limit of 1 reached for user (alice|bob)@example\.com)$/,
    mustSee: /perDomain limit of 1/,
  },
];

describe('flood: 10× the cap in parallel', () => {
  for (const c of CASES) {
    it(`${c.name}: never more than ${c.cap} admitted, exactly ${c.cap} admitted, every other client refused with the documented reply`, async () => {
      const tmp = await tempDir();
      const d = await startInProcess(tmp.dir, configFor(c.spec));
      const clients: RawClient[] = [];
      try {
        let max = 0;
        let sampling = true;
        const sampler = (async () => {
          while (sampling) {
            max = Math.max(max, await c.sample(d));
            await new Promise((r) => setImmediate(r));
          }
        })();
        const outcomes = await Promise.all(
          Array.from({ length: c.cap * 10 }, (_, i) => session(d, c.protocol, c.user?.(i), clients)),
        );
        sampling = false;
        await sampler;
        max = Math.max(max, await c.sample(d));
        assert.ok(max <= c.cap, `sampled ${max} admitted, cap ${c.cap}`);
        assert.equal(outcomes.filter((o) => o.ok).length, c.cap, 'exactly the cap admitted');
        assert.equal(await c.sample(d), c.cap);
        for (const o of outcomes.filter((x) => !x.ok)) assert.match(o.line, c.refused);
        if (c.mustSee)
          assert.ok(
            outcomes.some((o) => c.mustSee!.test(o.line)),
            `no refusal matched ${c.mustSee}`,
          );
      } finally {
        for (const x of clients) x.close();
        await d.stop();
        await tmp.cleanup();
      }
    });
  }
});

describe('caps see the real client behind the proxy tier', () => {
  let d: Daemon;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const clients: RawClient[] = [];
  before(async () => {
    tmp = await tempDir();
    const config = configFor({ limits: { imap: { perIp: 2 } } });
    // Every socket behind HAProxy: PROXY v2 required.
    d = await startInProcess(tmp.dir, {
      ...config,
      sockets: config.sockets.map((s) => ({ ...s, proxyProtocol: true })),
    });
  });
  after(async () => {
    for (const x of clients) x.close();
    await d.stop();
    await tmp.cleanup();
  });

  it('GIVEN PROXY v2 headers from two clients WHEN each floods THEN each gets its own per-IP cap; a missing header is refused', async () => {
    const header = (ip: string) =>
      encodeProxyV2({
        source: { address: ip, port: 40000 },
        destination: { address: '192.0.2.100', port: d.port('imap') },
      });
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const ip = i % 2 ? '198.51.100.7' : '203.0.113.9';
        return session(d, 'imap', undefined, clients, header(ip)).then((o) => ({ ip, ...o }));
      }),
    );
    for (const ip of ['198.51.100.7', '203.0.113.9']) {
      const mine = outcomes.filter((o) => o.ip === ip);
      assert.equal(mine.filter((o) => o.ok).length, 2, ip);
      for (const o of mine.filter((x) => !x.ok))
        assert.equal(o.line, `* BYE [UNAVAILABLE] imap perIp limit of 2 reached for ip ${ip}`);
    }
    const bare = await RawClient.open(d.port('imap'));
    clients.push(bare);
    bare.socket.write('a1 CAPABILITY\r\n');
    assert.equal(await bare.waitFor(/./, 7000), '', 'closed without a reply');
  });
});
