import { AUTHENTICATED, defineCommand } from '../command.js';
import { Args, bad } from '../args.js';
import { decodeMutf7 } from '../../../store/mailbox/mutf7.js';
import { DELIMITER, nameToWire } from '../../../store/mailbox/names.js';
import { superiorNames, type FolderInfo } from '../../../store/mailbox/store.js';
import type { ImapSession } from '../session.js';
import { istring } from '../wire.js';
import { WildcardPattern } from '../wildcard.js';

export interface ListArgs {
  readonly reference: string;
  readonly pattern: string;
  /** LIST (SPECIAL-USE) "" * : only special-use folders (RFC 6154 §3). */
  readonly specialUseOnly: boolean;
}

export function parseList(t: ConstructorParameters<typeof Args>[0]): ListArgs {
  const a = new Args(t);
  const opts = a.optionalList();
  const specialUseOnly = opts?.some((o) => o.t === 'atom' && o.v.toUpperCase() === 'SPECIAL-USE') ?? false;
  const reference = a.pattern('reference');
  const pattern = a.pattern('mailbox pattern');
  if (a.left > 0) {
    // RETURN (SPECIAL-USE …): special-use attributes are always returned.
    const r = a.atom('RETURN');
    if (r.toUpperCase() !== 'RETURN') throw bad('Expected RETURN');
    a.list('return options');
  }
  a.end();
  return { reference, pattern, specialUseOnly };
}

export async function listReply(s: ImapSession, a: ListArgs, lsub: boolean): Promise<void> {
  const verb = lsub ? 'LSUB' : 'LIST';
  if (a.pattern === '') {
    s.write(`* ${verb} (\\Noselect) "${DELIMITER}" ""\r\n`);
    return;
  }
  const full = decodeMutf7(a.reference + a.pattern) ?? a.reference + a.pattern;
  // A linear-time matcher: the pattern is client input (see wildcard.ts for why not a RegExp).
  const re = new WildcardPattern(full, DELIMITER);
  const inboxRe = new WildcardPattern(full.replace(/^inbox/i, 'INBOX'), DELIMITER);
  const folders = await s.deps.store.list(s.user!);
  const subs = await s.deps.store.subscriptions(s.user!);
  const matches = (name: string) => re.matches(name) || ((name === 'INBOX' || name.startsWith('INBOX.')) && inboxRe.matches(name));
  const lines: string[] = [];
  const line = (attrs: readonly string[], name: string) => {
    const wire = istring(nameToWire(name));
    lines.push(`* ${verb} (${attrs.join(' ')}) "${DELIMITER}" ${typeof wire === 'string' ? wire : nameToWire(name)}`);
  };
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
    for (const n of names) line(out.get(n)!, n);
  } else {
    for (const f of folders) {
      if (!matches(f.name)) continue;
      if (a.specialUseOnly && !f.specialUse) continue;
      const attrs = folderAttrs(f);
      if (subs.has(f.name)) attrs.push('\\Subscribed');
      line(attrs, f.name);
    }
  }
  if (lines.length > 0) s.write(lines.join('\r\n') + '\r\n');
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
