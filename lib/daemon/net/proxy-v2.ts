/**
 * PROXY protocol version 2 (haproxy.org/download/2.6/doc/proxy-protocol.txt): a pure parser and encoder.
 *
 * The parser never throws: it answers `incomplete` (wait for more bytes), `invalid` (close the
 * connection) or `header` with the number of bytes the header took. TLVs are read when well formed and
 * otherwise ignored: the daemon only needs the addresses. The encoder exists for tests and for peers
 * that put a header in front of a connection (bench clients, HAProxy stand-ins).
 */

/** The 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature + version/command + family/transport + 2-byte length. */
export const PROXY_V2_FIXED_LENGTH = 16;
/** A header longer than this is refused (the spec allows 64 KiB; HAProxy sends a few hundred bytes). */
export const PROXY_V2_MAX_LENGTH = 4096;

export type ProxyCommand = 'local' | 'proxy';
export type ProxyFamily = 'unspec' | 'inet' | 'inet6' | 'unix';
export type ProxyTransport = 'unspec' | 'stream' | 'dgram';

export interface ProxyEndpoint {
  /** Textual address: dotted IPv4, compressed IPv6 (lower-case), or a UNIX path. */
  readonly address: string;
  /** 0 for UNIX sockets. */
  readonly port: number;
}

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export interface ProxyHeader {
  readonly command: ProxyCommand;
  readonly family: ProxyFamily;
  readonly transport: ProxyTransport;
  /** Absent for LOCAL and for the UNSPEC family: use the socket's own addresses then. */
  readonly source?: ProxyEndpoint;
  readonly destination?: ProxyEndpoint;
  readonly tlvs: readonly ProxyTlv[];
}

export type ProxyParseResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly length: number };

const FAMILIES: Record<number, ProxyFamily> = { 0: 'unspec', 1: 'inet', 2: 'inet6', 3: 'unix' };
const TRANSPORTS: Record<number, ProxyTransport> = { 0: 'unspec', 1: 'stream', 2: 'dgram' };
const ADDRESS_LENGTH: Record<ProxyFamily, number> = { unspec: 0, inet: 12, inet6: 36, unix: 216 };

/** Reads a PROXY v2 header from the start of `buf`. */
export function parseProxyV2(buf: Buffer, maxLength = PROXY_V2_MAX_LENGTH): ProxyParseResult {
  const sigBytes = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, sigBytes).equals(PROXY_V2_SIGNATURE.subarray(0, sigBytes))) {
    return { kind: 'invalid', reason: 'no PROXY v2 signature' };
  }
  if (buf.length < PROXY_V2_FIXED_LENGTH) return { kind: 'incomplete' };

  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: `unsupported PROXY version ${verCmd >> 4}` };
  const cmdNibble = verCmd & 0x0f;
  if (cmdNibble > 1) return { kind: 'invalid', reason: `unknown PROXY command ${cmdNibble}` };
  const command: ProxyCommand = cmdNibble === 0 ? 'local' : 'proxy';

  const famByte = buf[13]!;
  const family = FAMILIES[famByte >> 4];
  const transport = TRANSPORTS[famByte & 0x0f];
  if (!family || !transport) return { kind: 'invalid', reason: `unknown address family/transport 0x${famByte.toString(16)}` };

  const bodyLength = buf.readUInt16BE(14);
  const total = PROXY_V2_FIXED_LENGTH + bodyLength;
  if (total > maxLength) return { kind: 'invalid', reason: `PROXY header of ${total} bytes exceeds ${maxLength}` };
  if (buf.length < total) return { kind: 'incomplete' };

  const body = buf.subarray(PROXY_V2_FIXED_LENGTH, total);
  const addrLength = ADDRESS_LENGTH[family];
  if (body.length < addrLength) return { kind: 'invalid', reason: `address block of ${body.length} bytes is short for ${family}` };

  let source: ProxyEndpoint | undefined;
  let destination: ProxyEndpoint | undefined;
  if (family === 'inet') {
    source = { address: ipv4ToString(body.subarray(0, 4)), port: body.readUInt16BE(8) };
    destination = { address: ipv4ToString(body.subarray(4, 8)), port: body.readUInt16BE(10) };
  } else if (family === 'inet6') {
    source = { address: ipv6ToString(body.subarray(0, 16)), port: body.readUInt16BE(32) };
    destination = { address: ipv6ToString(body.subarray(16, 32)), port: body.readUInt16BE(34) };
  } else if (family === 'unix') {
    source = { address: cString(body.subarray(0, 108)), port: 0 };
    destination = { address: cString(body.subarray(108, 216)), port: 0 };
  }

  const header: ProxyHeader = {
    command,
    family,
    transport,
    // LOCAL (health checks from the proxy itself): the addresses carry no meaning.
    ...(command === 'proxy' && source ? { source, destination } : {}),
    tlvs: readTlvs(body.subarray(addrLength)),
  };
  return { kind: 'header', header, length: total };
}

