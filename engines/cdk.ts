/**
 * The CDK engine as the parity suite and `mailfleet synth --engine cdk` see it: synthesize the CDK
 * app's stacks in-process and hand back each region's CloudFormation template.
 */
import type { Plan } from '../lib/plan/types.js';
import { MailfleetError } from '../lib/errors.js';
import type { RegionTemplate } from './extract/cloudformation.js';

export interface CdkSynthResult {
  readonly outDir: string;
  readonly templates: RegionTemplate[];
}

export function synthCdk(_plan: Plan, _outDir: string): CdkSynthResult {
  throw new MailfleetError('BAD_REQUEST', 'the CDK stacks (stacks/, constructs/) are not in this tree yet');
}
