/**
 * GlusterFS geo-replication as the product sets it up, on real GlusterFS 10.3: two "hosts" (a primary and
 * a DR storage node 1), each a network + mount namespace with its own glusterd state, logs, runtime
 * directory, /root/.ssh, /etc/ssh and /etc/hosts, joined by a veth pair. Each runs glusterd and a
 * one-brick volume of the plan's volume name; the DR host also runs sshd (started by the rendered script).
 *
 * The rendered scripts run unchanged, in the runbook's order (docs/cdk.md): primary `publish` (writes the
 * key to the DR region's SSM parameter), DR `geo-replication-dr.sh` (reads it, trusts it, starts ssh),
 * primary `start`. The real aws CLI talks to an SSM stand-in through AWS_ENDPOINT_URL, and common.sh's
 * IMDS calls reach an IMDS stand-in at 169.254.169.254 inside each namespace. The one OS shim is
 * `systemctl` on the DR host (no systemd here): `enable --now ssh` starts sshd as ssh.service would.
 *
 * Names resolve as in AWS: each host's /etc/hosts holds the private records (lib/plan/network.ts
 * privateRecordsOf) its VPC resolves, for storage node 1 (the one node each region has here): its own
 * region's records in both zones, and the other region's region-zone records (the zone the link associates
 * with the other VPC). Each volume's brick is the rendered name (volumeCreateArgs), and the session targets
 * the DR node by the name the drill reads from the DR region's outputs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { privateRecordsOf } from '../../lib/plan/network.js';
import { platformOutputs } from '../../lib/plan/outputs.js';
import { loadSpec } from '../../lib/spec/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import type { RegionRole } from '../../lib/render/node-layout.js';
import { GEOREP_WATCHDOG_INTERVAL_SECONDS, volumeCreateArgs } from '../../lib/render/gluster.js';
import { glusterCheckpointScript } from '../../lib/dr/aws-plan.js';

const here = dirname(fileURLToPath(import.meta.url));
const SPEC = join(here, '../../examples/primary-dr.yaml');
const STANDIN = join(here, 'fixtures/aws-standin.py');
const SSM_PORT = 8080;
const tag = String(process.pid % 100000);

interface Host {
  readonly role: RegionRole;
  readonly ns: string;
  readonly ip: string;
  readonly dir: string;
  holder?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function must(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.out}`);
  return r.out;
}

describe('GlusterFS geo-replication (rendered scripts, two namespaced hosts, real GlusterFS 10.3)', { timeout: 480_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'mf-georep-'));
  const plan: Plan = buildPlan(loadSpec(SPEC).spec);
  assert.equal(plan.storage.kind, 'glusterfs');
  const volume = plan.storage.kind === 'glusterfs' ? plan.storage.volumeName : '';
  const primary: Host = { role: 'primary', ns: `mfgr-p-${tag}`, ip: '10.213.0.1', dir: join(root, 'primary') };
  const dr: Host = { role: 'dr', ns: `mfgr-d-${tag}`, ip: '10.213.0.2', dir: join(root, 'dr') };
  const hosts = [primary, dr];
  const target = platformOutputs(plan, 'dr').find((o) => o.source.kind === 'storage-host')!.source;
  const drHost = target.kind === 'storage-host' ? target.value : assert.fail('the DR region outputs no StorageHost');
  const session = [volume, `${drHost}::${volume}`];
  const env = (h: Host) => [
    `PATH=${join(h.dir, 'bin')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}:/usr/sbin:/sbin`,
    'HOME=/root',
    `AWS_ENDPOINT_URL=http://${dr.ip}:${SSM_PORT}`,
    'AWS_ACCESS_KEY_ID=test',
    'AWS_SECRET_ACCESS_KEY=test',
  ];
  const nsArgs = (h: Host, cmd: string[]) => ['-t', String(h.holder), '-m', '-n', 'env', ...env(h), ...cmd];
  const inHost = (h: Host, cmd: string[], timeoutMs?: number) => run('nsenter', nsArgs(h, cmd), { timeoutMs });
  const mustIn = (h: Host, cmd: string[], timeoutMs?: number) => must('nsenter', nsArgs(h, cmd), { timeoutMs });
  const background = (h: Host, name: string, cmd: string[]) => {
    const log = openSync(join(h.dir, `${name}.log`), 'a');
    spawn('nsenter', nsArgs(h, cmd), { stdio: ['ignore', log, log], detached: true }).unref();
  };
  /** Brick host of each region's node 1: the name its rendered volume script creates the volume with. */
  const brickHost = (h: Host) => {
    const brick = volumeCreateArgs(plan, h.role).find((a) => a.includes(':/'))!;
    return brick.slice(0, brick.indexOf(':'));
  };
  /** What a host's VPC resolves for storage node 1 of each region, from the records the engines write. */
  const hostsFile = (h: Host) => {
    const lines = ['127.0.0.1 localhost'];
    const seen = new Map<string, string>();
    for (const x of hosts)
      for (const r of privateRecordsOf(plan, x.role)) {
        if (r.nodeKind !== 'storage' || r.nodeIndex !== 0 || (x !== h && r.zone !== 'region')) continue;
        assert.ok(!seen.has(r.name) || seen.get(r.name) === x.ip, `${h.role} would resolve ${r.name} to both regions`);
        seen.set(r.name, x.ip);
        lines.push(`${x.ip} ${r.name}`);
      }
    return `${lines.join('\n')}\n`;
  };

  before(async () => {
    mkdirSync('/root/.ssh', { recursive: true, mode: 0o700 });
    for (const h of hosts) {
      for (const d of ['run', 'log', 'ssh', 'brick', 'mnt', 'bin']) mkdirSync(join(h.dir, d), { recursive: true, mode: 0o700 });
      cpSync('/var/lib/glusterd', join(h.dir, 'glusterd'), { recursive: true });
      rmSync(join(h.dir, 'glusterd/glusterd.info'), { force: true });
      cpSync('/etc/ssh', join(h.dir, 'etc-ssh'), { recursive: true });
      for (const f of nodeFiles(plan, 'storage', h.role)) {
        const p = join(h.dir, 'files', f.path);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, f.content, { mode: f.executable ? 0o755 : 0o644 });
      }
    }
    for (const h of hosts) writeFileSync(join(h.dir, 'hosts'), hostsFile(h));
    writeFileSync(
      join(dr.dir, 'bin/systemctl'),
      '#!/bin/sh\n# No systemd in the test host: start sshd as ssh.service would.\n[ "$*" = "enable --now ssh" ] && exec /usr/sbin/sshd\necho "systemctl shim: $*" >&2; exit 1\n',
      { mode: 0o755 },
    );
    const holder = join(root, 'holder.sh');
    writeFileSync(
      holder,
      [
        '#!/bin/bash',
        '# A fresh mount namespace: this host gets its own gluster, ssh and name state, then waits.',
        'set -euo pipefail',
        'h=$1',
        'mount --bind "$h/run" /run',
        'mkdir -p /run/gluster /run/sshd',
        'mount --bind "$h/glusterd" /var/lib/glusterd',
        'mount --bind "$h/log" /var/log/glusterfs',
        'mount --bind "$h/ssh" /root/.ssh',
        'mount --bind "$h/etc-ssh" /etc/ssh',
        'mount --bind "$h/hosts" /etc/hosts',
        'touch "$h/ready"',
        'exec sleep infinity',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    for (const h of hosts) must('ip', ['netns', 'add', h.ns]);
    must('ip', ['link', 'add', `mfgrp${tag}`, 'type', 'veth', 'peer', 'name', `mfgrd${tag}`]);
    for (const [h, ifname] of [[primary, `mfgrp${tag}`], [dr, `mfgrd${tag}`]] as const) {
      must('ip', ['link', 'set', ifname, 'netns', h.ns]);
      must('ip', ['-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', ifname]);
      must('ip', ['-n', h.ns, 'link', 'set', ifname, 'up']);
      must('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
      must('ip', ['-n', h.ns, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
      const child = spawn('ip', ['netns', 'exec', h.ns, 'unshare', '-m', '--propagation', 'private', holder, h.dir], {
        stdio: 'ignore',
        detached: true,
      });
      child.unref();
      h.holder = child.pid;
    }
    for (let i = 0; !hosts.every((h) => existsSync(join(h.dir, 'ready'))); i++) {
      if (i > 100) throw new Error('namespace holders did not start');
      await sleep(50);
    }
    const regionName = (h: Host) => plan.regions![h.role]!.name;
    for (const h of hosts) {
      background(h, 'imds', ['python3', STANDIN, '169.254.169.254', '80', regionName(h)]);
      mustIn(h, ['glusterd', '-l', '/var/log/glusterfs/glusterd.log', '-p', '/run/gluster/glusterd.pid']);
    }
    background(dr, 'ssm', ['python3', STANDIN, dr.ip, String(SSM_PORT), '-', join(root, 'ssm.json')]);
    for (const h of hosts) {
      for (let i = 0; inHost(h, ['gluster', 'pool', 'list']).code !== 0; i++) {
        if (i > 60) throw new Error(`glusterd on ${h.role} did not answer`);
        await sleep(250);
      }
      mustIn(h, ['gluster', '--mode=script', 'volume', 'create', volume, `${brickHost(h)}:${join(h.dir, 'brick', volume)}`, 'force']);
      mustIn(h, ['gluster', 'volume', 'start', volume]);
    }
    mustIn(primary, ['mount', '-t', 'glusterfs', `127.0.0.1:/${volume}`, join(primary.dir, 'mnt')]);
  });

  after(() => {
    // Every process in the two namespaces was started by this test: kill them all, then the namespaces.
    for (const h of hosts) {
      for (const pid of run('ip', ['netns', 'pids', h.ns]).out.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    for (const h of hosts) {
      for (let i = 0; i < 50 && run('ip', ['netns', 'pids', h.ns]).out.trim() !== ''; i++) spawnSync('sleep', ['0.1']);
      run('ip', ['netns', 'del', h.ns]);
    }
    rmSync(root, { recursive: true, force: true });
  });

  test('DR trusts the key, the primary starts the session, Maildir messages reach the DR volume with their content and the drill checkpoint completes', async () => {
    const script = (h: Host, name: string) => join(h.dir, 'files/bootstrap', name);
    mustIn(primary, ['bash', script(primary, 'geo-replication-primary.sh'), 'publish']);
    mustIn(dr, ['bash', script(dr, 'geo-replication-dr.sh')]);
    mustIn(primary, ['bash', script(primary, 'geo-replication-primary.sh'), 'start'], 180_000);
    // The node's watchdog timer (mailfleet-georep-watchdog, every GEOREP_WATCHDOG_INTERVAL_SECONDS), as a loop:
    // these hosts run the scripts, not systemd. It restarts a session whose live changelog stalled
    // (GlusterFS 10.3's registration race, docs/dr.md); on a healthy session it does nothing.
    const watchdogLog = join(primary.dir, 'watchdog.log');
    background(primary, 'watchdog', ['sh', '-c', `while :; do python3 ${script(primary, 'geo-replication-watchdog.py')}; sleep ${GEOREP_WATCHDOG_INTERVAL_SECONDS}; done`]);
    const watchdogSaid = () => (existsSync(watchdogLog) ? readFileSync(watchdogLog, 'utf8').trim() : '');
    const watchdogRestarts = () => watchdogSaid().split('\n').filter((l) => l.includes('restarting the session'));

    // A message delivered as Maildir writers do: written in tmp/, renamed into new/.
    const md = join(primary.dir, 'mnt/alice/Maildir');
    mustIn(primary, ['sh', '-c', `mkdir -p ${md}/tmp ${md}/new ${md}/cur && printf 'Subject: georep\\r\\n\\r\\nhello DR\\r\\n' >${md}/tmp/1.m && mv ${md}/tmp/1.m ${md}/new/1.m`]);
    // Arrival is watched on the DR brick (a plain directory), then read back through a DR client mount.
    const onBrick = join(dr.dir, 'brick', volume, 'alice/Maildir/new/1.m');
    const started = Date.now();
    while (Date.now() - started < 60_000 && !existsSync(onBrick)) await sleep(250);
    const arrivedMs = Date.now() - started;
    for (let i = 0; i < 40 && existsSync(onBrick) && !readFileSync(onBrick, 'utf8').includes('hello DR'); i++) await sleep(250);
    const status = inHost(primary, ['gluster', 'volume', 'geo-replication', ...session, 'status', 'detail']).out;
    if (!existsSync(onBrick)) {
      const brick = run('find', [join(dr.dir, 'brick', volume), '-path', '*/.glusterfs', '-prune', '-o', '-print']).out;
      const logs = run('sh', ['-c', `tail -n 30 ${primary.dir}/log/geo-replication/*/gsyncd.log`]).out;
      assert.fail(`message not on the DR volume within 60 s; session status:\n${status}\nDR brick:\n${brick}\nlogs:\n${logs}`);
    }
    mustIn(dr, ['mount', '-t', 'glusterfs', '-o', 'ro', `127.0.0.1:/${volume}`, join(dr.dir, 'mnt')]);
    assert.match(mustIn(dr, ['cat', join(dr.dir, 'mnt/alice/Maildir/new/1.m')]), /hello DR/);
    console.log(`geo-replication: message on the DR brick ${arrivedMs} ms after delivery`);

    // A later message travels the live changelog path (the first one went by the initial crawl).
    const deliver = (n: number) =>
      `printf 'Subject: m${n}\\r\\n\\r\\nmessage ${n}\\r\\n' >${md}/tmp/${n}.m && mv ${md}/tmp/${n}.m ${md}/new/${n}.m`;
    mustIn(primary, ['sh', '-c', deliver(2)]);
    const two = join(dr.dir, 'brick', volume, 'alice/Maildir/new/2.m');
    const t2 = Date.now();
    // The claim is that it arrives, by the live changelog or, when the worker lost GlusterFS's registration
    // race, by the watchdog's restart: a stall is seen GEOREP_STALL_SECONDS after the changelog's rollover
    // (up to 15 s after the write), on the next watchdog round, and the restarted worker's history crawl
    // ships it. 180 s leaves a loaded CI box room for that path.
    const within = 180;
    while (Date.now() - t2 < within * 1000 && !(existsSync(two) && readFileSync(two, 'utf8').includes('message 2'))) await sleep(250);
    if (!(existsSync(two) && readFileSync(two, 'utf8').includes('message 2'))) {
      const detail = inHost(primary, ['gluster', 'volume', 'geo-replication', ...session, 'status', 'detail']).out;
      const logs = run('sh', ['-c', `tail -n 40 ${primary.dir}/log/geo-replication/*/gsyncd.log`]).out;
      assert.fail(`second message not on the DR volume within ${within} s (on the brick: ${existsSync(two)}); session status:\n${detail}\nwatchdog:\n${watchdogSaid()}\nlogs:\n${logs}`);
    }
    const restarts = watchdogRestarts();
    console.log(`geo-replication: live change on the DR brick ${Date.now() - t2} ms after delivery (${restarts.length ? `after ${restarts.length} watchdog restart(s): ${restarts.join(' | ')}` : 'live changelog, no watchdog restart'})`);

    // The drill's own checkpoint script (lib/dr/aws-plan.ts), while mail keeps arriving (one message 2 s
    // in): gsyncd marks a checkpoint completed once a changelog newer than it has been synced.
    const t3 = Date.now();
    // 150 s: room for one watchdog restart, as for message 2.
    const drillScript = glusterCheckpointScript(volume, drHost, 150).join('\n');
    const drill = inHost(primary, ['bash', '-c', `(sleep 2; ${deliver(3)}) & ${drillScript}\nwait`], 180_000);
    if (drill.code !== 0) {
      const detail = inHost(primary, ['gluster', 'volume', 'geo-replication', ...session, 'status', 'detail']).out;
      assert.fail(`drill checkpoint wait failed: ${drill.out}\n${detail}\nwatchdog:\n${watchdogSaid()}`);
    }
    console.log(`geo-replication: drill checkpoint completed after ${Date.now() - t3} ms; watchdog restarts in all: ${watchdogRestarts().length}`);
  });
});
