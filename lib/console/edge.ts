/// <reference lib="dom" />
/**
 * The console's edge view: the deny and allow lists of the local HAProxy tier, read live from its runtime
 * API on every refresh, and a form that blocks, unblocks, allows or unallows a network. Both go through
 * lib/ops/edge.ts, the code `mailfleet edge list|block|unblock|allow|unallow` runs, so the console and the
 * CLI cannot disagree. The routes sit under /v1/ (bearer token, like every console data call); the page's
 * part is `edgeSection()` (HTML) and `edgeScript` (served at /console/edge.js), apart from page.ts.
 */
import { MailfleetError } from '../errors.js';
import type { AdminRoute } from '../admin/types.js';
import { TextBody } from '../admin/types.js';
import type { DaemonContext } from '../daemon/context.js';
import { changeEdgeList, EDGE_ACTIONS, listEdge, type EdgeChange, type EdgeContext, type EdgeListing } from '../ops/edge.js';
import { findLocalHaproxy } from '../ops/haproxy-applier.js';

/** Who a console change is recorded as made by (the page has no user of its own; same name as its limits). */
export const CONSOLE_ACTOR = 'mailfleet-console';

export interface ConsoleEdgeView {
  /** Whether a HAProxy runs on this daemon's data dir (without one, only recorded entries are listed). */
  readonly haproxy: boolean;
  readonly rows: readonly EdgeListing[];
}

function edgeContext(ctx: DaemonContext): EdgeContext {
  return { dataDir: ctx.dataDir, by: CONSOLE_ACTOR };
}

/** GET: both lists, each entry with whether the running HAProxy holds it (`show acl`, asked now). */
export const consoleEdgeRoute: AdminRoute = {
  method: 'GET',
  path: '/v1/console/edge',
  handler: async (_req, ctx): Promise<ConsoleEdgeView> => ({
    haproxy: findLocalHaproxy(ctx.dataDir) !== undefined,
    rows: await listEdge(edgeContext(ctx)),
  }),
};

/** POST {action: block|unblock|allow|unallow, network}: `mailfleet edge <action> <network>`. */
export const consoleEdgeChangeRoute: AdminRoute = {
  method: 'POST',
  path: '/v1/console/edge',
  handler: async (req, ctx): Promise<EdgeChange> => {
    const b = req.body as { action?: unknown; network?: unknown } | undefined;
    const action = EDGE_ACTIONS.find((a) => a.name === b?.action);
    if (!action || typeof b?.network !== 'string')
      throw new MailfleetError('BAD_REQUEST', `expected {"action": ${EDGE_ACTIONS.map((a) => `"${a.name}"`).join(' | ')}, "network": "<address or CIDR>"}`, {
        status: 400,
      });
    // changeEdgeList validates the network (a 400 naming it) before it records or touches HAProxy.
    return changeEdgeList(edgeContext(ctx), action.list, action.op, b.network.trim());
  },
};

