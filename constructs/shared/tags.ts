import { Tags } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { ROLE_TAG } from '../../engines/inventory.js';

export { ROLE_TAG };

/** Tags a construct tree with its node role; the inventory extractors and FIS targets read it. */
export function tagRole(scope: IConstruct, role: string): void {
  Tags.of(scope).add(ROLE_TAG, role);
}