export interface ProxyEncodeInput {
  readonly command?: ProxyCommand;
  readonly transport?: ProxyTransport;
  /** Required for PROXY; the family follows from the address (IPv4 or IPv6). */
  readonly source?: ProxyEndpoint;
  readonly destination?: ProxyEndpoint;
  readonly tlvs?: readonly ProxyTlv[];
}

/** Builds a PROXY v2 header (INET, INET6 or LOCAL/UNSPEC). */
export function encodeProxyV2(input: ProxyEncodeInput): Buffer {
  const command = input.command ?? 'proxy';
  let famNibble = 0;
  let addr = Buffer.alloc(0);
  if (input.source && input.destination) {
    const v6 = input.source.address.includes(':');
    if (v6 !== input.destination.address.includes(':')) throw new Error('PROXY v2: source and destination families differ');
    famNibble = v6 ? 2 : 1;
    const toBytes = v6 ? ipv6ToBytes : ipv4ToBytes;
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(input.source.port, 0);
    ports.writeUInt16BE(input.destination.port, 2);
    addr = Buffer.concat([toBytes(input.source.address), toBytes(input.destination.address), ports]);
  } else if (command === 'proxy') {
    throw new Error('PROXY v2: a PROXY command needs source and destination');
  }
  const transportNibble = famNibble === 0 ? 0 : { unspec: 0, stream: 1, dgram: 2 }[input.transport ?? 'stream'];
  const tlvs = (input.tlvs ?? []).map((t) => {
    const h = Buffer.alloc(3);
    h.writeUInt8(t.type, 0);
    h.writeUInt16BE(t.value.length, 1);
    return Buffer.concat([h, t.value]);
  });
  const body = Buffer.concat([addr, ...tlvs]);
  const fixed = Buffer.alloc(4);
  fixed.writeUInt8(0x20 | (command === 'proxy' ? 1 : 0), 0);
  fixed.writeUInt8((famNibble << 4) | transportNibble, 1);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, fixed, body]);
}

function readTlvs(buf: Buffer): ProxyTlv[] {
  const out: ProxyTlv[] = [];
  let i = 0;
  while (i + 3 <= buf.length) {
    const len = buf.readUInt16BE(i + 1);
    if (i + 3 + len > buf.length) break; // malformed tail: ignored, the addresses are what matter
    out.push({ type: buf[i]!, value: Buffer.from(buf.subarray(i + 3, i + 3 + len)) });
    i += 3 + len;
  }
  return out;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('latin1');
}

function ipv4ToString(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv4ToBytes(s: string): Buffer {
  const parts = s.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`PROXY v2: bad IPv4 address ${s}`);
  return Buffer.from(parts);
}

/** RFC 5952 text: lower-case, longest zero run compressed; IPv4-mapped addresses as ::ffff:a.b.c.d. */
export function ipv6ToString(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${ipv4ToString(b.subarray(12, 16))}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function ipv6ToBytes(s: string): Buffer {
  let text = s;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = ipv4ToBytes(v4[1]!);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    // '::ffff:' keeps its '::'; '1:2:3:4:5:6:' loses the separator before the IPv4 part.
    text = text.slice(0, -v4[1]!.length);
    if (!text.endsWith('::')) text = text.replace(/:$/, '');
  }
  const halves = text.split('::');
  if (halves.length > 2) throw new Error(`PROXY v2: bad IPv6 address ${s}`);
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - tail.length - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) throw new Error(`PROXY v2: bad IPv6 address ${s}`);
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  if (groups.some((g) => Number.isNaN(g))) throw new Error(`PROXY v2: bad IPv6 address ${s}`);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
