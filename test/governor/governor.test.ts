/**
 * The governor against a real daemon, run as `mailfleet governor run` child processes: enforce lowers the
 * heavy user's limit through the admin API (the `mailfleet limit set` path), survives kill -9 with the
 * limits untouched, resumes from its state file and raises the limit back once the flood is gone;
 * observe records the same decision and changes nothing.
 * Waits are long (90 s) because each child process starts tsx on a shared, loaded box; no assertion is timed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LimitsView } from '../../lib/admin/routes/limits.js';
import { GovernorStore, type GovernorLogEntry } from '../../lib/governor/store.js';
import { adminGet, configFor, imapLogin, RawClient, runCli, startInProcess, tempDir, TOKEN, type TestDaemon } from '../ops/fixture.js';

const ALICE = 'user:alice@example.com:imap';

const login = imapLogin;

async function specFile(dir: string, mode: string): Promise<string> {
  const file = join(dir, 'governor-spec.json');
  await writeFile(
    file,
    JSON.stringify({
      platform: { name: 'gov-test', hostname: 'mx.test', adminToken: TOKEN },
      domains: [{ name: 'example.com' }, { name: 'example.org' }],
      governor: {
        mode,
        targets: { connections: 6 },
        intervalSeconds: 0.2,
        settleSeconds: 0.2,
        cooldownSeconds: 1,
        stepPercent: 50,
        raiseStepPercent: 50,
        floor: 2,
        scopes: ['user'],
      },
    }),
  );
  return file;
}

function startGovernor(args: readonly string[]): { proc: ChildProcess; stderr: () => string; stop(): Promise<void> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bin/mailfleet.ts', 'governor', 'run', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MAILFLEET_LOG_LEVEL: 'silent' },
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  return {
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const overrides = async (d: TestDaemon) => (await adminGet<LimitsView>(d.adminUrl, '/v1/limits')).overrides;

test('enforce: lowers the heavy user, a kill -9 leaves the limits as they were, a restart resumes and raises the limit back', async () => {
  const tmp = await tempDir('mf-gov-');
  const d = await startInProcess(tmp.dir, configFor());
  const clients: RawClient[] = [];
  const govs: Array<ReturnType<typeof startGovernor>> = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const g of govs) await g.stop();
    await d.stop();
    await tmp.cleanup();
  });
  const stateDir = join(tmp.dir, 'gov');
  const args = ['--config', await specFile(tmp.dir, 'enforce'), '--admin', d.adminUrl, '--token', TOKEN, '--data-dir', tmp.dir, '--state-dir', stateDir];

  // GIVEN a heavy user with 8 IMAP sessions and two light ones with one each (10 > target 6)
  const heavy: RawClient[] = [];
  for (let i = 0; i < 8; i++) assert.match(await login(d, 'alice@example.com', heavy), /^a1 OK/);
  assert.match(await login(d, 'bob@example.com', clients), /^a1 OK/);
  assert.match(await login(d, 'carol@example.org', clients), /^a1 OK/);

  // WHEN the governor runs in enforce mode THEN it lowers alice (fair share 10/3 → never under 4)
  govs.push(startGovernor(args));
  await until('alice lowered to 4', async () => (await overrides(d))[ALICE] === 4).catch((e: Error) => {
    throw new Error(`${e.message}; governor: ${govs[0]!.stderr()} log: ${JSON.stringify(new GovernorStore(stateDir).readLog().slice(-5))}`);
  });
  assert.match(await login(d, 'alice@example.com', heavy), /^a1 NO/, 'a new session of the heavy user is refused');
  assert.match(await login(d, 'bob@example.com', clients), /^a1 OK/, 'light users are untouched');
  const view = await adminGet<LimitsView>(d.adminUrl, '/v1/limits');
  assert.equal(view.overrideDetails.find((o) => o.scope === ALICE)?.by, 'mailfleet-governor', 'recorded as the governor on the daemon');
  assert.deepEqual(Object.keys(view.overrides), [ALICE], 'only the heavy user');

  // WHEN it is killed with SIGKILL THEN the limits stay as they were
  const before = await overrides(d);
  govs[0]!.proc.kill('SIGKILL');
  await new Promise((r) => govs[0]!.proc.once('exit', r));
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(await overrides(d), before);
  const state = JSON.parse(readFileSync(join(stateDir, 'governor-state.json'), 'utf8'));
  assert.equal(state.managed[ALICE].value, 4);
  assert.equal(state.managed[ALICE].restoreTo, 'default');

  // WHEN it restarts (over its dead predecessor's lock) and the flood ends THEN it raises alice back in steps to the plan
  assert.ok(existsSync(join(stateDir, 'governor.lock')), 'the dead governor left its lock');
  govs.push(startGovernor(args));
  await until('the restart recorded', () => new GovernorStore(stateDir).readLog().filter((e) => e.event === 'start').length === 2 || undefined);
  for (const c of heavy) c.close();
  await until('alice back to her plan value', async () => ((await overrides(d))[ALICE] === undefined ? true : undefined));
  assert.match(await login(d, 'alice@example.com', clients), /^a1 OK/);

  // THEN the audit trail has every step with its inputs, scope, before and after
  const log: GovernorLogEntry[] = new GovernorStore(stateDir).readLog();
  const starts = log.filter((e) => e.event === 'start');
  assert.deepEqual(starts.map((e) => e.resumed), [[], [ALICE]], 'the restart resumes governing alice');
  const applied = log.filter((e) => e.status === 'applied').map((e) => [e.decision!.action, e.decision!.scope, e.decision!.from, e.decision!.to]);
  assert.deepEqual(applied, [
    ['lower', ALICE, 20, 4],
    ['raise', ALICE, 4, 14],
    ['release', ALICE, 14, 'default'],
  ]);
  for (const e of log.filter((x) => x.status === 'applied')) {
    assert.ok(e.readings!.some((r) => r.name === 'connections'), 'inputs recorded');
    assert.ok(e.reports!.length === 1 && e.reports![0]!.ok, 'the daemon confirmed');
  }
  assert.equal(log.filter((e) => e.status === 'applying').length, 3, 'each change bracketed');
  assert.ok(!log.some((e) => e.decision?.action === 'yield' || e.decision?.action === 'reassert'), 'nothing was lost or taken over');

  const cli = await runCli(['governor', 'log', '--state-dir', stateDir]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /enforce\s+applied\s+lower\s+user:alice@example\.com:imap\s+20\s+4\s+connections 10 > 6/);
  const prom = readFileSync(join(stateDir, 'governor.prom'), 'utf8');
  assert.match(prom, /mailfleet_governor_decisions_total\{mode="enforce",action="release",kind="user",status="applied"\} 1/);
});

test('observe: records what it would do and changes nothing', async () => {
  const tmp = await tempDir('mf-gov-');
  const d = await startInProcess(tmp.dir, configFor());
  const clients: RawClient[] = [];
  const govs: Array<ReturnType<typeof startGovernor>> = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const g of govs) await g.stop();
    await d.stop();
    await tmp.cleanup();
  });
  const stateDir = join(tmp.dir, 'gov');
  for (let i = 0; i < 8; i++) assert.match(await login(d, 'alice@example.com', clients), /^a1 OK/);
  assert.match(await login(d, 'bob@example.com', clients), /^a1 OK/);
  assert.match(await login(d, 'carol@example.org', clients), /^a1 OK/);

  govs.push(startGovernor(['--config', await specFile(tmp.dir, 'enforce'), '--mode', 'observe', '--admin', d.adminUrl, '--token', TOKEN, '--data-dir', tmp.dir, '--state-dir', stateDir]));
  const proposed = await until('a proposal', () =>
    new GovernorStore(stateDir).readLog().filter((e) => e.status === 'proposed' && e.decision?.action === 'lower').length >= 2 || undefined,
  );
  assert.ok(proposed);
  const log = new GovernorStore(stateDir).readLog();
  const first = log.find((e) => e.status === 'proposed')!;
  assert.deepEqual([first.mode, first.decision!.scope, first.decision!.from, first.decision!.to], ['observe', ALICE, 20, 4]);
  assert.equal(first.command, `mailfleet limit set ${ALICE} 4 --by mailfleet-governor`);
  assert.deepEqual(await overrides(d), {}, 'no limit changed');
  assert.ok(!log.some((e) => e.status === 'applying' || e.status === 'applied'), 'nothing applied');
  assert.match(await login(d, 'alice@example.com', clients), /^a1 OK/, 'the heavy user still gets in');
});
