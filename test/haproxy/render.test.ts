import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan } from '../../lib/plan/index.js';
import type { Plan, PlannedListener } from '../../lib/plan/types.js';
import { loadSpec, specSchema } from '../../lib/spec/index.js';
import { renderer } from '../../lib/render/index.js';
import { checkHaproxyConfig } from '../../lib/haproxy/process.js';
import { writeEdgeListFiles } from '../../lib/haproxy/edge.js';
import { applyListenerLimits, recordListenerLimit } from '../../lib/haproxy/state.js';
import { spawnSync } from 'node:child_process';
import {
  capVariable,
  frontendMaxconn,
  haproxyLayout,
  renderBusyLua,
  renderHaproxyConfig,
  type HaproxyRenderOptions,
} from '../../lib/render/haproxy.js';
import { isMailfleetError } from '../../lib/errors.js';
import { requireHaproxy } from './harness.js';
import { testCert } from '../daemon/mail-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'mf-render-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the config and its Lua file into a fresh folder and runs the real `haproxy -c` on it. */
async function haproxyC(plan: Plan, opts: HaproxyRenderOptions): Promise<{ cfg: string; warnings: string }> {
  const d = mkdtempSync(join(dir, 'c-'));
  const lua = join(d, 'mailfleet-busy.lua');
  writeFileSync(lua, renderBusyLua(plan));
  const pem = join(d, 'busy.pem');
  writeFileSync(pem, `${testCert().cert}${testCert().key}`);
  const cfg = renderHaproxyConfig(plan, { runDir: d, luaPath: lua, tlsPemPath: pem, edgeListDir: d, ...opts });
  writeEdgeListFiles(plan, haproxyLayout(plan, { runDir: d, edgeListDir: d, ...opts }));
  writeFileSync(join(d, 'haproxy.cfg'), cfg);
  return { cfg, warnings: await checkHaproxyConfig(join(d, 'haproxy.cfg')) };
}

function spec(input: Record<string, unknown>) {
  return specSchema.parse({ version: 1, platform: { name: 'demo' }, ...input });
}

function withListener(plan: Plan, name: string, patch: (l: PlannedListener) => PlannedListener): Plan {
  return { ...plan, listeners: plan.listeners.map((l) => (l.name === name ? patch(l) : l)) };
}

function rejects(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e: unknown) => isMailfleetError(e, 'PLAN_INVALID') && re.test(e.message));
}

