/**
 * PREVIEW (RFC 8970) text of a message: from its first text part (text/plain or text/html, depth
 * first, attachments skipped), transfer encoding and charset undone, quoted lines ("> …") and HTML
 * markup dropped, whitespace collapsed, at most PREVIEW_MAX_CHARS characters, UTF-8. A message with no
 * such part has the empty preview (RFC 8970 §3: "" rather than NIL). Computed once per message and
 * kept with its summary in the mailbox cache (Mailbox.preview).
 *
 * Linear scanners only (no RegExp over message text that could backtrack on crafted input).
 */
import { headerValue, type MimePart } from './mime.js';
import { decodeQuotedPrintable } from './transfer.js';

/** RFC 8970 §3: the server SHOULD limit the preview to 200 characters (and MUST NOT exceed 256). */
export const PREVIEW_MAX_CHARS = 200;
/** Decoded bytes of the text part looked at: a preview never needs more (a 20 MB text part is not decoded whole). */
const PREVIEW_SCAN_BYTES = 64 * 1024;

export function previewOf(root: MimePart, buf: Buffer): string {
  const part = firstTextPart(root);
  if (!part) return '';
  const text = decodeBody(part, buf);
  const plain = part.contentType === 'text/html' ? htmlText(text) : unquoted(text);
  return clip(collapse(plain));
}

function firstTextPart(p: MimePart): MimePart | undefined {
  if (p.message) return firstTextPart(p.message);
  if (p.children.length > 0) {
    for (const c of p.children) {
      const t = firstTextPart(c);
      if (t) return t;
    }
    return undefined;
  }
  const disposition = (headerValue(p.headers, 'content-disposition') ?? '').trim().toLowerCase();
  if (disposition.startsWith('attachment')) return undefined;
  return p.contentType === 'text/plain' || p.contentType === 'text/html' ? p : undefined;
}

function decodeBody(p: MimePart, buf: Buffer): string {
  // Enough encoded bytes for PREVIEW_SCAN_BYTES decoded ones (base64 is 4/3, QP at most 3x).
  const raw = buf.subarray(p.bodyStart, Math.min(p.end, p.bodyStart + PREVIEW_SCAN_BYTES * 3));
  const cte = (headerValue(p.headers, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  let bytes: Buffer;
  if (cte === 'base64') bytes = Buffer.from(raw.toString('latin1'), 'base64');
  else if (cte === 'quoted-printable') bytes = decodeQuotedPrintable(raw);
  else bytes = raw;
  bytes = bytes.subarray(0, PREVIEW_SCAN_BYTES);
  // WHATWG decoders (Node's ICU): us-ascii is read as windows-1252, a superset; unknown charsets as UTF-8.
  try {
    return new TextDecoder(p.params.charset ?? 'us-ascii').decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** Plain text without its quoted lines (as Dovecot's snippets: a reply's preview is the reply). */
function unquoted(text: string): string {
  const out: string[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (text[start] !== '>') out.push(text.slice(start, end));
    start = end + 1;
  }
  return out.join('\n');
}

/** Elements whose content is not text. */
const SKIPPED = new Set(['style', 'script', 'head', 'title', 'template']);
/** Elements that separate words (others, like <b>, sit inside one). */
const BLOCK = new Set(['p', 'div', 'br', 'li', 'ul', 'ol', 'tr', 'td', 'th', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'pre', 'hr', 'body', 'section', 'article', 'header', 'footer']);
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '©', reg: '®', hellip: '…', mdash: '—', ndash: '–', rsquo: '’', lsquo: '‘', rdquo: '”', ldquo: '“', euro: '€' };

/** HTML to its text: tags and comments dropped, style/script content skipped, entities decoded. */
export function htmlText(html: string): string {
  const lower = html.toLowerCase();
  let out = '';
  let i = 0;
  while (i < html.length) {
    const c = html[i]!;
    if (c === '<') {
      if (html.startsWith('<!--', i)) {
        const e = html.indexOf('-->', i + 4);
        i = e < 0 ? html.length : e + 3;
        continue;
      }
      const e = html.indexOf('>', i + 1);
      if (e < 0) break;
      let j = i + 1;
      const closing = html[j] === '/';
      if (closing) j++;
      let k = j;
      while (k < e && /[A-Za-z0-9]/.test(html[k]!)) k++;
      const name = html.slice(j, k).toLowerCase();
      i = e + 1;
      if (!closing && SKIPPED.has(name) && html[e - 1] !== '/') {
        // Up to its end tag, whatever it holds ("if (a < b)" in a script is not a tag).
        const close = lower.indexOf(`</${name}`, i);
        i = close < 0 ? html.length : close;
      } else if (BLOCK.has(name)) out += ' ';
      continue;
    }
    if (c === '&') {
      const e = html.indexOf(';', i + 1);
      if (e > i && e - i <= 10) {
        const ent = html.slice(i + 1, e);
        const ch = entity(ent);
        if (ch !== undefined) {
          out += ch;
          i = e + 1;
          continue;
        }
      }
    }
    out += c;
    i++;
  }
  return out;
}

function entity(ent: string): string | undefined {
  if (ent.startsWith('#')) {
    const n = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
    return Number.isInteger(n) && n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : undefined;
  }
  return ENTITIES[ent.toLowerCase()];
}

/** Runs of whitespace (any Unicode space, controls) become one space; ends trimmed. */
function collapse(s: string): string {
  let out = '';
  let space = false;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const isSpace = cp < 0x20 || cp === 0x7f || /\s/u.test(ch);
    if (isSpace) {
      space = out.length > 0;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

/** At most PREVIEW_MAX_CHARS characters (code points, never half a surrogate pair), trailing space trimmed. */
function clip(s: string): string {
  const chars = Array.from(s);
  return chars.length <= PREVIEW_MAX_CHARS ? s : chars.slice(0, PREVIEW_MAX_CHARS).join('').trimEnd();
}
