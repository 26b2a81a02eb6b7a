/**
 * Literal bytes all IMAP sessions of one daemon may hold at once (imap.maxLiteralBytesInFlight). Each
 * literal is reserved when announced, before a byte of it is read, and released once its command has
 * run (or the session ended): 20 clients announcing 50 MB APPENDs at once get NO [LIMIT] instead of
 * taking a gigabyte.
 */
export class LiteralBudget {
  private used = 0;

  constructor(private readonly limitBytes: number) {}

  /** Reserves `bytes`; false (nothing reserved) when that would pass the limit. */
  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  get usedBytes(): number {
    return this.used;
  }
}
