/**
 * The mail node's drain (bootstrap/drain.sh, run by mailfleet-drain.timer) as rendered, run in bash beside
 * the rendered common.sh, with IMDS (curl), the AWS CLI, systemctl, sleep, register.sh and timeout answered
 * by stubs that log each call. The stub `timeout` logs the bound the script asked for and runs the step
 * under a real `timeout` of 2 s, so a hanging step really is cut and the drain must go on after it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlan } from '../../lib/plan/index.js';
import { MAIL_DRAIN_SECONDS } from '../../lib/plan/reload.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { DRAIN, TERMINATE_HOOK_NAME } from '../../lib/render/node-layout.js';
import { loadSpec } from '../../lib/spec/index.js';

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);
const files = nodeFiles(plan, 'mail', 'primary');
const tmp = mkdtempSync(join(tmpdir(), 'mf-drain-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const REAL_TIMEOUT = spawnSync('sh', ['-c', 'command -v timeout'], { encoding: 'utf8' }).stdout.trim();
const REAL_SLEEP = spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim();

interface World {
  /** What IMDS answers for autoscaling/target-lifecycle-state (null: 404, the instance is in no group). */
  readonly target: string | null;
  readonly registerFails?: boolean;
  readonly daemonStopHangs?: boolean;
  /** complete-lifecycle-action fails this many times before it succeeds. */
  readonly completeFailures?: number;
}

