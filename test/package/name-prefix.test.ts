/**
 * One plan composed twice in one stack: namePrefix keeps the physical names apart, and the nodes of
 * each instance read their own names (the rendered user data, role scripts and HAProxy config agree
 * with what the constructs create).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { FlowControlTier } from '../../constructs/flow-control-tier/index.js';
import { MailServerFleet } from '../../constructs/mail-server-fleet/index.js';
import { withNamePrefix } from '../../lib/render/node-layout.js';
import { fixture, single } from '../constructs/fixture.js';
import { cleanupApps } from '../stacks/helpers.js';

/** Name → logical ids, for the resource types whose names must be unique per account and region. */
function namesUsedTwice(t: Template): string[] {
  const seen = new Map<string, string[]>();
  for (const [type, field] of [
    ['AWS::SSM::Parameter', 'Name'],
    ['AWS::SecretsManager::Secret', 'Name'],
    ['AWS::Logs::LogGroup', 'LogGroupName'],
  ] as const) {
    for (const [id, r] of Object.entries(t.findResources(type))) {
      const name = (r as { Properties?: Record<string, unknown> }).Properties?.[field];
      if (name === undefined) continue;
      const key = `${type} ${JSON.stringify(name)}`;
      seen.set(key, [...(seen.get(key) ?? []), id]);
    }
  }
  return [...seen].filter(([, ids]) => ids.length > 1).map(([k]) => k);
}

function composeTwice(prefixes: readonly (string | undefined)[]) {
  const { stack, vpc, zone } = fixture();
  const plan = single();
  const parts = prefixes.map((namePrefix, i) => {
    const fleet = new MailServerFleet(stack, `Fleet${i}`, { plan, vpc, privateZone: zone, namePrefix });
    const edge = new FlowControlTier(stack, `Edge${i}`, { plan, vpc, namePrefix });
    fleet.allowProxyFrom(edge.securityGroup);
    return { fleet, edge };
  });
  return { t: Template.fromStack(stack), parts };
}

describe('namePrefix', () => {
  after(cleanupApps);

  test('GIVEN one plan composed twice WITHOUT namePrefix THEN parameters and secrets collide (what namePrefix is for)', () => {
    const { t } = composeTwice([undefined, undefined]);
    const twice = namesUsedTwice(t);
    assert.ok(twice.includes('AWS::SSM::Parameter "/mailfleet/acme-mail/daemon-bundle"'), twice.join('\n'));
    assert.ok(twice.includes('AWS::SecretsManager::Secret "mailfleet/acme-mail/admin-token"'), twice.join('\n'));
  });

  test('GIVEN one plan composed twice with namePrefix blue and green THEN no name is used twice, and each instance\'s nodes read their own names', () => {
    const { t, parts } = composeTwice(['mail/blue', 'mail/green']);
    assert.deepEqual(namesUsedTwice(t), []);
    t.hasResourceProperties('AWS::SSM::Parameter', { Name: '/mail/blue/daemon-bundle' });
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'mail/green/tls' });
    for (const [i, p] of (['mail/blue', 'mail/green'] as const).entries()) {
      const { fleet, edge } = parts[i]!;
      const file = (files: typeof fleet.nodeFiles.files, path: string) => files.find((f) => f.path === path)!.content;
      // What the nodes read at boot is what this instance created.
      assert.match(file(fleet.nodeFiles.files, 'bootstrap/common.sh'), new RegExp(`MAILFLEET_PREFIX='/${p}'`));
      assert.match(file(fleet.nodeFiles.files, 'bootstrap/mail.sh'), new RegExp(`secret '${p}/admin-token'`));
      // The edge resolves this instance's mail nodes, under the name they register in the shared zone.
      const label = `mailfleetd--${p.replace('/', '--')}.acme-mail.internal`;
      const haproxy = edge.nodeFiles.files.find((f) => f.path.endsWith('haproxy.cfg'))!.content;
      assert.ok(haproxy.includes(` ${label}:`), `haproxy.cfg of ${p} resolves ${label}`);
      // …and the only name its nodes may register (the fleet role's Route 53 condition).
      assert.ok(JSON.stringify(t.toJSON()).includes(`"${label}"`), `IAM condition names ${label}`);
    }
  });

  test('fails when namePrefix is not a name every service accepts', () => {
    for (const bad of ['Mail', 'mail//blue', '/mail', 'mail_blue', 'x'.repeat(52)])
      assert.throws(() => withNamePrefix(single(), bad), /namePrefix .*lowercase letters, digits and '-'/, bad);
    assert.equal(withNamePrefix(single(), undefined).namePrefix, undefined);
  });
});