/** Runs in the browser, next to consoleApp (page.ts): it shares the tab's token and nothing else. */
function consoleEdgeApp(): void {
  interface Listing {
    list: 'deny' | 'allow';
    network: string;
    source: 'spec' | 'live';
    setAt?: string;
    setBy?: string;
    active?: boolean;
  }
  const TOKEN_KEY = 'mailfleet-console-token';
  const REFRESH_MS = 2000;
  const $ = (id: string): HTMLElement => document.getElementById(id)!;

  function el(tag: string, attrs: Record<string, string> = {}, text?: string): HTMLElement {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function api<T>(method: string, body?: unknown): Promise<T> {
    const res = await fetch('/v1/console/edge', {
      method,
      headers: {
        Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T & { message?: string };
    if (!res.ok) throw new Error(json.message ?? `HTTP ${res.status}`);
    return json;
  }

  function change(action: string, network: string): void {
    const out = $('edge-result');
    out.textContent = `${action} ${network}…`;
    api<{ list: string; network: string; action: string; live: boolean }>('POST', { action, network })
      .then((r) => {
        out.textContent = `${r.list} ${r.network}: ${r.action}${r.live ? ', live on the running HAProxy' : ' (no HAProxy runs here: applied at its next start)'}.`;
        void refresh();
      })
      .catch((e: Error) => {
        out.textContent = `Not applied: ${e.message}`;
      });
  }

  function render(haproxy: boolean, rows: Listing[]): void {
    $('edge-state').textContent = haproxy ? 'Read live from the HAProxy runtime API.' : 'No HAProxy runs on this node: recorded entries only.';
    if (rows.length === 0) {
      const tr = el('tr');
      tr.append(el('td', { colspan: '7' }, 'Both lists are empty: nothing denied, nothing specially allowed.'));
      $('edge-rows').replaceChildren(tr);
      return;
    }
    $('edge-rows').replaceChildren(
      ...rows.map((r) => {
        // An entry HAProxy should hold but does not is shown red: the list and the running tier disagree.
        const tr = el('tr', { 'data-list': r.list, 'data-network': r.network, class: r.active === false ? 'down' : '' });
        tr.append(
          el('td', {}, r.list),
          el('th', { scope: 'row' }, r.network),
          el('td', {}, r.source),
          el('td', {}, r.setAt ? new Date(r.setAt).toLocaleString() : '–'),
          el('td', {}, r.setBy ?? '–'),
          el('td', { class: 'state' }, r.active === undefined ? 'no haproxy' : r.active ? 'yes' : 'NO'),
        );
        const act = el('td');
        if (r.source === 'live') {
          const verb = r.list === 'deny' ? 'unblock' : 'unallow';
          const b = el('button', { type: 'button', class: 'link', 'aria-label': `${verb} ${r.network}` }, verb);
          b.addEventListener('click', () => change(verb, r.network));
          act.append(b);
        }
        tr.append(act);
        return tr;
      }),
    );
  }

  async function refresh(): Promise<void> {
    // The main view owns sign-in: nothing is asked while it is hidden.
    if ($('main').hidden || !sessionStorage.getItem(TOKEN_KEY)) return;
    try {
      const v = await api<{ haproxy: boolean; rows: Listing[] }>('GET');
      $('edge-error').textContent = '';
      render(v.haproxy, v.rows);
    } catch (e) {
      $('edge-error').textContent = `Edge lists not read: ${(e as Error).message}`;
    }
  }

  $('edge-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    change(($('edge-action') as HTMLSelectElement).value, ($('edge-network') as HTMLInputElement).value.trim());
  });
  const tick = (): void => {
    void refresh().finally(() => window.setTimeout(tick, REFRESH_MS));
  };
  tick();
}

/** The edge script: consoleEdgeApp's own source (like page.ts's consoleScript). */
export const edgeScript = `"use strict";\nvar __name = function (f) { return f; };\n(${consoleEdgeApp.toString()})();\n`;

/** The page's edge section (static: the rows come from GET /v1/console/edge). */
export function edgeSection(): string {
  return `<section id="edge" aria-labelledby="edge-h">
    <h2 id="edge-h">Edge deny and allow lists</h2>
    <p>Same path as <code>mailfleet edge</code>: a change is recorded (kept across reloads) and made on the running HAProxy at once. <span id="edge-state" role="status"></span></p>
    <p id="edge-error" role="alert"></p>
    <table>
      <thead><tr><th scope="col">List</th><th scope="col">Network</th><th scope="col">From</th><th scope="col">Set</th><th scope="col">By</th><th scope="col">In HAProxy</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
      <tbody id="edge-rows"></tbody>
    </table>
    <form id="edge-form">
      <label for="edge-action">Action<select id="edge-action" name="action">${EDGE_ACTIONS.map((a) => `<option value="${a.name}">${a.name}</option>`).join('')}</select></label>
      <label for="edge-network">Address or CIDR<input id="edge-network" name="network" required size="24" placeholder="203.0.113.0/24"></label>
      <button type="submit">Apply</button>
    </form>
    <div id="edge-result" aria-live="polite"></div>
  </section>`;
}

export const consoleEdgeScriptRoute: AdminRoute = {
  method: 'GET',
  path: '/console/edge.js',
  auth: false,
  handler: () => new TextBody(edgeScript, 'text/javascript; charset=utf-8'),
};

export const CONSOLE_EDGE_ROUTES: readonly AdminRoute[] = [consoleEdgeScriptRoute, consoleEdgeRoute, consoleEdgeChangeRoute];
