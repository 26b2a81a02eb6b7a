/**
 * The fleet harness (`npm run test:fleet`): real Debian 12 hosts booted with systemd (systemd-nspawn),
 * each in a network namespace of its own joined by a bridge like the VPC's subnets, fed the node files
 * the engines render, with stand-ins only at the AWS API boundary. Needs root, systemd-container,
 * debootstrap, apt-cacher-ng, socat and iproute2; fails loudly (exit 1) when it cannot run.
 *
 * What it proves today (docs/fleet.md keeps the list): a proxy host runs the rendered proxy role script
 * (Debian's haproxy 2.6 under systemd, the rendered haproxy.cfg), and an NLB stand-in health-checks it the
 * way the synthesized target group says (path, port, interval, thresholds, PROXY v2 header) and sees the
 * service state: unhealthy while no mail node is up.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { cdkJsonContext } from '../../constructs/shared/cdk-context.js';
import { buildPlan, type Plan } from '../../lib/plan/index.js';
import { nodeFiles } from '../../lib/render/node-files.js';
import { loadSpec, parseSpec } from '../../lib/spec/index.js';
import { addPlatformStacks } from '../../stacks/app.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Outside the repository, reused across runs: the debootstrapped base and apt-cacher-ng's cache. */
const CACHE = process.env.MAILFLEET_FLEET_CACHE ?? '/var/cache/mailfleet-fleet';
const MIRROR = 'http://deb.debian.org/debian';
const BASE_PACKAGES = 'systemd,systemd-sysv,dbus,iproute2,ca-certificates,curl,unzip,python3';
const RUN = join(CACHE, 'run');
const FABRIC = 'mf-fabric';
const SUBNET = '10.77.0';
const IMDS = '169.254.169.254';
const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const log = (m: string) => process.stdout.write(`[fleet ${secs()}s] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const children: ChildProcess[] = [];
const cleanups: (() => void)[] = [];

function sh(cmd: string, opts: { allowFail?: boolean; input?: string } = {}): string {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', input: opts.input, maxBuffer: 64 << 20 });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`failed (${r.status}): ${cmd}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

function preflight(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['systemd-nspawn', 'debootstrap', 'apt-cacher-ng', 'socat', 'ip', 'nsenter', 'haproxy'])
    if (spawnSync('bash', ['-c', `command -v ${bin}`]).status !== 0) missing.push(bin);
  if (missing.length > 0)
    throw new Error(`the fleet harness cannot run here: missing ${missing.join(', ')} (apt-get install systemd-container debootstrap apt-cacher-ng socat iproute2)`);
}

/** debootstrap once; later runs reuse the base when its package list matches. */
function baseImage(): string {
  const base = join(CACHE, 'base');
  const stamp = join(base, '.mailfleet-base');
  const want = createHash('sha256').update(BASE_PACKAGES).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return base;
  const tmp = join(CACHE, 'base.tmp');
  if (!existsSync(join(tmp, 'etc', 'debian_version')) || !existsSync(join(tmp, 'usr', 'bin', 'curl'))) {
    rmSync(tmp, { recursive: true, force: true });
    log('debootstrap Debian 12 (once; cached under ' + CACHE + ')');
    sh(`debootstrap --variant=minbase --include=${BASE_PACKAGES} bookworm ${tmp} ${MIRROR}`);
  }
  // Hosts reach Debian only through apt-cacher-ng (a relay on 127.0.0.1:3142 inside each namespace).
  writeFileSync(join(tmp, 'etc/apt/apt.conf.d/01mailfleet-proxy'), 'Acquire::http::Proxy "http://127.0.0.1:3142";\n');
  writeFileSync(join(tmp, 'etc/apt/sources.list'), `deb ${MIRROR} bookworm main\ndeb ${MIRROR} bookworm-updates main\n`);
  writeFileSync(join(tmp, 'etc/machine-id'), '');
  writeFileSync(join(tmp, '.mailfleet-base'), want);
  rmSync(base, { recursive: true, force: true });
  renameSync(tmp, base);
  return base;
}

