/**
 * The edge's deny and allow lists (spec.edge.deny / edge.allow plus live changes). HAProxy reads them as
 * ACL files (`src -f <file>`, one network a line); `mailfleet edge block|allow|unblock` changes the running
 * process through the runtime API (`add acl` / `del acl`: effective for the next connection, no reload) and
 * records the change in <dataDir>/haproxy/edge-lists.json, so the next render, reload and restart keep it.
 * The spec's own entries are rendered into the files and are changed by editing the spec.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MailfleetError } from '../errors.js';
import { parseNetwork } from '../limits/networks.js';
import type { Plan } from '../plan/types.js';
import { runtimeCommand } from './runtime.js';
import { writeJsonDurably } from '../state-json.js';

export const EDGE_LISTS_FILE = 'edge-lists.json';
export const EDGE_LISTS = ['deny', 'allow'] as const;
export type EdgeListName = (typeof EDGE_LISTS)[number];

export interface EdgeEntryRecord {
  /** ISO time of the change. */
  readonly setAt: string;
  /** Who made it (the CLI's --by, else its OS user). */
  readonly setBy?: string;
}

export interface EdgeListsState {
  readonly version: 1;
  readonly deny: Readonly<Record<string, EdgeEntryRecord>>;
  readonly allow: Readonly<Record<string, EdgeEntryRecord>>;
}

/** Beside listener-limits.json: <dataDir>/haproxy/edge-lists.json. */
export function edgeListsPath(dataDir: string): string {
  return join(dataDir, 'haproxy', EDGE_LISTS_FILE);
}

/** A network as the lists hold it, or a BAD_REQUEST naming what is wrong. */
export function checkNetwork(text: string): string {
  if (!parseNetwork(text)) throw new MailfleetError('BAD_REQUEST', `"${text}" is not an address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32)`, { status: 400 });
  return text;
}

export function readEdgeLists(file: string): EdgeListsState {
  if (!existsSync(file)) return { version: 1, deny: {}, allow: {} };
  let parsed: Partial<EdgeListsState>;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<EdgeListsState>;
  } catch (e) {
    throw new MailfleetError('SPEC_IO', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const state = { version: 1 as const, deny: parsed.deny ?? {}, allow: parsed.allow ?? {} };
  for (const list of EDGE_LISTS)
    for (const n of Object.keys(state[list]))
      if (!parseNetwork(n)) throw new MailfleetError('SPEC_INVALID', `${file}: ${list} entry "${n}" is not an address or CIDR`);
  return state;
}

/** Records a live entry (atomic replace). Returns false when it was already there. */
export function recordEdgeEntry(file: string, list: EdgeListName, network: string, now = new Date(), by?: string): boolean {
  const state = readEdgeLists(file);
  if (network in state[list]) return false;
  writeJsonDurably(file, { ...state, [list]: { ...state[list], [network]: { setAt: now.toISOString(), ...(by ? { setBy: by } : {}) } } });
  return true;
}

/** Forgets a live entry. Returns false when it was not recorded. */
export function removeEdgeEntry(file: string, list: EdgeListName, network: string): boolean {
  const state = readEdgeLists(file);
  if (!(network in state[list])) return false;
  const next = { ...state[list] };
  delete next[network];
  writeJsonDurably(file, { ...state, [list]: next });
  return true;
}

/** The networks of one list: the spec's, then the recorded live ones, each once. */
export function edgeListEntries(plan: Plan, state: EdgeListsState, list: EdgeListName): string[] {
  return [...new Set([...plan.spec.edge[list], ...Object.keys(state[list])])];
}

/** An HAProxy ACL file: a comment, then one network a line (an empty list is a valid, empty file). */
export function renderEdgeList(list: EdgeListName, entries: readonly string[]): string {
  return [`# mailfleet edge ${list} list: rendered from spec.edge.${list} and edge-lists.json; change it with mailfleet edge`, ...entries].join('\n') + '\n';
}

/** Adds or removes one network in the running HAProxy's ACL file (the file itself is re-rendered apart). */
export async function changeLiveEdgeList(adminSocket: string, aclFile: string, op: 'add' | 'del', network: string): Promise<void> {
  const out = (await runtimeCommand(adminSocket, `${op} acl ${aclFile} ${network}`)).trim();
  // `add acl` answers nothing on success; `del acl` answers "Key not found." when it was not there.
  if (out && !(op === 'del' && /not found/i.test(out)))
    throw new MailfleetError('INTERNAL', `HAProxy refused "${op} acl ${aclFile} ${network}": ${out}`);
}

/** The networks the running HAProxy holds for one ACL file (`show acl <file>`: "<ref> <network>" lines). */
export async function showLiveEdgeList(adminSocket: string, aclFile: string): Promise<string[]> {
  const out = await runtimeCommand(adminSocket, `show acl ${aclFile}`);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => l.slice(l.indexOf(' ') + 1))
    .filter((n) => parseNetwork(n) !== undefined);
}

/** Writes both ACL files haproxy.cfg reads (HAProxy refuses to start without them, so even when empty). */
export function writeEdgeListFiles(
  plan: Plan,
  paths: { readonly denyListPath: string; readonly allowListPath: string },
  state: EdgeListsState = { version: 1, deny: {}, allow: {} },
): void {
  writeFileSync(paths.denyListPath, renderEdgeList('deny', edgeListEntries(plan, state, 'deny')));
  writeFileSync(paths.allowListPath, renderEdgeList('allow', edgeListEntries(plan, state, 'allow')));
}
