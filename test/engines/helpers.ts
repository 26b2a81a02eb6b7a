/** Plans of the example specs the engine tests share. */
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';

export const EXAMPLES = ['single-region', 'primary-dr'] as const;
export type Example = (typeof EXAMPLES)[number];

export function examplePlan(name: Example): Plan {
  return buildPlan(loadSpec(`examples/${name}.yaml`).spec);
}
