/** Names a directory's base DN implies, for the engines that create a Managed Microsoft AD. */

/** `DC=globex,DC=example` → `globex.example` (the Managed AD's DNS name). */
export function dnsNameOfBaseDn(baseDn: string): string {
  return baseDn
    .split(',')
    .map((p) => p.trim())
    .filter((p) => /^dc=/i.test(p))
    .map((p) => p.slice(3))
    .join('.')
    .toLowerCase();
}

/** NetBIOS name of a Managed AD: the domain's first label, upper case, at most 15 characters. */
export function managedAdShortName(dnsName: string): string {
  return dnsName.split('.')[0]!.toUpperCase().slice(0, 15);
}
