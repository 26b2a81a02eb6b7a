/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The console page: a static HTML shell (public: it holds no data) and one small script. The script is
 * `consoleApp` below, typed here and served as its own source text (`consoleScript`), so there is no
 * bundler at run time. It polls GET /v1/console/snapshot every `refreshMs` with the token the operator
 * entered (kept in sessionStorage for the tab only), keeps ~5 minutes of history per row for the
 * sparklines, and posts limit changes to POST /v1/console/limit.
 *
 * consoleApp must stay self-contained: it runs in the browser, so it may use nothing from its module.
 */

import { edgeSection } from './edge.js';

/** Runs in the browser. */
function consoleApp(): void {
  type Section = 'listener' | 'domain' | 'user' | 'ip';
  interface Row {
    id: string;
    service: string;
    source: 'daemon' | 'haproxy';
    current: number;
    limit?: number;
    use?: number;
    refused: number;
    refusals?: Record<string, number>;
    rate?: number;
    state?: string;
    nodes: number;
  }
  interface Backend {
    name: string;
    status: string;
    servers: Array<{ name: string; status: string; check: string; lastChangeSeconds?: number }>;
  }
  interface Snapshot {
    at: string;
    refreshMs: number;
    total: number;
    nodes: Array<{ node: string; kind: string; ok: boolean; detail: string }>;
    sections: Record<Section, Row[]>;
    backends?: Backend[];
  }
  interface Report {
    applier: string;
    target: string;
    scope: string;
    ok: boolean;
    before?: number;
    after?: number;
    note?: string;
    error?: string;
    skipped?: boolean;
  }
  const HISTORY_MS = 5 * 60 * 1000;
  const TOKEN_KEY = 'mailfleet-console-token';
  const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
  const history = new Map<string, Array<{ t: number; v: number }>>();
  let section: Section = 'listener';
  let last: Snapshot | undefined;
  let timer: number | undefined;

  function el(tag: string, attrs: Record<string, string> = {}, text?: string): HTMLElement {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function token(): string | null {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token() ?? ''}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T & { message?: string };
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The token was refused. Enter the admin token again.');
      throw new Error('unauthorized');
    }
    if (!res.ok) throw new Error(json.message ?? `HTTP ${res.status}`);
    return json;
  }

  function showLogin(message: string): void {
    $('login').hidden = false;
    $('main').hidden = true;
    $('login-msg').textContent = message;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  }

  function sparkline(points: Array<{ t: number; v: number }>): SVGElement {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    const w = 120;
    const h = 24;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(h));
    svg.setAttribute('class', 'spark');
    const max = Math.max(1, ...points.map((p) => p.v));
    const now = Date.now();
    // The x axis spans what has been seen (at least a minute), up to five minutes.
    const span = Math.min(HISTORY_MS, Math.max(60_000, now - (points[0]?.t ?? now)));
    const xy = points.map((p) => {
      const x = Math.max(3, w - 3 - ((now - p.t) / span) * (w - 6));
      const y = h - 2 - (p.v / max) * (h - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('points', xy.join(' '));
    svg.appendChild(line);
    // The latest value as a dot, so a row seen once already shows where it stands.
    const lastXy = xy[xy.length - 1];
    if (lastXy) {
      const [cx, cy] = lastXy.split(',');
      const dot = document.createElementNS(ns, 'circle');
      dot.setAttribute('cx', cx!);
      dot.setAttribute('cy', cy!);
      dot.setAttribute('r', '2.5');
      svg.appendChild(dot);
    }
    const title = document.createElementNS(ns, 'title');
    title.textContent = `last ${Math.round(span / 60_000)} min, peak ${max}`;
    svg.appendChild(title);
    return svg;
  }

  /** The scope a row's "limit" button fills in (grammar: docs/limits.md). */
  function scopeOf(s: Section, r: Row): string {
    switch (s) {
      case 'listener':
        return `listener:${r.id}`;
      case 'user':
        return `user:${r.id}:${r.service}`;
      case 'ip':
        return `ip:${r.id}:${r.service}`;
      case 'domain':
        return `${r.service}.perDomain@${r.id}`;
    }
  }

  function record(snap: Snapshot): void {
    const now = Date.now();
    for (const s of Object.keys(snap.sections) as Section[])
      for (const r of snap.sections[s]) {
        const k = `${s}|${r.source}|${r.service}|${r.id}`;
        const h = history.get(k) ?? [];
        h.push({ t: now, v: r.current });
        while (h.length > 0 && now - h[0]!.t > HISTORY_MS) h.shift();
        history.set(k, h);
      }
  }

  function renderBackends(backends: Backend[]): void {
    const box = $('backends');
    box.hidden = backends.length === 0;
    $('backend-rows').replaceChildren(
      ...backends.flatMap((b) =>
        b.servers.map((x) => {
          const tr = el('tr', { class: b.status.startsWith('UP') ? 'ok' : 'down', 'data-backend': b.name });
          tr.append(
            el('th', { scope: 'row' }, b.name),
            el('td', { class: 'state' }, b.status),
            el('td', {}, x.name),
            el('td', { class: 'state' }, x.status),
            el('td', {}, x.check || '–'),
            el('td', { class: 'num' }, x.lastChangeSeconds === undefined ? '–' : `${x.lastChangeSeconds}s`),
          );
          return tr;
        }),
      ),
    );
  }

  function why(r: Row): string {
    return Object.entries(r.refusals ?? {})
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  }

  function render(): void {
    const snap = last;
    if (!snap) return;
    const nodes = $('nodes');
    nodes.replaceChildren(
      ...snap.nodes.map((n) => {
        const li = el('li', { class: n.ok ? 'ok' : 'down' });
        li.append(el('strong', {}, n.node), ` — ${n.detail}`);
        return li;
      }),
    );
    // "Answered" is not "healthy": a HAProxy that answers may have a backend DOWN, said apart.
    const silent = snap.nodes.filter((n) => n.detail.startsWith('did not answer')).length;
    const downBackends = (snap.backends ?? []).filter((b) => !b.status.startsWith('UP')).map((b) => b.name);
    $('summary').textContent =
      `${snap.total} connection(s); ${snap.nodes.length - silent} of ${snap.nodes.length} node(s) answered${silent ? ` — ${silent} DID NOT ANSWER` : ''}` +
      `${downBackends.length ? ` — HAProxy backend(s) DOWN: ${downBackends.join(', ')}` : ''}; updated ${new Date(snap.at).toLocaleTimeString()}`;
    renderBackends(snap.backends ?? []);
    const body = $('rows');
    const rows = snap.sections[section];
    if (rows.length === 0) {
      const tr = el('tr');
      tr.append(el('td', { colspan: '12' }, 'No sessions now.'));
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...rows.map((r) => {
        const tr = el('tr', { 'data-id': r.id, 'data-service': r.service });
        const use = r.use === undefined ? undefined : Math.round(r.use * 100);
        tr.append(el('th', { scope: 'row' }, r.id), el('td', {}, r.source === 'haproxy' ? 'haproxy frontend' : r.service));
        tr.append(el('td', { class: 'num' }, String(r.current)), el('td', { class: 'num' }, r.limit === undefined ? '–' : String(r.limit)));
        const cell = el('td');
        const bar = el('div', {
          class: `bar${use !== undefined && use >= 90 ? ' hot' : use !== undefined && use >= 70 ? ' warm' : ''}`,
          role: 'img',
          'aria-label': use === undefined ? 'no limit counted' : `${use}% of the limit`,
        });
        const fill = el('span');
        fill.style.width = `${Math.min(100, use ?? 0)}%`;
        bar.append(fill);
        cell.append(bar, el('span', { class: 'pct' }, use === undefined ? '–' : `${use}%`));
        tr.append(cell, el('td', { class: 'num' }, String(r.refused)), el('td', { class: 'why' }, why(r)));
        tr.append(el('td', { class: 'num rate' }, r.rate === undefined ? '–' : r.rate < 10 ? r.rate.toFixed(1) : String(Math.round(r.rate))));
        tr.append(el('td', { class: r.state === undefined ? 'state' : r.state.startsWith('UP') ? 'state ok' : 'state down' }, r.state ?? ''));
        tr.append(el('td', { class: 'num' }, String(r.nodes)));
        const sp = el('td');
        sp.append(sparkline(history.get(`${section}|${r.source}|${r.service}|${r.id}`) ?? []));
        tr.append(sp);
        const act = el('td');
        if (r.source === 'daemon' || section === 'listener') {
          const b = el('button', { type: 'button', class: 'link', 'aria-label': `set a limit for ${r.id}` }, 'limit…');
          b.addEventListener('click', () => {
            ($('limit-scope') as HTMLInputElement).value = scopeOf(section, r);
            ($('limit-value') as HTMLInputElement).focus();
          });
          act.append(b);
        }
        tr.append(act);
        return tr;
      }),
    );
  }

  async function poll(): Promise<void> {
    try {
      last = await api<Snapshot>('GET', '/v1/console/snapshot');
      record(last);
      $('error').textContent = '';
      render();
    } catch (e) {
      if ((e as Error).message === 'unauthorized') return;
      $('error').textContent = `Snapshot failed: ${(e as Error).message}`;
    }
    timer = window.setTimeout(() => void poll(), last?.refreshMs ?? 2000);
  }

  function start(): void {
    $('login').hidden = true;
    $('main').hidden = false;
    if (timer === undefined) void poll();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('token') as HTMLInputElement;
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = '';
    start();
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('Signed out.');
  });
  for (const tab of document.querySelectorAll<HTMLButtonElement>('[role=tab]')) {
    tab.addEventListener('click', () => {
      section = tab.dataset.section as Section;
      for (const t of document.querySelectorAll('[role=tab]')) t.setAttribute('aria-selected', String(t === tab));
      $('table-caption').textContent = tab.textContent ?? '';
      render();
    });
  }
  $('limit-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const scope = ($('limit-scope') as HTMLInputElement).value.trim();
    const value = ($('limit-value') as HTMLInputElement).value.trim();
    const out = $('limit-result');
    out.textContent = `Setting ${scope} to ${value}…`;
    api<{ reports: Report[] }>('POST', '/v1/console/limit', { scope, value })
      .then(({ reports }) => {
        const failed = reports.filter((r) => !r.ok).length;
        const list = el('ul');
        for (const r of reports) {
          const li = el('li', { class: r.ok ? 'ok' : 'down' });
          li.textContent = `${r.applier === 'daemon' ? r.target : `${r.applier} (${r.target})`}: ${r.scope} ${r.before ?? '–'} → ${r.after ?? '–'} — ${r.ok ? (r.note ?? 'ok') : `FAILED: ${r.error}`}`;
          list.append(li);
        }
        out.replaceChildren(
          el('p', {}, failed ? `${failed} target(s) did not apply the change; run it again once they answer.` : `Applied on every target.`),
          list,
        );
        void poll();
      })
      .catch((e: Error) => {
        out.textContent = `Not applied: ${e.message}`;
      });
  });
  if (token()) start();
  else showLogin('Enter the admin token (mailfleet up prints where it is).');
}

