/**
 * LIST and its extensions: LIST-EXTENDED (RFC 5258: selection options, several patterns, RETURN
 * options), LIST-STATUS (RFC 5819: RETURN (STATUS (…)) sends a STATUS after each selectable mailbox)
 * and SPECIAL-USE (RFC 6154). The plain RFC 3501 form answers as it always has.
 */
import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad, overLimit, type WorkLimits } from '../args.js';
import { isMailfleetError } from '../../../errors.js';
import { DEFAULT_IMAP_WORK_LIMITS } from '../../../spec/defaults.js';
import { decodeMutf7 } from '../../../store/mailbox/mutf7.js';
import { DELIMITER } from '../../../store/mailbox/names.js';
import { superiorNames, type FolderInfo } from '../../../store/mailbox/store.js';
import type { Token } from '../parser.js';
import type { ImapSession } from '../session.js';
import { WildcardPattern } from '../wildcard.js';
import type { ImapWorkLimits } from '../work-limits.js';
import { checkStatusItems, parseStatusItems, writeStatus, type StatusItem } from './status.js';
import { isRev2, mailboxWire } from '../rev2.js';

export interface ListArgs {
  readonly reference: string;
  readonly patterns: readonly string[];
  /** LIST (SPECIAL-USE) "" * : only special-use folders (RFC 6154 §3). */
  readonly specialUseOnly: boolean;
  /** The LIST-EXTENDED form was used (selection list, pattern list or RETURN). */
  readonly extended: boolean;
  /** Selection SUBSCRIBED: subscriptions, existing or not (\NonExistent). */
  readonly subscribedOnly: boolean;
  /** Selection RECURSIVEMATCH: also superior names of matches, with CHILDINFO. */
  readonly recursiveMatch: boolean;
  /** RETURN (SUBSCRIBED), or implied by the SUBSCRIBED selection. */
  readonly returnSubscribed: boolean;
  /** RETURN (STATUS (…)) (LIST-STATUS). */
  readonly returnStatus?: readonly StatusItem[];
}

const SELECTION = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);
const RETURNS = new Set(['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE', 'STATUS']);

function optionName(t: Token, what: string): string {
  if (t.t !== 'atom') throw bad(`Invalid ${what}`);
  return t.v.toUpperCase();
}

export function parseList(t: readonly Token[], limits?: WorkLimits): ListArgs {
  const maxPatterns = (limits as Partial<ImapWorkLimits> | undefined)?.maxListPatterns ?? DEFAULT_IMAP_WORK_LIMITS.maxListPatterns;
  const a = new Args(t);
  const opts = a.optionalList();
  const selection = new Set<string>();
  for (const o of opts ?? []) {
    const v = optionName(o, 'selection option');
    if (!SELECTION.has(v)) throw bad('Unknown selection option');
    selection.add(v);
  }
  // RFC 5258 §3.1: RECURSIVEMATCH only refines another selection option.
  if (selection.has('RECURSIVEMATCH') && selection.size === 1) throw bad('RECURSIVEMATCH must not be the only selection option');
  const reference = a.pattern('reference');
  let patterns: string[];
  const p = a.peek();
  if (p?.t === 'list') {
    a.next('mailbox patterns');
    if (p.v.length > maxPatterns) throw overLimit(`Too many mailbox patterns (limit ${maxPatterns})`);
    patterns = p.v.map((x) => {
      if (x.t === 'list') throw bad('Expected mailbox pattern');
      return x.t === 'atom' ? x.v : x.v.toString('latin1');
    });
  } else {
    patterns = [a.pattern('mailbox pattern')];
  }
  let returnSubscribed = selection.has('SUBSCRIBED');
  let returnStatus: StatusItem[] | undefined;
  let hasReturn = false;
  if (a.left > 0) {
    const r = a.atom('RETURN');
    if (r.toUpperCase() !== 'RETURN') throw bad('Expected RETURN');
    hasReturn = true;
    const ret = a.list('return options');
    for (let i = 0; i < ret.length; i++) {
      const v = optionName(ret[i]!, 'return option');
      if (!RETURNS.has(v)) throw bad('Unknown return option');
      if (v === 'SUBSCRIBED') returnSubscribed = true;
      if (v === 'STATUS') {
        const items = ret[++i];
        if (items?.t !== 'list') throw bad('STATUS needs a list of status items');
        if (items.v.length === 0) throw bad('Empty status item list');
        // A later STATUS replaces an earlier one (as Dovecot does).
        returnStatus = parseStatusItems(items.v);
      }
      // CHILDREN and SPECIAL-USE: \HasChildren/\HasNoChildren and special-use attributes are always sent.
    }
  }
  a.end();
  return {
    reference,
    patterns,
    specialUseOnly: selection.has('SPECIAL-USE'),
    extended: opts !== undefined || p?.t === 'list' || hasReturn,
    subscribedOnly: selection.has('SUBSCRIBED'),
    recursiveMatch: selection.has('RECURSIVEMATCH'),
    returnSubscribed,
    returnStatus,
  };
}

