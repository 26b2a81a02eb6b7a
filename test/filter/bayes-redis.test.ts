/**
 * Bayes statistics in the fleet's Redis on cloud mail nodes (lib/filter/node-setup.ts): when the spec
 * provisions Redis, the mail bundle renders rspamd's classifier with the Redis backend behind a local TLS
 * tunnel, and the bootstrap writes the tunnel's endpoint and the AUTH token at boot. The bundle's rspamd
 * config passes `rspamadm configtest` of the real package with the classifier merged as meant, and a real
 * rspamd running it reaches a real TLS-only redis-server that requires the password through the unit's own
 * socat tunnel (AUTH accepted, classifier reads done, no refused command); the tunnel verifies the name.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BAYES_REDIS_TUNNEL_ENV,
  BAYES_REDIS_TUNNEL_UNIT,
  NODE_BAYES_REDIS_PASSWORD,
  NODE_BAYES_REDIS_TUNNEL,
  NODE_CLAMD_SOCKET,
  NODE_DKIM_DIR,
  NODE_RSPAMD_DIR,
} from '../../lib/filter/node-setup.js';
import { RspamdClient } from '../../lib/filter/rspamd-client.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import type { RenderedFile } from '../../lib/render/node-layout.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { filterStackUnavailable, startFilterStack, type FilterStack } from '../harness/rspamd.js';
import { freePort } from '../harness/slapd.js';
import { assertBundleShellchecks } from '../harness/shellcheck.js';

const missing = filterStackUnavailable();
if (missing) throw new Error(`filtering tests need rspamd, clamd and dnsmasq (${missing}): scripts/install-system-deps.sh`);

function planWith(over: Record<string, unknown>): Plan {
  const base = loadSpec('examples/single-region.yaml').spec;
  return buildPlan(parseSpec(JSON.stringify({ ...base, filtering: { antivirus: false, policy: { rejectScore: 12 } }, ...over }), 'bayes.yaml'));
}
const withRedis = nodeFiles(planWith({ redis: { url: 'rediss://placeholder:6379' } }), 'mail', 'primary');
const file = (files: readonly RenderedFile[], path: string) => files.find((f) => f.path === path)?.content;
const PASSWORD = 'Bayes0Token0For0Tests';

/** The bundle's rspamd files with the node's paths and ports swapped for a test dir's. */
function bundleRspamdFiles(swap: { normalBind: string; redis: string; passwordFile: string; confDir: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of withRedis.filter((x) => x.path.startsWith('rspamd/')))
    out[f.path.slice('rspamd/'.length)] = f.content
      .replaceAll(NODE_BAYES_REDIS_PASSWORD, swap.passwordFile)
      .replaceAll(`"${NODE_BAYES_REDIS_TUNNEL}"`, JSON.stringify(swap.redis))
      .replaceAll(/bind_socket = "127\.0\.0\.1:\d+"/g, `bind_socket = ${JSON.stringify(swap.normalBind)}`)
      .replaceAll(NODE_CLAMD_SOCKET, join(swap.confDir, 'clamd.sock'))
      .replaceAll(NODE_DKIM_DIR, join(swap.confDir, 'dkim'))
      .replaceAll(NODE_RSPAMD_DIR, swap.confDir);
  return out;
}

