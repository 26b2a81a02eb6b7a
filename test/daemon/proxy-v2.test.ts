import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeProxyV2, ipv6ToBytes, ipv6ToString, parseProxyV2, PROXY_V2_SIGNATURE } from '../../lib/daemon/net/proxy-v2.js';

describe('PROXY v2 parser', () => {
  it('GIVEN an IPv4 header followed by payload WHEN parsed THEN addresses, ports and length are read', () => {
    const h = encodeProxyV2({ source: { address: '203.0.113.7', port: 51000 }, destination: { address: '10.0.0.1', port: 25 } });
    const r = parseProxyV2(Buffer.concat([h, Buffer.from('EHLO x\r\n')]));
    assert.equal(r.kind, 'header');
    if (r.kind !== 'header') return;
    assert.equal(r.length, h.length);
    assert.equal(r.length, 28);
    assert.deepEqual(r.header.source, { address: '203.0.113.7', port: 51000 });
    assert.deepEqual(r.header.destination, { address: '10.0.0.1', port: 25 });
    assert.equal(r.header.command, 'proxy');
    assert.equal(r.header.family, 'inet');
    assert.equal(r.header.transport, 'stream');
  });

  it('GIVEN an IPv6 header with TLVs WHEN parsed THEN addresses are compressed text and TLVs are skipped over', () => {
    const h = encodeProxyV2({
      source: { address: '2001:db8::1', port: 1234 },
      destination: { address: '::ffff:192.0.2.9', port: 993 },
      tlvs: [
        { type: 0x01, value: Buffer.from('imap') },
        { type: 0x04, value: Buffer.alloc(0) },
      ],
    });
    const r = parseProxyV2(h);
    assert.equal(r.kind, 'header');
    if (r.kind !== 'header') return;
    assert.equal(r.length, h.length);
    assert.deepEqual(r.header.source, { address: '2001:db8::1', port: 1234 });
    assert.deepEqual(r.header.destination, { address: '::ffff:192.0.2.9', port: 993 });
    assert.deepEqual(
      r.header.tlvs.map((t) => [t.type, t.value.toString()]),
      [
        [1, 'imap'],
        [4, ''],
      ],
    );
  });

  it('GIVEN a LOCAL command (proxy health check) WHEN parsed THEN no addresses are reported', () => {
    const h = encodeProxyV2({ command: 'local' });
    const r = parseProxyV2(h);
    assert.equal(r.kind, 'header');
    if (r.kind !== 'header') return;
    assert.equal(r.header.command, 'local');
    assert.equal(r.header.source, undefined);
    assert.equal(r.length, 16);
  });

  it('GIVEN every truncation of a valid header WHEN parsed THEN it waits for more bytes', () => {
    const h = encodeProxyV2({ source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } });
    for (let n = 0; n < h.length; n++) assert.equal(parseProxyV2(h.subarray(0, n)).kind, 'incomplete', `at ${n} bytes`);
  });

  it('fails when the signature is wrong (a PROXY v1 line, plain SMTP)', () => {
    assert.equal(parseProxyV2(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')).kind, 'invalid');
    assert.equal(parseProxyV2(Buffer.from('EHLO')).kind, 'invalid');
    assert.equal(parseProxyV2(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])).kind, 'invalid');
  });

  it('fails when version, command or family is unknown, or the address block is short', () => {
    const good = encodeProxyV2({ source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } });
    const bad = (i: number, v: number) => {
      const b = Buffer.from(good);
      b[i] = v;
      return parseProxyV2(b).kind;
    };
    assert.equal(bad(12, 0x11), 'invalid');
    assert.equal(bad(12, 0x22), 'invalid');
    assert.equal(bad(13, 0x51), 'invalid');
    const short = Buffer.from(good.subarray(0, 20));
    short.writeUInt16BE(4, 14);
    assert.equal(parseProxyV2(short).kind, 'invalid');
  });

  it('fails when the declared length exceeds the maximum', () => {
    const b = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    assert.equal(parseProxyV2(b).kind, 'invalid');
  });

  it('property: random bytes never crash the parser and a header result is always within the input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, withSig) => {
        const buf = withSig ? Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from(bytes)]) : Buffer.from(bytes);
        const r = parseProxyV2(buf);
        if (r.kind === 'header') assert.ok(r.length <= buf.length && r.length >= 16);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: encode → parse round-trips IPv4 and IPv6 endpoints', () => {
    const v4 = fc.ipV4();
    const v6 = fc.ipV6().map((a) => ipv6ToString(ipv6ToBytes(a)));
    const port = fc.integer({ min: 0, max: 65535 });
    fc.assert(
      fc.property(fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)), port, port, ([s, d], sp, dp) => {
        const h = encodeProxyV2({ source: { address: s, port: sp }, destination: { address: d, port: dp } });
        const r = parseProxyV2(h);
        assert.equal(r.kind, 'header');
        if (r.kind !== 'header') return;
        assert.deepEqual(r.header.source, { address: s, port: sp });
        assert.deepEqual(r.header.destination, { address: d, port: dp });
      }),
      { numRuns: 500 },
    );
  });
});
