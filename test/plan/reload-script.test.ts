/**
 * The proxy node's in-place reload script (lib/plan/reload.ts), run as rendered against a real HAProxy in
 * master-worker mode with its own master socket: a new frontend appears, a session opened before the
 * reload keeps working after it, and a configuration that does not check is refused with the old one kept.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan } from '../../lib/plan/index.js';
import { proxyReloadScript, reloadsOf } from '../../lib/plan/reload.js';
import { loadSpec } from '../../lib/spec/index.js';

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const cfg = (frontends: { name: string; port: number }[], backendPort: number, extra = '') => `global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
${frontends.map((f) => `frontend ${f.name}\n    bind 127.0.0.1:${f.port}\n    default_backend echo\n`).join('')}backend echo
    server e1 127.0.0.1:${backendPort}
${extra}`;

/** One line sent, the same line back (the echo server behind HAProxy). */
function roundTrip(sock: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo within 5 s')), 5000);
    sock.once('data', (d) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
    sock.once('error', reject);
    sock.write(text);
  });
}

const open = (port: number) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });

describe('in-place reload: the proxy script against a real HAProxy', () => {
  let dir: string;
  let echo: Server;
  let echoPort: number;
  let haproxy: ChildProcess;
  let ports: { a: number; b: number };
  const conf = () => join(dir, 'conf');
  const master = () => join(dir, 'master.sock');

  function runScript(files: string) {
    const script = join(dir, 'reload-proxy.sh');
    writeFileSync(script, proxyReloadScript(plan));
    chmodSync(script, 0o755);
    return spawnSync('bash', [script], {
      env: { ...process.env, MAILFLEET_HAPROXY_MASTER: master(), MAILFLEET_HAPROXY_DIR: conf(), MAILFLEET_NEW_FILES: files },
      encoding: 'utf8',
      timeout: 30_000,
    });
  }

  function newFiles(text: string): string {
    const files = mkdtempSync(join(dir, 'files-'));
    mkdirSync(join(files, 'haproxy'));
    writeFileSync(join(files, 'haproxy', 'haproxy.cfg'), text);
    return files;
  }

  before(async () => {
    assert.equal(spawnSync('haproxy', ['-v']).status, 0, 'haproxy is not installed');
    dir = mkdtempSync(join(tmpdir(), 'mailfleet-reload-'));
    mkdirSync(conf());
    echo = createServer((s) => {
      // HAProxy resets its server-side connections when it stops (after the tests): expected, not a failure.
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
    ports = { a: await freePort(), b: await freePort() };
    writeFileSync(join(conf(), 'haproxy.cfg'), cfg([{ name: 'a', port: ports.a }], echoPort));
    haproxy = spawn('haproxy', ['-W', '-S', master(), '-f', join(conf(), 'haproxy.cfg')], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        (await open(ports.a)).destroy();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.fail('haproxy did not start');
  });

  after(async () => {
    haproxy?.kill('SIGTERM');
    await new Promise((r) => echo?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds a frontend and keeps a session opened before the reload', async () => {
    const old = await open(ports.a);
    assert.equal(await roundTrip(old, 'before\n'), 'before\n');
    const r = runScript(newFiles(cfg([{ name: 'a', port: ports.a }, { name: 'b', port: ports.b }], echoPort)));
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /HAProxy reloaded/);
    // The old worker still carries the session; the new one serves the new frontend.
    assert.equal(await roundTrip(old, 'after\n'), 'after\n');
    const fresh = await open(ports.b);
    assert.equal(await roundTrip(fresh, 'new\n'), 'new\n');
    old.destroy();
    fresh.destroy();
  });

  it('refuses a configuration that does not check, keeps the old files and the running worker', async () => {
    const before = readFileSync(join(conf(), 'haproxy.cfg'), 'utf8');
    const r = runScript(newFiles(cfg([{ name: 'a', port: ports.a }], echoPort, '    this is not haproxy\n')));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /does not check/);
    assert.equal(readFileSync(join(conf(), 'haproxy.cfg'), 'utf8'), before);
    const s = await open(ports.b);
    assert.equal(await roundTrip(s, 'still\n'), 'still\n');
    s.destroy();
  });

  it('the document runs this script, one node at a time, on the platform\'s proxy nodes', () => {
    const proxy = reloadsOf(plan, 'primary').find((r) => r.kind === 'proxy')!;
    const step = (proxy.document.mainSteps as { inputs: { runCommand: string[] } }[])[0]!;
    assert.equal(step.inputs.runCommand.join('\n'), proxyReloadScript(plan));
    assert.deepEqual(proxy.targetTags, { 'mailfleet:role': 'proxy', 'mailfleet:platform': plan.platform });
    assert.equal(proxy.maxConcurrency, '1');
  });
});
