/**
 * Normalises IMAP replies so two conforming servers compare equal: the tagged status and response
 * code, and the untagged data a client acts on (EXISTS/RECENT/EXPUNGE, FLAGS, PERMANENTFLAGS, UNSEEN,
 * UIDNEXT, COPYUID, LIST/LSUB, STATUS, SEARCH, FETCH items), with what legitimately differs removed:
 * human text, CAPABILITY lists, UIDVALIDITY values, attribute order, optional quoting of names, the
 * order of FETCH items and of flags, and attributes only one side offers (\Subscribed, special-use).
 */
import type { Reply } from './raw-imap.js';

type V = string | V[] | null;

/** Tokens of a response's data: atoms, "strings", {n} literals, NIL, ( lists ). */
function parseValues(s: string): V[] {
  let i = 0;
  const list = (): V[] => {
    const out: V[] = [];
    for (;;) {
      while (s[i] === ' ') i++;
      if (i >= s.length || s[i] === ')') {
        i++;
        return out;
      }
      out.push(value());
    }
  };
  const value = (): V => {
    const c = s[i];
    if (c === '(') {
      i++;
      return list();
    }
    if (c === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\') i++;
        v += s[i];
      }
      i++;
      return `"${v}`; // a leading quote marks a string, so atom NIL and string "NIL" differ
    }
    if (c === '{') {
      const close = s.indexOf('}', i);
      const n = Number(s.slice(i + 1, close));
      const v = s.slice(close + 3, close + 3 + n);
      i = close + 3 + n;
      return `"${v}`;
    }
    let j = i;
    let depth = 0;
    while (j < s.length && (depth > 0 || (s[j] !== ' ' && s[j] !== ')' && s[j] !== '('))) {
      if (s[j] === '[') depth++;
      else if (s[j] === ']') depth--;
      j++;
    }
    // BODY[...]<n> keeps its brackets as one atom.
    const a = s.slice(i, j);
    i = j;
    return a.toUpperCase() === 'NIL' ? null : a;
  };
  return list();
}

function show(v: V): string {
  if (v === null) return 'NIL';
  if (Array.isArray(v)) return `(${v.map(show).join(' ')})`;
  return v.startsWith('"') ? JSON.stringify(v.slice(1)) : v;
}

const unquote = (name: string) => (name.startsWith('"') ? (parseValues(name)[0] as string).slice(1) : name);
const sortFlags = (s: string) => s.trim().split(/\s+/).filter(Boolean).sort().join(' ');

/** Response codes compared by name only (their arguments are server-specific or informational). */
/**
 * Tagged response codes compared: the ones RFC 3501 and UIDPLUS define and clients act on. RFC 5530
 * codes (NONEXISTENT, ALREADYEXISTS, …) are optional, and servers differ in where they send them.
 */
const COMPARED_CODES = new Set(['READ-ONLY', 'READ-WRITE', 'TRYCREATE', 'APPENDUID', 'COPYUID', 'UIDNOTSTICKY', 'BADCHARSET']);

