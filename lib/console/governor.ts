/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The console's governor view (/console/governor): the governor's audit trail (its governor-log.jsonl) and,
 * for advise mode, each scope's latest proposal with an Apply button. Apply names the proposal, not a
 * command: the daemon reads the proposal from the trail and applies it with parseLimitRequest + setLimits,
 * the code behind `mailfleet limit set` and the console's own limit form (every daemon, and HAProxy for
 * listener:<name>), recorded as made by mailfleet-console on the daemons and as an `applied`/`failed`
 * entry with `by: console` in the governor's trail, so `mailfleet governor log` shows it too.
 *
 * Where the trail is: the governor's default state dir, <data dir>/governor, read from this daemon's data
 * dir (the governor runs on a mail node or the local platform with the daemon's data dir; docs/governor.md).
 */
import { join } from 'node:path';
import type { AdminRequest, AdminRoute } from '../admin/types.js';
import { TextBody } from '../admin/types.js';
import type { DaemonContext } from '../daemon/context.js';
import { MailfleetError } from '../errors.js';
import { GovernorStore, type GovernorLogEntry } from '../governor/store.js';
import type { ManagedScope } from '../governor/types.js';
import { parseLimitRequest, setLimits, type LimitReport } from '../ops/limit.js';
import { consoleFleet, selfAdminUrl } from './snapshot.js';

/** Entries the view returns at most (newest). */
export const GOVERNOR_VIEW_ROWS = 200;

export interface GovernorProposal {
  /** `<at> <scope>`: what POST /v1/console/governor/apply names. */
  readonly id: string;
  readonly at: string;
  readonly action: string;
  readonly scope: string;
  readonly from?: number;
  readonly to: number | 'default';
  readonly why: string;
  readonly command?: string;
}

export interface GovernorView {
  readonly stateDir: string;
  /** The mode of the governor's last start (undefined: no trail here). */
  readonly mode?: string;
  /** Scopes the governor holds lowered (enforce). */
  readonly governed: Readonly<Record<string, ManagedScope>>;
  /** Each scope's latest advise-mode proposal not applied yet, newest first. */
  readonly proposals: readonly GovernorProposal[];
  /** The trail, newest first. */
  readonly entries: readonly GovernorLogEntry[];
}

export function governorStateDir(ctx: Pick<DaemonContext, 'dataDir'>): string {
  return join(ctx.dataDir, 'governor');
}

const proposalId = (e: GovernorLogEntry) => `${e.at} ${e.decision!.scope}`;

/** Advise-mode proposals still open: the latest per scope, unless the console applied it since. */
export function openProposals(entries: readonly GovernorLogEntry[]): GovernorProposal[] {
  const latest = new Map<string, GovernorLogEntry>();
  const applied = new Set<string>();
  for (const e of entries) {
    if (e.event !== 'decision' || !e.decision) continue;
    if (e.by === 'console' && e.proposal && e.status === 'applied') applied.add(e.proposal);
    if (e.mode === 'advise' && e.status === 'proposed' && e.decision.action !== 'yield') latest.set(e.decision.scope, e);
  }
  return [...latest.values()]
    .filter((e) => !applied.has(proposalId(e)))
    .reverse()
    .map((e) => ({
      id: proposalId(e),
      at: e.at,
      action: e.decision!.action,
      scope: e.decision!.scope,
      ...(e.decision!.from !== undefined ? { from: e.decision!.from } : {}),
      to: e.decision!.to,
      why: e.decision!.why,
      ...(e.command ? { command: e.command } : {}),
    }));
}

export function governorView(stateDir: string): GovernorView {
  const store = new GovernorStore(stateDir);
  const entries = store.readLog();
  const mode = entries.filter((e) => e.event === 'start').at(-1)?.mode;
  return {
    stateDir,
    ...(mode ? { mode } : {}),
    governed: store.readState().managed,
    proposals: openProposals(entries),
    entries: entries.slice(-GOVERNOR_VIEW_ROWS).reverse(),
  };
}

/** Applies one open proposal through the `mailfleet limit set` path and records it in the governor's trail. */
export async function applyProposal(
  stateDir: string,
  id: string,
  fleet: Parameters<typeof setLimits>[0],
): Promise<{ reports: LimitReport[]; entry: GovernorLogEntry }> {
  const store = new GovernorStore(stateDir);
  const entries = store.readLog();
  const open = openProposals(entries).find((p) => p.id === id);
  if (!open) {
    const known = entries.some((e) => e.decision && e.status === 'proposed' && proposalId(e) === id);
    throw new MailfleetError('BAD_REQUEST', known ? `proposal ${id} was applied or superseded already` : `no governor proposal ${id}`, {
      status: known ? 409 : 404,
    });
  }
  const proposal = entries.find((e) => e.status === 'proposed' && e.decision && proposalId(e) === id)!;
  const request = parseLimitRequest(open.scope, String(open.to));
  let reports: LimitReport[] = [];
  let error: string | undefined;
  try {
    reports = await setLimits(fleet, [request]);
  } catch (e) {
    error = (e as Error).message;
  }
  const mine = reports.filter((r) => !r.skipped);
  const ok = error === undefined && mine.length > 0 && mine.every((r) => r.ok);
  const entry: GovernorLogEntry = {
    at: new Date().toISOString(),
    event: 'decision',
    mode: 'advise',
    status: ok ? 'applied' : 'failed',
    by: 'console',
    proposal: id,
    ...(proposal.readings ? { readings: proposal.readings } : {}),
    decision: proposal.decision!,
    ...(proposal.command ? { command: proposal.command } : {}),
    reports: mine.map((r) => ({
      target: r.applier === 'daemon' ? r.target : `${r.applier} (${r.target})`,
      ok: r.ok,
      ...(r.before !== undefined ? { before: r.before } : {}),
      ...(r.after !== undefined ? { after: r.after } : {}),
      ...(r.error ? { error: r.error } : {}),
    })),
    ...(ok ? {} : { error: error ?? mine.find((r) => !r.ok)?.error ?? 'no target took the change' }),
  };
  store.append(entry);
  return { reports, entry };
}

function fleetFor(req: AdminRequest, ctx: DaemonContext) {
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  return { ...consoleFleet(ctx, selfAdminUrl(ctx, req.headers.host), token), actor: 'mailfleet-console' };
}

/** Runs in the browser (served as its own source text, like consoleApp in page.ts): self-contained. */
function governorApp(): void {
  interface Entry {
    at: string;
    event: string;
    mode: string;
    status?: string;
    load?: string;
    readings?: Array<{ name: string; value: number; target: number }>;
    decision?: { action: string; scope: string; from?: number; to: number | string; why: string };
    command?: string;
    by?: string;
    error?: string;
    resumed?: string[];
  }
  interface View {
    stateDir: string;
    mode?: string;
    governed: Record<string, { value: number; restoreValue: number }>;
    proposals: Array<{ id: string; at: string; action: string; scope: string; from?: number; to: number | string; why: string; command?: string }>;
    entries: Entry[];
  }
  const $ = (id: string): HTMLElement => document.getElementById(id)!;
  const token = () => sessionStorage.getItem('mailfleet-console-token');
  function el(tag: string, text?: string, attrs: Record<string, string> = {}): HTMLElement {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token() ?? ''}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json().catch(() => ({}))) as T & { message?: string; error?: string };
    if (!res.ok) throw new Error(json.message ?? json.error ?? `HTTP ${res.status}`);
    return json;
  }
  function render(v: View): void {
    $('summary').textContent = `${v.mode ? `mode ${v.mode}` : 'no governor trail'} · ${Object.keys(v.governed).length} scope(s) governed · trail in ${v.stateDir}`;
    const gov = $('governed');
    gov.replaceChildren(...Object.entries(v.governed).map(([s, m]) => el('li', `${s}: ${m.value} (back to ${m.restoreValue} once calm)`)));
    const props = $('proposals');
    props.replaceChildren();
    if (v.proposals.length === 0) props.append(el('p', 'No proposal waiting.'));
    for (const p of v.proposals) {
      const row = el('div', undefined, { class: 'proposal' });
      row.append(el('p', `${p.at}: ${p.action} ${p.scope} ${p.from ?? '–'} → ${p.to}. ${p.why}`), el('code', p.command ?? ''));
      const b = el('button', 'Apply', { type: 'button', 'data-id': p.id });
      b.addEventListener('click', () => {
        b.setAttribute('disabled', '');
        api<{ entry: Entry }>('POST', '/v1/console/governor/apply', { id: p.id })
          .then((r) => ($('result').textContent = `${p.scope}: ${r.entry.status}${r.entry.error ? ` (${r.entry.error})` : ''}`))
          .catch((e: Error) => ($('result').textContent = `Not applied: ${e.message}`))
          .finally(() => void load());
      });
      row.append(b);
      props.append(row);
    }
    const rows = $('rows');
    rows.replaceChildren(
      ...v.entries.map((e) => {
        const tr = el('tr', undefined, e.status === 'failed' ? { class: 'down' } : {});
        const d = e.decision;
        const signals = (e.readings ?? []).map((r) => `${r.name} ${Math.round(r.value)}/${r.target}`).join(', ');
        const cells =
          e.event === 'start'
            ? [e.at, e.mode, 'start', '', '', '', '', e.resumed?.length ? `resumes ${e.resumed.join(', ')}` : '']
            : [e.at, e.mode, `${e.status ?? ''}${e.by ? ` by ${e.by}` : ''}`, d?.action ?? '', d?.scope ?? '', `${d?.from ?? '–'} → ${d?.to ?? '–'}`, signals, e.error ? `FAILED: ${e.error}` : (d?.why ?? '')];
        for (const c of cells) tr.append(el('td', c));
        return tr;
      }),
    );
  }
  async function load(): Promise<void> {
    try {
      render(await api<View>('GET', '/v1/console/governor'));
      $('error').textContent = '';
    } catch (e) {
      $('error').textContent = (e as Error).message;
    }
  }
  if (!token()) $('error').textContent = 'Sign in on the console first (/console).';
  else {
    void load();
    setInterval(() => void load(), 5000);
  }
}