describe('Bayes in the fleet Redis: what the mail bundle carries', () => {
  it('GIVEN redis provisioned (elasticache) THEN classifier-bayes.conf uses the Redis backend through the local tunnel, includes the boot-written password, and autolearns spam at the spec\'s rejectScore', () => {
    const conf = file(withRedis, 'rspamd/local.d/classifier-bayes.conf');
    assert.ok(conf, 'no classifier-bayes.conf in the bundle');
    assert.match(conf, /^backend = "redis";$/m);
    assert.match(conf, new RegExp(`^servers = "${NODE_BAYES_REDIS_TUNNEL}";$`, 'm'));
    assert.ok(conf.includes(`.include(try=true) "${NODE_BAYES_REDIS_PASSWORD}"`));
    assert.match(conf, /spam_threshold = 12;/);
    assert.doesNotMatch(conf, new RegExp(PASSWORD));
  });

  it('GIVEN the same THEN mail.sh writes the endpoint and the AUTH token, starts the tunnel before rspamd restarts, and passes shellcheck', () => {
    const sh = file(withRedis, 'bootstrap/mail.sh')!;
    assert.match(sh, /^pkg_install rspamd socat$/m);
    assert.ok(sh.includes(`>${BAYES_REDIS_TUNNEL_ENV}`));
    assert.ok(sh.includes(`printf 'password = "%s";\\n' "\${bayes_redis_auth}" >${NODE_BAYES_REDIS_PASSWORD}`), sh);
    assert.ok(sh.includes(`chgrp _rspamd ${NODE_BAYES_REDIS_PASSWORD}`));
    const tunnel = sh.indexOf(`systemctl enable --now ${BAYES_REDIS_TUNNEL_UNIT}`);
    assert.ok(tunnel > 0 && tunnel < sh.indexOf('systemctl restart rspamd.service'));
    const unit = file(withRedis, `systemd/${BAYES_REDIS_TUNNEL_UNIT}`)!;
    assert.match(unit, /^ExecStart=\/usr\/bin\/socat TCP-LISTEN:6380,bind=127\.0\.0\.1,reuseaddr,fork OPENSSL:\$\{REDIS_ENDPOINT\},verify=1,cafile=\/etc\/ssl\/certs\/ca-certificates\.crt$/m);
    assert.ok(unit.includes(`EnvironmentFile=${BAYES_REDIS_TUNNEL_ENV}`));
    assertBundleShellchecks(withRedis);
  });

  it('GIVEN no Redis, or an external one THEN no Bayes config, no tunnel, no socat', () => {
    for (const files of [nodeFiles(planWith({ redis: undefined }), 'mail', 'primary'), nodeFiles(planWith({ redis: { url: 'redis://10.0.0.9:6379', provision: 'external' } }), 'mail', 'primary')]) {
      assert.equal(file(files, 'rspamd/local.d/classifier-bayes.conf'), undefined);
      assert.equal(file(files, `systemd/${BAYES_REDIS_TUNNEL_UNIT}`), undefined);
      assert.doesNotMatch(file(files, 'bootstrap/mail.sh')!, /socat|bayes/);
    }
  });
});

