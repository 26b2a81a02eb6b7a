/**
 * The DATA bare-newline checks of lib/daemon/smtp/front-end.ts (smtp.bareNewline) as pure functions: a
 * message arrives in chunks cut anywhere, so a CRLF split across two chunks must never look bare, and
 * normalizing chunk by chunk must give what normalizing the whole message gives.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bareNewline, normalizeNewlines } from '../../lib/daemon/smtp/front-end.js';

/** Runs the checks over chunks the way onData does: `prev` is the last byte of what went before. */
function scan(chunks: Buffer[], normalize: boolean): { bare?: 'LF' | 'CR'; out: Buffer } {
  let prev = 10;
  const out: Buffer[] = [];
  for (let c of chunks) {
    const found = bareNewline(c, prev);
    if (found && !normalize) return { bare: found, out: Buffer.concat(out) };
    if (found) c = normalizeNewlines(c, prev);
    prev = c[c.length - 1] ?? prev;
    out.push(c);
  }
  return { out: Buffer.concat(out) };
}

/** A message body over CR, LF and 'a', cut into chunks at the given points. */
const message = fc
  .tuple(fc.array(fc.constantFrom(13, 10, 97), { maxLength: 60 }), fc.array(fc.nat({ max: 60 }), { maxLength: 6 }))
  .map(([bytes, cuts]) => {
    // smtp-server hands over the message with its final CRLF.
    const buf = Buffer.from([...bytes, 13, 10]);
    const points = [...new Set(cuts.map((c) => c % buf.length))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const p of points) {
      if (p > from) chunks.push(buf.subarray(from, p));
      from = Math.max(from, p);
    }
    chunks.push(buf.subarray(from));
    return { buf, chunks };
  });

/** The reference: a byte is bare when it is an LF not after CR, or a CR not before LF. */
function hasBare(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 10 && (i === 0 || b[i - 1] !== 13)) return true;
    if (b[i] === 13 && b[i + 1] !== 10) return true;
  }
  return false;
}

describe('DATA bare newline checks', () => {
  it('finds bare LF and bare CR, and not a CRLF split across chunks', () => {
    assert.equal(bareNewline(Buffer.from('a\r\nb\r\n'), 10), undefined);
    assert.equal(bareNewline(Buffer.from('a\nb\r\n'), 10), 'LF');
    assert.equal(bareNewline(Buffer.from('a\rb\r\n'), 10), 'CR');
    assert.equal(bareNewline(Buffer.from('a\r'), 10), undefined, 'a CR at the end waits for the next chunk');
    assert.equal(bareNewline(Buffer.from('\nb'), 13), undefined);
    assert.equal(bareNewline(Buffer.from('b\r\n'), 13), 'CR');
    assert.equal(bareNewline(Buffer.from('\n'), 10), 'LF', 'an empty first line ended by LF alone');
  });

  it('agrees with a byte-by-byte reference for any cut of the message (fast-check)', () => {
    fc.assert(
      fc.property(message, ({ buf, chunks }) => {
        assert.equal(scan(chunks, false).bare !== undefined, hasBare(buf));
      }),
      { seed: 16, numRuns: 2000 },
    );
  });

  it('normalizing chunk by chunk leaves no bare newline and equals normalizing the whole (fast-check)', () => {
    fc.assert(
      fc.property(message, ({ buf, chunks }) => {
        const whole = scan([buf], true).out;
        assert.equal(hasBare(whole), false);
        assert.deepEqual(scan(chunks, true).out, whole);
      }),
      { seed: 16, numRuns: 2000 },
    );
  });
});
