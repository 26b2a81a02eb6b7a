/** Stateful nodes (GlusterFS, OpenLDAP) boot a pinned image, not the latest one resolved at every deploy. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Template } from 'aws-cdk-lib/assertions';
import { platformModel } from '../../engines/platform.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec, specSchema } from '../../lib/spec/index.js';
import { cleanupApps, synthPlatform } from './helpers.js';

after(cleanupApps);

const STORAGE_AMI = 'ami-0aaaaaaaaaaaaaaa1';
const LDAP_AMI = 'ami-0bbbbbbbbbbbbbbb2';

function pinnedPlan() {
  const { spec } = loadSpec('examples/single-region.yaml');
  const regions = { ...spec.regions!, primary: { ...spec.regions!.primary, images: { storage: STORAGE_AMI, ldap: LDAP_AMI } } };
  return buildPlan(specSchema.parse({ ...spec, regions }));
}

type Cfn = { Type: string; Properties: Record<string, unknown> };

describe('pinned images for stateful nodes', () => {
  test('GIVEN regions.primary.images WHEN synthesized THEN storage and LDAP instances boot those images and the stateless tiers still follow the latest', () => {
    const s = synthPlatform(pinnedPlan(), { validation: false });
    const t = Template.fromStack(s.stacks.primary);
    const resources = t.toJSON().Resources as Record<string, Cfn>;
    const imageOfInstance = (r: Cfn) => {
      const ref = (r.Properties.LaunchTemplate as { LaunchTemplateId: { Ref: string } }).LaunchTemplateId.Ref;
      return (resources[ref]!.Properties.LaunchTemplateData as { ImageId: unknown }).ImageId;
    };
    const instances = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::EC2::Instance');
    const storage = instances.filter(([id]) => id.startsWith('Storage'));
    const ldap = instances.filter(([id]) => id.startsWith('Directory'));
    assert.equal(storage.length, 3);
    assert.equal(ldap.length, 2);
    for (const [, r] of storage) assert.equal(imageOfInstance(r), STORAGE_AMI);
    for (const [, r] of ldap) assert.equal(imageOfInstance(r), LDAP_AMI);
    // The stateless groups roll to new images on purpose (rolling update), so they keep the SSM lookup.
    const mailLt = Object.entries(resources).find(([id, r]) => r.Type === 'AWS::EC2::LaunchTemplate' && id.startsWith('Mail'))![1];
    assert.doesNotMatch(JSON.stringify((mailLt.Properties.LaunchTemplateData as { ImageId: unknown }).ImageId), /ami-0/);
    Annotations.fromStack(s.stacks.primary).hasNoWarning('*', Match.stringLikeRegexp('unpinned'));
  });

  test('GIVEN no pinned image THEN synth warns that storage and LDAP nodes follow the latest image', () => {
    const s = synthPlatform(buildPlan(loadSpec('examples/single-region.yaml').spec), { validation: false });
    // The nodes boot Debian 12 (constructs/shared/node-image.ts): the warning names that image, not Amazon Linux.
    const warnings = Annotations.fromStack(s.stacks.primary).findWarning('*', Match.stringLikeRegexp('follow the latest Debian 12 image'));
    assert.equal(warnings.length, 2);
    assert.equal(Annotations.fromStack(s.stacks.primary).findWarning('*', Match.stringLikeRegexp('Amazon Linux')).length, 0);
  });

  test('GIVEN regions.primary.images THEN the Terraform launch templates of storage and LDAP use them (no image lookup for them)', () => {
    const plan = pinnedPlan();
    const nodes = platformModel(plan).regions[0]!;
    assert.ok(nodes.storageNodes.every((n) => n.imageId === STORAGE_AMI) && nodes.ldapNodes.every((n) => n.imageId === LDAP_AMI));
    const lts = Object.values((terraformJson(plan) as { resource: { aws_launch_template: Record<string, { name: string; image_id: string }> } }).resource.aws_launch_template);
    assert.equal(lts.find((l) => l.name.endsWith('-storage'))!.image_id, STORAGE_AMI);
    assert.equal(lts.find((l) => l.name.endsWith('-ldap'))!.image_id, LDAP_AMI);
  });
});
