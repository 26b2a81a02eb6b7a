import { SecretValue } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { SecretModel } from '../../lib/plan/node-access.js';

/** One secret of the platform model (lib/plan/node-access.ts) as a CDK Secret. */
export function modelSecret(scope: Construct, s: SecretModel, replicaRegions: readonly string[]): secretsmanager.Secret {
  const v = s.value;
  return new secretsmanager.Secret(scope, s.id, {
    secretName: s.name,
    description: s.description,
    generateSecretString:
      v.kind === 'generated'
        ? { passwordLength: v.length, excludePunctuation: v.excludePunctuation, ...(v.requireEachIncludedType ? { requireEachIncludedType: true } : {}) }
        : v.kind === 'template'
          ? { secretStringTemplate: JSON.stringify(v.template), generateStringKey: v.generateKey }
          : undefined,
    secretStringValue: v.kind === 'literal' ? SecretValue.unsafePlainText(v.text) : undefined,
    replicaRegions: replicaRegions.map((region) => ({ region })),
  });
}