function bg(cmd: string, name: string): ChildProcess {
  const c = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  c.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  c.on('exit', (code) => {
    if (code !== 0 && code !== null && !stopping) log(`${name} exited ${code}: ${err.trim()}`);
  });
  children.push(c);
  return c;
}
let stopping = false;

/**
 * apt-cacher-ng backed by deb.debian.org, its cache under CACHE. It listens on its default port 3142 (here
 * a Port/BindAddress override fails with "Error resolving address for binding"); one already answering
 * there (an earlier run's) is reused.
 */
async function aptCache(): Promise<string> {
  const ACNG_PORT = 3142;
  const answering = () => sh(`curl -s -o /dev/null -w '%{http_code}' -m 5 -x http://127.0.0.1:${ACNG_PORT} ${MIRROR}/dists/bookworm/Release`, { allowFail: true }).trim() === '200';
  if (!answering()) {
    const conf = join(CACHE, 'acng-conf');
    rmSync(conf, { recursive: true, force: true });
    sh(`cp -r /etc/apt-cacher-ng ${conf}`);
    writeFileSync(join(conf, 'backends_debian'), `${MIRROR}/\n`);
    mkdirSync(join(CACHE, 'acng', 'cache'), { recursive: true });
    mkdirSync(join(CACHE, 'acng', 'log'), { recursive: true });
    bg(`exec apt-cacher-ng -c ${conf} ForeGround=1 CacheDir=${CACHE}/acng/cache LogDir=${CACHE}/acng/log SocketPath=${RUN}/acng-admin.sock`, 'apt-cacher-ng');
    for (let i = 0; i < 50 && !answering(); i++) await sleep(200);
    if (!answering()) throw new Error(`apt-cacher-ng does not answer on 127.0.0.1:${ACNG_PORT} (is the port taken?)`);
  }
  const sock = join(RUN, 'acng.sock');
  rmSync(sock, { force: true });
  bg(`exec socat UNIX-LISTEN:${sock},fork,mode=666 TCP:127.0.0.1:${ACNG_PORT}`, 'apt relay');
  for (let i = 0; i < 50 && !existsSync(sock); i++) await sleep(100);
  return sock;
}

/** The fabric: a bridge in a namespace of its own; the IMDS stand-in's address lives there. */
function fabric(): void {
  sh(`ip netns del ${FABRIC} 2>/dev/null; ip netns add ${FABRIC}
ip -n ${FABRIC} link set lo up
ip -n ${FABRIC} link add br0 type bridge
ip -n ${FABRIC} addr add ${SUBNET}.1/24 dev br0
ip -n ${FABRIC} addr add ${IMDS}/32 dev lo
ip -n ${FABRIC} link set br0 up`);
  cleanups.push(() => sh(`ip netns del ${FABRIC}`, { allowFail: true }));
}

interface Host {
  readonly name: string;
  readonly ip: string;
  readonly ns: string;
  readonly root: string;
  leader?: number;
}

function hostNetwork(h: Host, aptSock: string): void {
  const veth = `v${h.name}`.slice(0, 15);
  sh(`ip netns del ${h.ns} 2>/dev/null; ip netns add ${h.ns}
ip link add ${veth} type veth peer name eth0 netns ${h.ns}
ip link set ${veth} netns ${FABRIC}
ip -n ${FABRIC} link set ${veth} master br0 up
ip -n ${h.ns} link set lo up
ip -n ${h.ns} addr add ${h.ip}/24 dev eth0
ip -n ${h.ns} link set eth0 up
ip -n ${h.ns} route add default via ${SUBNET}.1`);
  cleanups.push(() => sh(`ip netns del ${h.ns}`, { allowFail: true }));
  bg(`exec ip netns exec ${h.ns} socat TCP-LISTEN:3142,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${aptSock}`, `${h.name} apt relay`);
}

