/**
 * Issue 16: a PROXY v2 header used to be believed from anyone who could reach a daemon port behind the
 * proxy tier, so any host could pick the client address its limits and logs were charged to. Now only
 * proxy.trustedNetworks (loopback locally, the VPC CIDRs in the cloud) may send one.
 */
import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeProxyV2 } from '../../lib/daemon/net/proxy-v2.js';
import { buildPlan, daemonConfig } from '../../lib/plan/index.js';
import { specSchema } from '../../lib/spec/schema.js';
import { startSmtpHarness, type SmtpHarness } from './smtp-harness.js';

/** Sends a PROXY header from `source` and returns the first line the daemon answers ('' when it closes). */
function firstLine(port: number, source: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: source }, () =>
      s.write(encodeProxyV2({ source: { address: '203.0.113.9', port: 40000 }, destination: { address: '10.0.0.5', port: 2525 } })),
    );
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) {
        s.destroy();
        resolve(got.split('\r\n')[0]!);
      }
    });
    s.on('close', () => resolve(got));
    s.on('error', () => resolve(got));
  });
}

describe('PROXY v2 only from the proxy tier', () => {
  let h: SmtpHarness;
  before(async () => {
    h = await startSmtpHarness({ mode: 'local-behind-proxy', spec: { proxy: { trustedNetworks: ['127.0.0.2/32'] } } });
  });
  after(() => h.close());

  it('GIVEN trustedNetworks 127.0.0.2/32 WHEN 127.0.0.3 sends a PROXY header THEN it is closed without a greeting and counted as proxy-untrusted', async () => {
    assert.equal(await firstLine(h.port('smtp'), '127.0.0.3'), '');
    const m = await (await fetch(`http://127.0.0.1:${h.adminPort}/metrics`)).text();
    assert.match(m, /mailfleetd_connections_refused_total\{listener="[^"]+",protocol="smtp",reason="proxy-untrusted"\} 1/);
  });

  it('GIVEN the same daemon WHEN 127.0.0.2 sends the header THEN the session starts for the client it names', async () => {
    assert.match(await firstLine(h.port('smtp'), '127.0.0.2'), /^220 /);
  });

  it('defaults: loopback behind a local HAProxy, the VPC CIDRs of both regions in the cloud', () => {
    const spec = specSchema.parse({
      platform: { name: 'proxytest' },
      domains: [{ name: 'example.com' }],
      regions: {
        primary: { name: 'eu-west-1', account: '111111111111', availabilityZones: ['eu-west-1a', 'eu-west-1b'] },
        dr: { name: 'eu-central-1', account: '111111111111', availabilityZones: ['eu-central-1a', 'eu-central-1b'], cidr: '10.77.0.0/16' },
      },
    });
    const plan = buildPlan(spec);
    const local = daemonConfig(plan, { mode: 'local-behind-proxy' }).sockets[0]!;
    const cloud = daemonConfig(plan, { mode: 'cloud' }).sockets[0]!;
    assert.deepEqual(local.proxyTrustedNetworks, ['127.0.0.0/8', '::1/128']);
    assert.deepEqual(cloud.proxyTrustedNetworks, ['10.40.0.0/16', '10.77.0.0/16']);
  });
});