describe('Bayes in the fleet Redis: the bundle config under the real rspamd package, through the tunnel to a TLS-only Redis', { timeout: 120_000 }, () => {
  let dir: string;
  let redisPort: number;
  let tunnelPort: number;
  const procs: ChildProcess[] = [];
  let stack: FilterStack;
  const cli = (port: number, tls: boolean, ...args: string[]) =>
    spawnSync('redis-cli', ['-h', 'localhost', '-p', String(port), '-a', PASSWORD, '--no-auth-warning', ...(tls ? ['--tls', '--cacert', join(dir, 'ca.crt')] : []), ...args], { encoding: 'utf8', timeout: 10_000 });
  /** The unit's socat command for an endpoint, with the test's CA and listen port. */
  const tunnel = (endpoint: string, port: number): ChildProcess => {
    const exec = /^ExecStart=(.+)$/m.exec(file(withRedis, `systemd/${BAYES_REDIS_TUNNEL_UNIT}`)!)![1]!
      .replace('${REDIS_ENDPOINT}', endpoint)
      .replace('cafile=/etc/ssl/certs/ca-certificates.crt', `cafile=${join(dir, 'ca.crt')}`)
      .replace(`TCP-LISTEN:${NODE_BAYES_REDIS_TUNNEL.split(':')[1]},`, `TCP-LISTEN:${port},`)
      .split(' ');
    const p = spawn(exec[0]!, exec.slice(1), { stdio: 'ignore' });
    procs.push(p);
    return p;
  };
  const waitFor = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 100; i++) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what} did not come up`);
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mf-bayes-'));
    writeFileSync(join(dir, 'redis-password.inc'), `password = "${PASSWORD}";\n`);
    // A CA and a certificate for "localhost": the endpoint name the tunnel verifies (ElastiCache's is its DNS name).
    const ssl = (...a: string[]) => assert.equal(spawnSync('openssl', a, { cwd: dir, encoding: 'utf8' }).status, 0, a.join(' '));
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=mailfleet test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'redis.key', '-out', 'redis.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:localhost\n');
    ssl('x509', '-req', '-in', 'redis.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'redis.crt', '-days', '1', '-extfile', 'ext');
    redisPort = await freePort();
    tunnelPort = await freePort();
    // TLS only and AUTH, like the provisioned ElastiCache.
    procs.push(spawn('redis-server', ['--port', '0', '--tls-port', String(redisPort), '--bind', '127.0.0.1', '--tls-cert-file', join(dir, 'redis.crt'), '--tls-key-file', join(dir, 'redis.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
    await waitFor('redis-server (TLS)', () => cli(redisPort, true, 'PING').stdout.trim() === 'PONG');
    tunnel(`localhost:${redisPort}`, tunnelPort);
    await waitFor('the tunnel', () => cli(tunnelPort, false, 'PING').stdout.trim() === 'PONG');
  });
  after(async () => {
    await stack?.stop();
    for (const p of procs.reverse()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('GIVEN the tunnel unit\'s socat command WHEN the endpoint name does not match the certificate THEN nothing passes (the name is verified)', async () => {
    const port = await freePort();
    const p = tunnel(`127.0.0.1:${redisPort}`, port);
    await waitFor('the mismatched tunnel', () => spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0);
    assert.notEqual(cli(port, false, 'PING').stdout.trim(), 'PONG');
    p.kill('SIGKILL');
  });

  it('GIVEN the bundle\'s files THEN rspamadm configtest says syntax OK and configdump shows the bayes classifier on Redis with the included password', () => {
    const conf = join(dir, 'conf');
    for (const [name, text] of Object.entries(bundleRspamdFiles({ normalBind: '127.0.0.1:11999', redis: `127.0.0.1:${tunnelPort}`, passwordFile: join(dir, 'redis-password.inc'), confDir: conf }))) {
      mkdirSync(dirname(join(conf, name)), { recursive: true });
      writeFileSync(join(conf, name), text);
    }
    // Test-only: a short public-suffix list (the stock one takes 20 s to compile).
    writeFileSync(join(dir, 'tld.dat'), 'com\norg\ntest\n');
    writeFileSync(join(conf, 'local.d/options.inc'), `url_tld = ${JSON.stringify(join(dir, 'tld.dat'))};\n`);
    const vars = [`--var=LOCAL_CONFDIR=${conf}`, `--var=DBDIR=${dir}`, `--var=RUNDIR=${dir}`, `--var=LOGDIR=${dir}`];
    const test = spawnSync('rspamadm', [...vars, 'configtest', '-c', join(conf, 'rspamd.conf')], { encoding: 'utf8' });
    assert.equal(test.status, 0, `${test.stdout}${test.stderr}`);
    assert.match(test.stdout, /syntax OK/);
    const dump = spawnSync('rspamadm', [...vars, 'configdump', '-c', join(conf, 'rspamd.conf'), 'classifier'], { encoding: 'utf8' });
    assert.equal(dump.status, 0, dump.stderr);
    const bayes = dump.stdout.slice(dump.stdout.indexOf('bayes {'));
    assert.match(bayes, /backend = "redis";/);
    assert.match(bayes, new RegExp(`servers = "127\\.0\\.0\\.1:${tunnelPort}";`));
    assert.match(bayes, new RegExp(`password = "${PASSWORD}";`));
    assert.match(bayes, /spam_threshold = 12;/);
  });

  it('GIVEN a real rspamd running the bundle\'s config against a redis-server that requires the password through the tunnel WHEN it scans mail THEN its Bayes classifier AUTHs and reads there, with nothing refused', async () => {
    stack = await startFilterStack({
      antivirus: false,
      rspamdFiles: (s) => {
        const files = bundleRspamdFiles({ normalBind: s.normalBind, redis: `127.0.0.1:${tunnelPort}`, passwordFile: join(dir, 'redis-password.inc'), confDir: join(dir, 'run') });
        // Test-only: the private DNS server, and a short public-suffix list (the stock one takes 20 s).
        files['local.d/options.inc'] = `${files['local.d/options.inc'] ?? ''}dns { nameserver = ["${s.nameservers![0]}"]; timeout = 1s; }\nurl_tld = ${JSON.stringify(s.tldFile)};\n`;
        return files;
      },
    });
    cli(redisPort, true, 'CONFIG', 'RESETSTAT');
    const client = new RspamdClient({ url: stack.url, timeoutMs: 15_000 });
    try {
      for (let i = 0; i < 3; i++) {
        const words = Array.from({ length: 40 }, (_, j) => `word${(i * 7 + j) % 23}x`).join(' ');
        const r = await client.check(
          { ip: '198.51.100.7', helo: 'client.test', from: 'someone@elsewhere.test', rcpt: ['bob@example.com'], queueId: `q${i}`, mtaName: 'mx.test' },
          Buffer.from(`From: someone@elsewhere.test\r\nTo: bob@example.com\r\nSubject: bayes ${i}\r\nMessage-ID: <${i}@client.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${words}\r\n`),
        );
        assert.equal(typeof r.score, 'number');
      }
    } finally {
      client.close();
    }
    const stats = cli(redisPort, true, 'INFO', 'commandstats').stdout;
    const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    const failed = [...stats.matchAll(/^cmdstat_(\w+):.*failed_calls=(\d+)/gm)].filter((m) => Number(m[2]) > 0).map((m) => m[1]);
    const rejected = [...stats.matchAll(/^cmdstat_(\w+):.*rejected_calls=(\d+)/gm)].filter((m) => Number(m[2]) > 0).map((m) => m[1]);
    assert.ok(calls('auth') >= 1, `rspamd never sent AUTH:\n${stats}`);
    assert.deepEqual([failed, rejected], [[], []], stats);
    const reads = ['evalsha', 'eval', 'hget', 'hmget', 'mget', 'get', 'hgetall', 'smembers'].reduce((n, c) => n + calls(c), 0);
    assert.ok(reads >= 1, `no classifier read reached Redis:\n${stats}`);
  });
});