/** One overlay per host on the shared base, its own cgroup, systemd as PID 1 in its namespace. */
async function boot(h: Host, base: string): Promise<void> {
  const dir = join(RUN, h.name);
  sh(`umount -l ${dir}/root 2>/dev/null; rm -rf ${dir}; mkdir -p ${dir}/upper ${dir}/work ${dir}/root
mount -t overlay overlay -o lowerdir=${base},upperdir=${dir}/upper,workdir=${dir}/work ${dir}/root`);
  cleanups.push(() => sh(`umount -l ${dir}/root`, { allowFail: true }));
  writeFileSync(join(h.root, 'etc/hostname'), `${h.name}\n`);
  writeFileSync(join(h.root, 'etc/resolv.conf'), `nameserver ${SUBNET}.1\n`);
  const cg = `mf-${h.name}`;
  bg(
    `for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do mkdir -p $d/${cg} && echo $$ > $d/${cg}/cgroup.procs; done
exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --register=no --keep-unit --console=passive -M ${h.name} -D ${h.root} -b --private-network --network-namespace-path=/run/netns/${h.ns} --bind=/dev/fuse`,
    `${h.name} nspawn`,
  );
  for (let i = 0; i < 300; i++) {
    const pid = sh(`for p in $(pgrep -x systemd); do if [ "$(readlink /proc/$p/ns/net)" = "$(ip netns exec ${h.ns} readlink /proc/self/ns/net)" ]; then echo $p; fi; done`, { allowFail: true }).trim().split('\n')[0];
    if (pid) {
      h.leader = Number(pid);
      const state = inHost(h, 'systemctl is-system-running', true).trim();
      if (state === 'running' || state === 'degraded') return;
    }
    await sleep(200);
  }
  throw new Error(`${h.name} did not boot`);
}

function inHost(h: Host, cmd: string, allowFail = false): string {
  return sh(`nsenter -t ${h.leader} -m -u -i -n -p -C -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin bash -c ${JSON.stringify(cmd)}`, { allowFail });
}