type Matcher = (name: string) => boolean;

function matcherOf(reference: string, patterns: readonly string[], rev2: boolean): Matcher {
  const all = patterns.map((pat) => {
    // IMAP4rev2 patterns are UTF-8 as sent (RFC 9051 §5.1); rev1 ones modified UTF-7.
    const full = rev2 ? reference + pat : (decodeMutf7(reference + pat) ?? reference + pat);
    // A linear-time matcher: the pattern is client input (see wildcard.ts for why not a RegExp).
    return { re: new WildcardPattern(full, DELIMITER), inboxRe: new WildcardPattern(full.replace(/^inbox/i, 'INBOX'), DELIMITER) };
  });
  return (name) => all.some(({ re, inboxRe }) => re.matches(name) || ((name === 'INBOX' || name.startsWith('INBOX.')) && inboxRe.matches(name)));
}

interface Entry {
  readonly name: string;
  readonly attrs: string[];
  /** CHILDINFO ("SUBSCRIBED") extended data (RECURSIVEMATCH). */
  readonly childInfo?: boolean;
  /** Exists and can be selected: LIST-STATUS answers a STATUS for it. */
  readonly selectable: boolean;
}

export async function listReply(s: ImapSession, a: ListArgs, lsub: boolean): Promise<void> {
  const verb = lsub ? 'LSUB' : 'LIST';
  if (a.returnStatus) checkStatusItems(s, a.returnStatus);
  const plainEmpty = a.patterns.length === 1 && a.patterns[0] === '';
  if (plainEmpty && !a.extended) {
    s.write(`* ${verb} (\\Noselect) "${DELIMITER}" ""\r\n`);
    return;
  }
  const patterns = a.patterns.filter((p) => p !== '');
  if (patterns.length === 0) return;
  const matches = matcherOf(a.reference, patterns, isRev2(s));
  const folders = await s.deps.store.list(s.user!);
  const subs = await s.deps.store.subscriptions(s.user!);
  const entries: Entry[] = [];
  if (lsub) {
    // Subscriptions, existing or not; a superior name the pattern stops at (`%`) that is not itself
    // subscribed is listed \Noselect so the client can descend to its subscribed children (RFC 3501 §6.3.9).
    const byName = new Map(folders.map((f) => [f.name, f]));
    const out = new Map<string, readonly string[]>();
    for (const name of subs) {
      if (matches(name)) {
        const f = byName.get(name);
        if (!a.specialUseOnly || f?.specialUse) out.set(name, f ? folderAttrs(f) : []);
        continue;
      }
      for (const p of superiorNames(name)) if (!subs.has(p) && matches(p) && !out.has(p)) out.set(p, ['\\Noselect']);
    }
    const names = [...out.keys()].sort((x, y) => (x === 'INBOX' ? -1 : y === 'INBOX' ? 1 : x < y ? -1 : x > y ? 1 : 0));
    for (const n of names) entries.push({ name: n, attrs: [...out.get(n)!], selectable: false });
  } else if (a.subscribedOnly) {
    entries.push(...subscribedEntries(a, folders, subs, matches));
  } else {
    for (const f of folders) {
      if (!matches(f.name)) continue;
      if (a.specialUseOnly && !f.specialUse) continue;
      const attrs = folderAttrs(f);
      // The plain form always said \Subscribed; LIST-EXTENDED says it when asked (RETURN (SUBSCRIBED)).
      if (subs.has(f.name) && (!a.extended || a.returnSubscribed)) attrs.push('\\Subscribed');
      entries.push({ name: f.name, attrs, selectable: !f.noselect });
    }
  }
  const lines: string[] = [];
  const flush = () => {
    if (lines.length > 0) s.write(lines.splice(0).join('\r\n') + '\r\n');
  };
  for (const e of entries) {
    const extData = e.childInfo ? ' (CHILDINFO ("SUBSCRIBED"))' : '';
    lines.push(`* ${verb} (${e.attrs.join(' ')}) "${DELIMITER}" ${mailboxWire(s, e.name)}${extData}`);
    if (a.returnStatus && e.selectable && !lsub) {
      flush();
      try {
        await writeStatus(s, e.name, a.returnStatus);
      } catch (err) {
        // Deleted meanwhile: RFC 5819 §2 lets the server leave its STATUS out.
        if (!isMailfleetError(err, 'MAILBOX_NOT_FOUND')) throw err;
      }
    }
  }
  flush();
}

