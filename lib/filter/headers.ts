/**
 * Header edits on a whole message (a Buffer): what rspamd's milter block asks for (remove, then add), plus
 * our own X-Spam and Subject changes. Only the header block is rewritten; the body is reused as is, so a
 * DKIM body hash stays valid. The header block is handled as latin1, which keeps every byte.
 */
import type { MilterEdits } from './rspamd-client.js';

/** One header field with its continuation lines, as written (CRLF included). */
interface Field {
  readonly name: string;
  text: string;
}

export interface HeaderEdits {
  readonly milter?: MilterEdits;
  /** Extra fields, in order, put at the top (after rspamd's). */
  readonly add?: ReadonlyArray<readonly [string, string]>;
  /** Put in front of the Subject (a message without one gets `Subject: <prefix>`). */
  readonly subjectPrefix?: string;
}

/** Where the header block ends: just after the last field's line end (the empty line and body follow). */
function headerEnd(message: Buffer): number {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf + 2;
  if (lf >= 0) return lf + 1;
  return message.length;
}

function parseFields(block: string): Field[] {
  const fields: Field[] = [];
  let start = 0;
  while (start < block.length) {
    let end = block.indexOf('\n', start);
    end = end < 0 ? block.length : end + 1;
    const line = block.slice(start, end);
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) last.text += line;
    else {
      const colon = line.indexOf(':');
      fields.push({ name: (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase(), text: line });
    }
    start = end;
  }
  return fields;
}

/** A header value from rspamd or the spec: CRLF line ends only, and no line break that is not a fold. */
function foldSafe(value: string): string {
  return value
    .replace(/\r?\n/g, '\r\n')
    .split('\r\n')
    .map((l, i) => (i === 0 || l.startsWith(' ') || l.startsWith('\t') ? l : `\t${l}`))
    .join('\r\n');
}

function valuesOf(v: NonNullable<MilterEdits['add_headers']>[string]): string[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((x: string | { value: string }) => (typeof x === 'string' ? x : x.value));
}

export function editHeaders(message: Buffer, edits: HeaderEdits): Buffer {
  const end = headerEnd(message);
  let fields = parseFields(message.subarray(0, end).toString('latin1'));
  for (const [name, which] of Object.entries(edits.milter?.remove_headers ?? {})) {
    const n = name.toLowerCase();
    const idx = fields.flatMap((f, i) => (f.name === n ? [i] : []));
    let drop: number[] = [];
    if (which === 0) drop = idx;
    else if (which > 0 && idx[which - 1] !== undefined) drop = [idx[which - 1]!];
    else if (which < 0 && idx[idx.length + which] !== undefined) drop = [idx[idx.length + which]!];
    fields = fields.filter((_, i) => !drop.includes(i));
  }
  if (edits.subjectPrefix !== undefined) {
    const subject = fields.find((f) => f.name === 'subject');
    const prefix = foldSafe(edits.subjectPrefix);
    if (subject)
      subject.text = subject.text.replace(/^([^:]*:)[ \t]*/, (_m, head: string) => `${head} ${prefix} `);
    else fields.push({ name: 'subject', text: `Subject: ${prefix}\r\n` });
  }
  const top: string[] = [];
  for (const [name, v] of Object.entries(edits.milter?.add_headers ?? {}))
    for (const value of valuesOf(v)) top.push(`${name}: ${foldSafe(value)}\r\n`);
  for (const [name, value] of edits.add ?? []) top.push(`${name}: ${foldSafe(value)}\r\n`);
  const head = Buffer.from(top.join('') + fields.map((f) => f.text).join(''), 'latin1');
  return Buffer.concat([head, message.subarray(end)]);
}
