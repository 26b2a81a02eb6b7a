import { defineCommand, SELECTED } from '../command.js';
import { Args, bad, flagList, seqSetArg, type WorkLimits } from '../args.js';
import type { ImapSession } from '../session.js';
import type { Token } from '../parser.js';

interface StoreArgs {
  readonly set: ReturnType<typeof seqSetArg>;
  readonly op: 'set' | 'add' | 'remove';
  readonly silent: boolean;
  readonly flags: string[];
}

function parseStore(t: readonly Token[], limits: WorkLimits): StoreArgs {
  const a = new Args(t, limits);
  const set = seqSetArg(a);
  const item = a.atom('store item').toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(item);
  if (!m) throw bad('Expected FLAGS, +FLAGS or -FLAGS');
  const flags: string[] = [];
  while (a.left > 0) {
    const x = a.next('flags');
    flags.push(...flagList(x.t === 'list' ? x.v : x));
  }
  return { set, op: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set', silent: m[2] !== undefined, flags };
}

async function runStore(s: ImapSession, a: StoreArgs, byUid: boolean) {
  const sel = s.selected!;
  if (sel.readOnly) return { status: 'NO' as const, code: 'READ-ONLY', text: 'Mailbox is read-only' };
  if (!byUid && !sel.inRange(a.set)) throw bad('Invalid message sequence number');
  const targets = sel.resolve(a.set, byUid);
  // New keywords get a letter in the folder's table; removing an undefined one changes nothing.
  const letters = await sel.mailbox.lettersFor(a.flags, a.op !== 'remove');
  const changed = await sel.mailbox.setFlags(targets.map((m) => m.uid), a.op, letters);
  sel.noteOwn(changed);
  if (changed.length > 0) sel.handle.changed();
  // A keyword new to the folder: FLAGS and PERMANENTFLAGS again first (RFC 3501 §7.2.6), as Dovecot does.
  const flagLines = sel.flagUpdate();
  if (flagLines.length > 0) s.write(flagLines.join('\r\n') + '\r\n');
  if (!a.silent) {
    const lines: string[] = [];
    for (const m of targets) {
      const rec = sel.mailbox.byUid(m.uid);
      if (!rec) continue;
      lines.push(`* ${m.seq} FETCH (${byUid ? `UID ${m.uid} ` : ''}FLAGS (${sel.flagsOf(rec).join(' ')}))`);
    }
    if (lines.length > 0) await s.writeAsync(lines.join('\r\n') + '\r\n');
  }
  return { text: 'STORE completed' };
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
