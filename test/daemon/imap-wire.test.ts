/**
 * Wire forms (lib/daemon/imap/wire.ts): istring's quick path for printable ASCII gives exactly what the
 * byte-wise check gives for any string, and serialize of an ENVELOPE-shaped value is unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { istring, istringBytes, serialize } from '../../lib/daemon/imap/wire.js';

/** The byte-wise form every string took before the quick path (RFC 3501 §4.3 quoted, else a literal). */
const reference = (v: string) => istringBytes(Buffer.from(v, 'utf8'));

test('istring: quoted or literal exactly as the byte-wise check decides, for any string (ASCII, quotes, CR/LF, 8-bit, 1023/1024 long)', () => {
  const edge = fc.constantFrom('', '"', '\\', 'a"b\\c', '\r\n', 'x\u0000y', '\u007f', 'é', '台北', 'x'.repeat(1023), 'x'.repeat(1024), '"'.repeat(1023));
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 200 }), edge), (s) => {
      assert.deepEqual(istring(s), reference(s));
    }),
  );
});

test('serialize: an ENVELOPE with 8-bit and quoted text keeps its wire form', () => {
  const out: Array<string | Buffer> = [];
  serialize(['Fri, 4 Dec 2026 07:00:00 +0000', 'say "hi"', [['Bench', null, 'bench', 'example.net']], null, 42, 'Grüße'], out);
  const wire = Buffer.concat(out.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))).toString('utf8');
  assert.equal(wire, '("Fri, 4 Dec 2026 07:00:00 +0000" "say \\"hi\\"" (("Bench" NIL "bench" "example.net")) NIL 42 {7}\r\nGrüße)');
});
