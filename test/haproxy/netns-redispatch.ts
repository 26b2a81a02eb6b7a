/**
 * Child of redispatch.test.ts, run inside a private network namespace (`unshare --net`): the cloud
 * haproxy.cfg as rendered (binds, mail backends and server-templates untouched; only `parse-resolv-conf`
 * becomes a dnsmasq in the namespace, the VPC resolver stand-in) in front of two cloud-mode mailfleetd
 * nodes, 127.0.0.2 and 127.0.0.3, both answers of the one mail-tier name.
 *
 * One node dies (its daemon stops: connections to it are refused) and, before HAProxy's health checks can
 * mark it down, two clients arrive that HAProxy sends to it:
 *   - IMAP (source affinity, `stick on src`): a client whose stick entry names the dead node;
 *   - SMTP (leastconn, no affinity): a new client, the dead node having the fewest connections.
 * Prints one JSON object: what each client was greeted with, how long it took, and HAProxy's view after.
 *
 * argv: <spec file> <work dir>
 */
import { writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { startDaemon, type RunningDaemon } from '../../lib/daemon/server.js';
import { HaproxyProcess } from '../../lib/haproxy/process.js';
import { parseShowStat, runtimeCommand } from '../../lib/haproxy/runtime.js';
import { silentLogger } from '../../lib/log.js';
import { daemonConfig } from '../../lib/plan/index.js';
import { cloudMailDiscoveryName } from '../../lib/render/haproxy.js';
import { startDnsmasq } from '../harness/dnsmasq.js';
import { runScript } from '../harness/script.js';
import { renderCloudHaproxy } from './cloud-render.js';

const [specFile, dir] = process.argv.slice(2) as [string, string];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODES = ['127.0.0.2', '127.0.0.3'] as const;

/** Connects as the NLB does (PROXY v2 with the public client address) and resolves with the first line. */
function viaNlb(port: number, client: string, timeoutMs = 20_000): Promise<{ line: string; socket: Socket; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => done('TIMEOUT'), timeoutMs);
    let buf = '';
    const done = (line: string) => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve({ line, socket, ms: Date.now() - t0 });
    };
    socket.once('connect', () => socket.write(encodeProxyV2({ source: { address: client, port: 40000 }, destination: { address: '192.0.2.10', port } })));
    socket.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.split('\r\n')[0]!);
    });
    socket.once('close', () => done(buf));
    socket.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? done('RESET') : reject(e)));
  });
}

