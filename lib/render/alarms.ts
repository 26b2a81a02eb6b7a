/**
 * The platform's alarms and the alarm topic's encryption, declared once: the CDK constructs, Terraform
 * and Pulumi translate these. Every metric an alarm watches is one a producer publishes: NLB's own
 * per-target-group metrics, or what the nodes' CloudWatch agent publishes (lib/render/cloudwatch-agent.ts).
 */
import type { Plan, PlannedListener } from '../plan/types.js';
import {
  GROUP_DIMENSION,
  LISTENER_DIMENSION,
  LISTENER_SESSIONS_METRIC,
  SELF_SIGNED_CERT_METRIC,
  haproxyMetricNamespace,
  metricNamespace,
} from './cloudwatch-agent.js';

export type AlarmComparison = 'GreaterThanOrEqualToThreshold' | 'LessThanThreshold';

/** One single-metric CloudWatch alarm (Route 53 can only watch single-metric alarms). */
export interface MetricAlarmModel {
  readonly description: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly statistic: 'Sum' | 'Maximum' | 'Minimum';
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly threshold: number;
  readonly comparison: AlarmComparison;
  readonly treatMissingData: 'notBreaching' | 'breaching';
}

/** @default share of a listener's cap at which its saturation alarm fires */
export const SATURATION_RATIO = 0.8;

/**
 * A listener's saturation: sessions on its HAProxy frontend summed over every proxy node (each node sends
 * one sample a minute, so a one-minute Sum is the fleet total), at `ratio` of the cap times the shard's
 * minimum node count. Nodes of other shards carry the frontend too and add zeros.
 */
export function saturationAlarm(plan: Plan, l: PlannedListener, minNodes: number, ratio = SATURATION_RATIO): MetricAlarmModel {
  return {
    description: `${l.name}: connections near the listener cap (${l.limits.listenerConnections} per HAProxy node); run \`mailfleet top\` and \`mailfleet limit set\``,
    namespace: haproxyMetricNamespace(plan),
    metricName: LISTENER_SESSIONS_METRIC,
    dimensions: { [LISTENER_DIMENSION]: l.name },
    statistic: 'Sum',
    periodSeconds: 60,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    threshold: Math.max(1, Math.floor(ratio * l.limits.listenerConnections * Math.max(1, minNodes))),
    comparison: 'GreaterThanOrEqualToThreshold',
    // No proxy node up (pilot light) or no agent: nothing to saturate.
    treatMissingData: 'notBreaching',
  };
}

/** A mail node serves the certificate it generated (the TLS secret holds none): stands until one is stored. */
export function selfSignedCertAlarm(plan: Plan, mailGroupName: string): MetricAlarmModel {
  return {
    description: `${plan.platform}: a mail node serves a self-signed certificate for ${plan.hostname}; store the real one in the TLS secret and refresh the mail group (docs/cdk.md)`,
    namespace: metricNamespace(plan),
    metricName: SELF_SIGNED_CERT_METRIC,
    dimensions: { [GROUP_DIMENSION]: mailGroupName },
    statistic: 'Maximum',
    periodSeconds: 300,
    evaluationPeriods: 1,
    datapointsToAlarm: 1,
    threshold: 1,
    comparison: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
  };
}

/** NLB's metric of healthy targets per target group (dimensions TargetGroup, LoadBalancer). */
export const HEALTHY_HOSTS_METRIC = 'HealthyHostCount';

/**
 * The failover signal of one primary NLB shard: healthy HAProxy targets in its first listener's target
 * group. Every target group of a shard has the same targets and the same check (GET /healthz, 503 while
 * a mail backend has no server), so one stands for all. An emptied shard has no target group: the metric
 * has no data, which breaches, and its unused name fails over as before. docs/dr.md says why.
 */
