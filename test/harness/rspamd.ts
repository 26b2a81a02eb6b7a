/**
 * A private filtering stack for tests: dnsmasq on a loopback UDP port serving the test's own zone records
 * (SPF, DKIM, DMARC TXT; every other name answers NXDOMAIN at once, nothing is forwarded), clamd on a
 * private socket with a signature database the harness writes (the EICAR test signature only: no
 * download), and rspamd with the config mailfleet renders (lib/filter/rspamd-config.ts) on free loopback
 * ports, pointed at that DNS server. Everything lives in one temp dir and is stopped by PID.
 *
 *   const stack = await startFilterStack({ records: [{ name: 'x.test', txt: 'v=spf1 -all' }] });
 *   … filtering: { rspamd: { url: stack.url } } … stack.resolver for mailauth …
 *   await stack.stop();
 */
import { Resolver } from 'node:dns/promises';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findProgram, startClamd, startRspamd, type ChildDaemon } from '../../lib/filter/processes.js';
import type { RspamdConfigProps } from '../../lib/filter/rspamd-config.js';
import { startDnsmasq, type Dnsmasq } from './dnsmasq.js';
import { freePort } from './slapd.js';

/**
 * The EICAR antivirus test file (a harmless string every scanner reports), put together at run time so that
 * no scanner flags this source file.
 */
export const EICAR = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS', '-TEST-FILE!$H+H*'].join('');
/** GTUBE, the spam test string (rspamd answers it with a forced reject). */
export const GTUBE = ['XJS*C4JDBQADN1.NSBN3*2IDNEN*', 'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'].join('');

export interface ZoneRecord {
  /** Owner name, e.g. `_dmarc.example.test`. */
  readonly name: string;
  /** TXT value (split into 255-byte strings here). */
  readonly txt: string;
}

export interface FilterStackProps {
  readonly records?: readonly ZoneRecord[];
  /** Where DKIM keys are read from; @default - <dir>/dkim */
  readonly dkimKeyDir?: string;
  /** @default true */
  readonly antivirus?: boolean;
  /** Also run rspamd's proxy worker in milter mode (for Postfix); @default false */
  readonly milter?: boolean;
  /**
   * Run rspamd with these files (conf/-relative) instead of the ones rendered for the stack, given the
   * stack's own settings (e.g. a mail node's bundle with its paths and ports swapped for the stack's).
   * @default - renderRspamdConfig of the stack's settings
   */
  readonly rspamdFiles?: (stack: RspamdConfigProps & { readonly tldFile: string }) => Record<string, string>;
}

export interface FilterStack {
  readonly dir: string;
  /** rspamd normal worker base URL (filtering.rspamd.url). */
  readonly url: string;
  /** host:port of the milter proxy worker, when asked for. */
  readonly milter?: string;
  readonly dkimKeyDir: string;
  readonly dnsPort: number;
  /** A resolver asking the stack's DNS server (the receiving side's view of the test zones). */
  readonly resolver: Resolver;
  readonly rspamd: ChildDaemon;
  /** What rspamd was started with (startRspamd({ dir: <dir>/rspamd, config }) starts it again). */
  readonly rspamdConfig: RspamdConfigProps;
  /** clamd, when antivirus is on (benches add its CPU to the filter's). */
  readonly clamd?: ChildDaemon;
  stop(): Promise<void>;
}

/** What is missing for the stack, or undefined when rspamd, clamd and dnsmasq are installed. */
export function filterStackUnavailable(): string | undefined {
  const missing = ['rspamd', 'clamd', 'dnsmasq'].filter((p) => !findProgram(p));
  return missing.length ? `not installed: ${missing.join(', ')}` : undefined;
}

/** A public-suffix list with the test TLDs only: rspamd compiles the stock one (~10,000 names) for ~20 s. */
const TEST_TLDS = ['com', 'org', 'net', 'test', 'example', 'invalid', 'localhost'];

async function startZoneServer(dir: string, records: readonly ZoneRecord[]): Promise<Dnsmasq> {
  const txt = records.map((r) => {
    const parts: string[] = [];
    // dnsmasq splits the strings of one record at commas, and keeps quotes literally (no shell here).
    if (r.txt.includes(',')) throw new Error(`TXT values with commas are not supported here: ${r.txt}`);
    for (let i = 0; i < r.txt.length; i += 255) parts.push(r.txt.slice(i, i + 255));
    return `--txt-record=${r.name},${parts.join(',')}`;
  });
  return startDnsmasq({
    args: [
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      // Authoritative for every name: what is not ours is NXDOMAIN at once, nothing leaves the machine.
      '--local=/#/',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ...txt,
    ],
  });
}

export async function startFilterStack(props: FilterStackProps = {}): Promise<FilterStack> {
  const dir = mkdtempSync(join(tmpdir(), 'mf-rspamd-'));
  const dkimKeyDir = props.dkimKeyDir ?? join(dir, 'dkim');
  mkdirSync(dkimKeyDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const dns = await startZoneServer(dir, props.records ?? []);
    stops.push(() => dns.stop());
    let clamdSocket: string | undefined;
    let clamd: ChildDaemon | undefined;
    if (props.antivirus ?? true) {
      const db = join(dir, 'clamdb');
      mkdirSync(db);
      // A body-signature database (.ndb: name, any file type, any offset, hex) holding EICAR alone.
      writeFileSync(join(db, 'test.ndb'), `Eicar-Test-Signature:0:*:${Buffer.from(EICAR).toString('hex')}\n`);
      const c = await startClamd({ dir: join(dir, 'clamd'), databaseDir: db });
      stops.push(() => c.stop());
      clamdSocket = c.socket;
      clamd = c;
    }
    const tldFile = join(dir, 'tld.dat');
    writeFileSync(tldFile, `${TEST_TLDS.join('\n')}\n`);
    const normal = `127.0.0.1:${await freePort()}`;
    const milter = props.milter ? `127.0.0.1:${await freePort()}` : undefined;
    const config: RspamdConfigProps = { normalBind: normal, milterBind: milter, dkimKeyDir, clamdSocket, nameservers: [`127.0.0.1:${dns.port}`], checkLocalNetworks: true, tldFile, logLevel: 'info' };
    const rspamd = await startRspamd({ dir: join(dir, 'rspamd'), config, ...(props.rspamdFiles ? { files: props.rspamdFiles({ ...config, tldFile }) } : {}) });
    // rspamd's own graceful stop takes seconds; a test's scanner has nothing to finish.
    stops.push(() => rspamd.stop(500));
    return { dir, url: `http://${normal}`, milter, dkimKeyDir, dnsPort: dns.port, resolver: dns.resolver, rspamd, rspamdConfig: config, clamd, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
