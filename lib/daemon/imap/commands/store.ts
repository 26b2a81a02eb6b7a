import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, flagList, seqSetArg, type WorkLimits } from '../args.js';
import { enableCondstore, modesOf, modseqArg, uidSet } from '../condstore.js';
import type { ImapSession } from '../session.js';
import type { Token } from '../parser.js';

interface StoreArgs {
  readonly set: ReturnType<typeof seqSetArg>;
  readonly op: 'set' | 'add' | 'remove';
  readonly silent: boolean;
  readonly flags: string[];
  /** CONDSTORE (RFC 7162 §3.1.3): only messages whose modseq is at most this are changed. */
  readonly unchangedSince?: number;
}

/** The STORE modifiers list: (UNCHANGEDSINCE n). */
function parseModifiers(list: readonly Token[]): number {
  const a = new Args(list);
  let unchangedSince: number | undefined;
  while (a.left > 0) {
    const name = a.atom('store modifier').toUpperCase();
    if (name !== 'UNCHANGEDSINCE') throw bad(`Unknown store modifier ${name}`);
    unchangedSince = modseqArg(a, 'mod-sequence');
  }
  if (unchangedSince === undefined) throw bad('Empty store modifier list');
  return unchangedSince;
}

function parseStore(t: readonly Token[], limits: WorkLimits): StoreArgs {
  const a = new Args(t, limits);
  const set = seqSetArg(a);
  const mods = a.optionalList();
  let unchangedSince = mods ? parseModifiers(mods) : undefined;
  const item = a.atom('store item').toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
  if (!m) throw bad('Expected FLAGS, +FLAGS or -FLAGS');
  const flags: string[] = [];
  while (a.left > 0) {
    const x = a.next('flags');
    // imapflow sends the modifier list last (`+FLAGS (\Seen) (UNCHANGEDSINCE n)`), against RFC 7162's
    // grammar: accepted there too, as a list cannot be a flag.
    if (x.t === 'list' && flags.length > 0 && a.left === 0 && unchangedSince === undefined && x.v[0]?.t === 'atom' && x.v[0].v.toUpperCase() === 'UNCHANGEDSINCE') {
      unchangedSince = parseModifiers(x.v);
      break;
    }
    flags.push(...flagList(x.t === 'list' ? x.v : x));
  }
  return { set, op: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set', silent: m[2] !== undefined, flags, unchangedSince };
}

async function runStore(s: ImapSession, a: StoreArgs, byUid: boolean) {
  const sel = s.selected!;
  if (sel.readOnly) return { status: 'NO' as const, code: 'READ-ONLY', text: 'Mailbox is read-only' };
  if (!byUid && !sel.inRange(a.set)) throw bad('Invalid message sequence number');
  if (a.unchangedSince !== undefined) enableCondstore(s);
  const condstore = modesOf(s).condstore;
  const targets = sel.resolve(a.set, byUid);
  // New keywords get a letter in the folder's table; removing an undefined one changes nothing.
  const letters = await sel.mailbox.lettersFor(a.flags, a.op !== 'remove');
  const { changed, modified } = await sel.mailbox.storeFlags(
    targets.map((m) => m.uid),
    a.op,
    letters,
    a.unchangedSince,
  );
  sel.noteOwn(changed);
  if (changed.length > 0) sel.handle.changed();
  // A keyword new to the folder: FLAGS and PERMANENTFLAGS again first (RFC 3501 §7.2.6), as Dovecot does.
  const flagLines = sel.flagUpdate();
  if (flagLines.length > 0) s.write(flagLines.join('\r\n') + '\r\n');
  const failed = new Set(modified);
  const lines: string[] = [];
  if (!a.silent) {
    for (const m of targets) {
      const rec = sel.mailbox.byUid(m.uid);
      if (!rec || failed.has(m.uid)) continue;
      lines.push(sel.flagsFetch(m.seq, rec, byUid));
    }
  } else if (condstore) {
    // RFC 7162 §3.1.3: even .SILENT, the new MODSEQ of each changed message is sent.
    const seqOf = new Map(targets.map((m) => [m.uid, m.seq]));
    for (const r of changed) lines.push(`* ${seqOf.get(r.uid)} FETCH (${byUid || modesOf(s).qresync ? `UID ${r.uid} ` : ''}MODSEQ (${r.modseq}))`);
  }
  if (lines.length > 0) await s.writeAsync(lines.join('\r\n') + '\r\n');
  if (modified.length > 0) {
    // MODIFIED names sequence numbers for STORE, UIDs for UID STORE.
    const seqs = new Map(targets.map((m) => [m.uid, m.seq]));
    const set = uidSet(byUid ? modified : modified.map((u) => seqs.get(u)!));
    return { code: `MODIFIED ${set}`, text: 'Conditional STORE failed' };
  }
  return { text: a.unchangedSince !== undefined ? 'Conditional STORE completed' : 'STORE completed' };
}

export const store = defineCommand({
  name: 'STORE',
  states: SELECTED,
  expungeAfter: false,
  parse: parseStore,
  handler: (s, a) => runStore(s, a, false),
});

export const uidStore = defineCommand({
  name: 'UID STORE',
  states: SELECTED,
  parse: parseStore,
  handler: (s, a) => runStore(s, a, true),
});
