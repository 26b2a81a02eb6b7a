/**
 * AWS Managed Microsoft AD as every engine and renderer sees it: the domain's names, the service account
 * the engines create in the customer OU, how cloud nodes resolve and reach the domain controllers, and
 * how their binds are protected. Pure: derived from the spec's baseDn and directory.tls only.
 */
import type { DirectorySpec, LdapDirectorySpec } from '../spec/schema.js';
import { dnsNameOfBaseDn, managedAdBindDn, managedAdCustomerOu, managedAdShortName, MANAGED_AD_SERVICE_ACCOUNT } from '../spec/directory-names.js';

/** How cloud nodes protect binds to the domain (spec directory.tls; docs/ldap.md). */
export type DirectoryTls = 'ldaps' | 'starttls' | 'none-in-vpc';

/** The CA bundle file the daemon verifies the domain controllers against (relative to its config folder). */
export const MANAGED_AD_CA_FILE = 'ldap-ca.pem';

export interface ManagedAdPlan {
  /** The domain's DNS name (`globex.example`): the directory's name and the forwarded zone. */
  readonly domain: string;
  /** NetBIOS name; also the name of the customer OU. */
  readonly shortName: string;
  /** `OU=<shortName>,DC=…`: where objects may be created. */
  readonly customerOu: string;
  /** sAMAccountName of the service account the engines create (Directory Service Data CreateUser). */
  readonly serviceAccount: string;
  /** Its DN, which the daemons bind with. */
  readonly bindDn: string;
  readonly tls: DirectoryTls;
  /**
   * URIs cloud daemons use: the domain's own name, which the domain controllers' DNS answers with every
   * controller (reached through the Resolver forward rule the engines create) and which the controllers'
   * certificates carry (the Kerberos Authentication / Domain Controller templates put it in the SAN).
   */
  readonly uris: readonly string[];
  readonly startTls: boolean;
  /** The CA bundle the daemon verifies against (from the ldap-ca secret); undefined without TLS. */
  readonly caFile?: string;
}

/** The managed AD of a plan's directory, or undefined when the engines create none. */
export function managedAdOf(directory: DirectorySpec): ManagedAdPlan | undefined {
  if (directory.kind !== 'ldap' || directory.provision !== 'managed-ad') return undefined;
  const domain = dnsNameOfBaseDn(directory.baseDn);
  const tls: DirectoryTls = directory.tls ?? (directory.startTls ? 'starttls' : 'ldaps');
  return {
    domain,
    shortName: managedAdShortName(domain),
    customerOu: managedAdCustomerOu(directory.baseDn),
    serviceAccount: MANAGED_AD_SERVICE_ACCOUNT,
    bindDn: managedAdBindDn(directory.baseDn),
    tls,
    uris: [`${tls === 'ldaps' ? 'ldaps' : 'ldap'}://${domain}`],
    startTls: tls === 'starttls',
    caFile: tls === 'none-in-vpc' ? undefined : MANAGED_AD_CA_FILE,
  };
}

/**
 * The directory as the plan holds it: with managed-ad the service account's DN is the one the engines
 * create (the spec may omit bindDn; the spec checks refuse any other).
 */
export function planDirectory(directory: DirectorySpec): DirectorySpec {
  const ad = managedAdOf(directory);
  return ad ? ({ ...(directory as LdapDirectorySpec), bindDn: ad.bindDn } satisfies LdapDirectorySpec) : directory;
}

/**
 * The function that creates the service account and sets its password from the bind secret: CloudFormation,
 * Terraform and Pulumi cannot create AD users, so each engine deploys this one handler
 * (lib/render/bind-account.ts) and runs it once the directory exists. It reads the password from
 * Secrets Manager itself: the value never passes through a template, a state file or an event.
 */
export const BIND_ACCOUNT_FUNCTION = {
  runtime: 'nodejs22.x',
  handler: 'index.handler',
  /** Enabling Directory Data Access takes minutes; the provider framework allows up to 15. */
  timeoutSeconds: 900,
  /** Actions on the directory (its ARN). */
  directoryActions: [
    'ds:DescribeDirectoryDataAccess',
    'ds:EnableDirectoryDataAccess',
    'ds:ResetUserPassword',
    'ds:AccessDSData',
    'ds-data:CreateUser',
    'ds-data:DescribeUser',
  ],
  /** Actions on the bind secret (its ARN). */
  secretActions: ['secretsmanager:GetSecretValue'],
} as const;

/** What the function is invoked with (CloudFormation ResourceProperties, or the whole event elsewhere). */
export interface BindAccountInput {
  readonly DirectoryId: string;
  readonly SamAccountName: string;
  /** ARN of the bind secret: the function reads the password itself. */
  readonly SecretArn: string;
}