describe('haproxy renderer', () => {
  requireHaproxy();
  const examples = readdirSync('examples').filter((f) => f.endsWith('.yaml') && f !== 'users.yaml');

  for (const file of examples)
    for (const target of ['local', 'cloud'] as const)
      it(`GIVEN examples/${file} WHEN rendered for ${target} THEN haproxy -c accepts it, without warnings`, async () => {
        const plan = buildPlan(loadSpec(join('examples', file)).spec);
        const { cfg, warnings } = await haproxyC(plan, { target });
        assert.match(warnings, /Configuration file is valid/);
        assert.doesNotMatch(warnings, /WARNING|ALERT/, warnings);
        for (const l of plan.listeners) assert.match(cfg, new RegExp(`^frontend ${l.name}$`, 'm'));
      });

  it('GIVEN 200 dedicated tenants WHEN rendered for both targets THEN haproxy -c accepts 1207 frontends and the global caps the sum', async () => {
    const domains = Array.from({ length: 200 }, (_, i) => ({ name: `t${i}.example`, listeners: 'dedicated' }));
    const plan = buildPlan(spec({ domains }));
    assert.equal(plan.listeners.length, 7 + 200 * 6);
    for (const target of ['local', 'cloud'] as const) {
      const { cfg } = await haproxyC(plan, { target });
      // + stats/health + busy-TLS (3 families × 2 reasons) + in the cloud the loopback metrics exporter the proxy's agent scrapes
      assert.equal(cfg.match(/^frontend /gm)?.length, 1207 + 1 + 6 + (target === 'cloud' ? 1 : 0));
      const global = Number(cfg.match(/^ {4}maxconn (\d+)/m)![1]);
      assert.equal(global, plan.spec.tiers.proxyMaxConnectionsPerNode);
      assert.match(cfg, /# sum \+ 100 exceeds tiers.proxyMaxConnectionsPerNode/);
    }
  });

  it('renders the parts the tier is made of: caps as variables, per-source tables, PROXY v2, leastconn, IDLE timeouts', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated', limits: { imap: { listenerConnections: 300, sourceConnections: 7 } } }] }));
    const cfg = renderHaproxyConfig(plan, { target: 'local', runDir: '/r' });
    const fe = cfg.slice(cfg.indexOf('frontend b-example-imap\n'), cfg.indexOf('backend st-b-example-imap'));
    assert.match(cfg, /set-var proc\.cap_b_example_imap int\(300\)/);
    assert.match(fe, /maxconn 600\n/);
    assert.match(fe, /bind 127\.0\.0\.1:30003\n/);
    assert.match(fe, /use-service lua\.mf_busy_imap_listener if \{ int\(0\),table_conn_cur\(adm-b-example-imap\),sub\(proc\.cap_b_example_imap\) ge 0 \}/);
    // only connections that pass both checks are counted against the cap
    assert.match(fe, /mf_busy_imap_source if [^\n]*\n\s+tcp-request content track-sc1 int\(0\) table adm-b-example-imap\n/);
    assert.match(cfg, /backend adm-b-example-imap\n\s+stick-table type integer size 1 store conn_cur/);
    // 7 allowed per source: the tracked connection counts itself, so the rule is "gt 7".
    assert.match(fe, /use-service lua\.mf_busy_imap_source if \{ sc0_conn_cur\(st-b-example-imap\) gt 7 \}/);
    assert.match(fe, /timeout client 31m/);
    assert.match(cfg, /backend mail-imap-sticky\n {4}balance leastconn\n {4}timeout server 31m/);
    assert.match(cfg, /server mailfleetd 127\.0\.0\.1:12143 send-proxy-v2 check\n/);
    assert.match(cfg, /stats socket \/r\/admin\.sock mode 600 level admin/);
    const imaps = cfg.slice(cfg.indexOf('frontend default-imaps\n'));
    // Implicit TLS: over the cap, to the frontend that says the busy reply inside a TLS handshake.
    assert.match(imaps, /tcp-request session set-var\(sess\.busy\) str\(listener\) if \{ int\(0\),table_conn_cur\(adm-default-imaps\),sub\(proc\.cap_default_imaps\) ge 0 \}/);
    assert.match(imaps, /use_backend busy-tls-imap-listener if \{ var\(sess\.busy\) -m str listener \}/);
    assert.match(cfg, /frontend busy-tls-imap-listener\n {4}bind abns@mf-[0-9a-f]{10}-busy-tls-imap-listener ssl crt \/r\/mailfleet-busy\.pem\n/);
    assert.match(imaps, /tcp-request session track-sc1 int\(0\) table adm-default-imaps/);
    const cloud = renderHaproxyConfig(plan, { target: 'cloud' });
    assert.match(cloud, /bind :20003 accept-proxy\n/);
    assert.match(cloud, /server-template mail 1-10 mailfleetd\.demo\.internal:10993 resolvers vpc init-addr none send-proxy-v2 check verify none/);
  });

  it('keeps the busy replies of each protocol in the Lua file', () => {
    const lua = renderBusyLua(buildPlan(spec({ platform: { name: 'demo', hostname: 'mx.demo.example' }, domains: [{ name: 'a.example' }] })));
    assert.match(lua, /421 4\.7\.0 mx\.demo\.example Too many connections to this service/);
    assert.match(lua, /\* BYE \[UNAVAILABLE\] Too many connections from your address/);
    assert.match(lua, /-ERR \[SYS\/TEMP\] /);
  });

  it('sets the global maxconn to the sum of the frontends plus a reserve, clamped by a machine ceiling', () => {
    const plan = buildPlan(spec({ domains: [{ name: 'a.example' }] }));
    const sum = plan.listeners.reduce((a, l) => a + frontendMaxconn(l.limits.listenerConnections), 0);
    assert.equal(haproxyLayout(plan, { target: 'local' }).globalMaxconn, sum + 100);
    const clamped = haproxyLayout(plan, { target: 'local', maxConnectionsCeiling: 9000 });
    assert.equal(clamped.globalMaxconn, 9000);
    assert.ok(clamped.frontends.every((f) => f.maxconn <= 9000));
  });

  it('registers haproxy and haproxy-busy in the render registry', () => {
    assert.ok(renderer('haproxy'));
    assert.ok(renderer('haproxy-busy'));
  });

  it('lays recorded live caps over the plan so the next render keeps them', () => {
    const plan = applyListenerLimits(buildPlan(spec({ domains: [{ name: 'a.example' }] })), { 'default-imap': 42, gone: 5 });
    const cfg = renderHaproxyConfig(plan, { target: 'local' });
    assert.match(cfg, new RegExp(`set-var ${capVariable('default-imap').replace('.', '\\.')} int\\(42\\)`));
    assert.equal(plan.listeners.find((l) => l.name === 'default-imap')!.limits.sourceConnections, 42);
  });

  it('GIVEN a cap recorded by limit set WHEN `mailfleet render haproxy` runs THEN the output carries the recorded cap', () => {
    const state = join(dir, 'listener-limits.json');
    recordListenerLimit(state, 'example-org-imap', 123);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bin/mailfleet.ts', 'render', 'haproxy', '-c', 'examples/local.yaml', '--target', 'local', '--limits-state', state],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /set-var proc\.cap_example_org_imap int\(123\)/);
    assert.match(r.stdout, /frontend example-org-imap\n.*\n.*\n {4}maxconn 246\n/);
  });

  describe('validation haproxy -c does not do', () => {
    const base = buildPlan(spec({ domains: [{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated' }] }));
    const setCap = (n: number) => withListener(base, 'default-imap', (l) => ({ ...l, limits: { ...l.limits, listenerConnections: n } }));

    it('fails when a cap is not a number (haproxy -c would accept "maxconn abc")', () => {
      rejects(() => renderHaproxyConfig(setCap(Number('abc')), { target: 'local' }), /default-imap: listenerConnections NaN is not a positive integer/);
      rejects(() => renderHaproxyConfig(setCap(2.5), { target: 'local' }), /not a positive integer/);
      rejects(() => renderHaproxyConfig(setCap(0), { target: 'local' }), /not a positive integer/);
    });

    it('fails when a listener cap exceeds the HAProxy global cap', () => {
      rejects(() => renderHaproxyConfig(setCap(300000), { target: 'cloud' }), /exceeds the HAProxy global cap tiers\.proxyMaxConnectionsPerNode \(200000\)/);
      rejects(() => renderHaproxyConfig(base, { target: 'local', maxConnectionsCeiling: 4000 }), /default-imap: listenerConnections \(5000\) exceeds global maxconn \(4000, limited by the machine open-file limit\)/);
    });

    it('fails when the per-source cap exceeds the listener cap', () => {
      const p = withListener(base, 'default-pop3', (l) => ({ ...l, limits: { ...l.limits, sourceConnections: 5000 } }));
      rejects(() => renderHaproxyConfig(p, { target: 'local' }), /default-pop3: sourceConnections \(5000\) exceeds listenerConnections \(1000\)/);
    });

    it('fails when two frontends, or a frontend and a daemon socket, share a port', () => {
      const clash = withListener(base, 'b-example-imap', (l) => ({ ...l, localPort: 2143 }));
      rejects(() => renderHaproxyConfig(clash, { target: 'local' }), /listener b-example-imap: port 2143 clashes with listener default-imap/);
      const daemon = withListener(base, 'default-pop3', (l) => ({ ...l, localDaemonPort: 2143 }));
      rejects(() => renderHaproxyConfig(daemon, { target: 'local' }), /daemon port 2143 clashes with listener default-imap/);
      const stats = withListener(base, 'default-pop3', (l) => ({ ...l, localPort: base.spec.local.ports.haproxyStats }));
      rejects(() => renderHaproxyConfig(stats, { target: 'local' }), /clashes with stats page/);
      const range = withListener(base, 'default-smtp', (l) => ({ ...l, publicPort: 70000 }));
      rejects(() => renderHaproxyConfig(range, { target: 'cloud' }), /port 70000 is not a port number/);
    });
  });
});

describe('`mailfleet plan` and the rendered haproxy.cfg print the same numbers', () => {
  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', ...args], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  for (const [file, target] of [
    ['examples/local.yaml', 'local'],
    ['examples/primary-dr.yaml', 'cloud'],
  ] as const)
    it(`GIVEN ${file} WHEN planned and rendered for ${target} THEN global maxconn, every frontend maxconn and cap agree`, () => {
      const planText = cli(['plan', '-c', file]);
      const cfg = cli(['render', 'haproxy', '-c', file, '--target', target]);
      // The rendered file: global maxconn, then per frontend its cap variable and maxconn.
      const global = Number(/^global\n(?: {4}.*\n)*? {4}maxconn (\d+)/m.exec(cfg)?.[1]);
      const planGlobal = Number(/HAProxy global maxconn ([\d,]+)/.exec(planText)?.[1]?.replace(/,/g, ''));
      assert.ok(global > 0 && planGlobal > 0, 'both print a global maxconn');
      assert.equal(planGlobal, global, 'plan and haproxy.cfg global maxconn');
      const rendered = new Map<string, { cap: number; maxconn: number }>();
      for (const m of cfg.matchAll(/^frontend (\S+)\n(?: {4}.*\n)*? {4}maxconn (\d+)\n/gm)) {
        // Not listeners: the stats/health endpoint, the loopback metrics exporter and the internal busy-TLS frontends.
        if (m[1] === 'stats' || m[1] === 'health' || m[1] === 'metrics' || m[1]!.startsWith('busy-tls-')) continue;
        const cap = Number(
          new RegExp(`set-var ${capVariable(m[1]!).replace('.', '\\.')} int\\((\\d+)\\)`).exec(cfg)?.[1],
        );
        rendered.set(m[1]!, { cap, maxconn: Number(m[2]) });
      }
      // The plan output's listener table: the header names the columns.
      const lines = planText.split('\n');
      const head = lines.findIndex((l) => l.startsWith('listener '));
      const cols = lines[head]!.split(/\s+/);
      const planned = new Map<string, { cap: number; maxconn: number }>();
      for (const l of lines.slice(head + 2)) {
        if (l.trim() === '') break;
        const c = l.split(/\s+/);
        planned.set(c[0]!, {
          cap: Number(c[cols.indexOf('cap')]),
          maxconn: Number(c[cols.indexOf('fe-maxconn')]),
        });
      }
      assert.ok(rendered.size > 0);
      assert.deepEqual([...planned.entries()].sort(), [...rendered.entries()].sort());
    });
});
