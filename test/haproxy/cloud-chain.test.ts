/**
 * The cloud chain on loopback: the test plays the NLB (PROXY v2 with a public client address), the HAProxy
 * config rendered for the cloud target runs for real (only its bind addresses and DNS server-templates are
 * pointed at loopback), and mailfleetd runs in cloud mode. Checks that `accept-proxy` + session-phase
 * tracking put the per-source cap on the real client, and that the daemon maps the public port back to the
 * listener.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { HaproxyProcess, maxConnectionsForFileLimit, openFileLimit } from '../../lib/haproxy/process.js';
import { silentLogger } from '../../lib/log.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import { PROTOCOLS, loadSpec, type Protocol } from '../../lib/spec/index.js';
import { CLOUD_METRICS_PORT, haproxyLayout, renderBusyLua, renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { writeEdgeListFiles } from '../../lib/haproxy/edge.js';
import { INTERNAL_OFFSET, requireHaproxy, writeTempSpec, type TempSpec } from './harness.js';
import { testCert } from '../daemon/mail-harness.js';

/** Connects as the NLB would: PROXY v2 first, with the client's public address and the NLB's port. */
function viaNlb(port: number, client: string, publicPort: number): Promise<{ line: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => socket.write(encodeProxyV2({ source: { address: client, port: 40000 }, destination: { address: '192.0.2.10', port: publicPort } })));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\r\n')) resolve({ line: buf.split('\r\n')[0]!, socket });
    });
    socket.once('close', () => resolve({ line: buf, socket }));
    socket.once('error', reject);
  });
}

