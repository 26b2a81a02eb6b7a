/**
 * The dnsmasq harness against the race a CI run lost: the port it picked free for UDP was taken on TCP by
 * another test, dnsmasq exited "Address already in use", and a whole filter suite was cancelled.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { describe, test } from 'node:test';
import { freeDnsPort, startDnsmasq } from './dnsmasq.js';

const ARGS = ['--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--local=/#/', '--txt-record=probe.test,hello', ...(process.getuid?.() === 0 ? ['--user=root'] : [])];

function listenTcp(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

describe('dnsmasq harness', () => {
  test('GIVEN its first port taken on TCP (free on UDP) WHEN started THEN it retries on another port and answers there', async () => {
    const taken = await freeDnsPort();
    const holder = await listenTcp(taken);
    try {
      const dns = await startDnsmasq({ args: ARGS, firstPort: taken });
      try {
        assert.equal(dns.portRetries, 1);
        assert.notEqual(dns.port, taken);
        assert.deepEqual(await dns.resolver.resolveTxt('probe.test'), [['hello']]);
      } finally {
        await dns.stop();
      }
    } finally {
      holder.close();
    }
  });

  test('GIVEN every try loses the race THEN it fails naming the cause, leaving no process', async () => {
    const taken = await freeDnsPort();
    const holder = await listenTcp(taken);
    try {
      await assert.rejects(startDnsmasq({ args: ARGS, firstPort: taken, attempts: 1 }), /lost the port race 1 times: .*Address already in use/s);
    } finally {
      holder.close();
    }
  });

  test('freeDnsPort: the port binds on both UDP and TCP', async () => {
    const port = await freeDnsPort();
    const srv = await listenTcp(port);
    srv.close();
  });
});
