/**
 * The cloud HAProxy config's mail discovery, run for real: its `resolvers vpc` section and a mail backend's
 * server-template as rendered (only the resolver address is rewritten: parse-resolv-conf becomes a
 * dnsmasq on a loopback port, the VPC resolver stand-in the fleet harness uses too), against one name
 * that answers more addresses than a multivalue record would (8). Every slot of the template must take an
 * address of that one answer, and an address that leaves the record must leave HAProxy.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildPlan } from '../../lib/plan/index.js';
import { renderHaproxyConfig } from '../../lib/render/haproxy.js';
import { mailNodesHost } from '../../lib/render/node-layout.js';
import { loadSpec } from '../../lib/spec/index.js';
import { requireHaproxy } from '../haproxy/harness.js';
import { startDnsmasq } from '../harness/dnsmasq.js';

const plan = buildPlan(loadSpec('examples/single-region.yaml').spec);
const NAME = mailNodesHost(plan);
const SLOTS = plan.sizing.mailNodes.max;
const dir = mkdtempSync(join(tmpdir(), 'mf-hadisc-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function admin(sock: string, cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const c = connect(sock);
    let out = '';
    c.on('connect', () => c.write(cmd + '\n'));
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => res(out));
    c.on('error', rej);
  });
}

/** The rendered `resolvers vpc` section and the first mail backend's server-template line. */
function renderedDiscovery(): { resolvers: string; template: string } {
  const cfg = renderHaproxyConfig(plan, { target: 'cloud' });
  const resolvers = /^resolvers vpc\n(?: {4}.*\n)+/m.exec(cfg)?.[0];
  const template = /^ {4}server-template mail .*$/m.exec(cfg)?.[0];
  assert.ok(resolvers && template, 'the cloud config resolves the mail tier through a server-template');
  return { resolvers, template };
}

describe('HAProxy mail discovery (rendered resolvers + server-template) against one A record of many addresses', () => {
  test(`GIVEN the mail tier name answering 12 addresses WHEN HAProxy resolves it THEN all ${SLOTS} slots take one; an address dropped from the record leaves HAProxy`, async () => {
    requireHaproxy();
    assert.ok(SLOTS > 8, `the mail group grows past what a multivalue answer holds (max ${SLOTS})`);
    const { resolvers, template } = renderedDiscovery();
    assert.match(resolvers, /accepted_payload_size (\d+)/);
    const hostsFile = join(dir, 'hosts');
    const addrs = Array.from({ length: 12 }, (_, i) => `10.99.0.${i + 1}`);
    const writeHosts = (list: string[]) => writeFileSync(hostsFile, list.map((a) => `${a} ${NAME}`).join('\n') + '\n');
    writeHosts(addrs);
    const pidFile = join(dir, 'dnsmasq.pid');
    const dns = await startDnsmasq({
      args: ['--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--pid-file=${pidFile}`, '--user=root', '--local-ttl=1'],
    });
    children.push(dns.child);
    const port = dns.port;
    const sock = join(dir, 'admin.sock');
    // Only the resolver address differs from the rendered section; checks are off (nothing listens there).
    const cfg = [
      'global',
      `    stats socket ${sock} mode 600 level admin`,
      'defaults',
      '    mode tcp',
      '    timeout connect 1s',
      '    timeout client 5s',
      '    timeout server 5s',
      resolvers.replace('    parse-resolv-conf\n', `    nameserver vpc 127.0.0.1:${port}\n`),
      'backend mail-probe',
      template.replace(/ check\b.*$/, ''),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'haproxy.cfg'), cfg);
    const ha = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let haErr = '';
    ha.stderr!.on('data', (d) => (haErr += d.toString()));
    children.push(ha);

    /** Addresses the template's slots hold (`show servers state`: srv_addr is column 5). */
    const slots = async () => {
      try {
        return (await admin(sock, 'show servers state mail-probe'))
          .split('\n')
          .map((l) => l.split(' '))
          .filter((c) => c[1] === 'mail-probe')
          .map((c) => c[4]!)
          .filter((a) => a.startsWith('10.99.'));
      } catch {
        return [];
      }
    };
    let held: string[] = [];
    for (let i = 0; i < 100 && held.length < SLOTS; i++) {
      await sleep(200);
      held = await slots();
    }
    assert.equal(new Set(held).size, SLOTS, `every slot resolved (${held.length}: ${held.join(',')}); haproxy: ${haErr.slice(-500)}`);
    assert.ok(held.every((a) => addrs.includes(a)));

    // Three nodes leave the record (RECONCILE dropped them): their addresses leave HAProxy's slots.
    const gone = held.slice(0, 3);
    writeHosts(addrs.filter((a) => !gone.includes(a)));
    spawnSync('kill', ['-HUP', readFileSync(pidFile, 'utf8').trim()]);
    let now: string[] = held;
    for (let i = 0; i < 150 && now.some((a) => gone.includes(a)); i++) {
      await sleep(200);
      now = await slots();
    }
    assert.deepEqual(now.filter((a) => gone.includes(a)), [], `dropped addresses still in HAProxy: ${now.join(',')}`);
    assert.equal(new Set(now).size, SLOTS - 3 + Math.min(3, addrs.length - SLOTS), `the slots refill from the 9 left: ${now.join(',')}`);
  });
});
