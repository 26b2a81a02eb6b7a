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

function cmpKey(key: SortKey, a: SortItem, b: SortItem): number {
  switch (key) {
    case 'ARRIVAL':
      return a.arrival - b.arrival;
    case 'DATE':
      return sentDate(a) - sentDate(b);
    case 'SIZE':
      return a.size - b.size;
    case 'SUBJECT':
      return cmpStr(a.keys.subject, b.keys.subject);
    case 'FROM':
      return cmpStr(a.keys.from, b.keys.from);
    case 'TO':
      return cmpStr(a.keys.to, b.keys.to);
    case 'CC':
      return cmpStr(a.keys.cc, b.keys.cc);
  }
}

/** Casemapped keys (sort-keys.ts casemap) compare by code unit. */
function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts in place by the criteria, then by sequence number. */
export function sortItems(items: SortItem[], criteria: readonly SortCriterion[]): SortItem[] {
  return items.sort((a, b) => {
    for (const c of criteria) {
      const d = cmpKey(c.key, a, b);
      if (d !== 0) return c.reverse ? -d : d;
    }
    return a.seq - b.seq;
  });
}
