/** Address lists from the spec (CIDRs like '10.0.0.0/8' or '::1/128', or single addresses) as a node:net BlockList. */
import { BlockList, isIP, isIPv6 } from 'node:net';

export function networkList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/') as [string, string | undefined];
    const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

/**
 * One client network as an operator writes it (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`), checked
 * with node:net (no pattern matching); undefined when it is not one. The text is kept as written.
 */
export function parseNetwork(text: string): { address: string; bits: number; family: 4 | 6 } | undefined {
  if (text.length > 64) return undefined;
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, bits: max, family };
  const bitsText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  return bits <= max ? { address, bits, family } : undefined;
}
