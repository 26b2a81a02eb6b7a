/**
 * The daemon bundle (scripts/bundle-daemon.mjs → mailfleetd.mjs) runs on its own, with no engine code in it,
 * under the toolchain's Node and under the runtime mail nodes run it with (package.json `nodeRuntime`,
 * fetched and checked by scripts/fetch-node-runtime.mjs, the same binary the node package ships).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildPlan } from '../../lib/plan/build.js';
import { daemonConfig } from '../../lib/plan/daemon-config.js';
import { PROTOCOLS, specSchema } from '../../lib/spec/schema.js';
import { run } from './mail-harness.js';
import { LineClient, usersFileText } from './smtp-harness.js';

describe('mailfleetd bundle', () => {
  let dir = '';
  let bundle = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mf-bundle-'));
    bundle = join(dir, 'mailfleetd.mjs');
    await run(process.execPath, ['scripts/bundle-daemon.mjs', '--outfile', bundle], undefined, 60_000);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('GIVEN the esbuild bundle WHEN read THEN it holds no aws-cdk-lib/cdktf/pulumi code', async () => {
    const text = await readFile(bundle, 'utf8');
    for (const s of ['aws-cdk-lib', 'cdktf', '@pulumi/']) assert.ok(!text.includes(s), `bundle contains ${s}`);
  });

  it('GIVEN the toolchain\'s Node WHEN the bundle is started with a daemon config THEN it serves SMTP and stops on SIGTERM', async () => {
    await servesSmtp(process.execPath, join(dir, 'toolchain'));
  });

  it('GIVEN the runtime the nodes ship (package.json nodeRuntime) WHEN the bundle is started under it THEN it serves SMTP and stops on SIGTERM', async () => {
    const out = join(dir, 'node-runtime');
    execFileSync(process.execPath, ['scripts/fetch-node-runtime.mjs', '--out', out], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
    const node = join(out, process.arch, 'bin', 'node');
    const pinned = (JSON.parse(await readFile('package.json', 'utf8')) as { nodeRuntime: { version: string } }).nodeRuntime.version;
    assert.equal(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim(), `v${pinned}`);
    await servesSmtp(node, join(dir, 'shipped'));
  });

  /** Starts the bundle under `node` from `work` (its own config and data), delivers one message through PROXY v2, stops it. */
  async function servesSmtp(node: string, work: string): Promise<void> {
    await mkdir(work, { recursive: true });
    const dir = work;
    await writeFile(join(dir, 'users.yaml'), await usersFileText());
    // The test plays the proxy tier from loopback (a cloud node trusts its VPC's).
    const spec = specSchema.parse({ platform: { name: 'bundle', hostname: 'mx.test' }, domains: [{ name: 'example.com' }], proxy: { trustedNetworks: ['127.0.0.0/8'] } });
    const config = daemonConfig(buildPlan(spec), { mode: 'cloud', host: '127.0.0.1', portOverrides: Object.fromEntries(PROTOCOLS.map((p) => [p, 0])), adminPort: 0 });
    await writeFile(join(dir, 'mailfleetd.json'), JSON.stringify({ ...config, admin: { host: '127.0.0.1', port: 0 } }));
    // Run from the temp folder: nothing may be resolved from the repository's node_modules.
    const child = spawn(node, [bundle, 'serve', '--daemon-config', join(dir, 'mailfleetd.json'), '--data-dir', join(dir, 'data')], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent', NODE_PATH: '' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      const ready = await new Promise<{ sockets: Array<{ protocol: string; port: number; proxyProtocol: boolean }> }>((resolve, reject) => {
        createInterface({ input: child.stdout }).on('line', (l) => {
          if (l.includes('"ready":true')) resolve(JSON.parse(l) as { sockets: Array<{ protocol: string; port: number; proxyProtocol: boolean }> });
        });
        child.once('exit', (c) => reject(new Error(`bundle exited ${c}: ${stderr}`)));
      });
      const smtp = ready.sockets.find((s) => s.protocol === 'smtp')!;
      assert.equal(smtp.proxyProtocol, true, 'cloud mode expects PROXY v2');
      const { encodeProxyV2 } = await import('../../lib/daemon/net/proxy-v2.js');
      const c = await LineClient.open(smtp.port, encodeProxyV2({ source: { address: '198.51.100.1', port: 1 }, destination: { address: '10.0.0.1', port: 25 } }));
      assert.match(await c.reply(), /^220 mx\.test /);
      await c.cmd('EHLO bundle.test');
      await c.cmd('MAIL FROM:<x@remote.test>');
      assert.match(await c.cmd('RCPT TO:<alice@example.com>'), /^250/);
      await c.cmd('DATA');
      assert.match(await c.cmd('Subject: bundled\r\n\r\nhi\r\n.'), /^250 2\.0\.0 /);
      c.close();
      assert.equal((await readdir(join(dir, 'data/mail/example.com/alice/Maildir/new'))).length, 1);
    } finally {
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
      assert.equal(code, 0, `clean exit after SIGTERM (stderr: ${stderr})`);
    }
  }
});
