/** The LIST/LSUB wildcard matcher: same answers as the regular expression it replaced, in linear time. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { wildcardMatch, WildcardPattern } from '../../lib/daemon/imap/wildcard.js';

/** The old compiled form, as the reference for short inputs (the test may backtrack; the daemon may not). */
function reference(pattern: string, name: string): boolean {
  let re = '';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '%') re += '[^.]*';
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(name);
}

describe('IMAP wildcard matcher', () => {
  it('matches RFC 3501 examples: * crosses the delimiter, % does not', () => {
    assert.equal(wildcardMatch('*', 'a.b.c', '.'), true);
    assert.equal(wildcardMatch('%', 'a.b', '.'), false);
    assert.equal(wildcardMatch('%', 'Sent', '.'), true);
    assert.equal(wildcardMatch('a.%', 'a.b', '.'), true);
    assert.equal(wildcardMatch('a.%', 'a.b.c', '.'), false);
    assert.equal(wildcardMatch('a*c', 'a.b.c', '.'), true);
    assert.equal(wildcardMatch('', '', '.'), true);
    assert.equal(wildcardMatch('x', '', '.'), false);
    assert.equal(wildcardMatch('%%*x', 'ab.cx', '.'), true);
  });

  it('agrees with the regular expression on random short patterns and names', () => {
    const ch = fc.constantFrom('a', 'b', '.', '*', '%');
    const nm = fc.constantFrom('a', 'b', '.');
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 8 }), fc.array(nm, { maxLength: 10 }), (p, n) => {
        const pattern = p.join('');
        const name = n.join('');
        assert.equal(wildcardMatch(pattern, name, '.'), reference(pattern, name), `${pattern} vs ${name}`);
      }),
      { numRuns: 3000, seed: 16 },
    );
  });

  it('"%*%*…x" against a 200-character name takes milliseconds, not minutes', () => {
    const name = 'a'.repeat(200);
    const t = performance.now();
    for (const k of [3, 10, 1000, 20_000]) assert.equal(new WildcardPattern(`${'%*'.repeat(k)}x`, '.').matches(name), false);
    assert.equal(new WildcardPattern(`${'%a'.repeat(100)}*`, '.').matches(name), true);
    assert.ok(performance.now() - t < 200, `took ${performance.now() - t} ms`);
  });
});
