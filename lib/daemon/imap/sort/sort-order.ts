/**
 * SORT criteria (RFC 5256 §3) and the order they give, over keys already in the summary cache. Ties on
 * every key fall back to mailbox order (ascending sequence number), as the RFC requires.
 */
import { Args, bad } from '../args.js';
import type { SortKeys } from '../../../store/mailbox/sort-keys.js';

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO';
const SORT_KEYS: readonly SortKey[] = ['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO'];

export interface SortCriterion {
  readonly key: SortKey;
  readonly reverse: boolean;
}

/** One message as SORT and THREAD see it. */
export interface SortItem {
  readonly seq: number;
  readonly uid: number;
  /** INTERNALDATE, ms. */
  readonly arrival: number;
  readonly size: number;
  readonly keys: SortKeys;
}

/**
 * `(REVERSE SUBJECT DATE …)`. A key named twice is kept once (its second use can never break a tie the
 * first left), so however long the list, at most seven comparisons run per pair.
 */
export function parseSortCriteria(a: Args): SortCriterion[] {
  const out: SortCriterion[] = [];
  const seen = new Set<SortKey>();
  let reverse = false;
  for (const t of a.list('sort criteria')) {
    const v = t.t === 'atom' ? t.v.toUpperCase() : '';
    if (v === 'REVERSE') {
      if (reverse) throw bad('REVERSE twice');
      reverse = true;
      continue;
    }
    if (!SORT_KEYS.includes(v as SortKey)) throw bad('Unknown sort criterion');
    if (!seen.has(v as SortKey)) out.push({ key: v as SortKey, reverse });
    seen.add(v as SortKey);
    reverse = false;
  }
  if (reverse) throw bad('REVERSE without a sort key');
  if (out.length === 0) throw bad('Empty sort criteria');
  return out;
}

/** The sent date, or INTERNALDATE when the Date header is missing or unreadable (RFC 5256 §3 DATE). */
export function sentDate(i: SortItem): number {
  return i.keys.date ?? i.arrival;
}

/** The value a key compares for one message: a number, or a casemapped string (sort-keys.ts casemap). */
function keyValue(key: SortKey, i: SortItem): number | string {
  switch (key) {
    case 'ARRIVAL':
      return i.arrival;
    case 'DATE':
      return sentDate(i);
    case 'SIZE':
      return i.size;
    case 'SUBJECT':
      return i.keys.subject;
    case 'FROM':
      return i.keys.from;
    case 'TO':
      return i.keys.to;
    case 'CC':
      return i.keys.cc;
  }
}

/**
 * Sorts by the criteria, then by sequence number. Each criterion's values are taken out once into a
 * column and the comparator indexes the columns (strings compare by code unit): 140,000 comparisons of a
 * 10,000-message SORT no longer walk the items' objects each time.
 */
export function sortItems(items: SortItem[], criteria: readonly SortCriterion[]): SortItem[] {
  const cols = criteria.map((c) => ({ dir: c.reverse ? -1 : 1, v: items.map((i) => keyValue(c.key, i)) }));
  const order = items.map((_, k) => k);
  order.sort((a, b) => {
    for (const c of cols) {
      const x = c.v[a]!;
      const y = c.v[b]!;
      if (x !== y) return x < y ? -c.dir : c.dir;
    }
    return items[a]!.seq - items[b]!.seq;
  });
  return order.map((k) => items[k]!);
}
