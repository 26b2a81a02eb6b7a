/**
 * scripts/install-system-deps.sh, which `npm test` runs first: with Debian's tools replaced by recording
 * stubs on PATH (apt-get, dpkg-query, debconf-set-selections, pkill, killall, sudo), it keeps services from
 * starting during the install with a policy-rc.d that answers 101, removes it afterwards, keeps an
 * administrator's own policy-rc.d, and stops no process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const SCRIPT = 'scripts/install-system-deps.sh';

describe('install-system-deps.sh', () => {
  let dir = '';
  let log = '';

  function stub(name: string, body: string): void {
    const file = join(dir, 'bin', name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
  }

  function runScript(policyFile: string): { status: number | null; out: string; log: string } {
    writeFileSync(log, '');
    const r = spawnSync('bash', [SCRIPT], {
      encoding: 'utf8',
      timeout: 20000,
      env: { ...process.env, PATH: `${join(dir, 'bin')}${delimiter}${process.env.PATH ?? ''}`, STUB_LOG: log, MAILFLEET_POLICY_RC_D: policyFile },
    });
    return { status: r.status, out: r.stdout + r.stderr, log: readFileSync(log, 'utf8') };
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mf-deps-'));
    log = join(dir, 'calls.log');
    spawnSync('mkdir', ['-p', join(dir, 'bin')]);
    // Every package missing: the script goes through the whole install path.
    stub('dpkg-query', 'exit 1');
    stub('debconf-set-selections', 'cat >/dev/null');
    stub('sudo', 'exec "$@"');
    for (const killer of ['pkill', 'killall']) stub(killer, `echo "${killer} $*" >> "$STUB_LOG"`);
    // What a package's maintainer script does to start its service: ask policy-rc.d first.
    stub(
      'apt-get',
      `echo "apt-get $*" >> "$STUB_LOG"
case " $* " in *" install "*)
  if [ -x "$MAILFLEET_POLICY_RC_D" ]; then "$MAILFLEET_POLICY_RC_D" redis-server start; echo "policy-rc.d start -> $?" >> "$STUB_LOG"
  else echo "no policy-rc.d: redis-server starts" >> "$STUB_LOG"; fi;;
esac`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('GIVEN packages missing WHEN it installs THEN services are refused (policy-rc.d exits 101) during apt-get, the file is gone afterwards, and no process is stopped', () => {
    const policy = join(dir, 'policy-rc.d');
    const r = runScript(policy);
    assert.equal(r.status, 0, r.out);
    assert.match(r.log, /apt-get .*install .*redis-server/);
    assert.match(r.log, /policy-rc\.d start -> 101/);
    assert.doesNotMatch(r.log, /^(pkill|killall) /m, 'no process is stopped by name');
    assert.equal(existsSync(policy), false, 'the policy-rc.d it wrote is removed');
  });

  it("GIVEN an administrator's policy-rc.d WHEN it installs THEN that file is used and left as it was", () => {
    const policy = join(dir, 'own-policy-rc.d');
    const own = '#!/bin/sh\n# the administrator\'s\nexit 0\n';
    writeFileSync(policy, own);
    chmodSync(policy, 0o755);
    const r = runScript(policy);
    assert.equal(r.status, 0, r.out);
    assert.match(r.log, /policy-rc\.d start -> 0/);
    assert.equal(readFileSync(policy, 'utf8'), own);
  });

  it('stops no process by name or PID anywhere in the script', () => {
    const code = readFileSync(SCRIPT, 'utf8')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    assert.doesNotMatch(code, /\b(pkill|killall|kill)\b/);
  });

  it('GIVEN `npm test` (scripts/run-tests.mjs) THEN it runs the install script before the tests', () => {
    const r = spawnSync(process.execPath, ['scripts/run-tests.mjs', '__no_test_file_has_this_name__'], { encoding: 'utf8', timeout: 60000 });
    assert.match(r.stdout + r.stderr, /install-system-deps: all \d+ packages present[\s\S]*no test files matched/);
  });
});
