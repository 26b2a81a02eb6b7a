/**
 * Names a directory's base DN implies, for AWS Managed Microsoft AD: the domain's DNS name, its NetBIOS
 * name, the OU AWS creates for the customer and the service account the engines create there. One home
 * for the spec's checks, the plan, the renderers and every engine.
 */

/** `DC=globex,DC=example` → `globex.example` (the Managed AD's DNS name). */
export function dnsNameOfBaseDn(baseDn: string): string {
  return dcComponents(baseDn)
    .map((p) => p.slice(3))
    .join('.')
    .toLowerCase();
}

/** NetBIOS name of a Managed AD: the domain's first label, upper case, at most 15 characters. */
export function managedAdShortName(dnsName: string): string {
  return dnsName.split('.')[0]!.toUpperCase().slice(0, 15);
}

/** The DC= part of a DN, spelled `DC=a,DC=b` (the domain's root). */
export function domainRootDn(baseDn: string): string {
  return dcComponents(baseDn)
    .map((p) => `DC=${p.slice(3)}`)
    .join(',');
}

/**
 * The OU AWS Managed AD creates for the customer, named after the directory's NetBIOS name: the only
 * place its delegated admins (and the Directory Service Data API) may create objects.
 */
export function managedAdCustomerOu(baseDn: string): string {
  return `OU=${managedAdShortName(dnsNameOfBaseDn(baseDn))},${domainRootDn(baseDn)}`;
}

/** sAMAccountName of the service account the engines create in the customer OU (at most 20 characters). */
export const MANAGED_AD_SERVICE_ACCOUNT = 'mailfleet-svc';

/**
 * DN of the service account: the Directory Service Data API's CreateUser puts users in the customer OU's
 * Users OU, with the sAMAccountName as CN.
 */
export function managedAdBindDn(baseDn: string): string {
  return `CN=${MANAGED_AD_SERVICE_ACCOUNT},OU=Users,${managedAdCustomerOu(baseDn)}`;
}

/** Lower-cased, spaces around separators removed: DNs compared as AD compares them (case-insensitive). */
export function normalizeDn(dn: string): string {
  return dn
    .split(',')
    .map((p) => p.trim().replace(/\s*=\s*/, '='))
    .join(',')
    .toLowerCase();
}

function dcComponents(dn: string): string[] {
  return dn
    .split(',')
    .map((p) => p.trim())
    .filter((p) => /^dc=/i.test(p));
}
