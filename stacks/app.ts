import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { drStackNames } from '../lib/dr/aws-plan.js';
import type { Plan } from '../lib/plan/types.js';
import { MailPlatformStack, type RegionLinks } from './mail-platform-stack.js';

export interface PlatformStacks {
  readonly primary: MailPlatformStack;
  readonly dr?: MailPlatformStack;
}

/**
 * The stacks of one spec: the primary region, and the DR region when the spec has one. The construct id
 * is the stack name (`<platform>-primary`, `<platform>-dr`): `cdk deploy <name>` selects by id, and the
 * DR drill and the other engines use the same names (drStackNames).
 */
export function addPlatformStacks(app: App, plan: Plan, links: RegionLinks = {}): PlatformStacks {
  const names = drStackNames(plan.platform);
  const primary = new MailPlatformStack(app, names.primary, { plan, regionRole: 'primary', links, stackName: names.primary });
  const dr = plan.regions?.dr ? new MailPlatformStack(app, names.dr, { plan, regionRole: 'dr', links, stackName: names.dr }) : undefined;
  return { primary, dr };
}

/** cdk-nag AwsSolutions on every stack of the app; findings stop synthesis unless acknowledged with a reason. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** Region links from cdk context (`-c primaryVpcId=vpc-…`); see docs/cdk.md for the CI order. */
export function linksFromContext(app: App): RegionLinks {
  const get = (k: string) => {
    const v = app.node.tryGetContext(k) as unknown;
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  return {
    primaryVpcId: get('primaryVpcId'),
    drVpcId: get('drVpcId'),
    drPeeringConnectionId: get('drPeeringConnectionId'),
    drEfsFileSystemId: get('drEfsFileSystemId'),
    managedAdDnsIps: get('managedAdDnsIps')?.split(',').map((ip) => ip.trim()),
  };
}
