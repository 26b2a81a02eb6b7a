/**
 * RFC 5322 address lists as IMAP's ENVELOPE wants them (RFC 3501 §7.4.2): comments anywhere, quoted
 * strings, groups (`team: a@x, b@y;` → a group-start marker, the members, a group-end marker) and source
 * routes (`<@relay:user@domain>` → adl "@relay"). A small tokenizer and a single pass, linear in the header
 * (headers come from anyone on port 25: no backtracking RegExp). nodemailer's addressparser, used before,
 * turned `group: (c) ;` into a stray address and kept the route inside the mailbox name.
 */

export interface ParsedAddress {
  /** Display name (phrase, or a trailing comment when there is none); undefined when absent. */
  readonly name?: string;
  /** Source route as IMAP's adl: "@a,@b"; undefined when absent. */
  readonly route?: string;
  /** Local part; for a group marker, the group name (start) or undefined (end). */
  readonly mailbox?: string;
  readonly host?: string;
  /** 'start' / 'end' for RFC 3501 group markers. */
  readonly group?: 'start' | 'end';
}

type Tok = { readonly k: 'word'; readonly v: string; readonly quoted: boolean } | { readonly k: 'sp'; readonly v: string } | { readonly k: 'comment'; readonly v: string };

const SPECIALS = new Set(['(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"']);

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '(') {
      // Nested comments; an unclosed one runs to the end.
      let depth = 0;
      let v = '';
      for (; i < s.length; i++) {
        const d = s[i]!;
        if (d === '\\' && i + 1 < s.length) {
          v += s[++i];
          continue;
        }
        if (d === '(') {
          if (depth++ > 0) v += d;
        } else if (d === ')') {
          if (--depth === 0) {
            i++;
            break;
          }
          v += d;
        } else v += d;
      }
      out.push({ k: 'comment', v: v.trim() });
      continue;
    }
    if (c === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        v += s[i];
      }
      i++;
      out.push({ k: 'word', v, quoted: true });
      continue;
    }
    if (c === '[') {
      // Domain literal: one word, brackets kept.
      const end = s.indexOf(']', i);
      const stop = end < 0 ? s.length : end + 1;
      out.push({ k: 'word', v: s.slice(i, stop), quoted: false });
      i = stop;
      continue;
    }
    if (SPECIALS.has(c)) {
      out.push({ k: 'sp', v: c });
      i++;
      continue;
    }
    let j = i;
    while (j < s.length && !SPECIALS.has(s[j]!) && s[j] !== ' ' && s[j] !== '\t' && s[j] !== '\r' && s[j] !== '\n') j++;
    out.push({ k: 'word', v: s.slice(i, j), quoted: false });
    i = j;
  }
  return out;
}

/** Parses an address-list header value (From, To, Cc, …). */
export function parseAddressList(value: string): ParsedAddress[] {
  const toks = tokenize(value);
  const out: ParsedAddress[] = [];
  let inGroup = false;
  // The mailbox being read: words outside <>, and what an angle-addr gave.
  let words: Tok[] = [];
  let angle: { route?: string; mailbox?: string; host?: string } | undefined;
  const finish = () => {
    const a = mailboxOf(words, angle);
    if (a) out.push(a);
    words = [];
    angle = undefined;
  };
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.k === 'sp' && t.v === '<') {
      let j = i + 1;
      const inner: Tok[] = [];
      while (j < toks.length && !(toks[j]!.k === 'sp' && toks[j]!.v === '>')) inner.push(toks[j++]!);
      angle = angleAddr(inner);
      i = j;
      continue;
    }
    if (t.k === 'sp' && t.v === ':' && !inGroup && angle === undefined) {
      out.push({ mailbox: phraseOf(words) ?? '', group: 'start' });
      words = [];
      inGroup = true;
      continue;
    }
    if (t.k === 'sp' && t.v === ';' && inGroup) {
      finish();
      out.push({ group: 'end' });
      inGroup = false;
      continue;
    }
    if (t.k === 'sp' && t.v === ',') {
      finish();
      continue;
    }
    words.push(t);
  }
  finish();
  if (inGroup) out.push({ group: 'end' });
  return out;
}

function phraseOf(words: readonly Tok[]): string | undefined {
  const parts: string[] = [];
  for (const w of words) {
    if (w.k === 'word') parts.push(w.v);
    else if (w.k === 'sp' && w.v === '.') {
      // "J. Smith": a dot belongs to the word before it.
      if (parts.length > 0) parts[parts.length - 1] += '.';
      else parts.push('.');
    }
  }
  return parts.length > 0 ? parts.join(' ') : undefined;
}

/** local-part@domain from words, comments dropped; a quoted local part keeps its quotes. */
function addrSpec(words: readonly Tok[]): { mailbox?: string; host?: string } {
  let local = '';
  let host: string | undefined;
  for (const w of words) {
    if (w.k === 'comment') continue;
    const v = w.k === 'word' && w.quoted ? `"${w.v}"` : w.v;
    if (host === undefined && w.k === 'sp' && w.v === '@') {
      host = '';
      continue;
    }
    if (host === undefined) local += v;
    else host += v;
  }
  return { mailbox: local || undefined, host: host || undefined };
}

function angleAddr(inner: readonly Tok[]): { route?: string; mailbox?: string; host?: string } {
  const toks = inner.filter((t) => t.k !== 'comment');
  let start = 0;
  let route: string | undefined;
  if (toks[0]?.k === 'sp' && toks[0].v === '@') {
    // obs-route: "@a,@b:" up to the colon.
    const colon = toks.findIndex((t) => t.k === 'sp' && t.v === ':');
    if (colon > 0) {
      route = toks
        .slice(0, colon)
        .map((t) => t.v)
        .join('');
      start = colon + 1;
    }
  }
  return { route, ...addrSpec(toks.slice(start)) };
}

function mailboxOf(words: readonly Tok[], angle: { route?: string; mailbox?: string; host?: string } | undefined): ParsedAddress | undefined {
  if (angle) {
    const lastComment = [...words].reverse().find((w) => w.k === 'comment');
    const name = phraseOf(words) ?? (lastComment?.v || undefined);
    if (!angle.mailbox && !angle.host && !name) return undefined;
    return { name, route: angle.route, mailbox: angle.mailbox, host: angle.host };
  }
  const spec = addrSpec(words);
  if (!spec.mailbox && !spec.host) return undefined;
  // Old style "user@host (Name)": the comment is the name.
  const comment = [...words].reverse().find((w) => w.k === 'comment');
  return { name: comment?.v || undefined, ...spec };
}

/** Text SEARCH FROM/TO/CC/BCC also looks in: each address as `name <mailbox@host>`, comments removed. */
export function addressSearchText(value: string): string {
  return parseAddressList(value)
    .filter((a) => a.group === undefined)
    .map((a) => `${a.name ? `${a.name} ` : ''}<${a.mailbox ?? ''}${a.host ? `@${a.host}` : ''}>`)
    .join(', ');
}