export const governorScript = `"use strict";\nvar __name = function (f) { return f; };\n(${governorApp.toString()})();\n`;

export function governorPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'">
<title>mailfleet console: governor</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 80rem; padding: 1rem; color-scheme: light dark; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8884; font-size: .9rem; }
tr.down { color: #c62828; font-weight: 600; } #error { color: #c62828; } .proposal { border: 1px solid #8886; padding: .5rem; margin: .5rem 0; }
code { display: block; margin: .3rem 0; }
</style>
<script src="/console/governor.js" defer></script>
</head>
<body>
<h1>Governor</h1>
<p><a href="/console">← console</a> · <span id="summary" role="status"></span></p>
<p id="error" role="alert"></p>
<section aria-labelledby="prop-h"><h2 id="prop-h">Proposals (advise mode)</h2>
<p>Apply runs the proposal through the same path as <code>mailfleet limit set</code> on every daemon (and HAProxy for listeners), recorded in the trail.</p>
<div id="proposals"></div><p id="result" aria-live="polite"></p></section>
<section aria-labelledby="gov-h"><h2 id="gov-h">Governed scopes</h2><ul id="governed"></ul></section>
<section aria-labelledby="log-h"><h2 id="log-h">Decision log</h2>
<table><thead><tr><th scope="col">At</th><th scope="col">Mode</th><th scope="col">Status</th><th scope="col">Action</th><th scope="col">Scope</th><th scope="col">Limit</th><th scope="col">Signals (value/target)</th><th scope="col">Why</th></tr></thead>
<tbody id="rows"></tbody></table></section>
</body>
</html>
`;
}

export const GOVERNOR_CONSOLE_ROUTES: readonly AdminRoute[] = [
  { method: 'GET', path: '/console/governor', auth: false, handler: () => new TextBody(governorPage(), 'text/html; charset=utf-8') },
  { method: 'GET', path: '/console/governor.js', auth: false, handler: () => new TextBody(governorScript, 'text/javascript; charset=utf-8') },
  { method: 'GET', path: '/v1/console/governor', handler: (_req, ctx): GovernorView => governorView(governorStateDir(ctx)) },
  {
    method: 'POST',
    path: '/v1/console/governor/apply',
    handler: (req, ctx) => {
      const b = req.body as { id?: unknown } | undefined;
      if (!b || typeof b.id !== 'string') throw new MailfleetError('BAD_REQUEST', 'expected {"id": "<proposal id>"}', { status: 400 });
      return applyProposal(governorStateDir(ctx), b.id, fleetFor(req, ctx));
    },
  },
];
