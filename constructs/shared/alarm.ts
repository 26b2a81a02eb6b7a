import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { MetricAlarmModel } from '../../lib/render/alarms.js';

/** A CloudWatch alarm as the platform model declares it (lib/render/alarms.ts), notifying `topic` when given. */
export function modelAlarm(scope: Construct, id: string, m: MetricAlarmModel, topic?: sns.ITopic): cw.Alarm {
  const alarm = new cw.Alarm(scope, id, {
    metric: new cw.Metric({
      namespace: m.namespace,
      metricName: m.metricName,
      dimensionsMap: { ...m.dimensions },
      statistic: m.statistic,
      period: Duration.seconds(m.periodSeconds),
    }),
    threshold: m.threshold,
    comparisonOperator: m.comparison as cw.ComparisonOperator,
    evaluationPeriods: m.evaluationPeriods,
    datapointsToAlarm: m.datapointsToAlarm,
    treatMissingData: m.treatMissingData as cw.TreatMissingData,
    alarmDescription: m.description,
  });
  if (topic) alarm.addAlarmAction(new cwActions.SnsAction(topic));
  return alarm;
}
