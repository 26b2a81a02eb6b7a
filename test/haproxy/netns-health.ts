/**
 * Child of cloud-chain.test.ts, run inside a private network namespace (`unshare --net`), where the
 * cloud haproxy.cfg can bind its ports exactly as rendered (`:8404 accept-proxy`, `:25 accept-proxy`, …)
 * without clashing with anything on the machine. Plays the NLB health checker against it and prints one
 * JSON line per probe: { probe, status } where status is the HTTP status line HAProxy answered.
 *
 *   phase 1: the config exactly as rendered (no DNS in the namespace: the mail backends have no server)
 *   phase 2: server-templates pointed at a cloud-mode mailfleetd in the namespace (the only rewrite)
 *
 * argv: <spec file> <work dir>
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { startDaemon } from '../../lib/daemon/server.js';
import { testCert } from '../daemon/mail-harness.js';
import { HaproxyProcess, maxConnectionsForFileLimit, openFileLimit } from '../../lib/haproxy/process.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import { CLOUD_HEALTH_PORT, haproxyLayout, renderBusyLua, renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { writeEdgeListFiles } from '../../lib/haproxy/edge.js';
import { loadSpec } from '../../lib/spec/index.js';
import { runScript } from '../harness/script.js';

const [specFile, dir] = process.argv.slice(2) as [string, string];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET /healthz as an NLB health check does with PROXY v2 on: the header first, then the request. */
function nlbCheck(proxyV2: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port: CLOUD_HEALTH_PORT });
    let buf = '';
    s.once('connect', () => {
      if (proxyV2) s.write(encodeProxyV2({ source: { address: '10.0.1.17', port: 41234 }, destination: { address: '10.0.2.30', port: CLOUD_HEALTH_PORT } }));
      s.write('GET /healthz HTTP/1.1\r\nHost: 10.0.2.30:8404\r\nConnection: close\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n');
    });
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.once('close', () => resolve(buf.split('\r\n')[0] ?? ''));
    s.once('error', reject);
  });
}

async function runHaproxy(cfg: string, name: string): Promise<HaproxyProcess> {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, cfg);
  const hx = new HaproxyProcess({ configFile: file, adminSocket: join(dir, 'admin.sock'), masterSocket: join(dir, `${name}-master.sock`), logFile: join(dir, `${name}.log`) });
  await hx.start();
  return hx;
}

const print = (probe: string, status: string) => process.stdout.write(JSON.stringify({ probe, status }) + '\n');

async function main(): Promise<void> {
  if (spawnSync('ip', ['link', 'set', 'lo', 'up']).status !== 0) throw new Error('cannot bring lo up in the namespace');
  const plan = buildPlan(loadSpec(specFile).spec);
  const lua = join(dir, 'busy.lua');
  writeFileSync(lua, renderBusyLua(plan));
  const ceiling = maxConnectionsForFileLimit(openFileLimit(), plan.listeners.length);
  // The proxy bootstrap writes the busy-TLS PEM at /etc/haproxy; here it lives beside the Lua file.
  const pem = join(dir, 'busy.pem');
  writeFileSync(pem, `${testCert().cert}${testCert().key}`);
  const renderOpts = { target: 'cloud' as const, runDir: dir, luaPath: lua, tlsPemPath: pem, edgeListDir: dir, maxConnectionsCeiling: ceiling };
  writeEdgeListFiles(plan, haproxyLayout(plan, renderOpts));
  const rendered = renderHaproxyConfig(plan, renderOpts);

  let hx = await runHaproxy(rendered, 'as-rendered');
  print('as-rendered, PROXY v2', await nlbCheck(true));
  await hx.stop();

  const cfg = daemonConfig(plan, { mode: 'cloud', host: '127.0.0.1' });
  const daemon = await startDaemon(cfg, { dataDir: join(dir, 'var'), baseDir: dir, logger: silentLogger });
  const withDaemon = rendered.replace(/ \S+:(\d+) resolvers vpc init-addr none /g, ' 127.0.0.1:$1 ');
  hx = await runHaproxy(withDaemon, 'with-daemon');
  // Checks run every 2 s and need 2 successes (rise 2): wait for every backend to come up, bounded.
  let status = '';
  for (let i = 0; i < 40; i++) {
    status = await nlbCheck(true);
    if (status.includes(' 200')) break;
    await sleep(250);
  }
  print('daemon up, PROXY v2', status);
  await daemon.stop(500);
  for (let i = 0; i < 60; i++) {
    status = await nlbCheck(true);
    if (!status.includes(' 200')) break;
    await sleep(250);
  }
  print('daemon stopped, PROXY v2', status);
  await hx.stop();
}

runScript(main);
