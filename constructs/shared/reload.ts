/**
 * The in-place reload of a stateless tier (lib/plan/reload.ts) as CDK: the SSM Command document and the
 * State Manager association that runs it on the tier's nodes, one at a time, whenever `contentHash` changes.
 */
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { RELOAD_TRIGGER_PARAMETER, type ReloadModel } from '../../lib/plan/reload.js';

export interface ReloadResources {
  readonly document: ssm.CfnDocument;
  readonly association: ssm.CfnAssociation;
}

export function inPlaceReload(scope: Construct, model: ReloadModel, contentHash: string): ReloadResources {
  const document = new ssm.CfnDocument(scope, 'ReloadDocument', {
    name: model.documentName,
    documentType: 'Command',
    content: model.document,
    // A changed script must not collide with the document's fixed name (CloudFormation replaces by name).
    updateMethod: 'NewVersion',
  });
  const association = new ssm.CfnAssociation(scope, 'ReloadAssociation', {
    name: document.ref,
    associationName: model.associationName,
    documentVersion: '$LATEST',
    targets: Object.entries(model.targetTags).map(([k, v]) => ({ key: `tag:${k}`, values: [v] })),
    parameters: { [RELOAD_TRIGGER_PARAMETER]: [contentHash] },
    maxConcurrency: model.maxConcurrency,
    maxErrors: model.maxErrors,
  });
  return { document, association };
}
