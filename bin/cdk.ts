/**
 * The CDK app (cdk.json: "app": "npx tsx bin/cdk.ts"). Synthesizes the primary and DR stacks of the
 * spec named by context `spec` (cdk synth -c spec=examples/x.yaml), env MAILFLEET_SPEC, or
 * examples/primary-dr.yaml. Offline: explicit accounts, regions and AZs, no lookups.
 */
import { App } from 'aws-cdk-lib';
import { platformApp, retiredLinkContext } from '../stacks/index.js';

const app = new App();
platformApp(app);
const retired = retiredLinkContext(app);
// The link no longer comes from context (docs/cdk.md "Linking the regions"): the values are ignored, the templates are the same.
if (retired.length > 0) process.stderr.write(`mailfleet: ignoring context ${retired.join(', ')}: the DR stack links the regions itself\n`);
app.synth();
