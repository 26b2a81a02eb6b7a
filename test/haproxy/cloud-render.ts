/**
 * The cloud haproxy.cfg as a proxy node renders it, for the child scripts that run it in a private network
 * namespace: brings the namespace's loopback up, writes the files the config names (busy Lua, TLS pem,
 * edge lists) under `dir`, and answers the plan, the layout and the config text (the caller writes it,
 * after whatever stand-in it must point it at).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeEdgeListFiles } from '../../lib/haproxy/edge.js';
import { maxConnectionsForFileLimit, openFileLimit } from '../../lib/haproxy/process.js';
import { buildPlan } from '../../lib/plan/index.js';
import type { Plan } from '../../lib/plan/types.js';
import { haproxyLayout, renderBusyLua, renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { loadSpec } from '../../lib/spec/index.js';
import { testCert } from '../daemon/mail-harness.js';

export function renderCloudHaproxy(specFile: string, dir: string): { plan: Plan; layout: ReturnType<typeof haproxyLayout>; rendered: string } {
  if (spawnSync('ip', ['link', 'set', 'lo', 'up']).status !== 0) throw new Error('cannot bring lo up in the namespace');
  const plan = buildPlan(loadSpec(specFile).spec);
  const lua = join(dir, 'busy.lua');
  writeFileSync(lua, renderBusyLua(plan));
  const pem = join(dir, 'busy.pem');
  writeFileSync(pem, `${testCert().cert}${testCert().key}`);
  const ceiling = maxConnectionsForFileLimit(openFileLimit(), plan.listeners.length);
  const renderOpts = { target: 'cloud' as const, runDir: dir, luaPath: lua, tlsPemPath: pem, edgeListDir: dir, maxConnectionsCeiling: ceiling };
  const layout = haproxyLayout(plan, renderOpts);
  writeEdgeListFiles(plan, layout);
  return { plan, layout, rendered: renderHaproxyConfig(plan, renderOpts) };
}
