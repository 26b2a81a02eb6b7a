/**
 * THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES over the messages a search
 * program selects, from the sort keys of the summary cache.
 */
import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, type WorkLimits } from '../args.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import { matchMessages, parseSearchKeys, type Key } from './search.js';
import { formatThreads, orderedSubject, referencesThreads, sortItemsOf, type SortItem } from '../sort/index.js';

type Algorithm = 'ORDEREDSUBJECT' | 'REFERENCES';

interface ThreadArgs {
  readonly algorithm: Algorithm;
  readonly key: Key;
}

function parseThread(t: readonly Token[], limits: WorkLimits): ThreadArgs {
  const a = new Args(t, limits);
  const algorithm = a.atom('threading algorithm').toUpperCase();
  if (algorithm !== 'ORDEREDSUBJECT' && algorithm !== 'REFERENCES') throw bad('Unknown threading algorithm');
  return { algorithm, key: parseSearchKeys(a, true) };
}

async function runThread(s: ImapSession, p: ThreadArgs, byUid: boolean) {
  const sel = s.selected!;
  const { hits, expunged } = await matchMessages(sel, p.key);
  const items = await sortItemsOf(sel, hits);
  const id = (i: SortItem) => (byUid ? i.uid : i.seq);
  const roots = p.algorithm === 'REFERENCES' ? referencesThreads(items, id) : orderedSubject(items, id);
  await s.writeAsync(`* THREAD ${formatThreads(roots)}\r\n`);
  return expunged ? { code: 'EXPUNGEISSUED', text: 'THREAD completed' } : { text: 'THREAD completed' };
}

export const thread = defineCommand({
  name: 'THREAD',
  states: SELECTED,
  expungeAfter: false,
  parse: parseThread,
  handler: (s, p) => runThread(s, p, false),
});

export const uidThread = defineCommand({
  name: 'UID THREAD',
  states: SELECTED,
  parse: parseThread,
  handler: (s, p) => runThread(s, p, true),
});
