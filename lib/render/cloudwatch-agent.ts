/**
 * CloudWatch agent configuration per node role: bootstrap and daemon logs, host metrics with the Auto
 * Scaling group as a dimension (the mail tier scales on `netstat_tcp_established` averaged over the group:
 * behind HAProxy one client connection is one TCP connection on a mail node), and the daemon's
 * Prometheus metrics as embedded-metric-format logs.
 */
import type { Plan } from '../plan/types.js';
import type { Renderer } from './types.js';
import {
  BOOTSTRAP_LOG_PATH,
  DAEMON_ADMIN_PORT,
  DAEMON_LOG_PATH,
  MAIL_MOUNT,
  NODE_ROLES,
  joinFiles,
  nameRoot,
  type NodeRole,
  type RenderedFile,
} from './node-layout.js';

/** Host-metric namespace and the metric the mail tier scales on. */
export function metricNamespace(plan: Plan): string {
  return `Mailfleet/${plan.platform}`;
}
export const CONNECTIONS_METRIC = 'netstat_tcp_established';

/** Log groups the agents write to; the engines create them with a retention. */
export function logGroupNames(plan: Plan) {
  const p = `/${nameRoot(plan)}`;
  return {
    bootstrap: `${p}/bootstrap`,
    daemon: `${p}/mailfleetd`,
    haproxy: `${p}/haproxy`,
    prometheus: `${p}/prometheus`,
  } as const;
}

export function cloudwatchAgentConfig(plan: Plan, role: NodeRole): string {
  const groups = logGroupNames(plan);
  const files: { file_path: string; log_group_name: string; log_stream_name: string }[] = [
    { file_path: BOOTSTRAP_LOG_PATH, log_group_name: groups.bootstrap, log_stream_name: '{instance_id}' },
  ];
  if (role === 'mail') files.push({ file_path: DAEMON_LOG_PATH, log_group_name: groups.daemon, log_stream_name: '{instance_id}' });
  if (role === 'proxy') files.push({ file_path: '/var/log/haproxy.log', log_group_name: groups.haproxy, log_stream_name: '{instance_id}' });
  const disks = role === 'mail' ? ['/', MAIL_MOUNT] : role === 'storage' ? ['/', '/data/glusterfs'] : ['/'];
  const config = {
    agent: { metrics_collection_interval: 60, run_as_user: 'root' },
    metrics: {
      namespace: metricNamespace(plan),
      append_dimensions: { AutoScalingGroupName: '${aws:AutoScalingGroupName}', InstanceId: '${aws:InstanceId}' },
      aggregation_dimensions: [['AutoScalingGroupName']],
      metrics_collected: {
        mem: { measurement: ['mem_used_percent'] },
        disk: { measurement: ['used_percent', 'inodes_free'], resources: disks },
        netstat: { measurement: ['tcp_established', 'tcp_time_wait'] },
      },
    },
    logs: {
      logs_collected: {
        files: { collect_list: files },
        ...(role === 'mail'
          ? {
              prometheus: {
                prometheus_config_path: '/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml',
                log_group_name: groups.prometheus,
                emf_processor: {
                  metric_namespace: `${metricNamespace(plan)}/mailfleetd`,
                  metric_declaration: [
                    {
                      source_labels: ['job'],
                      label_matcher: '^mailfleetd$',
                      dimensions: [['platform', 'tier']],
                      metric_selectors: ['^mailfleet_'],
                    },
                  ],
                },
              },
            }
          : {}),
      },
    },
  };
  return JSON.stringify(config, null, 2) + '\n';
}

/** Scrape config for the daemon's /metrics on the admin port (mail nodes only). */
export function prometheusConfig(plan: Plan): string {
  return `global:
  scrape_interval: 60s
  scrape_timeout: 10s
scrape_configs:
  - job_name: mailfleetd
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:${DAEMON_ADMIN_PORT}']
        labels:
          platform: ${plan.platform}
          tier: mail
`;
}

export function cloudwatchAgentFiles(plan: Plan, role: NodeRole): RenderedFile[] {
  return [
    { path: `cloudwatch/${role}.json`, content: cloudwatchAgentConfig(plan, role) },
    { path: 'cloudwatch/prometheus.yaml', content: prometheusConfig(plan) },
  ];
}

export const cloudwatchAgentRenderer: Renderer = {
  kind: 'cloudwatch-agent',
  description: 'CloudWatch agent config per node role (logs, host metrics by ASG, daemon Prometheus metrics)',
  fileName: 'cloudwatch-agent.json',
  render(plan) {
    return joinFiles([
      ...NODE_ROLES.map((role) => ({ path: `cloudwatch/${role}.json`, content: cloudwatchAgentConfig(plan, role) })),
      { path: 'cloudwatch/prometheus.yaml', content: prometheusConfig(plan) },
    ]);
  },
};
