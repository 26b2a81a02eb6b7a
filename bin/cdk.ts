/**
 * The CDK app (cdk.json: "app": "npx tsx bin/cdk.ts"). Synthesizes the primary and DR stacks of the
 * spec named by context `spec` (cdk synth -c spec=examples/x.yaml), env MAILFLEET_SPEC, or
 * examples/primary-dr.yaml. Offline: explicit accounts, regions and AZs, no lookups.
 */
import { App } from 'aws-cdk-lib';
import { buildPlan } from '../lib/plan/index.js';
import { loadSpec } from '../lib/spec/index.js';
import { addNagChecks, addPlatformStacks, linksFromContext } from '../stacks/index.js';

const app = new App();
const specFile = (app.node.tryGetContext('spec') as string | undefined) ?? process.env.MAILFLEET_SPEC ?? 'examples/primary-dr.yaml';
const plan = buildPlan(loadSpec(specFile).spec);
addPlatformStacks(app, plan, linksFromContext(app));
if (app.node.tryGetContext('nag') !== 'false') addNagChecks(app);
app.synth();
