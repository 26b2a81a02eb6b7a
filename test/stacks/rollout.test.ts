/** Day-2 rollout: new boot content (daemon bundle, node files) is a new launch template, which the rolling update rolls out. */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { manifestPathOf } from '../../constructs/shared/daemon-bundle.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { FlowControlTier } from '../../constructs/flow-control-tier/index.js';
import { MailServerFleet } from '../../constructs/mail-server-fleet/index.js';
import { buildPlan } from '../../lib/plan/index.js';
import { specSchema } from '../../lib/spec/index.js';
import { fixture, single } from '../constructs/fixture.js';
import { cleanupApps } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-rollout-'));
after(() => {
  cleanupApps();
  rmSync(dir, { recursive: true, force: true });
});

/** A daemon bundle as an installed package ships it: the file and its manifest (lib: daemonBundle checks both). */
function bundle(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  const manifest = { bundle: name, sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text), sourceHash: '', sources: [] };
  writeFileSync(manifestPathOf(p), JSON.stringify(manifest));
  return p;
}

type Cfn = { Type: string; Properties: Record<string, unknown>; UpdatePolicy?: Record<string, unknown> };
const ofType = (t: Template, type: string) => Object.values(t.toJSON().Resources as Record<string, Cfn>).filter((r) => r.Type === type);
const launchData = (t: Template) => JSON.stringify(ofType(t, 'AWS::EC2::LaunchTemplate')[0]!.Properties.LaunchTemplateData);

function mailFleet(bundlePath: string): Template {
  const { stack, vpc, zone } = fixture();
  new MailServerFleet(stack, 'Mail', { plan: single(), vpc, privateZone: zone, daemonBundlePath: bundlePath });
  return Template.fromStack(stack);
}

describe('rollout of new boot content', () => {
  test('GIVEN a new daemon bundle WHEN synthesized THEN the mail launch template changes (content tag) and the group rolls with nodes kept in service', () => {
    const a = mailFleet(bundle('a.mjs', 'console.log("v1")\n'));
    const b = mailFleet(bundle('b.mjs', 'console.log("v2")\n'));
    assert.notEqual(launchData(a), launchData(b), 'a new bundle must change the launch template');
    assert.equal(launchData(a), launchData(mailFleet(bundle('a2.mjs', 'console.log("v1")\n'))), 'the same bundle keeps it');
    assert.match(launchData(a), /"Key":"mailfleet:content","Value":"[0-9a-f]{16}"/);
    const asg = ofType(a, 'AWS::AutoScaling::AutoScalingGroup')[0]!;
    assert.ok(asg.UpdatePolicy?.AutoScalingRollingUpdate, 'a rolling update replaces the nodes');
    assert.deepEqual((asg.Properties.LaunchTemplate as { Version: unknown }).Version, {
      'Fn::GetAtt': [Object.keys(a.findResources('AWS::EC2::LaunchTemplate'))[0], 'LatestVersionNumber'],
    });
  });

  test('GIVEN a new tenant WHEN synthesized THEN the HAProxy launch template changes (its haproxy.cfg is new content)', () => {
    const proxy = (domains: object[]) => {
      const plan = buildPlan(specSchema.parse({ ...single().spec, domains }));
      const { stack, vpc } = fixture();
      new FlowControlTier(stack, 'Edge', { plan, vpc });
      return Template.fromStack(stack);
    };
    const before = proxy([{ name: 'a.example' }]);
    const after = proxy([{ name: 'a.example' }, { name: 'b.example', listeners: 'dedicated' }]);
    assert.notEqual(launchData(before), launchData(after));
  });
});
