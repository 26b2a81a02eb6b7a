/**
 * What the cloud mail node assumes about the daemon, checked against the real thing: the esbuild bundle
 * started with the rendered unit's own `serve` arguments, on the config `mailfleet render daemon-config`
 * writes, with the environment the bootstrap writes (MAILFLEET_TLS_CERT / MAILFLEET_TLS_KEY), serves that
 * certificate and answers /metrics on the admin port the CloudWatch agent scrapes. The proxy node bundle
 * ships the Lua file haproxy.cfg loads.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import selfsigned from 'selfsigned';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { TLS_CERT_ENV, TLS_KEY_ENV } from '../../lib/daemon/tls.js';
import { buildPlan } from '../../lib/plan/build.js';
import type { DaemonConfig } from '../../lib/plan/types.js';
import { roleScripts } from '../../lib/render/cloud-init.js';
import { prometheusConfig } from '../../lib/render/cloudwatch-agent.js';
import { renderer } from '../../lib/render/index.js';
import { DAEMON_ADMIN_PORT, DAEMON_BUNDLE_PATH, DAEMON_CONFIG_PATH } from '../../lib/render/node-layout.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { mailfleetdUnit } from '../../lib/render/systemd.js';
import { loadSpec } from '../../lib/spec/load.js';
import { run } from './mail-harness.js';
import { usersFileText } from './smtp-harness.js';

const CERT_NAME = 'env-cert.mailfleet.test';
const SPEC = 'examples/local.yaml';

let dir = '';
let child: ChildProcess | undefined;
let ready: { sockets: Array<{ protocol: string; port: number }>; admin: { port: number }; dataDir: string };
let stderr = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mf-cloud-node-'));
  const bundle = join(dir, 'mailfleetd.mjs');
  await run(process.execPath, ['scripts/bundle-daemon.mjs', '--outfile', bundle], undefined, 60_000);
  // The config exactly as the CLI renders it for a cloud node; only addresses and ports are made local (the
  // test's proxy is on loopback, where a node trusts its VPC's proxy tier).
  const rendered = JSON.parse(await run('npx', ['tsx', 'bin/mailfleet.ts', 'render', 'daemon-config', '-c', SPEC, '--target', 'cloud'], undefined, 60_000)) as DaemonConfig;
  assert.deepEqual(rendered.admin, { host: '0.0.0.0', port: DAEMON_ADMIN_PORT }, 'cloud admin API (and /metrics) on 0.0.0.0:9025');
  assert.deepEqual(rendered.sockets[0]!.proxyTrustedNetworks, ['10.40.0.0/16'], 'cloud nodes believe PROXY headers from the VPC only');
  const local = {
    ...rendered,
    sockets: rendered.sockets.map((s) => ({ ...s, host: '127.0.0.1', port: 0, proxyTrustedNetworks: ['127.0.0.0/8'] })),
    admin: { host: '127.0.0.1', port: 0 },
  };
  await writeFile(join(dir, 'mailfleetd.json'), JSON.stringify(local));
  await writeFile(join(dir, 'users.yaml'), await usersFileText());
  const pems = selfsigned.generate([{ name: 'commonName', value: CERT_NAME }], { days: 2, keySize: 2048, algorithm: 'sha256' });
  await writeFile(join(dir, 'cert.pem'), pems.cert);
  await writeFile(join(dir, 'key.pem'), pems.private, { mode: 0o600 });

  // The unit's own arguments, with its paths mapped to the temp folder.
  const { spec } = loadSpec(SPEC);
  const unit = mailfleetdUnit(buildPlan(spec)).content;
  const exec = /^ExecStart=\S+ (\S+) (.*)$/m.exec(unit);
  assert.ok(exec, 'the unit has an ExecStart');
  assert.equal(exec[1], DAEMON_BUNDLE_PATH);
  const args = exec[2]!.split(' ').map((a) => (a === DAEMON_CONFIG_PATH ? join(dir, 'mailfleetd.json') : a.startsWith('/srv/') ? join(dir, 'data') : a));
  assert.deepEqual(args.filter((a) => a.startsWith('-')), ['--daemon-config', '--data-dir']);

  child = spawn(process.execPath, [bundle, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent', NODE_PATH: '', [TLS_CERT_ENV]: join(dir, 'cert.pem'), [TLS_KEY_ENV]: join(dir, 'key.pem') },
  });
  child.stderr!.on('data', (d) => (stderr += d));
  ready = await new Promise((resolve, reject) => {
    createInterface({ input: child!.stdout! }).on('line', (l) => {
      if (l.includes('"ready":true')) resolve(JSON.parse(l) as typeof ready);
    });
    child!.once('exit', (c) => reject(new Error(`bundle exited ${c}: ${stderr}`)));
  });
});

after(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The certificate subject CN a TLS client sees on an implicit-TLS socket behind PROXY v2. */
function peerName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = netConnect(port, '127.0.0.1', () => {
      raw.write(encodeProxyV2({ source: { address: '198.51.100.7', port: 4000 }, destination: { address: '10.0.0.1', port: 465 } }));
      const s = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'mail.localhost' }, () => {
        const cn = s.getPeerCertificate().subject?.CN;
        s.destroy();
        resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
      });
      s.once('error', reject);
    });
    raw.once('error', reject);
  });
}

