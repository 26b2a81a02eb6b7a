/**
 * Child of haproxy-metrics.test.ts, run inside a private network namespace (`unshare --net`) so the cloud
 * haproxy.cfg binds every port exactly as rendered. Scrapes the URL the rendered agent scrape config names
 * and prints the body.
 *
 * argv: <spec file> <work dir> <scrape url>
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HaproxyProcess, maxConnectionsForFileLimit, openFileLimit } from '../../lib/haproxy/process.js';
import { writeEdgeListFiles } from '../../lib/haproxy/edge.js';
import { buildPlan } from '../../lib/plan/index.js';
import { haproxyLayout, renderBusyLua, renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { loadSpec } from '../../lib/spec/index.js';
import { testCert } from '../daemon/mail-harness.js';
import { runScript } from '../harness/script.js';

const [specFile, dir, url] = process.argv.slice(2) as [string, string, string];

async function main(): Promise<void> {
  if (spawnSync('ip', ['link', 'set', 'lo', 'up']).status !== 0) throw new Error('cannot bring lo up in the namespace');
  const plan = buildPlan(loadSpec(specFile).spec);
  const lua = join(dir, 'busy.lua');
  writeFileSync(lua, renderBusyLua(plan));
  const pem = join(dir, 'busy.pem');
  writeFileSync(pem, `${testCert().cert}${testCert().key}`);
  const renderOpts = { target: 'cloud' as const, runDir: dir, luaPath: lua, tlsPemPath: pem, edgeListDir: dir, maxConnectionsCeiling: maxConnectionsForFileLimit(openFileLimit(), plan.listeners.length) };
  writeEdgeListFiles(plan, haproxyLayout(plan, renderOpts));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, renderHaproxyConfig(plan, renderOpts));
  const hx = new HaproxyProcess({ configFile: file, adminSocket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), logFile: join(dir, 'haproxy.log') });
  await hx.start();
  try {
    const res = await fetch(url);
    process.stdout.write(`${res.status}\n${await res.text()}`);
  } finally {
    await hx.stop();
  }
}

runScript(main);