function drain(world: World): { status: number | null; calls: string[]; bounds: string[]; stderr: string; ms: number } {
  const dir = mkdtempSync(join(tmp, 'run-'));
  const boot = join(dir, 'bootstrap');
  const bin = join(dir, 'bin');
  mkdirSync(boot);
  mkdirSync(bin);
  for (const p of ['bootstrap/common.sh', 'bootstrap/drain.sh']) writeFileSync(join(dir, p), files.find((f) => f.path === p)!.content, { mode: 0o755 });
  const log = join(dir, 'calls.log');
  const stub = (path: string, body: string) => {
    writeFileSync(path, `#!/bin/bash\n${body}\n`);
    chmodSync(path, 0o755);
  };
  stub(
    join(bin, 'curl'),
    `url="\${*: -1}"
case "\${url}" in
  */api/token) echo token ;;
  */autoscaling/target-lifecycle-state) ${world.target === null ? 'exit 22' : `echo ${world.target}`} ;;
  */instance-id) echo i-0drain ;;
  */placement/region) echo eu-west-1 ;;
  */local-ipv4) echo 10.0.2.17 ;;
  *) exit 22 ;;
esac`,
  );
  stub(
    join(bin, 'aws'),
    `echo "aws $*" >>${log}
case "$*" in
  *describe-auto-scaling-instances*) echo acme-mail ;;
  *complete-lifecycle-action*)
    n=$(cat ${dir}/completes 2>/dev/null || echo 0); echo $((n + 1)) >${dir}/completes
    [ "\${n}" -ge ${world.completeFailures ?? 0} ] || { echo "An error occurred (ValidationError)" >&2; exit 254; } ;;
esac`,
  );
  stub(join(bin, 'systemctl'), `echo "systemctl $*" >>${log}\n${world.daemonStopHangs ? `[ "$*" != "stop mailfleetd.service" ] || exec ${REAL_SLEEP} 60` : ''}`);
  stub(join(bin, 'sleep'), `echo "sleep $*" >>${log}`);
  stub(join(bin, 'timeout'), `echo "$*" >>${log}.bounds\nexec ${REAL_TIMEOUT} 2 "\${@:2}"`);
  stub(join(boot, 'register.sh'), `echo "register.sh $*" >>${log}\n${world.registerFails ? 'exit 1' : ''}`);
  const t0 = Date.now();
  const r = spawnSync('bash', [join(boot, 'drain.sh')], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` }, timeout: 60_000 });
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim().split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  return { status: r.status, calls: read(log), bounds: read(`${log}.bounds`), stderr: r.stderr, ms: Date.now() - t0 };
}

const COMPLETE = new RegExp(
  `^aws autoscaling complete-lifecycle-action --lifecycle-hook-name ${TERMINATE_HOOK_NAME} --auto-scaling-group-name acme-mail --instance-id i-0drain --lifecycle-action-result CONTINUE$`,
);
const at = (calls: string[], re: RegExp) => calls.findIndex((c) => re.test(c));

describe('mail node drain (bootstrap/drain.sh as rendered) against stubbed IMDS, AWS CLI and systemd', () => {
  test('GIVEN the group is terminating the instance WHEN the drain timer fires THEN it withdraws the address, waits, stops the daemon, then completes the terminate hook with CONTINUE and stops its timer', () => {
    const r = drain({ target: 'Terminated' });
    assert.equal(r.status, 0, r.stderr);
    const del = at(r.calls, /^register\.sh DELETE$/);
    const settle = at(r.calls, new RegExp(`^sleep ${MAIL_DRAIN_SECONDS}$`));
    const stop = at(r.calls, /^systemctl stop mailfleetd\.service$/);
    const complete = at(r.calls, COMPLETE);
    assert.ok(del >= 0 && settle > del && stop > settle && complete > stop, `DELETE → wait → stop → complete: ${r.calls.join(' | ')}`);
    assert.ok(at(r.calls, /^systemctl stop mailfleet-health\.timer$/) < stop, 'the health timer is stopped before the daemon (no Unhealthy report for a drain)');
    assert.equal(r.calls.at(-1), 'systemctl stop mailfleet-drain.timer', 'the next tick does not drain again');
    assert.equal(r.calls.filter((c) => COMPLETE.test(c)).length, 1);
    // Every step ran under the bound the model names.
    assert.ok(r.bounds.some((b) => b.startsWith(`${DRAIN.withdrawTimeoutSeconds} `) && b.endsWith('/register.sh DELETE')), r.bounds.join(' | '));
    assert.ok(r.bounds.includes(`${DRAIN.stopTimeoutSeconds} systemctl stop mailfleetd.service`), r.bounds.join(' | '));
    assert.ok(r.bounds.some((b) => b.startsWith(`${DRAIN.completeTimeoutSeconds} aws autoscaling complete-lifecycle-action`)), r.bounds.join(' | '));
  });

  test('GIVEN the withdrawal fails and the daemon stop hangs WHEN the group terminates the instance THEN each step is cut at its bound and the hook is still completed', () => {
    const r = drain({ target: 'Terminated', registerFails: true, daemonStopHangs: true, completeFailures: 1 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /drain: '[^']*register\.sh DELETE' failed \(exit 1\); going on/);
    assert.match(r.stderr, /drain: 'systemctl stop mailfleetd\.service' failed \(exit 124\); going on/);
    assert.match(r.stderr, /completing the lifecycle hook failed \(try 1\/3\)/);
    assert.equal(r.calls.filter((c) => COMPLETE.test(c)).length, 2, 'completed on the second try');
    assert.ok(at(r.calls, COMPLETE) > at(r.calls, /^systemctl stop mailfleetd\.service$/));
    assert.ok(r.ms < 20_000, `bounded: ${r.ms} ms`);
  });

  test(`GIVEN completing keeps failing WHEN the drain runs THEN it tries ${DRAIN.completeTries} times and exits non-zero, the timer left running to try again`, () => {
    const r = drain({ target: 'Terminated', completeFailures: 99 });
    assert.notEqual(r.status, 0);
    assert.equal(r.calls.filter((c) => COMPLETE.test(c)).length, DRAIN.completeTries);
    assert.ok(!r.calls.includes('systemctl stop mailfleet-drain.timer'));
    assert.ok(at(r.calls, /^register\.sh DELETE$/) >= 0 && at(r.calls, /^systemctl stop mailfleetd\.service$/) >= 0);
  });

  for (const target of ['InService', null])
    test(`GIVEN IMDS says ${target ?? 'nothing (404)'} WHEN the timer fires THEN the node is left alone`, () => {
      const r = drain({ target });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.calls, []);
    });
});
