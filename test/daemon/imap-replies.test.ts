import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MailfleetError } from '../../lib/errors.js';
import { errorReply } from '../../lib/daemon/imap/replies.js';

function fsError(): unknown {
  try {
    readFileSync('/nonexistent/mailfleet/uidlist');
  } catch (e) {
    return e;
  }
  throw new Error('expected ENOENT');
}

describe('IMAP error → reply mapping', () => {
  it('maps typed errors to RFC 5530 codes, BAD_REQUEST to BAD', () => {
    assert.deepEqual(errorReply('a1', new MailfleetError('STORE_FULL', 'full')), { line: 'a1 NO [OVERQUOTA] full', bad: false, internal: false });
    assert.equal(errorReply('a2', new MailfleetError('BAD_REQUEST', 'no')).line, 'a2 BAD no');
  });

  it('a raw file-system error that escaped the store is a temporary NO [UNAVAILABLE], not SERVERBUG (still logged as internal)', () => {
    const r = errorReply('a3', fsError());
    assert.equal(r.line, 'a3 NO [UNAVAILABLE] Mail store temporarily unavailable, try again later');
    assert.equal(r.internal, true);
  });

  it('anything else is NO [SERVERBUG]', () => {
    assert.equal(errorReply('a4', new TypeError('x is undefined')).line, 'a4 NO [SERVERBUG] Internal error, try again later');
  });
});
