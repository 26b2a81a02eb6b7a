/**
 * The producer of the saturation alarms' metric, run for real: HAProxy with the cloud haproxy.cfg as
 * rendered, scraped at the address and with the parameters of the rendered agent scrape config, publishes
 * the metric the agent's EMF declaration selects, labelled with every listener's frontend.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { requireHaproxy, writeTempSpec } from '../haproxy/harness.js';
import { proxyMetricProducer } from './metric-producers.js';

describe('proxy nodes publish a per-listener sessions metric', () => {
  it('GIVEN the rendered haproxy.cfg and agent scrape config WHEN the agent scrapes THEN every listener frontend has the selected metric with its name in the dimension label', async () => {
    requireHaproxy();
    const spec = await writeTempSpec({});
    try {
      const plan = buildPlan(loadSpec(spec.file).spec);
      const producer = proxyMetricProducer(plan);
      const query = new URLSearchParams(Object.entries(producer.scrape.params).flatMap(([k, vs]) => vs.map((v) => [k, v])));
      const url = `http://${producer.scrape.target}${producer.scrape.path}?${query}`;
      const child = join(dirname(fileURLToPath(import.meta.url)), 'netns-haproxy-metrics.ts');
      const r = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', child, spec.file, spec.dir, url], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
      });
      assert.equal(r.status, 0, `netns-haproxy-metrics failed (unshare needs root / CAP_SYS_ADMIN):\n${r.stderr}`);
      const [status, ...lines] = r.stdout.split('\n');
      assert.equal(status, '200');
      const samples = lines.filter((l) => l && !l.startsWith('#'));
      const [dimension] = producer.dimensions;
      for (const l of plan.listeners) {
        const hit = samples.find((s) => producer.selectors.some((re) => re.test(s.split('{')[0]!)) && s.includes(`${dimension}="${l.name}"`));
        assert.ok(hit, `no selected metric for frontend ${l.name}`);
      }
    } finally {
      spec.cleanup();
    }
  });
});
