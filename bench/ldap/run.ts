/**
 * Logins per second through the LDAP backend against a real slapd, with and without the lookup cache,
 * in one run:
 *   no-cache         cacheTtlSeconds 0: service search + user bind per login
 *   cache+recheck    cached entry, user bind + base read of the entry (the default)
 *   cache            cached entry, user bind only (recheckOnLogin: false)
 *   ldapts-bind      peer: a bare ldapts client per worker binding as the user (the ceiling)
 * Usage: npx tsx bench/ldap/run.ts [--seconds 4] [--concurrency 8] [--users 200]
 * Writes bench/results/ldap.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { writePlot } from '../lib/plot.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'ldapts';
import { LdapDirectory } from '../../lib/directory/ldap/index.js';
import { silentLogger } from '../../lib/log.js';
import { directorySchema, type LdapDirectorySpec } from '../../lib/spec/schema.js';
import { startSlapd } from '../../test/harness/slapd.js';
import { PEOPLE, SERVICE_DN, SERVICE_PASSWORD, fixtureLdif } from '../../test/directory/ldap-fixture.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '8' },
    users: { type: 'string', default: '200' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const users = Number(values.users);

interface Figure {
  name: string;
  logins: number;
  failures: number;
  loginsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function measure(name: string, login: (i: number) => Promise<boolean>): Promise<Figure> {
  const latencies: number[] = [];
  let failures = 0;
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const i = next++;
        const s = performance.now();
        if (!(await login(i))) failures++;
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(2));
  return { name, logins: latencies.length, failures, loginsPerSecond: Math.round(latencies.length / elapsed), p50Ms: q(0.5), p99Ms: q(0.99) };
}

const ldap = await startSlapd({ ldif: fixtureLdif(users), schemas: ['mailfleet', 'ad'] });
const figures: Figure[] = [];
try {
  const directory = (over: Record<string, unknown>) =>
    new LdapDirectory({
      spec: directorySchema.parse({
        kind: 'ldap',
        uris: [ldap.url],
        baseDn: PEOPLE,
        bindDn: SERVICE_DN,
        bindPasswordEnv: 'PW',
        poolSize: concurrency,
        ...over,
      }) as LdapDirectorySpec,
      baseDir: '.',
      logger: silentLogger,
      env: { PW: SERVICE_PASSWORD },
    });
  const user = (i: number) => `user${i % users}`;
  for (const [name, over] of [
    ['no-cache', { cacheTtlSeconds: 0, negativeCacheTtlSeconds: 0 }],
    ['cache+recheck', { cacheTtlSeconds: 300 }],
    ['cache', { cacheTtlSeconds: 300, recheckOnLogin: false }],
  ] as const) {
    const d = directory(over);
    for (let i = 0; i < users; i++) await d.authenticate(`${user(i)}@example.com`, `${user(i)}-pw`); // warm
    figures.push(await measure(name, async (i) => (await d.authenticate(`${user(i)}@example.com`, `${user(i)}-pw`)).ok));
    await d.close();
  }
  const clients = Array.from({ length: concurrency }, () => new Client({ url: ldap.url, timeout: 5000 }));
  let w = 0;
  const free = [...clients];
  figures.push(
    await measure('ldapts-bind', async (i) => {
      const c = free.pop() ?? clients[w++ % clients.length]!;
      try {
        await c.bind(`uid=${user(i)},${PEOPLE}`, `${user(i)}-pw`);
        return true;
      } catch {
        return false;
      } finally {
        free.push(c);
      }
    }),
  );
  for (const c of clients) await c.unbind().catch(() => undefined);
} finally {
  await ldap.stop();
}

const base = figures[0]!.loginsPerSecond || 1;
console.log(`LDAP logins, ${seconds} s each, concurrency ${concurrency}, ${users} users, slapd on loopback`);
console.log('name             logins/s   p50 ms   p99 ms  failures  vs no-cache');
for (const f of figures)
  console.log(
    `${f.name.padEnd(16)} ${String(f.loginsPerSecond).padStart(8)} ${String(f.p50Ms).padStart(8)} ${String(f.p99Ms).padStart(8)} ${String(f.failures).padStart(9)}  ${(f.loginsPerSecond / base).toFixed(2)}x`,
  );
const out = join('bench', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'ldap.json'),
  JSON.stringify({ bench: 'ldap', date: new Date().toISOString(), seconds, concurrency, users, figures, ratios: Object.fromEntries(figures.map((f) => [f.name, Number((f.loginsPerSecond / base).toFixed(2))])) }, null, 2) + '\n',
);
console.log(`wrote ${join(out, 'ldap.json')}`);
writePlot('ldap', { title: `LDAP logins/s (concurrency ${concurrency})`, unit: 'logins/s', bars: figures.map((f) => ({ label: f.name, value: f.loginsPerSecond })) });
