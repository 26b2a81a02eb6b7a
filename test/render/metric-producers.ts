/**
 * What the nodes publish, read back from the files an engine ships (the node-files bundle): the consumer
 * side (alarms in a template, Terraform JSON or Pulumi registrations) is compared with this, never with
 * a hand-written list of metric names.
 */
import assert from 'node:assert/strict';
import yaml from 'js-yaml';
import type { Plan } from '../../lib/plan/types.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import type { NodeRole, RegionRole } from '../../lib/render/node-layout.js';

/** An AWS::CloudWatch::Alarm's properties as the tests read them. */
export interface CfnAlarm {
  readonly Namespace: string;
  readonly MetricName: string;
  readonly Dimensions: { Name: string; Value: unknown }[];
  readonly Statistic: string;
  readonly Period: number;
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly TreatMissingData?: string;
  readonly AlarmActions?: unknown[];
}

function fileOf(plan: Plan, role: NodeRole, path: string, region: RegionRole): string {
  const f = nodeFiles(plan, role, region).find((x) => x.path === path);
  assert.ok(f, `the ${role} bundle has no ${path}`);
  return f.content;
}

interface PromJob {
  job_name: string;
  metrics_path: string;
  params?: Record<string, string[]>;
  static_configs: { targets: string[] }[];
}

/** The per-listener metric proxy nodes publish: HAProxy's exporter, scraped by the agent, as EMF. */
export function proxyMetricProducer(plan: Plan, region: RegionRole = 'primary') {
  const agent = JSON.parse(fileOf(plan, 'proxy', 'cloudwatch/proxy.json', region)) as {
    logs: { logs_collected: { prometheus?: { emf_processor: { metric_namespace: string; metric_declaration: { label_matcher: string; dimensions: string[][]; metric_selectors: string[] }[] } } } };
  };
  const prom = agent.logs.logs_collected.prometheus;
  assert.ok(prom, 'the proxy agent config collects no Prometheus metrics');
  const scrape = yaml.load(fileOf(plan, 'proxy', 'cloudwatch/prometheus.yaml', region)) as { scrape_configs: PromJob[] };
  const decl = prom.emf_processor.metric_declaration;
  const job = scrape.scrape_configs.find((j) => decl.some((d) => new RegExp(d.label_matcher).test(j.job_name)));
  assert.ok(job, 'no scrape job matches the EMF declaration');
  const declaration = decl.find((d) => new RegExp(d.label_matcher).test(job.job_name))!;
  assert.equal(declaration.dimensions.length, 1, 'one dimension set per metric');
  // The scraped address is HAProxy's exporter in the rendered haproxy.cfg.
  const cfg = fileOf(plan, 'proxy', 'haproxy/haproxy.cfg', region);
  const sections = cfg.split(/\n(?=\S)/);
  const target = job.static_configs[0]!.targets[0]!;
  const exporter = sections.find((s) => s.includes(`bind ${target}\n`));
  assert.ok(exporter, `haproxy.cfg binds nothing at the scraped ${target}`);
  assert.match(exporter, /use-service prometheus-exporter if \{ path (\S+) \}/);
  assert.equal(/use-service prometheus-exporter if \{ path (\S+) \}/.exec(exporter)![1], job.metrics_path);
  const frontends = [...cfg.matchAll(/^frontend (\S+)$/gm)].map((m) => m[1]!);
  return {
    namespace: prom.emf_processor.metric_namespace,
    selectors: declaration.metric_selectors.map((s) => new RegExp(s)),
    dimensions: declaration.dimensions[0]!,
    frontends,
    scrape: { target, path: job.metrics_path, params: job.params ?? {} },
  };
}

/** The self-signed-certificate gauge: mail.sh writes the marker, the health timer sends it to the agent's StatsD. */
export function selfSignedProducer(plan: Plan, region: RegionRole = 'primary') {
  const agent = JSON.parse(fileOf(plan, 'mail', 'cloudwatch/mail.json', region)) as {
    metrics: { namespace: string; aggregation_dimensions: string[][]; metrics_collected: { statsd?: { service_address: string } } };
  };
  const statsd = agent.metrics.metrics_collected.statsd;
  assert.ok(statsd, 'the mail agent config runs no StatsD listener');
  const watch = fileOf(plan, 'mail', 'bootstrap/health-watch.sh', region);
  const m = /if \[ -e (\S+) \]; then\n\s+echo "([A-Za-z0-9_.]+):1\|g" >\/dev\/udp\/([\d.]+)\/(\d+)/.exec(watch);
  assert.ok(m, 'health-watch.sh sends no gauge for a marker file');
  const [, marker, metricName, host, port] = m;
  assert.equal(`${host}:${port}`, statsd.service_address, 'the gauge goes where the agent listens');
  const mail = fileOf(plan, 'mail', 'bootstrap/mail.sh', region);
  assert.ok(mail.includes(`date -Is >${marker}`), 'mail.sh writes the marker when it generates the certificate');
  assert.ok(mail.includes(`rm -f ${marker}`), 'mail.sh removes the marker when the secret holds a certificate');
  return { namespace: agent.metrics.namespace, metricName: metricName!, dimensionSets: agent.metrics.aggregation_dimensions };
}
