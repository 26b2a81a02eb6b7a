/**
 * Alarms that can notify and watch metrics that exist: the alarm topic's key lets CloudWatch publish, and
 * the self-signed-certificate alarm watches the gauge the mail node's rendered files send (producer read
 * from the node-files bundle, consumer from the synthesized template).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { cleanupApps, examplePlan, synthPlatform } from './helpers.js';
import { selfSignedProducer, type CfnAlarm } from '../render/metric-producers.js';

after(cleanupApps);

type Res = { Type: string; Properties: Record<string, unknown> };
type Statement = { Effect: string; Principal?: { Service?: string }; Action: string | string[]; Condition?: Record<string, Record<string, string>> };

describe('the primary stack of primary-dr.yaml', () => {
  const plan = examplePlan('examples/primary-dr.yaml');
  let resources: Record<string, Res>;
  let account: string;
  before(() => {
    const { stacks } = synthPlatform(plan, { validation: false });
    resources = Template.fromStack(stacks.primary).toJSON().Resources as Record<string, Res>;
    account = plan.regions!.primary.account;
  });
  const ofType = (t: string) => Object.entries(resources).filter(([, r]) => r.Type === t);

  test('THEN the alarm topic is encrypted with a rotated customer-managed key whose policy lets CloudWatch use it, and its policy lets CloudWatch publish', () => {
    const [[, topic]] = ofType('AWS::SNS::Topic') as [[string, Res]];
    const keyRef = (topic.Properties.KmsMasterKeyId as { 'Fn::GetAtt'?: string[] })['Fn::GetAtt']?.[0];
    assert.ok(keyRef, `the topic's key is not one of the stack's keys: ${JSON.stringify(topic.Properties.KmsMasterKeyId)}`);
    const key = resources[keyRef]!;
    assert.equal(key.Type, 'AWS::KMS::Key');
    assert.equal(key.Properties.EnableKeyRotation, true);
    const keyStatements = (key.Properties.KeyPolicy as { Statement: Statement[] }).Statement;
    const cw = keyStatements.find((s) => s.Principal?.Service === 'cloudwatch.amazonaws.com');
    assert.ok(cw, 'no key statement for cloudwatch.amazonaws.com');
    assert.deepEqual([cw.Action].flat().sort(), ['kms:Decrypt', 'kms:GenerateDataKey*']);
    assert.deepEqual(cw.Condition, { StringEquals: { 'aws:SourceAccount': account } });
    const policies = ofType('AWS::SNS::TopicPolicy').flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
    const publish = policies.find((s) => s.Effect === 'Allow' && s.Principal?.Service === 'cloudwatch.amazonaws.com');
    assert.ok(publish, 'no topic statement lets CloudWatch publish');
    assert.equal(publish.Action, 'sns:Publish');
    assert.deepEqual(publish.Condition, { StringEquals: { 'aws:SourceAccount': account } });
  });

  test('THEN every Auto Scaling group that notifies the topic can encrypt under its key: the key lets the Auto Scaling service-linked role use it', () => {
    const notified = ofType('AWS::AutoScaling::AutoScalingGroup').flatMap(([, r]) => ((r.Properties.NotificationConfigurations ?? []) as { TopicARN?: unknown }[]).map((n) => JSON.stringify(n.TopicARN)));
    assert.ok(notified.length > 0, 'no group sends notifications (the statement would be unneeded)');
    const [[topicId, topic]] = ofType('AWS::SNS::Topic') as [[string, Res]];
    for (const t of notified) assert.equal(t, JSON.stringify({ Ref: topicId }));
    const key = resources[(topic.Properties.KmsMasterKeyId as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!]!;
    type KeyStatement = Statement & { Principal?: { AWS?: string }; Condition?: Record<string, Record<string, unknown>> };
    const stmts = (key.Properties.KeyPolicy as { Statement: KeyStatement[] }).Statement;
    const asg = stmts.find((s) => JSON.stringify(s.Condition?.ArnEquals?.['aws:PrincipalArn'] ?? '').includes('role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling'));
    assert.ok(asg, `no key statement for the Auto Scaling service-linked role: ${JSON.stringify(stmts.map((s) => s.Principal))}`);
    assert.equal(asg.Effect, 'Allow');
    assert.deepEqual([asg.Action].flat().sort(), ['kms:Decrypt', 'kms:GenerateDataKey*']);
    assert.deepEqual(asg.Condition?.StringEquals, { 'kms:CallerAccount': account });
  });

  test('THEN an alarm to the topic watches the gauge mail nodes send while they serve their generated certificate', () => {
    const producer = selfSignedProducer(plan);
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties as unknown as CfnAlarm);
    const a = alarms.find((x) => x.MetricName === producer.metricName);
    assert.ok(a, `no alarm on ${producer.metricName}`);
    assert.equal(a.Namespace, producer.namespace);
    const dims = a.Dimensions.map((d) => d.Name);
    assert.ok(producer.dimensionSets.some((set) => set.join() === dims.join()), `alarm dimensions [${dims}] are no set the agent aggregates on`);
    // The dimension is the mail group's name.
    const [[mailAsgId]] = ofType('AWS::AutoScaling::AutoScalingGroup').filter(([, r]) => JSON.stringify(r.Properties.Tags ?? []).includes('"mail"')) as [[string, Res]];
    assert.deepEqual(a.Dimensions[0]!.Value, { Ref: mailAsgId });
    assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(a.Threshold, 1);
    const [[topicId]] = ofType('AWS::SNS::Topic') as [[string, Res]];
    assert.deepEqual(a.AlarmActions, [{ Ref: topicId }]);
  });
});