function code(text: string): string {
  const m = /^\[([A-Z-]+)/.exec(text);
  return m && COMPARED_CODES.has(m[1]!) ? ` [${m[1]}]` : '';
}

export function normalizeLine(l: string): string | undefined {
  let m: RegExpExecArray | null;
  if ((m = /^\* (\d+) (EXISTS|RECENT|EXPUNGE)$/i.exec(l))) return `* ${m[1]} ${m[2]!.toUpperCase()}`;
  if ((m = /^\* FLAGS \(([^)]*)\)$/i.exec(l))) return `* FLAGS (${sortFlags(m[1]!)})`;
  if ((m = /^\* OK \[PERMANENTFLAGS \(([^)]*)\)\]/i.exec(l))) return `* OK [PERMANENTFLAGS (${sortFlags(m[1]!)})]`;
  if ((m = /^\* OK \[(UNSEEN|UIDNEXT) (\d+)\]/i.exec(l))) return `* OK [${m[1]} ${m[2]}]`;
  if (/^\* OK \[UIDVALIDITY \d+\]/i.test(l)) return '* OK [UIDVALIDITY]';
  if ((m = /^\* OK \[COPYUID \d+ (\S+) (\S+)\]/i.exec(l))) return `* OK [COPYUID ${m[1]} ${m[2]}]`;
  if ((m = /^\* (LIST|LSUB) \(([^)]*)\) (\S+) (.*)$/i.exec(l))) {
    const keep = m[1]!.toUpperCase() === 'LSUB' ? ['\\noselect'] : ['\\noselect', '\\haschildren', '\\hasnochildren'];
    const attrs = m[2]!.split(/\s+/).filter((a) => keep.includes(a.toLowerCase())).map((a) => a.toLowerCase()).sort();
    return `* ${m[1]!.toUpperCase()} (${attrs.join(' ')}) ${m[3]} ${unquote(m[4]!)}`;
  }
  if ((m = /^\* STATUS (.*) \(([^)]*)\)$/i.exec(l))) {
    const v = m[2]!.split(/\s+/);
    const pairs: string[] = [];
    for (let i = 0; i + 1 < v.length; i += 2) pairs.push(`${v[i]!.toUpperCase()} ${/UIDVALIDITY/i.test(v[i]!) ? 'V' : v[i + 1]}`);
    return `* STATUS ${unquote(m[1]!)} (${pairs.sort().join(' ')})`;
  }
  if ((m = /^\* SEARCH ?(.*)$/i.exec(l))) return `* SEARCH ${m[1]!.split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b).join(' ')}`.trimEnd();
  if ((m = /^\* (\d+) FETCH \(([\s\S]*)\)$/i.exec(l))) {
    const v = parseValues(m[2]!);
    const items: string[] = [];
    for (let i = 0; i + 1 < v.length; i += 2) {
      const key = String(v[i]).toUpperCase();
      const val = v[i + 1]!;
      // MIME types and parameters are case-insensitive: servers may lower- or upper-case them.
      const text = key === 'FLAGS' && Array.isArray(val) ? `(${val.map(show).sort().join(' ')})` : key === 'BODY' || key === 'BODYSTRUCTURE' ? show(val).toUpperCase() : show(val);
      items.push(`${key} ${text}`);
    }
    return `* ${m[1]} FETCH (${items.sort().join(' ')})`;
  }
  if ((m = /^\* (OK|NO|BAD|BYE|PREAUTH)\b ?(.*)$/i.exec(l))) {
    // Informational untagged OKs (texts, CLOSED) and BYE at LOGOUT differ by server; NO/BAD matter.
    if (/^(OK|BYE)$/i.test(m[1]!)) return undefined;
    return `* ${m[1]!.toUpperCase()}${code(m[2]!)}`;
  }
  if (/^\* (CAPABILITY|ID|ENABLED|NAMESPACE)\b/i.test(l)) return undefined;
  if (l.startsWith('+')) return '+';
  return l;
}

/** A reply as compared: the tagged status with its code, then the kept untagged lines in order. */
export function normalize(r: Reply): string[] {
  const rest = r.tagged.slice(r.status.length + 1);
  const out = [`${r.status}${code(rest)}`];
  const kept: string[] = [];
  for (const l of r.untagged) {
    const n = normalizeLine(l);
    if (n !== undefined) kept.push(n);
  }
  // Order matters between EXPUNGEs and between FETCHes (sequence numbers), not among SELECT's data or
  // LIST lines: a stable sort by kind, and by text inside the unordered kinds.
  const rank = (l: string) => (/^\* FLAGS/.test(l) ? 0 : /^\* OK/.test(l) ? 1 : / EXPUNGE$/.test(l) ? 2 : / EXISTS$/.test(l) ? 3 : / RECENT$/.test(l) ? 4 : / FETCH /.test(l) ? 5 : 6);
  const unordered = (k: number) => k === 1 || k === 6;
  kept.sort((x, y) => rank(x) - rank(y) || (unordered(rank(x)) ? (x < y ? -1 : x > y ? 1 : 0) : 0));
  return [...out, ...kept];
}