async function main(): Promise<void> {
  const { plan, layout, rendered } = renderCloudHaproxy(specFile, dir);

  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, NODES.map((a) => `${a} ${cloudMailDiscoveryName(plan)}`).join('\n') + '\n');
  const dns = await startDnsmasq({ args: ['--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--user=root', '--local-ttl=1'] });
  const cfg = rendered.replace('    parse-resolv-conf\n', `    nameserver vpc 127.0.0.1:${dns.port}\n`);
  if (cfg === rendered) throw new Error('the rendered config has no parse-resolv-conf line to point at the stand-in resolver');

  const daemons = new Map<string, RunningDaemon>();
  for (const [i, host] of NODES.entries())
    daemons.set(host, await startDaemon(daemonConfig(plan, { mode: 'cloud', host, adminPort: 9025 + i }), { dataDir: join(dir, `var-${i}`), baseDir: dir, logger: silentLogger }));
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, cfg);
  const hx = new HaproxyProcess({ configFile: file, adminSocket: layout.adminSocket, masterSocket: join(dir, 'master.sock'), logFile: join(dir, 'haproxy.log') });
  await hx.start();
  const open: Socket[] = [];
  try {
    const imap = plan.listeners.find((l) => l.tenant === 'default' && l.protocol === 'imap')!;
    const smtp = plan.listeners.find((l) => l.tenant === 'default' && l.protocol === 'smtp')!;
    const imapBackend = imap.affinity === 'source' ? 'mail-imap-sticky' : 'mail-imap';
    const smtpBackend = smtp.affinity === 'source' ? 'mail-smtp-sticky' : 'mail-smtp';
    const stats = async () => parseShowStat(await runtimeCommand(layout.adminSocket, 'show stat'));
    /** Addresses HAProxy holds UP in a backend (a server-template slot's addr is in `show stat`). */
    const upIn = async (backend: string) =>
      (await stats()).filter((r) => r.pxname === backend && r.svname !== 'BACKEND' && r.svname !== 'FRONTEND' && r.status === 'UP').map((r) => r.addr?.split(':')[0]);
    // Both nodes resolved and checked up (rise 2 at inter 2 s) in both backends, bounded.
    for (let i = 0; ; i++) {
      const [a, b] = [await upIn(imapBackend), await upIn(smtpBackend)];
      if (a.length === 2 && b.length === 2) break;
      if (i > 120) throw new Error(`backends never had both nodes up: ${imapBackend}=${a.join(',')} ${smtpBackend}=${b.join(',')}`);
      await sleep(250);
    }
    const holder = (listener: string) => NODES.filter((h) => daemons.get(h)?.ctx.connections.list().some((c) => c.listener === listener) === true);

    // IMAP client: greeted by one node, which the stick table now names for its address; it leaves.
    const client = '198.51.100.7';
    const first = await viaNlb(imap.publicPort, client);
    if (!first.line.startsWith('* OK')) throw new Error(`first IMAP greeting: ${first.line}`);
    const [doomed] = holder(imap.name);
    if (!doomed) throw new Error('no node holds the IMAP session');
    const survivor = NODES.find((h) => h !== doomed)!;
    first.socket.destroy();

    // SMTP: one session held on the survivor, so leastconn sends the next client to the doomed node.
    const smtpOn = (h: string) => daemons.get(h)!.ctx.connections.list().filter((c) => c.listener === smtp.name).length;
    for (let i = 0; i < 6 && smtpOn(survivor) === 0; i++) {
      const g = await viaNlb(smtp.publicPort, `203.0.113.${10 + i}`);
      if (!g.line.startsWith('220')) throw new Error(`SMTP greeting: ${g.line}`);
      if (smtpOn(doomed) > 0) g.socket.destroy();
      else open.push(g.socket);
    }
    for (let i = 0; i < 40 && smtpOn(doomed) > 0; i++) await sleep(50);
    if (smtpOn(survivor) !== 1 || smtpOn(doomed) !== 0) throw new Error(`SMTP sessions: survivor ${smtpOn(survivor)}, doomed ${smtpOn(doomed)}`);
    await sleep(200); // HAProxy has seen the closed ones end

    // The node dies. Its port refuses from now on; HAProxy's checks need `fall` failures to notice.
    await daemons.get(doomed)!.stop(200);
    daemons.delete(doomed);
    const [imapAgain, smtpNew] = await Promise.all([viaNlb(imap.publicPort, client), viaNlb(smtp.publicPort, '203.0.113.99')]);
    open.push(imapAgain.socket, smtpNew.socket);

    const rows = await stats();
    const doomedRow = (backend: string) => rows.find((r) => r.pxname === backend && r.addr?.startsWith(`${doomed}:`));
    const backendRow = (backend: string) => rows.find((r) => r.pxname === backend && r.svname === 'BACKEND');
    const survivorId = (backend: string) => rows.find((r) => r.pxname === backend && r.addr?.startsWith(`${survivor}:`))?.sid;
    const table = await runtimeCommand(layout.adminSocket, `show table ${imapBackend}`);
    const entry = table.split('\n').find((l) => l.includes(`key=::ffff:${client}`) || l.includes(`key=${client}`));
    process.stdout.write(
      JSON.stringify({
        imapBackend,
        smtpBackend,
        doomed,
        survivor,
        imap: { line: imapAgain.line, ms: imapAgain.ms, heldBy: holder(imap.name) },
        smtp: { line: smtpNew.line, ms: smtpNew.ms, heldBy: holder(smtp.name) },
        // As HAProxy saw the dead node right after: still UP means the clients came inside the detection window.
        doomedStatusAfter: { imap: doomedRow(imapBackend)?.status, smtp: doomedRow(smtpBackend)?.status },
        redispatches: { imap: Number(backendRow(imapBackend)?.wredis ?? 0), smtp: Number(backendRow(smtpBackend)?.wredis ?? 0) },
        stickEntry: entry ?? '',
        survivorServerId: survivorId(imapBackend),
      }) + '\n',
    );
  } finally {
    for (const s of open) s.destroy();
    await hx.stop();
    for (const d of daemons.values()) await d.stop(200);
    await dns.stop();
  }
}

runScript(main);
