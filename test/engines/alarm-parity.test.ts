/**
 * Alarm parity: CDK, Terraform and Pulumi give the same alarms (metric, dimensions, statistic, threshold,
 * missing-data rule) and the same failover health checks, read back from each engine's real output.
 * Dimension values that reference resources differ by engine syntax and are compared by name only;
 * listener names are compared by value.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthCdk } from '../../engines/cdk.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { examplePlan } from './helpers.js';

interface Alarm {
  namespace: string;
  metric: string;
  dimensions: Record<string, unknown>;
  statistic: string;
  period: number;
  threshold: number;
  comparison: string;
  missing: string;
}

const plan = examplePlan('primary-dr');
const listenerNames = new Set(plan.listeners.map((l) => l.name));
const text = (a: Alarm) =>
  `${a.namespace} ${a.metric} [${Object.entries(a.dimensions)
    .map(([k, v]) => `${k}=${typeof v === 'string' && listenerNames.has(v) ? v : '<ref>'}`)
    .sort()
    .join(',')}] ${a.statistic}/${a.period} ${a.comparison} ${a.threshold} missing:${a.missing}`;

const results = new Map<string, { alarms: string[]; checks: string[] }>();

describe('alarm parity: primary-dr.yaml', () => {
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailfleet-cdk-'));
    try {
      const resources = synthCdk(plan, dir).templates.flatMap((t) => Object.entries((t.template.Resources ?? {}) as Record<string, { Type: string; Properties: Record<string, unknown> }>));
      const byId = new Map(resources);
      const cfnAlarm = (p: Record<string, unknown>): Alarm => ({
        namespace: p.Namespace as string,
        metric: p.MetricName as string,
        dimensions: Object.fromEntries((p.Dimensions as { Name: string; Value: unknown }[]).map((d) => [d.Name, d.Value])),
        statistic: p.Statistic as string,
        period: p.Period as number,
        threshold: p.Threshold as number,
        comparison: p.ComparisonOperator as string,
        missing: p.TreatMissingData as string,
      });
      results.set('cdk', {
        alarms: resources.filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm').map(([, r]) => text(cfnAlarm(r.Properties))).sort(),
        checks: resources
          .filter(([, r]) => r.Type === 'AWS::Route53::HealthCheck')
          .map(([, r]) => {
            const c = r.Properties.HealthCheckConfig as { Type: string; InsufficientDataHealthStatus: string; AlarmIdentifier: { Name: { Ref: string } } };
            return `${c.Type} ${c.InsufficientDataHealthStatus} ${text(cfnAlarm(byId.get(c.AlarmIdentifier.Name.Ref)!.Properties))}`;
          })
          .sort(),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    const tf = (terraformJson(plan).resource ?? {}) as Record<string, Record<string, Record<string, unknown>>>;
    const tfAlarm = (b: Record<string, unknown>): Alarm => ({
      namespace: b.namespace as string,
      metric: b.metric_name as string,
      dimensions: b.dimensions as Record<string, unknown>,
      statistic: b.statistic as string,
      period: b.period as number,
      threshold: b.threshold as number,
      comparison: b.comparison_operator as string,
      missing: b.treat_missing_data as string,
    });
    results.set('terraform', {
      alarms: Object.values(tf.aws_cloudwatch_metric_alarm ?? {}).map((b) => text(tfAlarm(b))).sort(),
      checks: Object.values(tf.aws_route53_health_check ?? {})
        .map((c) => {
          const address = /^\$\{aws_cloudwatch_metric_alarm\.([^.]+)\.alarm_name\}$/.exec(String(c.cloudwatch_alarm_name))?.[1];
          return `${String(c.type)} ${String(c.insufficient_data_health_status)} ${address ? text(tfAlarm(tf.aws_cloudwatch_metric_alarm![address]!)) : 'no alarm'}`;
        })
        .sort(),
    });

    const regs = await registrationsOf(plan);
    const pAlarms = regs.filter((r) => r.type === 'aws:cloudwatch/metricAlarm:MetricAlarm');
    const pAlarm = (i: Record<string, unknown>): Alarm => ({
      namespace: i.namespace as string,
      metric: i.metricName as string,
      dimensions: i.dimensions as Record<string, unknown>,
      statistic: i.statistic as string,
      period: i.period as number,
      threshold: i.threshold as number,
      comparison: i.comparisonOperator as string,
      missing: i.treatMissingData as string,
    });
    results.set('pulumi', {
      alarms: pAlarms.map((r) => text(pAlarm(r.inputs))).sort(),
      checks: regs
        .filter((r) => r.type === 'aws:route53/healthCheck:HealthCheck')
        .map((c) => {
          const a = pAlarms.find((x) => x.inputs.name === c.inputs.cloudwatchAlarmName);
          return `${String(c.inputs.type)} ${String(c.inputs.insufficientDataHealthStatus)} ${a ? text(pAlarm(a.inputs)) : 'no alarm'}`;
        })
        .sort(),
    });
  });

  it('THEN every listener has a saturation alarm per region, and each region one self-signed-certificate alarm, in CDK', () => {
    const cdk = results.get('cdk')!.alarms;
    for (const l of plan.listeners) assert.equal(cdk.filter((a) => a.includes(`proxy=${l.name}]`)).length, 2, l.name);
    assert.equal(cdk.filter((a) => a.includes('mailfleet_tls_self_signed')).length, 2);
  });

  for (const engine of ['terraform', 'pulumi']) {
    it(`THEN ${engine} has the alarms CDK has`, () => assert.deepEqual(results.get(engine)!.alarms, results.get('cdk')!.alarms));
    it(`THEN ${engine}'s failover health checks follow the same alarm as CDK's`, () => {
      assert.deepEqual(results.get(engine)!.checks, results.get('cdk')!.checks);
      assert.ok(results.get('cdk')!.checks.every((c) => c.startsWith('CLOUDWATCH_METRIC LastKnownStatus AWS/NetworkELB HealthyHostCount [LoadBalancer=<ref>,TargetGroup=<ref>]')), results.get('cdk')!.checks.join('\n'));
    });
  }
});
