/**
 * IMAP LIST/LSUB wildcards (RFC 3501 §6.3.8): '*' matches anything, '%' anything but the hierarchy
 * delimiter. Matched by simulating the pattern as a set of positions (an NFA) over the name, one name
 * character at a time: O(name × pattern) in the worst case, never exponential. A compiled regular
 * expression backtracked: `LIST "" "%*%*%*x"` against one 200-character folder name held the event loop
 * for minutes.
 */

type Piece = { readonly kind: 'lit'; readonly ch: string } | { readonly kind: 'star' } | { readonly kind: 'pct' };

/** A compiled pattern; match() may be called for many names. */
export class WildcardPattern {
  private readonly pieces: readonly Piece[];
  private readonly literals: number;

  constructor(
    pattern: string,
    private readonly delimiter: string,
  ) {
    const pieces: Piece[] = [];
    let literals = 0;
    for (const ch of pattern) {
      const prev = pieces[pieces.length - 1];
      if (ch === '*' || ch === '%') {
        // A run of wildcards is one wildcard: '*' if any of them is '*' (it matches what '%' does and more).
        if (prev && prev.kind !== 'lit') {
          if (ch === '*') pieces[pieces.length - 1] = { kind: 'star' };
          continue;
        }
        pieces.push({ kind: ch === '*' ? 'star' : 'pct' });
      } else {
        pieces.push({ kind: 'lit', ch });
        literals++;
      }
    }
    this.pieces = pieces;
    this.literals = literals;
  }

  matches(name: string): boolean {
    const p = this.pieces;
    const chars = [...name];
    // Each literal consumes one character: a pattern with more literals than the name has characters
    // cannot match (this also bounds the work below by the name's length).
    if (this.literals > chars.length) return false;
    let cur = new Uint8Array(p.length + 1);
    let next = new Uint8Array(p.length + 1);
    cur[0] = 1;
    this.closure(cur);
    for (const c of chars) {
      next.fill(0);
      let any = false;
      for (let i = 0; i < p.length; i++) {
        if (!cur[i]) continue;
        const piece = p[i]!;
        if (piece.kind === 'lit') {
          if (piece.ch === c) next[i + 1] = 1;
        } else if (piece.kind === 'star' || c !== this.delimiter) {
          next[i] = 1; // the wildcard takes this character and may take more
        }
      }
      this.closure(next);
      for (let i = 0; i <= p.length; i++) if (next[i]) any = true;
      if (!any) return false;
      [cur, next] = [next, cur];
    }
    return cur[p.length] === 1;
  }

  /** A wildcard may match nothing: a state before one also stands after it. */
  private closure(states: Uint8Array): void {
    const p = this.pieces;
    for (let i = 0; i < p.length; i++) if (states[i] && p[i]!.kind !== 'lit') states[i + 1] = 1;
  }
}

/** Convenience for one name. */
export function wildcardMatch(pattern: string, name: string, delimiter: string): boolean {
  return new WildcardPattern(pattern, delimiter).matches(name);
}
