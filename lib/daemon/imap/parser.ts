/**
 * IMAP stream parser: line and literal framing, then tokens. It never writes to the socket: the
 * session pulls events with read() one at a time (so commands run in order and a slow command holds
 * the rest in the buffer) and answers them.
 *
 * Limits are enforced before bytes are kept: a line longer than maxLineLengthBytes is discarded up to
 * its end, a literal larger than maxLiteralBytes is refused from its announcement — a synchronising
 * one is never invited ("+ Ready" is not sent), a LITERAL+ one ends the session because the client
 * sends it without waiting. Lists nest at most maxNesting deep. The session lowers maxLiteralBytes before
 * login (imap.maxPreAuthLiteralBytes), and a shared budget (LiteralBudget) caps what all sessions hold.
 */
import type { LiteralBudget } from './literal-budget.js';


export interface ParserLimits {
  /** Longest command line (without literals). @default 65536 */
  readonly maxLineLengthBytes: number;
  /** Largest literal, and largest total of literals in one command. @default 52428800 */
  readonly maxLiteralBytes: number;
  /** Deepest parenthesised list. @default 16 */
  readonly maxNesting?: number;
  /** Most literals in one command. @default 64 */
  readonly maxLiterals?: number;
  /** Process-wide literal bytes; a literal it cannot reserve is refused (code LIMIT). @default - no budget */
  readonly budget?: LiteralBudget;
}

export type Token =
  | { readonly t: 'atom'; readonly v: string }
  | { readonly t: 'string'; readonly v: Buffer; readonly literal: boolean; /** literal8 `~{n}` (BINARY, RFC 3516) */ readonly binary?: boolean }
  | { readonly t: 'list'; readonly v: readonly Token[] };

export type ParserEvent =
  /** A complete command; `name` is upper-case, `UID FETCH` style for UID commands. */
  | { readonly kind: 'command'; readonly tag: string; readonly name: string; readonly args: readonly Token[] }
  /** A synchronising literal is announced and allowed: the session sends "+ Ready". */
  | { readonly kind: 'continue'; readonly tag: string; readonly size: number }
  /**
   * A command that cannot be parsed. `tag` is '*' when none could be read. `code` TOOBIG: a literal or
   * line over the limit; LIMIT: the process's literal budget is spent. `fatal`: the stream cannot be
   * resynchronised; the session says BYE and closes.
   */
  | { readonly kind: 'error'; readonly tag: string; readonly text: string; readonly code?: 'TOOBIG' | 'LIMIT'; readonly fatal?: boolean }
  /** A raw line, in line mode (IDLE's DONE, AUTHENTICATE responses). */
  | { readonly kind: 'line'; readonly line: string };

type Part = string | Buffer;

const TAG_RE = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5e-\x7a\x7c\x7e]+$/; // ASTRING-CHAR minus '+'
const LITERAL_RE = /\{(\d{1,12})(\+?)\}$/;

export class ImapParser {
  private readonly maxLine: number;
  private maxLiteral: number;
  private readonly budget?: LiteralBudget;
  /** Budget reserved for the command being read, and for commands handed out and not yet released. */
  private reserved = 0;
  private handedOut = 0;
  private readonly maxNesting: number;
  private readonly maxLiterals: number;
  /** Unconsumed input; mostly empty or one chunk. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Current line being assembled (before its newline). */
  private line: Buffer[] = [];
  private lineLen = 0;
  private skippingLine = false;
  /** Parts of the command so far (text lines and literal bodies). */
  private parts: Part[] = [];
  private literalTotal = 0;
  /** The literal being read, copied into its final buffer as it arrives (no 20 MB concat at the end). */
  private literal?: { size: number; got: number; body: Buffer };
  private lineMode = false;
  private dead = false;

  constructor(limits: ParserLimits) {
    this.maxLine = limits.maxLineLengthBytes;
    this.maxLiteral = limits.maxLiteralBytes;
    this.maxNesting = limits.maxNesting ?? 16;
    this.maxLiterals = limits.maxLiterals ?? 64;
    this.budget = limits.budget;
  }

