import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { drStackNames } from '../lib/dr/aws-plan.js';
import { buildPlan } from '../lib/plan/build.js';
import { loadSpec } from '../lib/spec/index.js';
import type { Plan } from '../lib/plan/types.js';
import { MailPlatformStack } from './mail-platform-stack.js';

export interface PlatformStacks {
  readonly primary: MailPlatformStack;
  readonly dr?: MailPlatformStack;
}

/**
 * The stacks of one spec: the primary region, and the DR region when the spec has one. The construct id
 * is the stack name (`<platform>-primary`, `<platform>-dr`): `cdk deploy <name>` selects by id, and the
 * DR drill and the other engines use the same names (drStackNames).
 */
export function addPlatformStacks(app: App, plan: Plan): PlatformStacks {
  const names = drStackNames(plan.platform);
  const primary = new MailPlatformStack(app, names.primary, { plan, regionRole: 'primary', stackName: names.primary });
  const dr = plan.regions?.dr ? new MailPlatformStack(app, names.dr, { plan, regionRole: 'dr', stackName: names.dr }) : undefined;
  // The DR stack owns the link and reads the primary's link parameters (lib/plan/link.ts): deploy order only, no exports.
  dr?.addStackDependency(primary, 'the DR stack reads the primary region link parameters');
  return { primary, dr };
}

/**
 * The CDK app as bin/cdk.ts runs it: the spec named by context `spec`, env MAILFLEET_SPEC, or
 * examples/primary-dr.yaml; cdk-nag unless context `nag` is 'false'. Nothing else is read from
 * context: the regions link themselves (docs/cdk.md), so every deploy synthesizes the same templates.
 */
export function platformApp(app: App): PlatformStacks {
  const specFile = (app.node.tryGetContext('spec') as string | undefined) ?? process.env.MAILFLEET_SPEC ?? 'examples/primary-dr.yaml';
  const stacks = addPlatformStacks(app, buildPlan(loadSpec(specFile).spec));
  if (app.node.tryGetContext('nag') !== 'false') addNagChecks(app);
  return stacks;
}

/** cdk-nag AwsSolutions on every stack of the app; findings stop synthesis unless acknowledged with a reason. */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** Context keys the context-linked stacks read; now ignored (the DR stack owns the link, docs/cdk.md). */
export const RETIRED_LINK_CONTEXT = ['primaryVpcId', 'drVpcId', 'drPeeringConnectionId', 'drEfsFileSystemId'] as const;

/** The retired link context keys given to this app (bin/cdk.ts warns about them). */
export function retiredLinkContext(app: App): string[] {
  return RETIRED_LINK_CONTEXT.filter((k) => app.node.tryGetContext(k) !== undefined);
}
