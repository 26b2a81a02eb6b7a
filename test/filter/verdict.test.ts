/**
 * The pure parts of filtering: rspamd's verdict + the per-domain policy → one outcome per message (verdict.ts),
 * and header edits on a stored message (headers.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { editHeaders } from '../../lib/filter/headers.js';
import type { ScanResult } from '../../lib/filter/rspamd-client.js';
import { decide } from '../../lib/filter/verdict.js';
import { DEFAULT_FILTER_POLICY, effectiveFilterPolicy } from '../../lib/spec/defaults.js';

const result = (over: Partial<ScanResult>): ScanResult => ({ action: 'no action', score: 0, symbols: {}, ...over });
const base = { submission: false, messagePolicy: DEFAULT_FILTER_POLICY, virusSymbols: ['CLAM_VIRUS'] };

describe('filter verdict', () => {
  it('one reply for all recipients: refused only when every recipient\'s policy refuses; the others\' copies go to Junk', () => {
    const reject = { ...DEFAULT_FILTER_POLICY, spam: 'reject' as const };
    const junk = { ...DEFAULT_FILTER_POLICY, spam: 'junk' as const };
    const r = result({ action: 'reject', score: 20 });
    assert.equal(decide({ ...base, result: r, targetPolicies: [reject, reject] }).kind, 'reject');
    const mixed = decide({ ...base, result: r, targetPolicies: [reject, junk] });
    assert.equal(mixed.kind, 'deliver');
    assert.deepEqual(mixed.kind === 'deliver' && mixed.junk, [true, true]);
  });

  it('a virus is refused whatever the policy; rspamd\'s soft reject defers', () => {
    const junk = { ...DEFAULT_FILTER_POLICY, spam: 'junk' as const };
    const v = decide({ ...base, result: result({ action: 'reject', symbols: { CLAM_VIRUS: {} }, messages: { smtp_message: 'virus found: X\r\nInjected: 1' } }), targetPolicies: [junk] });
    assert.deepEqual(v, { kind: 'reject', reason: 'virus', text: 'virus found: X Injected: 1' });
    assert.equal(decide({ ...base, result: result({ action: 'soft reject' }), targetPolicies: [junk] }).kind, 'tempfail');
  });

  it('scores against the domain thresholds: Junk, X-Spam, subject prefix', () => {
    const p = effectiveFilterPolicy({ policy: { junkScore: 8, rewriteSubjectScore: 7, subjectPrefix: '[SPAM]' }, domains: {} });
    const low = decide({ ...base, result: result({ score: 5.5 }), targetPolicies: [p] });
    assert.ok(low.kind === 'deliver' && !low.junk[0] && low.edits.add?.some(([n]) => n === 'X-Spam') && low.edits.subjectPrefix === undefined);
    const mid = decide({ ...base, result: result({ score: 7.5 }), targetPolicies: [p] });
    assert.ok(mid.kind === 'deliver' && !mid.junk[0] && mid.edits.subjectPrefix === '[SPAM]');
    const high = decide({ ...base, result: result({ score: 9 }), targetPolicies: [p] });
    assert.ok(high.kind === 'deliver' && high.junk[0]);
  });

  it('submission: refused on spam, never filed to Junk, DKIM signature added', () => {
    const signed = decide({ ...base, submission: true, result: result({ score: 9, 'dkim-signature': 'v=1; d=example.com' }), targetPolicies: [DEFAULT_FILTER_POLICY] });
    assert.ok(signed.kind === 'deliver' && !signed.junk[0]);
    assert.deepEqual(signed.kind === 'deliver' && signed.edits.add, [['DKIM-Signature', 'v=1; d=example.com']]);
    assert.equal(decide({ ...base, submission: true, result: result({ action: 'reject' }), targetPolicies: [] }).kind, 'reject');
  });
});

describe('header edits', () => {
  it('removes what rspamd says (all, n-th), adds its headers and ours on top, prefixes the Subject, keeps the body bytes', () => {
    const msg = Buffer.from('Received: from x\r\nAuthentication-Results: forged\r\n\tcontinued\r\nSubject: hello\r\nX-Spam: Yes\r\n\r\nbody\r\nAuthentication-Results: in body\r\n');
    const out = editHeaders(msg, {
      milter: { remove_headers: { 'Authentication-Results': 0, 'X-Spam': 1 }, add_headers: { 'Authentication-Results': { value: 'mx.test;\r\n\tspf=pass', order: 1 } } },
      add: [['X-Spam', 'Yes']],
      subjectPrefix: '***SPAM***',
    }).toString('latin1');
    assert.equal(out, 'Authentication-Results: mx.test;\r\n\tspf=pass\r\nX-Spam: Yes\r\nReceived: from x\r\nSubject: ***SPAM*** hello\r\n\r\nbody\r\nAuthentication-Results: in body\r\n');
  });

  it('a value with a bare line break cannot start a new header field', () => {
    const out = editHeaders(Buffer.from('Subject: a\r\n\r\nb'), { add: [['X-Test', 'one\nInjected: two']] }).toString('latin1');
    assert.match(out, /^X-Test: one\r\n\tInjected: two\r\n/);
  });
});