  /** Changes the literal limit for literals announced from now on (login raises it). */
  setMaxLiteralBytes(n: number): void {
    this.maxLiteral = n;
  }

  /** The session has run the commands handed out so far: their literals' budget is free again. */
  releaseCommands(): void {
    this.budget?.release(this.handedOut);
    this.handedOut = 0;
  }

  /** The session is over: returns every reservation and drops the input. */
  dispose(): void {
    this.releaseCommands();
    this.budget?.release(this.reserved);
    this.reserved = 0;
    this.literal = undefined;
    this.chunks = [];
    this.buffered = 0;
    this.parts = [];
    this.dead = true;
  }

  /** Bytes received but not yet consumed (the session pauses the socket when this grows). */
  get bufferedBytes(): number {
    return this.buffered + (this.literal?.got ?? 0) + this.lineLen;
  }

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** In line mode read() yields raw lines instead of commands (the session turns it on and off). */
  setLineMode(on: boolean): void {
    this.lineMode = on;
  }

  /** The next event, or undefined until more input arrives. */
  read(): ParserEvent | undefined {
    if (this.dead) return undefined;
    for (;;) {
      if (this.literal) {
        if (!this.fillLiteral()) return undefined;
        continue;
      }
      const line = this.nextLine();
      if (line === undefined) return undefined;
      if (line === null) {
        // The line was too long and has been discarded.
        const tag = this.parts.length > 0 ? tagOf(this.parts[0] as string) : '*';
        this.resetCommand();
        return { kind: 'error', tag, text: 'Line too long', code: 'TOOBIG' };
      }
      if (this.lineMode && this.parts.length === 0) return { kind: 'line', line };
      const ev = this.onLine(line);
      if (ev) return ev;
    }
  }

  private resetCommand(): void {
    this.parts = [];
    this.literalTotal = 0;
    this.budget?.release(this.reserved);
    this.reserved = 0;
  }

  /** Consumes one line from the input: string, null when over the limit, undefined when incomplete. */
  private nextLine(): string | null | undefined {
    while (this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const nl = c.indexOf(0x0a);
      const take = nl < 0 ? c.length : nl + 1;
      const piece = nl < 0 ? c : c.subarray(0, take);
      if (nl < 0) this.chunks.shift();
      else if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
      this.buffered -= take;
      if (!this.skippingLine) {
        if (this.lineLen + piece.length > this.maxLine + 2) {
          // Keep only the tag so the error can name it; drop the rest as it streams by.
          const head = Buffer.concat([...this.line, piece]).subarray(0, 64).toString('latin1');
          if (this.parts.length === 0) this.parts = [head];
          this.line = [];
          this.lineLen = 0;
          this.skippingLine = true;
        } else {
          this.line.push(piece);
          this.lineLen += piece.length;
        }
      }
      if (nl < 0) continue;
      if (this.skippingLine) {
        this.skippingLine = false;
        return null;
      }
      const buf = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line);
      this.line = [];
      this.lineLen = 0;
      const end = buf.length >= 2 && buf[buf.length - 2] === 0x0d ? buf.length - 2 : buf.length - 1;
      return buf.subarray(0, end).toString('latin1');
    }
    return undefined;
  }

  private onLine(line: string): ParserEvent | undefined {
    this.parts.push(line);
    const m = LITERAL_RE.exec(line);
    if (!m) {
      const parts = this.parts;
      // The literals now belong to the command handed out: released when the session has run it.
      this.handedOut += this.reserved;
      this.reserved = 0;
      this.resetCommand();
      return tokenizeCommand(parts, this.maxNesting);
    }
    const size = Number(m[1]);
    const sync = m[2] !== '+';
    const tag = tagOf(this.parts[0] as string);
    const literals = (this.parts.length + 1) / 2;
    const tooBig = size > this.maxLiteral || this.literalTotal + size > this.maxLiteral || literals > this.maxLiterals;
    if (tooBig || (this.budget && !this.budget.reserve(size))) {
      this.resetCommand();
      const text = tooBig ? `Literal too big (limit ${this.maxLiteral} octets)` : 'Server is out of memory for literals, try again later';
      const code = tooBig ? 'TOOBIG' : 'LIMIT';
      if (sync) return { kind: 'error', tag, text, code };
      // The client is already sending it: the stream cannot be resynchronised without reading it.
      this.dead = true;
      this.chunks = [];
      this.buffered = 0;
      return { kind: 'error', tag, text, code, fatal: true };
    }
    this.reserved += size;
    this.literalTotal += size;
    // allocUnsafe: pages are touched only as bytes arrive, so an announced but unsent literal costs little.
    this.literal = { size, got: 0, body: Buffer.allocUnsafe(size) };
    if (sync) return { kind: 'continue', tag, size };
    return undefined;
  }

  private fillLiteral(): boolean {
    const lit = this.literal!;
    while (lit.got < lit.size && this.chunks.length > 0) {
      const c = this.chunks[0]!;
      const need = lit.size - lit.got;
      if (c.length <= need) {
        c.copy(lit.body, lit.got);
        lit.got += c.length;
        this.chunks.shift();
        this.buffered -= c.length;
      } else {
        c.copy(lit.body, lit.got, 0, need);
        lit.got += need;
        this.chunks[0] = c.subarray(need);
        this.buffered -= need;
      }
    }
    if (lit.got < lit.size) return false;
    this.parts.push(lit.body);
    this.literal = undefined;
    return true;
  }
}

