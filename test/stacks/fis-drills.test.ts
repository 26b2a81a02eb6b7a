/**
 * FIS drills test what they claim: a drill that stops Auto Scaling instances (the proxies) first suspends
 * the processes that would replace them, and resumes them after FIS restarts the instances; a drill of
 * plain instances (storage) only stops. Read from the synthesized CDK template and the Terraform JSON.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { HELD_PROCESSES, processesDocumentName } from '../../lib/plan/drills.js';
import { terraformJson } from '../../engines/terraform/index.js';
import { cleanupApps, examplePlan, synthPlatform } from './helpers.js';

after(cleanupApps);

type Action = { ActionId: string; StartAfter?: string[]; Parameters?: Record<string, unknown>; Targets?: Record<string, string> };

describe('FIS drills hold the Auto Scaling group while they stop its instances', () => {
  const plan = examplePlan('examples/primary-dr.yaml');

  it('GIVEN primary-dr.yaml WHEN synthesized (CDK) THEN proxy drills suspend, stop, then resume; the storage drill only stops', () => {
    const { stacks } = synthPlatform(plan, { validation: false });
    const t = Template.fromStack(stacks.primary).toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const templates = Object.values(t.Resources).filter((r) => r.Type === 'AWS::FIS::ExperimentTemplate');
    assert.equal(templates.length, 3);
    for (const tpl of templates) {
      const role = ((tpl.Properties.Targets as Record<string, { ResourceTags: Record<string, string> }>).nodes!.ResourceTags)['mailfleet:role'];
      const actions = tpl.Properties.Actions as Record<string, Action>;
      const stop = Object.entries(actions).find(([, a]) => a.ActionId === 'aws:ec2:stop-instances')!;
      if (role === 'storage') {
        assert.equal(Object.keys(actions).length, 1, 'storage nodes are plain instances: nothing replaces them');
        continue;
      }
      const automation = Object.entries(actions).filter(([, a]) => a.ActionId === 'aws:ssm:start-automation-execution');
      assert.equal(automation.length, 2, `${String(tpl.Properties.Description)}: suspend and resume`);
      const [suspend] = automation.find(([, a]) => JSON.stringify(a.Parameters).includes('Suspend'))!;
      const [resume, resumeAction] = automation.find(([, a]) => JSON.stringify(a.Parameters).includes('Resume'))!;
      assert.deepEqual(stop[1].StartAfter, [suspend], 'the stop waits for the suspend');
      assert.deepEqual(resumeAction.StartAfter, [stop[0]], 'the resume waits for the stop (which ends after the restart)');
      assert.notEqual(resume, suspend);
    }
    const doc = Object.values(t.Resources).find((r) => r.Type === 'AWS::SSM::Document' && r.Properties.Name === processesDocumentName(plan))!;
    assert.equal(doc.Properties.DocumentType, 'Automation');
    const steps = JSON.stringify(doc.Properties.Content);
    for (const p of ['HealthCheck', 'ReplaceUnhealthy']) assert.ok(steps.includes(p) && (HELD_PROCESSES as readonly string[]).includes(p), p);
  });

  it('GIVEN primary-dr.yaml WHEN written by Terraform THEN the same actions, on the proxy groups the engine names', () => {
    const res = (terraformJson(plan) as { resource: Record<string, Record<string, Record<string, unknown>>> }).resource;
    const proxyDrills = Object.values(res.aws_fis_experiment_template!).filter((t) => JSON.stringify(t.target).includes('"proxy"'));
    assert.equal(proxyDrills.length, 2);
    for (const t of proxyDrills) {
      const actions = t.action as { action_id: string; parameter: { key: string; value: string }[] }[];
      assert.deepEqual(actions.map((a) => a.action_id).sort(), ['aws:ec2:stop-instances', 'aws:ssm:start-automation-execution', 'aws:ssm:start-automation-execution']);
      const params = actions.flatMap((a) => a.parameter).find((p) => p.key === 'documentParameters')!;
      assert.deepEqual((JSON.parse(params.value) as { AutoScalingGroupNames: string[] }).AutoScalingGroupNames, ['globex-mail-proxy']);
    }
  });
});
