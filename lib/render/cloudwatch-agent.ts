/**
 * CloudWatch agent configuration per node role: bootstrap and daemon logs, host metrics with the Auto
 * Scaling group as a dimension (the mail tier scales on `netstat_tcp_established` averaged over the group:
 * behind HAProxy one client connection is one TCP connection on a mail node), the daemon's Prometheus
 * metrics and HAProxy's per-frontend sessions as embedded-metric-format logs, and StatsD gauges the
 * mail node's health timer sends (the self-signed certificate flag).
 *
 * The alarms (lib/render/alarms.ts) read metric names, namespaces and dimensions from here, so an
 * alarm always watches a metric some node publishes.
 */
import type { Plan } from '../plan/types.js';
import type { Renderer } from './types.js';
import { CLOUD_METRICS_PORT } from './haproxy.js';
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

/** HAProxy's Prometheus metrics on proxy nodes go to this namespace, one metric per frontend (= listener). */
export function haproxyMetricNamespace(plan: Plan): string {
  return `${metricNamespace(plan)}/haproxy`;
}
/** Sessions open on one HAProxy frontend (its `scur`), as HAProxy's exporter names it; label `proxy` = frontend. */
export const LISTENER_SESSIONS_METRIC = 'haproxy_frontend_current_sessions';
/** The dimension that carries the frontend (listener) name: HAProxy's own label. */
export const LISTENER_DIMENSION = 'proxy';
/** Prometheus job of the HAProxy scrape. */
const HAPROXY_JOB = 'haproxy';

/**
 * StatsD on the mail node's agent (loopback): mailfleet-health.timer sends this gauge every run while the
 * node serves the certificate it generated itself, so an alarm stands until a real one replaces it.
 */
export const STATSD_ADDRESS = { host: '127.0.0.1', port: 8125 } as const;
export const SELF_SIGNED_CERT_METRIC = 'mailfleet_tls_self_signed';
/** Dimension the agent aggregates host and StatsD metrics on (besides InstanceId). */
export const GROUP_DIMENSION = 'AutoScalingGroupName';

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
      append_dimensions: { [GROUP_DIMENSION]: '${aws:AutoScalingGroupName}', InstanceId: '${aws:InstanceId}' },
      aggregation_dimensions: [[GROUP_DIMENSION]],
      metrics_collected: {
        mem: { measurement: ['mem_used_percent'] },
        disk: { measurement: ['used_percent', 'inodes_free'], resources: disks },
        netstat: { measurement: ['tcp_established', 'tcp_time_wait'] },
        ...(role === 'mail'
          ? { statsd: { service_address: `${STATSD_ADDRESS.host}:${STATSD_ADDRESS.port}`, metrics_collection_interval: 60, metrics_aggregation_interval: 60 } }
          : {}),
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
                      // The daemon's metrics are mailfleetd_*, the governor's mailfleet_*.
                      metric_selectors: ['^mailfleetd?_'],
                    },
                  ],
                },
              },
            }
          : role === 'proxy'
            ? {
                // One metric per frontend, summed over the nodes by the saturation alarms (one sample per node per minute).
                prometheus: {
                  prometheus_config_path: '/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml',
                  log_group_name: groups.prometheus,
                  emf_processor: {
                    metric_namespace: haproxyMetricNamespace(plan),
                    metric_declaration: [
                      {
                        source_labels: ['job'],
                        label_matcher: `^${HAPROXY_JOB}$`,
                        dimensions: [[LISTENER_DIMENSION]],
                        metric_selectors: [`^${LISTENER_SESSIONS_METRIC}$`],
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

/** Scrape config of HAProxy's exporter on proxy nodes: frontends only (the alarms need nothing else). */
export function haproxyPrometheusConfig(plan: Plan): string {
  return `global:
  scrape_interval: 60s
  scrape_timeout: 10s
scrape_configs:
  - job_name: ${HAPROXY_JOB}
    metrics_path: /metrics
    params:
      scope: [frontend]
    static_configs:
      - targets: ['127.0.0.1:${CLOUD_METRICS_PORT}']
        labels:
          platform: ${plan.platform}
          tier: proxy
`;
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
    { path: 'cloudwatch/prometheus.yaml', content: role === 'proxy' ? haproxyPrometheusConfig(plan) : prometheusConfig(plan) },
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
      { path: 'cloudwatch/prometheus.yaml (proxy nodes)', content: haproxyPrometheusConfig(plan) },
    ]);
  },
};