/** Runs a command as a transient service inside the host (the capabilities a node's service gets). */
function runUnit(h: Host, cmd: string): { status: number | null; out: string } {
  const r = spawnSync('nsenter', ['-t', String(h.leader), '-m', '-u', '-i', '-n', '-p', '-C', '-r', '-w', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'systemd-run', '--wait', '--pipe', '-q', 'bash', '-c', cmd], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** IMDSv2 stand-in inside the fabric (token first, then metadata), per source address. */
function imdsStandIn(hosts: readonly Host[], region: string): void {
  const table = Object.fromEntries(hosts.map((h, i) => [h.ip, { id: `i-0fleet${String(i).padStart(10, '0')}`, ip: h.ip }]));
  const script = `
const http = require('node:http');
const t = ${JSON.stringify(table)};
http.createServer((q, s) => {
  const h = t[q.socket.remoteAddress.replace(/^::ffff:/, '')];
  if (q.method === 'PUT' && q.url === '/latest/api/token') { s.end('fleet-token'); return; }
  if (q.headers['x-aws-ec2-metadata-token'] !== 'fleet-token' || !h) { s.statusCode = 401; s.end(); return; }
  const v = { '/latest/meta-data/placement/region': ${JSON.stringify(region)}, '/latest/meta-data/instance-id': h.id, '/latest/meta-data/local-ipv4': h.ip }[q.url];
  if (v === undefined) { s.statusCode = 404; s.end(); return; }
  s.end(v);
}).listen(80, '${IMDS}');`;
  const file = join(RUN, 'imds.cjs');
  writeFileSync(file, script);
  bg(`exec ip netns exec ${FABRIC} ${process.execPath} ${file}`, 'IMDS stand-in');
}

/** The target group's health check as the synthesized template says. */
interface TgHealth {
  readonly path: string;
  readonly port: number;
  readonly intervalSeconds: number;
  readonly healthy: number;
  readonly unhealthy: number;
  readonly proxyV2: boolean;
}

function templateHealthCheck(plan: Plan): TgHealth {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:disable-stack-trace': true }, outdir: join(RUN, 'cdk.out') });
  addPlatformStacks(app, plan);
  for (const stack of app.synth().stacks) {
    const res = (stack.template as { Resources?: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources ?? {};
    for (const r of Object.values(res)) {
      if (r.Type !== 'AWS::ElasticLoadBalancingV2::TargetGroup') continue;
      const p = r.Properties;
      const attrs = (p.TargetGroupAttributes ?? []) as { Key: string; Value: string }[];
      return {
        path: String(p.HealthCheckPath),
        port: Number(p.HealthCheckPort),
        intervalSeconds: Number(p.HealthCheckIntervalSeconds),
        healthy: Number(p.HealthyThresholdCount),
        unhealthy: Number(p.UnhealthyThresholdCount),
        proxyV2: attrs.some((a) => a.Key === 'proxy_protocol_v2.enabled' && a.Value === 'true'),
      };
    }
  }
  throw new Error('no target group in the synthesized template');
}

/**
 * One NLB health check from inside the fabric: PROXY v2 header (when the target group has it on), then
 * GET <path> on <port>. Returns the HTTP status line.
 */
function nlbHealthCheck(target: Host, hc: TgHealth): string {
  const script = `
const net = require('node:net');
const s = net.createConnection({ host: '${target.ip}', port: ${hc.port} });
let b = '';
s.on('connect', () => {
  if (${hc.proxyV2}) {
    const sig = Buffer.from([0x0d,0x0a,0x0d,0x0a,0x00,0x0d,0x0a,0x51,0x55,0x49,0x54,0x0a]);
    const addr = Buffer.from([10,77,0,1, ${target.ip.split('.').join(',')}, 0x9c,0x40, ${hc.port >> 8},${hc.port & 255}]);
    s.write(Buffer.concat([sig, Buffer.from([0x21, 0x11, 0, 12]), addr]));
  }
  s.write('GET ${hc.path} HTTP/1.1\\r\\nHost: ${target.ip}\\r\\nUser-Agent: ELB-HealthChecker/2.0\\r\\nConnection: close\\r\\n\\r\\n');
});
s.on('data', (d) => (b += d));
s.on('close', () => { process.stdout.write(b.split('\\r\\n')[0]); process.exit(0); });
s.on('error', (e) => { process.stdout.write('error ' + e.code); process.exit(0); });
setTimeout(() => { process.stdout.write(b.split('\\r\\n')[0] || 'timeout'); process.exit(0); }, 6000);`;
  const file = join(RUN, 'nlb-check.cjs');
  writeFileSync(file, script);
  return sh(`ip netns exec ${FABRIC} ${process.execPath} ${file}`, { allowFail: true }).trim();
}

/** Places a role's node files where the user data unpacks them. */
function installNodeFiles(h: Host, plan: Plan, role: 'proxy' | 'mail' | 'storage' | 'ldap'): void {
  for (const f of nodeFiles(plan, role, 'primary')) {
    const p = join(h.root, 'opt/mailfleet', f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    chmodSync(p, f.executable ? 0o755 : 0o644);
  }
}

async function main(): Promise<void> {
  preflight();
  mkdirSync(RUN, { recursive: true });
  // The single-region example, with caps that fit this machine's hard open-file limit (20000 here; a node's
  // LimitNOFILE is 1M): HAProxy needs two descriptors per connection of its global maxconn.
  const example = loadSpec(join(REPO, 'examples', 'single-region.yaml')).spec;
  const plan = buildPlan(
    parseSpec(
      JSON.stringify({
        ...example,
        tiers: { ...example.tiers, proxyMaxConnectionsPerNode: 6000 },
        limits: { ...example.limits, imap: { ...example.limits.imap, listenerConnections: 1000 }, smtp: { ...example.limits.smtp, listenerConnections: 500 } },
        domains: example.domains.map((d) => (d.limits?.imap ? { ...d, limits: { ...d.limits, imap: { ...d.limits.imap, listenerConnections: 200 } } } : d)),
      }),
      'fleet.yaml',
    ),
  );
  const base = baseImage();
  log('base image ready');
  const hc = templateHealthCheck(plan);
  log(`target group health check from the template: ${JSON.stringify(hc)}`);
  const aptSock = await aptCache();
  fabric();
  const proxy: Host = { name: 'proxy1', ip: `${SUBNET}.11`, ns: 'mf-proxy1', root: join(RUN, 'proxy1', 'root') };
  const hosts = [proxy];
  imdsStandIn(hosts, plan.spec.regions?.primary.name ?? 'eu-west-1');
  for (const h of hosts) {
    hostNetwork(h, aptSock);
    const tb = performance.now();
    await boot(h, base);
    log(`${h.name}: systemd running after ${((performance.now() - tb) / 1000).toFixed(1)} s`);
  }

  // Proxy role: the rendered role script from the rendered node files (the user data's own SSM/S3 fetch
  // is not served by a stand-in yet: see docs/fleet.md).
  installNodeFiles(proxy, plan, 'proxy');
  const tp = performance.now();
  const apt = runUnit(proxy, 'apt-get update -q -o APT::Update::Error-Mode=any');
  if (apt.status !== 0) throw new Error(`apt-get update through apt-cacher-ng failed:\n${apt.out}`);
  const r = runUnit(proxy, '/opt/mailfleet/bootstrap/proxy.sh');
  if (r.status !== 0)
    throw new Error(`proxy.sh failed on ${proxy.name}:\n${r.out.slice(-3000)}\n${inHost(proxy, 'journalctl -u haproxy --no-pager -n 40', true)}`);
  log(`proxy role bootstrapped in ${((performance.now() - tp) / 1000).toFixed(1)} s (haproxy ${inHost(proxy, 'haproxy -v | head -1').trim()})`);
  const active = inHost(proxy, 'systemctl is-active haproxy', true).trim();
  if (active !== 'active') throw new Error(`haproxy is ${active} on ${proxy.name}`);

  // The NLB stand-in checks as the target group says, and must see the service state: no mail node yet.
  let status = '';
  for (let i = 0; i < hc.unhealthy; i++) {
    status = nlbHealthCheck(proxy, hc);
    log(`NLB health check ${i + 1}: ${status}`);
    if (i + 1 < hc.unhealthy) await sleep(hc.intervalSeconds * 1000);
  }
  if (!/^HTTP\/1\.[01] 503/.test(status))
    throw new Error(`expected 503 from ${proxy.name}:${hc.port}${hc.path} with no mail node (a 400 means the PROXY v2 header was refused), got "${status}"`);
  log('PASS proxy host: Debian haproxy under systemd answers the NLB health check behind PROXY v2 and reports the mail tier down');
  log('NOT YET: mail and storage roles, user data through SSM/S3/Secrets stand-ins, swaks/imaplib through the NLB stand-in (docs/fleet.md)');
}

function cleanup(): void {
  stopping = true;
  for (const c of children) if (c.pid && c.exitCode === null) {
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  for (const f of cleanups.reverse()) f();
}

// Interrupted (timeout, Ctrl-C): still take the hosts, relays and namespaces down.
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    cleanup();
    process.stderr.write(`FLEET HARNESS INTERRUPTED (${sig})\n`);
    process.exit(1);
  });

main().then(
  () => {
    cleanup();
    log(`done in ${secs()} s`);
    process.stdout.write('fleet: 1 passed, 0 failed\n');
    process.exit(0);
  },
  (e: unknown) => {
    cleanup();
    process.stderr.write(`FLEET HARNESS FAILED: ${e instanceof Error ? e.message : String(e)}\n`);
    process.stdout.write('fleet: 0 passed, 1 failed\n');
    process.exit(1);
  },
);
