/**
 * SORT and UID SORT (RFC 5256 §3), with ESORT's `RETURN (…)` (RFC 5267 §3: an ESEARCH reply in sort
 * order; SAVE keeps the result for "$"). CONTEXT=SORT (live updates of a sorted view) is not offered.
 */
import { defineCommand, SELECTED } from '../command.js';
import { Args, type WorkLimits } from '../args.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import { matchMessages, parseSearchKeys, replyWithReturn, withReturn, type SearchProgram } from './search.js';
import { parseSortCriteria, sortItems, sortItemsOf, type SortCriterion } from '../sort/index.js';

interface SortArgs extends SearchProgram {
  readonly criteria?: readonly SortCriterion[];
}

function parseSort(t: readonly Token[], limits: WorkLimits): SortArgs {
  const a = new Args(t, limits);
  let criteria: SortCriterion[] | undefined;
  const p = withReturn(a, () => {
    criteria = parseSortCriteria(a);
    return parseSearchKeys(a, true);
  });
  return { ...p, criteria };
}

async function runSort(s: ImapSession, p: SortArgs, byUid: boolean, tag: string) {
  const sel = s.selected!;
  let hits;
  let expunged;
  try {
    ({ hits, expunged } = await matchMessages(sel, p.key));
    const items = sortItems(await sortItemsOf(sel, hits), p.criteria!);
    if (p.ret) {
      const line = replyWithReturn(sel, p.ret, items, byUid, tag, true);
      if (line !== undefined) await s.writeAsync(`${line}\r\n`);
    } else await s.writeAsync(`* SORT${items.map((i) => ` ${byUid ? i.uid : i.seq}`).join('')}\r\n`);
  } catch (e) {
    if (p.ret?.has('SAVE')) sel.searchResult = [];
    throw e;
  }
  return expunged ? { code: 'EXPUNGEISSUED', text: 'SORT completed' } : { text: 'SORT completed' };
}

export const sort = defineCommand({
  name: 'SORT',
  states: SELECTED,
  // Like SEARCH: sequence numbers in the reply must stay valid (RFC 3501 §7.4.1).
  expungeAfter: false,
  parse: parseSort,
  handler: (s, p, tag) => runSort(s, p, false, tag),
});

export const uidSort = defineCommand({
  name: 'UID SORT',
  states: SELECTED,
  parse: parseSort,
  handler: (s, p, tag) => runSort(s, p, true, tag),
});