function tagOf(firstLine: string): string {
  const sp = firstLine.indexOf(' ');
  const t = sp < 0 ? firstLine : firstLine.slice(0, sp);
  return TAG_RE.test(t) ? t : '*';
}

class TokenError extends Error {}

/** Tokenises a complete command: alternating text parts and literal bodies. */
export function tokenizeCommand(parts: readonly Part[], maxNesting = 16): ParserEvent {
  const first = parts[0] as string;
  const tag = tagOf(first);
  if (tag === '*') return { kind: 'error', tag: '*', text: first.trim() === '' ? 'Empty command' : 'Missing or invalid tag' };
  const rest = first.slice(tag.length);
  if (!rest.startsWith(' ')) return { kind: 'error', tag, text: 'Missing command' };
  try {
    const t = new Tokenizer([rest.slice(1), ...parts.slice(1)], maxNesting);
    const cmd = t.atomOnly();
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(cmd)) throw new TokenError('Invalid command name');
    let name = cmd.toUpperCase();
    const args = t.all();
    if (name === 'UID') {
      const sub = args[0];
      if (!sub || sub.t !== 'atom' || !/^[A-Za-z]+$/.test(sub.v)) throw new TokenError('UID needs a command');
      name = `UID ${sub.v.toUpperCase()}`;
      return { kind: 'command', tag, name, args: args.slice(1) };
    }
    return { kind: 'command', tag, name, args };
  } catch (e) {
    if (e instanceof TokenError) return { kind: 'error', tag, text: e.message };
    throw e;
  }
}

const SECTION_ATOMS = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
const ATOM_STOP = new Set([0x20, 0x28, 0x29, 0x7b, 0x22, 0x5c]); // SP ( ) { " \ (\ allowed at start: flags)

class Tokenizer {
  private pi = 0;
  private i = 0;

  constructor(
    private readonly parts: readonly Part[],
    private readonly maxNesting: number,
  ) {}

  private get text(): string {
    return this.parts[this.pi] as string;
  }

  atomOnly(): string {
    const s = this.text;
    let j = this.i;
    while (j < s.length && s[j] !== ' ') j++;
    const a = s.slice(this.i, j);
    this.i = j;
    return a;
  }