export function serviceHealthAlarm(loadBalancerFullName: string, targetGroupFullName: string | undefined): MetricAlarmModel {
  return {
    description: 'No healthy HAProxy target (each reports 503 while no mail node answers): Route 53 fails this name over to DR',
    namespace: 'AWS/NetworkELB',
    metricName: HEALTHY_HOSTS_METRIC,
    dimensions: targetGroupFullName === undefined ? { LoadBalancer: loadBalancerFullName } : { LoadBalancer: loadBalancerFullName, TargetGroup: targetGroupFullName },
    statistic: 'Minimum',
    periodSeconds: 60,
    evaluationPeriods: 2,
    datapointsToAlarm: 2,
    threshold: 1,
    comparison: 'LessThanThreshold',
    // No datapoints means no one can say the shard serves.
    treatMissingData: 'breaching',
  };
}

/**
 * Route 53's answer while the alarm has too little data to decide (only right after it is created, as
 * missing data breaches): keep the last status, so a deploy does not fail the platform over.
 */
export const HEALTH_CHECK_INSUFFICIENT_DATA = 'LastKnownStatus';

/**
 * The alarm topic's key policy beyond the account root: CloudWatch may use the customer-managed key (a
 * topic under the AWS-managed alias/aws/sns key refuses CloudWatch's publishes). `account` is the
 * topic's own account (aws:SourceAccount).
 */
export function alarmTopicKeyStatement(account: string) {
  return {
    Sid: 'CloudWatchAlarmsUseTheKey',
    Effect: 'Allow',
    Principal: { Service: 'cloudwatch.amazonaws.com' },
    Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    Resource: '*',
    Condition: { StringEquals: { 'aws:SourceAccount': account } },
  } as const;
}

/**
 * Auto Scaling's service-linked role publishes the groups' launch/terminate notifications to the alarm
 * topic, and SNS encrypts them under the topic's key as that role: without this statement every
 * notification is refused by KMS. The role is matched by a condition, not named as the principal: a key
 * policy naming a principal that does not exist yet is rejected, and the role appears only with the
 * account's first Auto Scaling group, i.e. in this same deploy, after the key.
 */
export function alarmTopicAutoScalingKeyStatement(account: string, partition = 'aws') {
  return {
    Sid: 'AutoScalingNotificationsUseTheKey',
    Effect: 'Allow',
    Principal: { AWS: '*' },
    Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    Resource: '*',
    Condition: {
      StringEquals: { 'kms:CallerAccount': account },
      ArnEquals: { 'aws:PrincipalArn': `arn:${partition}:iam::${account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling` },
    },
  } as const;
}

/** The topic policy statement letting this account's CloudWatch alarms publish. */
export function alarmTopicPublishStatement(account: string, topicArn: string) {
  return {
    Sid: 'CloudWatchAlarmsPublish',
    Effect: 'Allow',
    Principal: { Service: 'cloudwatch.amazonaws.com' },
    Action: 'sns:Publish',
    Resource: topicArn,
    Condition: { StringEquals: { 'aws:SourceAccount': account } },
  } as const;
}

/** The whole key policy where an engine writes it out (Terraform, Pulumi): the account administers, CloudWatch uses. */
export function alarmTopicKeyPolicy(account: string, partition = 'aws') {
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'AccountAdministers', Effect: 'Allow', Principal: { AWS: `arn:${partition}:iam::${account}:root` }, Action: 'kms:*', Resource: '*' },
      alarmTopicKeyStatement(account),
    ],
  };
}

/** The whole topic policy where an engine writes it out: CloudWatch publishes; nothing over plain HTTP. */
export function alarmTopicPolicy(account: string, topicArn: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      alarmTopicPublishStatement(account, topicArn),
      { Sid: 'EnforceTls', Effect: 'Deny', Principal: '*', Action: 'sns:Publish', Resource: topicArn, Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
    ],
  };
}

/** Physical alarm names (Terraform and Pulumi need one; CDK lets CloudFormation name them). */
export const alarmName = (platform: string, region: string, what: string): string => `${platform}-${region}-${what}`;
