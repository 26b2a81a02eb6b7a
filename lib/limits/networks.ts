/** Address lists from the spec (CIDRs like '10.0.0.0/8' or '::1/128', or single addresses) as a node:net BlockList. */
import { BlockList, isIPv6 } from 'node:net';

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
