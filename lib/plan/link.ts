/**
 * The link between the regions, engine-neutral: which facts each region publishes for the other (as SSM
 * parameters in its own region, under the names below), and which region owns the link resources.
 * The CDK stacks deploy one region at a time, so the stack deployed second (DR) reads the primary's
 * facts across regions and makes every link piece, the primary-side ones included (routes in the
 * primary's route tables, the primary's region zone on the DR VPC, EFS replication): redeploying the
 * primary never touches them. Terraform and Pulumi hold both regions in one program and make the same
 * pieces directly (engines/platform.ts `link`).
 */
import { ssmPrefix, type RegionRole } from '../render/node-layout.js';
import { managedAdOf } from './managed-ad.js';
import type { Plan } from './types.js';

/**
 * The facts a region publishes for the other one. `ad-dns-ips` (primary, Managed AD): the domain
 * controllers' DNS addresses, the targets of the DR region's Resolver forward rule.
 */
export type LinkFact = 'vpc-id' | 'cidr' | 'route-table-ids' | 'region-zone-id' | 'efs-id' | 'ad-dns-ips';

export interface LinkParameterModel {
  readonly fact: LinkFact;
  /** SSM parameter name in the publishing region. */
  readonly name: string;
  /** `route-table-ids` and `ad-dns-ips` are StringLists (comma-separated); the rest are Strings. */
  readonly type: 'String' | 'StringList';
  readonly description: string;
}

/** The region that owns the link resources: the one deployed second. */
export const LINK_OWNER: RegionRole = 'dr';

/** Stack names, one per region (`<platform>-primary`, `<platform>-dr`); every engine and the DR drill use them. */
export function stackNames(platform: string): { primary: string; dr: string } {
  return { primary: `${platform}-primary`, dr: `${platform}-dr` };
}

/** Prefix of a region's link parameters (no trailing slash). */
export function linkParameterPrefix(plan: Plan, role: RegionRole): string {
  return `${ssmPrefix(plan)}/link/${role}`;
}

/** The link parameters a region publishes, in a stable order; empty without a DR region. */
export function linkParametersOf(plan: Plan, role: RegionRole): LinkParameterModel[] {
  if (!plan.regions?.dr) return [];
  const p = linkParameterPrefix(plan, role);
  const param = (fact: LinkFact, description: string, type: 'String' | 'StringList' = 'String'): LinkParameterModel => ({
    fact,
    name: `${p}/${fact}`,
    type,
    description: `mailfleet ${plan.platform} ${role} region: ${description} (read by the other region's link)`,
  });
  return [
    param('vpc-id', 'VPC id'),
    param('cidr', 'VPC CIDR'),
    param('route-table-ids', 'private route tables', 'StringList'),
    param('region-zone-id', 'region-qualified private zone id'),
    ...(plan.storage.kind === 'efs' ? [param('efs-id', 'mail file system id')] : []),
    // The directory lives in the primary only; DR forwards the domain to its controllers.
    ...(role === 'primary' && managedAdOf(plan.directory) ? [param('ad-dns-ips', 'Managed AD domain controller DNS addresses', 'StringList')] : []),
  ];
}

/** Where a missing parameter points the operator: deploy the publishing region's stack first. */
export function missingLinkFactMessage(plan: Plan, role: RegionRole, name: string, region: string): string {
  return `link parameter ${name} not found in ${region}: deploy ${stackNames(plan.platform)[role]} first`;
}