/** The page script: consoleApp's own source, run once the DOM is parsed (the tag is `defer`). */
export const consoleScript = `"use strict";\nvar __name = function (f) { return f; };\n(${consoleApp.toString()})();\n`;

const CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --down: #c62828; --bar: #3b82f6; --warm: #d97706; --hot: #dc2626; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8884; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; width: 8rem; height: .8rem; background: #8883; vertical-align: middle; }
.bar span { display: block; height: 100%; background: var(--bar); }
.bar.warm span { background: var(--warm); } .bar.hot span { background: var(--hot); }
.pct { margin-left: .4rem; font-variant-numeric: tabular-nums; }
.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.5; } .spark circle { fill: var(--bar); }
[role=tablist] { display: flex; gap: .3rem; margin: 1rem 0 .3rem; }
[role=tab] { padding: .3rem .8rem; border: 1px solid #8888; background: none; color: inherit; cursor: pointer; }
[role=tab][aria-selected=true] { background: var(--bar); color: #fff; }
li.ok::marker { color: var(--ok); } li.down { color: var(--down); font-weight: 600; }
tr.down, td.state.down { color: var(--down); font-weight: 600; } td.state.ok { color: var(--ok); }
td.why { font-size: .85rem; }
button.link { background: none; border: none; color: var(--bar); text-decoration: underline; cursor: pointer; }
form { display: flex; gap: .6rem; align-items: end; flex-wrap: wrap; }
label { display: flex; flex-direction: column; font-size: .9rem; }
input { font: inherit; padding: .25rem; }
#error { color: var(--down); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
:focus-visible { outline: 2px solid var(--bar); outline-offset: 2px; }
`;

/** The HTML shell (no data in it: everything comes from token-checked API calls). */
export function consolePage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'">
<title>mailfleet console</title>
<style>${CSS}</style>
<script src="/console/app.js" defer></script>
<script src="/console/edge.js" defer></script>
</head>
<body>
<h1>mailfleet console</h1>
<section id="login" hidden aria-labelledby="login-h">
  <h2 id="login-h">Sign in</h2>
  <p id="login-msg" role="status"></p>
  <form id="login-form">
    <label for="token">Admin token<input id="token" name="token" type="password" autocomplete="off" required></label>
    <button type="submit">Open console</button>
  </form>
</section>
<main id="main" hidden>
  <p><span id="summary" role="status"></span> <button type="button" id="logout">Sign out</button> <a href="/console/governor">Governor</a></p>
  <p id="error" role="alert"></p>
  <details open><summary>Nodes</summary><ul id="nodes"></ul></details>
  <div role="tablist" aria-label="Group connections by">
    <button type="button" role="tab" aria-selected="true" data-section="listener" aria-controls="panel">Listeners</button>
    <button type="button" role="tab" aria-selected="false" data-section="domain" aria-controls="panel">Domains</button>
    <button type="button" role="tab" aria-selected="false" data-section="user" aria-controls="panel">Users</button>
    <button type="button" role="tab" aria-selected="false" data-section="ip" aria-controls="panel">Client IPs</button>
  </div>
  <div id="panel" role="tabpanel">
    <table>
      <caption id="table-caption">Listeners</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Service</th><th scope="col">Current</th><th scope="col">Limit</th><th scope="col">Use</th><th scope="col">Refused</th><th scope="col">Why</th><th scope="col">Conn/s</th><th scope="col">Backend</th><th scope="col">Nodes</th><th scope="col">Last 5 min</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
  </div>
  <section id="backends" hidden aria-labelledby="backends-h">
    <h2 id="backends-h">HAProxy backends</h2>
    <table>
      <thead><tr><th scope="col">Backend</th><th scope="col">State</th><th scope="col">Server</th><th scope="col">Server state</th><th scope="col">Last check</th><th scope="col">Since change</th></tr></thead>
      <tbody id="backend-rows"></tbody>
    </table>
  </section>
  <section aria-labelledby="limit-h">
    <h2 id="limit-h">Set a limit</h2>
    <p>Same path as <code>mailfleet limit set</code>: every daemon, and the HAProxy tier for <code>listener:&lt;name&gt;</code>. Scopes: <code>user:&lt;address&gt;:imap</code>, <code>imap.perUser@example.org</code>, <code>listener:&lt;name&gt;</code>, <code>ip:&lt;ip&gt;:smtp</code>; value a positive integer or <code>default</code>.</p>
    <form id="limit-form">
      <label for="limit-scope">Scope<input id="limit-scope" name="scope" required size="36"></label>
      <label for="limit-value">Value<input id="limit-value" name="value" required size="8" inputmode="numeric"></label>
      <button type="submit">Set limit</button>
    </form>
    <div id="limit-result" aria-live="polite"></div>
  </section>
  ${edgeSection()}
</main>
</body>
</html>
`;
}
