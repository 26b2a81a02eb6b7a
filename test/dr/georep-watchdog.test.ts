/**
 * The geo-replication watchdog (docs/dr.md, "live-changelog stall"), read from what the storage nodes
 * run: the rendered storage.sh installs its timer only when the plan has a DR region, and the rendered
 * Python script, run against a `gluster` stub on PATH that answers `status --xml` as GlusterFS 10.3 does
 * (the pair layout the fleet's DR scenario printed) and a brick folder holding changelog files, restarts a
 * session only when this node's Active worker left a changelog unsynced past the stall bound with
 * nothing in hand.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildPlan } from '../../lib/plan/index.js';
import { loadSpec } from '../../lib/spec/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { NODE_FILES_DIR } from '../../lib/render/node-layout.js';
import { GEOREP_STALL_SECONDS, GEOREP_WATCHDOG_UNIT } from '../../lib/render/gluster.js';

const single = buildPlan(loadSpec('examples/single-region.yaml').spec);
const primaryDr = buildPlan(loadSpec('examples/primary-dr.yaml').spec);
const tmp = mkdtempSync(join(tmpdir(), 'mailfleet-georep-watchdog-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const file = (plan: typeof single, region: 'primary' | 'dr', path: string) => nodeFiles(plan, 'storage', region).find((f) => f.path === path);

describe('geo-replication watchdog: installed where a session can run', () => {
  test('GIVEN a plan with a DR region WHEN both regions\' storage files render THEN each ships the watchdog and storage.sh enables its timer', () => {
    for (const region of ['primary', 'dr'] as const) {
      const script = file(primaryDr, region, 'bootstrap/geo-replication-watchdog.py');
      assert.ok(script?.executable, `${region}: no executable watchdog`);
      const boot = file(primaryDr, region, 'bootstrap/storage.sh')!.content;
      assert.match(boot, new RegExp(`systemctl enable --now ${GEOREP_WATCHDOG_UNIT}\\.timer`));
      assert.ok(boot.includes(`ExecStart=/usr/bin/python3 ${NODE_FILES_DIR}/${script.path}`), 'the service runs the shipped script');
    }
  });

  test('GIVEN a single-region plan WHEN storage files render THEN there is no watchdog', () => {
    assert.equal(file(single, 'primary', 'bootstrap/geo-replication-watchdog.py'), undefined);
    assert.doesNotMatch(file(single, 'primary', 'bootstrap/storage.sh')!.content, new RegExp(GEOREP_WATCHDOG_UNIT));
  });
});

describe('geo-replication watchdog: restarts a stalled session, nothing else', () => {
  const ME = 'c3be5e5c-2059-415c-95f4-fd767d180a0f';
  const OTHER = '5a13acf4-b77d-4415-8e2d-bb37bfd42da5';
  /** `YYYY-MM-DD HH:MM:SS` in local time, as gsyncd prints last_synced. */
  const human = (sec: number) => {
    const d = new Date(sec * 1000);
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  };

  interface Case {
    readonly status?: string;
    readonly crawl?: string;
    readonly uuid?: string;
    /** Seconds before now: the session's stime, and the rollover times of the brick's changelogs. */
    readonly stimeAgo: number;
    readonly changelogsAgo: readonly number[];
    readonly processing?: boolean;
  }

  function run(c: Case): { status: number | null; stdout: string; stderr: string; calls: string[] } {
    const dir = mkdtempSync(join(tmp, 'case-'));
    const now = Math.floor(Date.now() / 1000);
    const brick = join(dir, 'brick');
    const day = join(brick, '.glusterfs', 'changelogs', '2026', '12', '05');
    mkdirSync(day, { recursive: true });
    for (const ago of c.changelogsAgo) writeFileSync(join(day, `CHANGELOG.${now - ago}`), 'GlusterFS Changelog | version: v1.2 | encoding : 2\nE ...\n');
    writeFileSync(join(brick, '.glusterfs', 'changelogs', 'CHANGELOG'), 'GlusterFS Changelog | version: v1.2 | encoding : 2\n');
    const work = join(dir, 'gsyncd');
    const processing = join(work, 'mail_gluster-1.dr.acme-mail.internal_mail', brick.replace(/^\/+|\/+$/g, '').replace(/\//g, '-'), '.processing');
    mkdirSync(processing, { recursive: true });
    if (c.processing) writeFileSync(join(processing, `CHANGELOG.${now - c.changelogsAgo[0]!}`), '');
    writeFileSync(join(dir, 'glusterd.info'), `UUID=${ME}\noperating-version=100000\n`);
    const pair = (uuid: string, status: string, crawl: string, synced: string) => `<pair>
            <primary_node>gluster-x.primary.acme-mail.internal</primary_node>
            <primary_brick>${brick}</primary_brick>
            <secondary_user>root</secondary_user>
            <secondary>ssh://gluster-1.dr.acme-mail.internal::mail</secondary>
            <secondary_node/>
            <status>${status}</status>
            <crawl_status>${crawl}</crawl_status>
            <primary_node_uuid>${uuid}</primary_node_uuid>
            <last_synced>${synced}</last_synced>
          </pair>`;
    writeFileSync(
      join(dir, 'status.xml'),
      `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput><opRet>0</opRet><opErrno>0</opErrno><opErrstr>primary not found</opErrstr><geoRep><volume><name>mail</name><sessions><session>
<session_secondary>${ME}:ssh://gluster-1.dr.acme-mail.internal::mail:0c19c233-4e74-49fc-a59b-4506ca3b7768</session_secondary>
${pair(c.uuid ?? ME, c.status ?? 'Active', c.crawl ?? 'Changelog Crawl', human(now - c.stimeAgo))}
${pair(ME === (c.uuid ?? ME) ? OTHER : ME, 'Passive', 'N/A', 'N/A')}
</session></sessions></volume></geoRep></cliOutput>\n`,
    );
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const calls = join(dir, 'calls');
    writeFileSync(join(bin, 'gluster'), `#!/bin/bash\nif [ "$*" = "volume geo-replication status --xml" ]; then cat ${join(dir, 'status.xml')}; exit 0; fi\necho "$*" >>${calls}\n`, { mode: 0o755 });
    const script = join(dir, 'watchdog.py');
    writeFileSync(script, file(primaryDr, 'primary', 'bootstrap/geo-replication-watchdog.py')!.content);
    const r = spawnSync('python3', [script], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, MAILFLEET_GLUSTERD_INFO: join(dir, 'glusterd.info'), MAILFLEET_GSYNCD_WORKDIR: work },
      timeout: 20_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
  }

  const stale = GEOREP_STALL_SECONDS + 20;

  test('GIVEN this node\'s Active worker left a changelog unsynced past the bound with nothing in hand WHEN the watchdog runs THEN it stops and starts the session', () => {
    const r = run({ stimeAgo: stale + 60, changelogsAgo: [stale, 5] });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, ['volume geo-replication mail gluster-1.dr.acme-mail.internal::mail stop force', 'volume geo-replication mail gluster-1.dr.acme-mail.internal::mail start force']);
    assert.match(r.stdout, /restarting the session/);
  });

  test('GIVEN the worker holds the changelog in .processing (busy, not stalled) WHEN the watchdog runs THEN it restarts nothing', () => {
    const r = run({ stimeAgo: stale + 60, changelogsAgo: [stale], processing: true });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, []);
  });

  test('GIVEN the unsynced changelog is younger than the bound WHEN the watchdog runs THEN it restarts nothing', () => {
    const r = run({ stimeAgo: 120, changelogsAgo: [GEOREP_STALL_SECONDS - 10] });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, []);
  });

  test('GIVEN every changelog is synced (stime one second before the last rollover) WHEN the watchdog runs THEN it restarts nothing', () => {
    const r = run({ stimeAgo: stale + 1, changelogsAgo: [stale + 300, stale] });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, []);
  });

  test('GIVEN the stalled pair is another node\'s, or in History Crawl, or Passive WHEN the watchdog runs THEN it restarts nothing', () => {
    for (const c of [{ uuid: OTHER }, { crawl: 'History Crawl' }, { status: 'Passive', crawl: 'N/A' }]) {
      const r = run({ ...c, stimeAgo: stale + 60, changelogsAgo: [stale] });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.calls, [], JSON.stringify(c));
    }
  });
});
