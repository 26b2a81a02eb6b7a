/**
 * NLB listeners and target groups as every engine ships them, read from the synthesized output (the
 * CloudFormation template, the Terraform JSON, the Pulumi registrations): TCP idle timeouts above what
 * HAProxy and the daemon keep a quiet session for (the 350 s default cut IMAP sessions), and the HTTP
 * health check on the PROXY v2-aware health frontend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { terraformJson } from '../../engines/terraform/index.js';
import { registrationsOf } from '../../engines/pulumi/mocks.js';
import { REPO_ROOT } from '../../constructs/shared/cdk-context.js';
import { idleTimeoutSeconds } from '../../lib/render/haproxy.js';
import { cleanupApps, examplePlan, synthPlatform } from './helpers.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'single-region.yaml');
const NLB_DEFAULT_IDLE = 350;

describe('NLB listeners: idle timeout and health check in every engine', () => {
  const plan = examplePlan(EXAMPLE);
  const imapAutologout = plan.spec.imap.idleTimeoutSeconds;
  const haproxyImap = idleTimeoutSeconds(plan, 'imap');
  const imapPorts = new Set(plan.listeners.filter((l) => l.service === 'imap').map((l) => l.publicPort));
  after(() => cleanupApps());

  it('GIVEN the single-region example WHEN synthesized with CDK THEN every TCP listener sets tcp.idle_timeout.seconds (IMAP above the autologout and HAProxy), and target groups check HTTP /healthz on 8404', () => {
    const { assembly } = synthPlatform(plan, { validation: false });
    const listeners: { port: number; idle: number }[] = [];
    const checks: Record<string, unknown>[] = [];
    for (const stack of assembly.stacks) {
      const resources = (stack.template as { Resources?: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources ?? {};
      for (const r of Object.values(resources)) {
        if (r.Type === 'AWS::ElasticLoadBalancingV2::Listener') {
          const attrs = (r.Properties.ListenerAttributes ?? []) as { Key: string; Value: string }[];
          const idle = attrs.find((a) => a.Key === 'tcp.idle_timeout.seconds');
          assert.ok(idle, `listener on port ${String(r.Properties.Port)} keeps the NLB default of ${NLB_DEFAULT_IDLE} s`);
          listeners.push({ port: Number(r.Properties.Port), idle: Number(idle.Value) });
        }
        if (r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup') checks.push(r.Properties);
      }
    }
    assert.equal(listeners.length, plan.listeners.length);
    for (const l of listeners) {
      assert.ok(l.idle >= 60 && l.idle <= 6000, `port ${l.port}: ${l.idle} within NLB's 60–6000 s`);
      if (imapPorts.has(l.port)) assert.ok(l.idle > imapAutologout && l.idle > haproxyImap, `IMAP port ${l.port}: ${l.idle} s`);
    }
    for (const tg of checks) {
      assert.equal(tg.HealthCheckProtocol, 'HTTP');
      assert.equal(tg.HealthCheckPort, '8404');
      assert.equal(tg.HealthCheckPath, '/healthz');
    }
  });

  it('GIVEN the same plan WHEN synthesized with Terraform THEN every aws_lb_listener sets tcp_idle_timeout_seconds and every target group checks HTTP /healthz on 8404', () => {
    const doc = terraformJson(plan) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    const listeners = Object.values(doc.resource.aws_lb_listener ?? {});
    assert.equal(listeners.length, plan.listeners.length);
    for (const l of listeners) {
      const idle = l.tcp_idle_timeout_seconds as number | undefined;
      assert.ok(typeof idle === 'number' && idle >= 60 && idle <= 6000, `listener ${String(l.port)}: ${String(idle)}`);
      if (imapPorts.has(l.port as number)) assert.ok(idle > imapAutologout && idle > haproxyImap);
    }
    for (const tg of Object.values(doc.resource.aws_lb_target_group ?? {})) {
      const hc = tg.health_check as Record<string, unknown>;
      assert.deepEqual([hc.protocol, hc.port, hc.path], ['HTTP', '8404', '/healthz']);
    }
  });

  it('GIVEN the same plan WHEN built with Pulumi (mocks) THEN every aws.lb.Listener sets tcpIdleTimeoutSeconds and every target group checks HTTP /healthz on 8404', async () => {
    const regs = await registrationsOf(plan);
    const listeners = regs.filter((r) => r.type === 'aws:lb/listener:Listener');
    assert.equal(listeners.length, plan.listeners.length);
    for (const l of listeners) {
      const idle = l.inputs.tcpIdleTimeoutSeconds as number | undefined;
      assert.ok(typeof idle === 'number' && idle >= 60 && idle <= 6000, `${l.name}: ${String(idle)}`);
      if (imapPorts.has(l.inputs.port as number)) assert.ok(idle > imapAutologout && idle > haproxyImap);
    }
    for (const tg of regs.filter((r) => r.type === 'aws:lb/targetGroup:TargetGroup')) {
      const hc = tg.inputs.healthCheck as Record<string, unknown>;
      assert.deepEqual([hc.protocol, hc.port, hc.path], ['HTTP', '8404', '/healthz']);
    }
  });

  before(() => assert.ok(imapPorts.size > 0, 'the example has IMAP listeners'));
});