/** LIST (SUBSCRIBED [RECURSIVEMATCH]) (RFC 5258 §3.1): subscriptions, existing or not. */
function subscribedEntries(a: ListArgs, folders: readonly FolderInfo[], subs: ReadonlySet<string>, matches: Matcher): Entry[] {
  const byName = new Map(folders.map((f) => [f.name, f]));
  const hasChildFolder = (name: string) => folders.some((f) => f.name.startsWith(name + DELIMITER));
  // RECURSIVEMATCH: a name with a subscribed name below it is listed, with CHILDINFO, when the pattern
  // stops above that name (`%`); a subscribed name that is listed anyway also carries CHILDINFO (as Dovecot).
  const below = (name: string) => [...subs].filter((n) => n.startsWith(name + DELIMITER));
  const names = new Set<string>();
  for (const n of subs) {
    if (matches(n)) names.add(n);
    if (a.recursiveMatch) for (const p of superiorNames(n)) if (!matches(n) && matches(p)) names.add(p);
  }
  const out: Entry[] = [];
  for (const name of [...names].sort((x, y) => (x === 'INBOX' ? -1 : y === 'INBOX' ? 1 : x < y ? -1 : x > y ? 1 : 0))) {
    const f = byName.get(name);
    if (a.specialUseOnly && !f?.specialUse) continue;
    const attrs = f ? folderAttrs(f) : [hasChildFolder(name) ? '\\HasChildren' : '\\HasNoChildren'];
    if (subs.has(name)) attrs.unshift('\\Subscribed');
    if (!f) attrs.splice(subs.has(name) ? 1 : 0, 0, '\\NonExistent');
    const childInfo = a.recursiveMatch && below(name).length > 0;
    out.push({ name, attrs, childInfo, selectable: f !== undefined && !f.noselect });
  }
  return out;
}

function folderAttrs(f: FolderInfo): string[] {
  const attrs = f.noselect ? ['\\Noselect'] : [];
  attrs.push(f.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
  if (f.specialUse) attrs.push(f.specialUse);
  return attrs;
}

export const list = defineCommand({
  name: 'LIST',
  states: AUTHENTICATED,
  parse: parseList,
  async handler(s, a) {
    await listReply(s, a, false);
    return { text: 'LIST completed' };
  },
});