describe('cloud mail node contract (bundle + rendered unit, config and environment)', () => {
  it('GIVEN MAILFLEET_TLS_CERT/KEY WHEN the bundle runs with the unit arguments THEN every TLS socket serves that certificate', async () => {
    assert.equal(ready.dataDir, join(dir, 'data'), 'the unit --data-dir is used');
    for (const protocol of ['submissions', 'imaps', 'pop3s']) {
      const port = ready.sockets.find((s) => s.protocol === protocol)!.port;
      assert.equal(await peerName(port), CERT_NAME, `${protocol} serves the env certificate`);
    }
  });

  it('answers /metrics without a token on the admin port, the one the CloudWatch agent scrapes', async () => {
    const res = await fetch(`http://127.0.0.1:${ready.admin.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^# HELP /m);
    const { spec } = loadSpec(SPEC);
    assert.match(prometheusConfig(buildPlan(spec)), new RegExp(`targets: \\['127\\.0\\.0\\.1:${DAEMON_ADMIN_PORT}'\\]`));
  });

  it('the bootstrap writes the env names the daemon reads, and data dir matching the unit', () => {
    const { spec } = loadSpec(SPEC);
    const plan = buildPlan(spec);
    const mailSh = roleScripts(plan).find((f) => f.path === 'bootstrap/mail.sh')!.content;
    for (const name of [TLS_CERT_ENV, TLS_KEY_ENV]) assert.match(mailSh, new RegExp(`${name}=`));
    const dataDir = /--data-dir (\S+)/.exec(mailfleetdUnit(plan).content)![1]!;
    assert.match(mailSh, new RegExp(`MAILFLEET_DATA_DIR=%s\\\\n' ${dataDir.replace(/\//g, '\\/')}\\n`));
  });

  it('the proxy node bundle ships the Lua file haproxy.cfg loads, where it loads it from', () => {
    const { spec } = loadSpec('examples/primary-dr.yaml');
    const files = nodeFiles(buildPlan(spec), 'proxy', 'primary');
    const cfg = files.find((f) => f.path === 'haproxy/haproxy.cfg')!.content;
    const luaLoad = /^\s*lua-load (\S+)$/m.exec(cfg);
    assert.ok(luaLoad, 'haproxy.cfg loads the busy applet');
    // proxy.sh installs haproxy/* into /etc/haproxy/.
    assert.match(roleScripts(buildPlan(spec)).find((f) => f.path === 'bootstrap/proxy.sh')!.content, /haproxy\/\* \/etc\/haproxy\//);
    const shipped = luaLoad[1]!.replace(/^\/etc\/haproxy\//, 'haproxy/');
    const lua = files.find((f) => f.path === shipped);
    assert.ok(lua, `bundle has ${shipped} (files: ${files.map((f) => f.path).join(', ')})`);
    assert.equal(lua.content, renderer('haproxy-busy')!.render(buildPlan(spec), { target: 'cloud', region: 'primary' }));
  });
});
