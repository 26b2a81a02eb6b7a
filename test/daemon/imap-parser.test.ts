import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ImapParser, type ParserEvent } from '../../lib/daemon/imap/parser.js';

const LIMITS = { maxLineLengthBytes: 200, maxLiteralBytes: 100 };

/** Feeds input, answering every continuation, and collects all events. */
function run(input: Buffer | string, chunkSize = 7, limits = LIMITS): ParserEvent[] {
  const p = new ImapParser(limits);
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  const out: ParserEvent[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) {
    p.push(buf.subarray(i, i + chunkSize));
    for (let ev = p.read(); ev; ev = p.read()) out.push(ev);
  }
  return out;
}

test('parses tags, UID commands, lists, quoted strings, literals and fetch sections', () => {
  const evs = run('a1 UID fetch 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10>)\r\na2 LOGIN "us\\"er" {3}\r\npwd\r\na3 APPEND INBOX (\\Seen) {2+}\r\nhi\r\n');
  assert.equal(evs.length, 4);
  const [e1, c, e2, e3] = evs;
  assert.deepEqual(e1, {
    kind: 'command',
    tag: 'a1',
    name: 'UID FETCH',
    args: [
      { t: 'atom', v: '1:*' },
      { t: 'list', v: [{ t: 'atom', v: 'FLAGS' }, { t: 'atom', v: 'BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10>' }] },
    ],
  });
  assert.deepEqual(c, { kind: 'continue', tag: 'a2', size: 3 });
  assert.equal(e2!.kind === 'command' && e2.args.map((a) => (a.t === 'string' ? a.v.toString() : '')).join('|'), 'us"er|pwd');
  assert.ok(e3!.kind === 'command' && e3.args[2]!.t === 'string' && e3.args[2]!.literal && e3.args[2]!.v.toString() === 'hi');
});

test('fails when a synchronising literal is over the limit: refused before it is read, stream continues', () => {
  const evs = run('a1 APPEND INBOX {101}\r\na2 NOOP\r\n');
  assert.deepEqual(evs[0], { kind: 'error', tag: 'a1', text: 'Literal too big (limit 100 octets)', code: 'TOOBIG' });
  assert.equal(evs[1]!.kind === 'command' && evs[1]!.name, 'NOOP');
});

test('fails when a LITERAL+ literal is over the limit: fatal, nothing more is parsed', () => {
  const evs = run('a1 APPEND INBOX {500+}\r\n' + 'x'.repeat(500) + '\r\na2 NOOP\r\n');
  assert.equal(evs.length, 1);
  assert.deepEqual(evs[0], { kind: 'error', tag: 'a1', text: 'Literal too big (limit 100 octets)', code: 'TOOBIG', fatal: true });
});

test('fails when a line is too long, or lists nest too deep, and recovers at the next line', () => {
  const evs = run('a1 NOOP ' + 'x'.repeat(300) + '\r\na2 X ' + '('.repeat(40) + '\r\na3 NOOP\r\n');
  assert.deepEqual(evs.map((e) => [e.kind, 'tag' in e ? e.tag : '']), [['error', 'a1'], ['error', 'a2'], ['command', 'a3']]);
});

test('line mode yields raw lines (IDLE DONE)', () => {
  const p = new ImapParser(LIMITS);
  p.setLineMode(true);
  p.push(Buffer.from('DONE\r\n'));
  assert.deepEqual(p.read(), { kind: 'line', line: 'DONE' });
});

test('property: any byte sequence gives commands or tagged errors, never a throw or a hang', () => {
  const valid = fc.constantFrom('a NOOP\r\n', 'b UID FETCH 1 (FLAGS)\r\n', 'c LOGIN {2}\r\nab "x"\r\n', 'd X {3+}\r\n', '{5}\r\n', '((((', '"\\', ')\r\n', '\n', '\r');
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)), fc.array(valid, { maxLength: 12 }).map((a) => Buffer.from(a.join(''), 'latin1')));
  fc.assert(
    fc.property(bytes, fc.integer({ min: 1, max: 64 }), (input, chunk) => {
      const t0 = Date.now();
      const evs = run(Buffer.concat([input, Buffer.from('\r\n')]), chunk);
      assert.ok(Date.now() - t0 < 500);
      for (const e of evs) {
        if (e.kind === 'command') assert.match(e.tag, /^[^\s(){%*"\\+]+$/);
        else if (e.kind === 'error') assert.ok(e.tag.length > 0 && e.text.length > 0);
        else assert.equal(e.kind, 'continue');
      }
      // Bounded: an unterminated line or a pending literal is all that may remain.
    }),
    { numRuns: 2000 },
  );
});
