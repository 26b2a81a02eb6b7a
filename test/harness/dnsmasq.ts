/**
 * dnsmasq on a loopback port for tests (the filter stack's zone server, the VPC resolver stand-in).
 *
 * dnsmasq binds its port on UDP *and* TCP. A port the kernel handed out as free for UDP a moment ago can be
 * taken on TCP by another test's listener (the suite runs files in parallel), and dnsmasq then exits with
 * "failed to create listening socket … Address already in use" — a CI run failed that way. So the port is
 * checked free on both, and a start that still loses the race is retried on a fresh port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { createServer } from 'node:net';
import { findProgram } from '../../lib/filter/processes.js';

export interface DnsmasqProps {
  /** Arguments besides the port, the listen address and foreground mode (records, hosts files, a pid file…). */
  readonly args: readonly string[];
  /** The first port to try (tests of the retry itself); later tries take a kernel-picked free one. */
  readonly firstPort?: number;
  /**
   * Tries before giving up when the port was taken between the pick and dnsmasq's bind.
   * @default 5
   */
  readonly attempts?: number;
}

export interface Dnsmasq {
  readonly port: number;
  readonly child: ChildProcess;
  /** A resolver asking this server (500 ms timeout, one try). */
  readonly resolver: Resolver;
  /** How many starts lost the port race before this one bound. */
  readonly portRetries: number;
  stop(): Promise<void>;
}

/** A loopback port free for both UDP and TCP a moment ago. */
export async function freeDnsPort(): Promise<number> {
  for (let i = 0; ; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (tcpFree) return port;
    if (i >= 20) throw new Error('no loopback port free for both UDP and TCP after 20 picks');
  }
}

const IN_USE = /Address already in use/;

/** Starts dnsmasq in the foreground on 127.0.0.1 and resolves once it answers a query. */
export async function startDnsmasq(props: DnsmasqProps): Promise<Dnsmasq> {
  const bin = findProgram('dnsmasq');
  if (!bin) throw new Error('dnsmasq is not installed');
  const attempts = props.attempts ?? 5;
  for (let attempt = 0; ; attempt++) {
    const port = attempt === 0 && props.firstPort !== undefined ? props.firstPort : await freeDnsPort();
    const args = ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', ...props.args];
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const closed = new Promise<void>((r) => child.once('close', () => r()));
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const resolver = new Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    const answered = await untilAnswering(child, closed, resolver, () => err);
    if (answered === 'in-use' && attempt + 1 < attempts) continue;
    if (answered !== 'up') {
      if (child.exitCode === null) child.kill('SIGKILL');
      throw new Error(`dnsmasq ${answered === 'in-use' ? `lost the port race ${attempts} times` : 'did not start'}: ${err}`);
    }
    return {
      port,
      child,
      resolver,
      portRetries: attempt,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      },
    };
  }
}

/** Any DNS answer (NXDOMAIN, no data, refused) means it is up; a timeout or a closed port means not yet. */
const ANSWERED = new Set(['ENOTFOUND', 'ENODATA', 'EREFUSED', 'ESERVFAIL']);

async function untilAnswering(child: ChildProcess, closed: Promise<void>, resolver: Resolver, stderr: () => string): Promise<'up' | 'in-use' | 'failed'> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await closed; // its stderr is complete once its pipes close
      return IN_USE.test(stderr()) ? 'in-use' : 'failed';
    }
    try {
      await resolver.resolveTxt('ready.invalid');
      return 'up';
    } catch (e) {
      if (ANSWERED.has((e as { code?: string }).code ?? '')) return 'up';
      if (Date.now() > deadline) return 'failed';
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