describe('cloud target: NLB PROXY v2 → HAProxy (accept-proxy) → mailfleetd (cloud mode)', () => {
  let spec: TempSpec;
  let daemon: RunningDaemon;
  let hx: HaproxyProcess;
  const open: Socket[] = [];
  const frontendPort = (p: Protocol) => spec.base + 50 + PROTOCOLS.indexOf(p);

  before(async () => {
    requireHaproxy();
    // The test's HAProxy is on loopback: the daemon trusts its PROXY headers there (a node trusts its VPC).
    spec = await writeTempSpec({ limits: { smtp: { sourceConnections: 2 } }, proxy: { trustedNetworks: ['127.0.0.0/8'] } });
    const plan = buildPlan(loadSpec(spec.file).spec);
    const daemonPorts = Object.fromEntries(PROTOCOLS.map((p, i) => [p, spec.base + INTERNAL_OFFSET + i])) as Record<Protocol, number>;
    daemon = await startDaemon(daemonConfig(plan, { mode: 'cloud', host: '127.0.0.1', adminPort: spec.port('admin'), portOverrides: daemonPorts }), {
      dataDir: join(spec.dir, 'var'),
      baseDir: spec.dir,
      logger: silentLogger,
    });
    const lua = join(spec.dir, 'busy.lua');
    writeFileSync(lua, renderBusyLua(plan));
    // The node's own LimitNOFILE is 1M; this machine's is lower, so bound the global as `up` does.
    const ceiling = maxConnectionsForFileLimit(openFileLimit(), plan.listeners.length);
    const pem = join(spec.dir, 'busy.pem');
    writeFileSync(pem, `${testCert().cert}${testCert().key}`);
    const renderOpts = { target: 'cloud' as const, runDir: spec.dir, luaPath: lua, tlsPemPath: pem, edgeListDir: spec.dir, maxConnectionsCeiling: ceiling };
    writeEdgeListFiles(plan, haproxyLayout(plan, renderOpts));
    let cfg = renderHaproxyConfig(plan, renderOpts);
    // Loopback instead of the node's public interface and Cloud Map DNS; everything else as rendered.
    for (const l of plan.listeners) cfg = cfg.replace(`bind :${l.publicPort} accept-proxy`, `bind 127.0.0.1:${frontendPort(l.protocol)} accept-proxy`);
    // The health frontend is moved off the fixed :8404 here only; the namespace test below runs it as rendered.
    cfg = cfg.replace(/bind :8404/, `bind 127.0.0.1:${spec.port('haproxyStats')}`);
    // The metrics frontend too (fixed loopback port on a node); the namespace test runs it as rendered.
    cfg = cfg.replace(`bind 127.0.0.1:${CLOUD_METRICS_PORT}`, `bind 127.0.0.1:${spec.port('haproxyStats') + 1}`);
    cfg = cfg.replace(/^backend mail-(\w+?)(-sticky)?\n([\s\S]*?)server-template .*$/gm, (_m, proto: Protocol, sticky = '', body: string) =>
      `backend mail-${proto}${sticky}\n${body}server mail1 127.0.0.1:${daemonPorts[proto]} send-proxy-v2 check${proto.endsWith('s') && proto !== 'submission' ? ' verify none' : ''}`,
    );
    assert.doesNotMatch(cfg, /server-template/);
    const file = join(spec.dir, 'haproxy.cfg');
    writeFileSync(file, cfg);
    hx = new HaproxyProcess({ configFile: file, adminSocket: join(spec.dir, 'admin.sock'), masterSocket: join(spec.dir, 'master.sock'), logFile: join(spec.dir, 'haproxy.log') });
    await hx.start();
  });

  after(async () => {
    for (const s of open) s.destroy();
    await hx?.stop();
    await daemon?.stop(500);
    spec?.cleanup();
  });

  it('GIVEN a per-source cap of 2 WHEN one public client opens 3 through the NLB THEN 2 reach the daemon, which sees that client and the listener of port 25', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await viaNlb(frontendPort('smtp'), '198.51.100.7', 25);
      open.push(g.socket);
      lines.push(g.line);
    }
    assert.match(lines[0]!, /^220 /);
    assert.match(lines[1]!, /^220 /);
    assert.match(lines[2]!, /^421 4\.7\.0 .*Too many connections from your address/);
    const other = await viaNlb(frontendPort('smtp'), '203.0.113.9', 25);
    open.push(other.socket);
    assert.match(other.line, /^220 /, 'another public client has its own count');
    const seen = daemon.ctx.connections
      .list()
      .filter((c) => c.listener === 'default-smtp')
      .map((c) => [c.remoteAddress.replace(/^::ffff:/, ''), c.localPort]);
    assert.deepEqual(seen.sort(), [
      ['198.51.100.7', 25],
      ['198.51.100.7', 25],
      ['203.0.113.9', 25],
    ]);
  });
});

describe('cloud target: NLB health checks (PROXY v2) against the health frontend as rendered', () => {
  it('GIVEN target groups with PROXY v2 on WHEN the NLB checks GET /healthz with its PROXY v2 header THEN HAProxy answers it (not 400) and says 200 only while the mail backends have a server', async () => {
    requireHaproxy();
    const spec = await writeTempSpec({ proxy: { trustedNetworks: ['127.0.0.0/8'] } });
    try {
      // A private network namespace: the config binds :8404 and the public ports exactly as rendered.
      const child = join(dirname(fileURLToPath(import.meta.url)), 'netns-health.ts');
      const r = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', child, spec.file, spec.dir], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
      });
      assert.equal(r.status, 0, `netns-health failed (unshare needs root / CAP_SYS_ADMIN):\n${r.stderr}`);
      const probes = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { probe: string; status: string })
          .map((p) => [p.probe, p.status]),
      );
      assert.match(probes['as-rendered, PROXY v2']!, /^HTTP\/1\.[01] 503/, 'no mail node resolvable: the health check must fail, and must not be a 400');
      assert.match(probes['daemon up, PROXY v2']!, /^HTTP\/1\.[01] 200/);
      assert.match(probes['daemon stopped, PROXY v2']!, /^HTTP\/1\.[01] 503/);
    } finally {
      spec.cleanup();
    }
  });
});
