/**
 * Prop checks registered with Node.addValidation (the CDK convention): `cdk synth` reports every
 * conflict of every construct at once, each under the construct's path, instead of stopping at the first
 * `throw` in a constructor. Constructors still throw when the plan itself cannot be built (a storage kind
 * the construct does not serve): there is nothing sensible to construct then.
 */
import type { Construct } from 'constructs';

/** One rule: when `failed`, `message` names the props involved and their values. */
export interface PropRule {
  readonly failed: boolean;
  readonly message: string;
}

export function validateProps(scope: Construct, kind: string, rules: readonly PropRule[]): void {
  const messages = rules.filter((r) => r.failed).map((r) => `${kind}: ${r.message}`);
  if (messages.length > 0) scope.node.addValidation({ validate: () => messages });
}

/** `value` limited to [lo, hi], so a construct with conflicting props still builds far enough to be validated. */
export function clamp(value: number, lo: number, hi: number): number {
  return Math.min(Math.max(value, lo), Math.max(lo, hi));
}
