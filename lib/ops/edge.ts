/**
 * `mailfleet edge block|unblock|allow|unallow|list`: the edge's deny and allow lists on the local HAProxy
 * tier. A change is recorded first (edge-lists.json, so a restart or reload keeps it), then made on the
 * running HAProxy through the runtime API, where it holds for the next connection. In the cloud, the
 * spec's edge.deny / edge.allow are rendered into the proxy nodes' files (docs/haproxy.md, "Edge").
 */
import { userInfo } from 'node:os';
import { MailfleetError } from '../errors.js';
import { buildPlan } from '../plan/index.js';
import type { Plan } from '../plan/types.js';
import { loadSpec } from '../spec/index.js';
import {
  changeLiveEdgeList,
  checkNetwork,
  edgeListEntries,
  edgeListsPath,
  readEdgeLists,
  recordEdgeEntry,
  removeEdgeEntry,
  showLiveEdgeList,
  type EdgeListName,
} from '../haproxy/edge.js';
import { haproxyLayout } from '../render/haproxy.js';
import { readLocalHaproxyInfo } from '../platform/haproxy.js';

/** The four changes, as the CLI and the console name them (one table for both). */
export const EDGE_ACTIONS = [
  { name: 'block', list: 'deny', op: 'add', help: 'refuse a client network at the edge (closed before any byte), live' },
  { name: 'unblock', list: 'deny', op: 'remove', help: 'take a network off the deny list, live' },
  { name: 'allow', list: 'allow', op: 'add', help: 'exempt a network from the deny list and the connection-rate limits, live' },
  { name: 'unallow', list: 'allow', op: 'remove', help: 'take a network off the allow list, live' },
] as const;
export type EdgeActionName = (typeof EDGE_ACTIONS)[number]['name'];

export interface EdgeContext {
  readonly dataDir: string;
  /** The spec the tier runs (for its own list entries). @default - the one the running HAProxy names */
  readonly specFile?: string;
  /** Who makes the change. @default - the OS user */
  readonly by?: string;
}

export interface EdgeChange {
  readonly list: EdgeListName;
  readonly network: string;
  readonly action: 'added' | 'removed' | 'unchanged';
  /** Whether a running HAProxy took it live (false: recorded, applied at the next start). */
  readonly live: boolean;
  readonly recordedIn: string;
}

export interface EdgeListing {
  readonly list: EdgeListName;
  readonly network: string;
  /** 'spec': from spec.edge; 'live': recorded by mailfleet edge. */
  readonly source: 'spec' | 'live';
  readonly setAt?: string;
  readonly setBy?: string;
  /** Whether the running HAProxy holds it (undefined: no HAProxy runs on this data dir). */
  readonly active?: boolean;
}

/** What one CLI call needs, read and planned once: the spec's plan and the running HAProxy's ACL files. */
interface Resolved {
  readonly plan?: Plan;
  readonly live?: { readonly socket: string; readonly files: Record<EdgeListName, string> };
}

function resolveEdge(ctx: EdgeContext): Resolved {
  const info = readLocalHaproxyInfo(ctx.dataDir);
  const specFile = ctx.specFile ?? info?.specFile;
  const plan = specFile ? buildPlan(loadSpec(specFile).spec) : undefined;
  if (!info || !plan) return { plan };
  const layout = haproxyLayout(plan, { target: 'local', runDir: info.runDir });
  return { plan, live: { socket: info.adminSocket, files: { deny: layout.denyListPath, allow: layout.allowListPath } } };
}

/** Adds (`block`, `allow`) or removes (`unblock`, `unallow`) one network. */
export async function changeEdgeList(ctx: EdgeContext, list: EdgeListName, op: 'add' | 'remove', network: string): Promise<EdgeChange> {
  checkNetwork(network);
  const file = edgeListsPath(ctx.dataDir);
  const { plan, live } = resolveEdge(ctx);
  if (op === 'remove' && plan?.spec.edge[list].includes(network))
    throw new MailfleetError('BAD_REQUEST', `${network} is in the spec's edge.${list}: remove it there and restart (or reload) the tier`, { status: 400 });
  const by = ctx.by?.trim() || userInfo().username;
  const changed = op === 'add' ? recordEdgeEntry(file, list, network, new Date(), by) : removeEdgeEntry(file, list, network);
  if (live) await changeLiveEdgeList(live.socket, live.files[list], op === 'add' ? 'add' : 'del', network);
  return { list, network, action: !changed ? 'unchanged' : op === 'add' ? 'added' : 'removed', live: live !== undefined, recordedIn: file };
}

/** Both lists: the spec's entries, the recorded ones, and whether the running HAProxy holds each. */
export async function listEdge(ctx: EdgeContext): Promise<EdgeListing[]> {
  const state = readEdgeLists(edgeListsPath(ctx.dataDir));
  const { plan, live: running } = resolveEdge(ctx);
  const rows: EdgeListing[] = [];
  for (const list of ['deny', 'allow'] as const) {
    const live = running ? new Set(await showLiveEdgeList(running.socket, running.files[list])) : undefined;
    const entries = plan ? edgeListEntries(plan, state, list) : Object.keys(state[list]);
    for (const network of entries) {
      const rec = state[list][network];
      const fromSpec = plan?.spec.edge[list].includes(network) ?? false;
      rows.push({ list, network, source: fromSpec ? 'spec' : 'live', setAt: rec?.setAt, setBy: rec?.setBy, active: live?.has(network) });
    }
  }
  return rows;
}

export function formatEdgeListing(rows: readonly EdgeListing[]): string {
  if (rows.length === 0) return 'edge lists are empty (nothing denied, nothing specially allowed)';
  const head = ['LIST', 'NETWORK', 'FROM', 'SET', 'BY', 'ACTIVE'];
  const body = rows.map((r) => [r.list, r.network, r.source, r.setAt ?? '-', r.setBy ?? '-', r.active === undefined ? 'no haproxy' : r.active ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