  all(): Token[] {
    const out: Token[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.atEnd()) return out;
      out.push(this.token(0));
    }
  }

  private atEnd(): boolean {
    return this.pi >= this.parts.length - 1 && this.i >= this.text.length;
  }

  private skipSpaces(): void {
    while (this.i < this.text.length && this.text[this.i] === ' ') this.i++;
  }

  private token(depth: number): Token {
    const s = this.text;
    const c = s.charCodeAt(this.i);
    if (c === 0x28) {
      if (depth >= this.maxNesting) throw new TokenError('Lists nested too deep');
      this.i++;
      const items: Token[] = [];
      for (;;) {
        this.skipSpaces();
        if (this.i >= this.text.length) {
          if (this.pi >= this.parts.length - 1) throw new TokenError('Unclosed list');
          throw new TokenError('Unexpected end of line in list');
        }
        if (this.text[this.i] === ')') {
          this.i++;
          return { t: 'list', v: items };
        }
        items.push(this.token(depth + 1));
      }
    }
    if (c === 0x22) return this.quoted();
    if (c === 0x7b) return this.literal();
    // literal8 (BINARY, RFC 3516): `~{n}`, framed like a literal; APPEND takes it as the message.
    if (c === 0x7e && s.charCodeAt(this.i + 1) === 0x7b) {
      this.i++;
      return { t: 'string', v: this.literal().v as Buffer, literal: true, binary: true };
    }
    if (c === 0x29) throw new TokenError('Unexpected )');
    return this.atom();
  }

  private quoted(): Token {
    const s = this.text;
    let j = this.i + 1;
    let out = '';
    for (;;) {
      if (j >= s.length) throw new TokenError('Unterminated quoted string');
      const ch = s[j]!;
      if (ch === '"') break;
      if (ch === '\\') {
        const n = s[j + 1];
        if (n !== '"' && n !== '\\') throw new TokenError('Invalid escape in quoted string');
        out += n;
        j += 2;
        continue;
      }
      out += ch;
      j++;
    }
    this.i = j + 1;
    this.needSeparator();
    return { t: 'string', v: Buffer.from(out, 'latin1'), literal: false };
  }

  private literal(): Token {
    const s = this.text;
    const m = LITERAL_RE.exec(s.slice(this.i));
    if (!m || this.i + m[0].length !== s.length || this.pi + 1 >= this.parts.length) throw new TokenError('Invalid literal');
    const body = this.parts[this.pi + 1] as Buffer;
    this.pi += 2;
    this.i = 0;
    this.needSeparator();
    return { t: 'string', v: body, literal: true };
  }

  private atom(): Token {
    const s = this.text;
    let j = this.i;
    if (s[j] === '\\') j++; // flag or \*
    let bracket = false;
    while (j < s.length) {
      const c = s.charCodeAt(j);
      if (bracket) {
        if (c === 0x5d) bracket = false;
        j++;
        continue;
      }
      // '[' is an ATOM-CHAR (RFC 3501 §9: only ']' is a resp-special); it opens a section, which may hold
      // spaces and parentheses, only after a fetch attribute name: BODY[…], BODY.PEEK[…], BINARY[…].
      if (c === 0x5b && SECTION_ATOMS.has(s.slice(this.i, j).toUpperCase())) {
        bracket = true;
        j++;
        continue;
      }
      if (ATOM_STOP.has(c) || c < 0x20 || c === 0x7f) break;
      j++;
    }
    if (bracket) throw new TokenError('Unclosed [');
    if (j === this.i) throw new TokenError(`Unexpected character ${JSON.stringify(s[j])}`);
    const v = s.slice(this.i, j);
    this.i = j;
    this.needSeparator();
    return { t: 'atom', v };
  }

  /** After a token: end of line, SP or ')'. */
  private needSeparator(): void {
    const ch = this.text[this.i];
    if (ch === undefined || ch === ' ' || ch === ')') return;
    throw new TokenError(`Unexpected character ${JSON.stringify(ch)}`);
  }
}
