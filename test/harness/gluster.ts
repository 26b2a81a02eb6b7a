/**
 * A real GlusterFS replica-3-arbiter volume on one machine, for fault tests.
 *
 * glusterd keeps its state in a temp working directory, so nothing under /var/lib/glusterd is touched. Its management port is GlusterFS's fixed 24007: brick processes and the
 * heal tool always ask that port for their volfile, so it cannot be moved; a second harness on the same
 * machine is refused with a clear message rather than silently sharing state. Bricks take ports from a
 * high range on 127.0.0.2 (the CLI refuses 127.0.0.1 as a brick host).
 */
import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

export interface GlusterBrick {
  readonly path: string;
  readonly pid: number | undefined;
  readonly online: boolean;
}

export interface GlusterVolume {
  readonly name: string;
  readonly mountPoint: string;
  readonly dir: string;
  bricks(): Promise<GlusterBrick[]>;
  /** SIGKILLs one brick process (0-based index; 2 is the arbiter). */
  killBrick(index: number): Promise<void>;
  /** `volume start force`: restarts dead bricks. */
  restartBricks(): Promise<void>;
  /** Sum of "Number of entries" over bricks in `volume heal info`; 0 when healed. */
  pendingHeals(): Promise<number>;
  /** Waits until pendingHeals() is 0, triggering a heal; throws after timeoutMs. */
  waitHealed(timeoutMs: number): Promise<void>;
  /** Unmounts, stops and deletes the volume, stops glusterd and every brick/shd process it started. */
  stop(): Promise<void>;
}

/** What is missing for GlusterFS tests on this machine, or undefined when they can run. */
export function glusterUnavailable(): string | undefined {
  for (const bin of ['glusterd', 'gluster', 'mount.glusterfs']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
      return `${bin} not found: install glusterfs-server and glusterfs-client (scripts/install-system-deps.sh)`;
  }
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing: this machine cannot mount FUSE filesystems';
  if (process.getuid?.() !== 0) return 'GlusterFS tests need root (glusterd, mount)';
  return undefined;
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startGlusterVolume(name = 'mfvol'): Promise<GlusterVolume> {
  const missing = glusterUnavailable();
  if (missing) throw new Error(`GlusterFS harness cannot run: ${missing}`);
  if (await portOpen('127.0.0.1', 24007))
    throw new Error('GlusterFS harness: something already listens on 24007 (another glusterd); stop it first');

  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-gluster-'));
  const wd = join(dir, 'wd');
  const run = join(dir, 'run');
  const logs = join(dir, 'log');
  const mnt = join(dir, 'mnt');
  const brickPaths = [1, 2, 3].map((i) => join(dir, `brick${i}`));
  for (const d of [wd, run, logs, mnt, ...brickPaths]) mkdirSync(d, { recursive: true });
  // The heal tool (glfsheal) only knows the default CLI socket, so glusterd keeps it.
  const sock = '/var/run/glusterd.socket';
  writeFileSync(
    join(dir, 'glusterd.vol'),
    [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${wd}`,
      '    option transport-type socket',
      '    option transport.socket.listen-port 24007',
      '    option ping-timeout 0',
      '    option event-threads 1',
      '    option base-port 49152',
      '    option max-port 60999',
      'end-volume',
      '',
    ].join('\n'),
  );
  const pidFile = join(dir, 'glusterd.pid');
  await execFile('glusterd', ['-f', join(dir, 'glusterd.vol'), '-l', join(logs, 'glusterd.log'), '-p', pidFile]);

  const cli = async (...args: string[]) => {
    const { stdout } = await execFile('gluster', [`--glusterd-sock=${sock}`, '--mode=script', ...args], {
      timeout: 60_000,
    });
    return stdout;
  };
  // The CLI answers a few seconds after glusterd starts.
  for (let i = 0; ; i++) {
    try {
      await cli('volume', 'list');
      break;
    } catch (e) {
      if (i > 60) throw new Error(`glusterd did not answer: ${(e as Error).message}`);
      await sleep(250);
    }
  }

  const glusterdPid = Number(readFileSync(pidFile, 'utf8').trim());
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    spawnSync('umount', ['-l', mnt]);
    try {
      await cli('volume', 'stop', name, 'force');
      await cli('volume', 'delete', name);
    } catch {
      /* best effort: processes are killed below anyway */
    }
    // Bricks, self-heal daemon and the FUSE client of this volume carry our temp dir or volume name.
    spawnSync('pkill', ['-9', '-f', `glusterfs.*(${dir}|--volfile-id[= ]${name}|gluster/glustershd)`]);
    try {
      process.kill(glusterdPid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await cli('volume', 'create', name, 'replica', '3', 'arbiter', '1', ...brickPaths.map((b) => `127.0.0.2:${b}`), 'force');
    // Quick heals keep the fault tests short.
    await cli('volume', 'start', name);
    await cli('volume', 'set', name, 'cluster.heal-timeout', '5');
    await execFile('mount', ['-t', 'glusterfs', '-o', `log-file=${join(logs, 'mount.log')}`, `127.0.0.2:/${name}`, mnt]);
  } catch (e) {
    await stop();
    throw e;
  }

  const bricks = async (): Promise<GlusterBrick[]> => {
    const xml = await cli('volume', 'status', name, '--xml');
    const out: GlusterBrick[] = [];
    for (const m of xml.matchAll(/<node>([\s\S]*?)<\/node>/g)) {
      const node = m[1]!;
      const path = /<path>([^<]*)<\/path>/.exec(node)?.[1];
      if (!path || !brickPaths.includes(path)) continue;
      const pid = Number(/<pid>(-?\d+)<\/pid>/.exec(node)?.[1]);
      out.push({ path, pid: pid > 0 ? pid : undefined, online: /<status>1<\/status>/.test(node) });
    }
    return brickPaths.map((p) => out.find((b) => b.path === p) ?? { path: p, pid: undefined, online: false });
  };

  const pendingHeals = async () => {
    const out = await cli('volume', 'heal', name, 'info');
    let sum = 0;
    for (const m of out.matchAll(/Number of entries: (\d+|-)/g)) sum += m[1] === '-' ? 1 : Number(m[1]);
    return sum;
  };

  return {
    name,
    mountPoint: mnt,
    dir,
    bricks,
    async killBrick(index) {
      const b = (await bricks())[index];
      if (!b?.pid) throw new Error(`brick ${index} has no running process`);
      process.kill(b.pid, 'SIGKILL');
      // glusterd treats a brick whose pid still exists as running, and a killed daemon lingers until
      // PID 1 reaps it: wait for the process to be gone, or `start force` would not restart it.
      for (let i = 0; i < 80 && processAlive(b.pid); i++) await sleep(125);
      for (let i = 0; i < 40 && (await bricks())[index]!.online; i++) await sleep(250);
    },
    async restartBricks() {
      // glusterd notices a dead brick a moment after its process is gone; until then `start force`
      // "discovers" it as running. Retry until every brick is online.
      for (let i = 0; i < 30; i++) {
        await cli('volume', 'start', name, 'force');
        for (let j = 0; j < 8; j++) {
          if ((await bricks()).every((b) => b.online)) return;
          await sleep(250);
        }
      }
      throw new Error('bricks did not come back online after volume start force');
    },
    pendingHeals,
    async waitHealed(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          await cli('volume', 'heal', name);
        } catch {
          /* "heal already in progress" is fine */
        }
        const n = await pendingHeals();
        if (n === 0) return;
        if (Date.now() > deadline) throw new Error(`heal did not finish in ${timeoutMs} ms (${n} entries pending)`);
        await sleep(1000);
      }
    },
    stop,
  };
}
