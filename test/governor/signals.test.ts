/**
 * The governor's readings from the daemon's own metrics text (prom-client output of createDaemonMetrics),
 * and its store: a torn last log line is skipped, one governor per state dir, a dead one's lock taken over.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDaemonMetrics } from '../../lib/daemon/metrics.js';
import { deliveryP99Ms, nodeSample, parsePrometheus, scopeOf } from '../../lib/governor/signals.js';
import { formatGovernorLog } from '../../lib/governor/format.js';
import { GovernorStore } from '../../lib/governor/store.js';

describe('governor signals', () => {
  it('reads lag, CPU, refusals and the delivery p99 of one interval from the daemon metrics text', async () => {
    const m = createDaemonMetrics();
    m.connectionsRefused.inc({ listener: 'default-imap', protocol: 'imap', reason: 'limit-user' }, 3);
    for (let i = 0; i < 100; i++) m.deliverySeconds.observe({ protocol: 'smtp' }, 0.003);
    const first = nodeSample(1000, parsePrometheus(await m.registry.metrics()));
    assert.equal(first.refused, 3);
    assert.ok(first.lagP99Ms !== undefined && first.lagP99Ms >= 0, 'the lag gauge is read');
    assert.ok(first.cpuSeconds !== undefined && first.cpuSeconds > 0, 'process CPU is read');
    // The next interval: 97 fast deliveries and 3 slow ones (fsync stalls): p99 lands in the (150, 200 ms] bucket.
    for (let i = 0; i < 97; i++) m.deliverySeconds.observe({ protocol: 'submission' }, 0.003);
    for (let i = 0; i < 3; i++) m.deliverySeconds.observe({ protocol: 'smtp' }, 0.2);
    const second = nodeSample(2000, parsePrometheus(await m.registry.metrics()));
    assert.equal(Math.round(deliveryP99Ms(first, second)!), 183, 'rank 99 of 100: two thirds into the bucket of the three slow ones');
    assert.equal(deliveryP99Ms(second, second), undefined, 'no delivery in the interval: no reading');
  });

  it('reads the delivery p99 finely enough that a target and its release threshold mean what they say, not the next bucket bound', async () => {
    const m = createDaemonMetrics();
    const read = async () => nodeSample(Date.now(), parsePrometheus(await m.registry.metrics()));
    let prev = await read();
    const p99Of = async (ms: number[]) => {
      for (const x of ms) m.deliverySeconds.observe({ protocol: 'submission' }, x / 1000);
      const now = await read();
      const r = deliveryP99Ms(prev, now)!;
      prev = now;
      return r;
    };
    // Deliveries of 55 ms are under a 70 ms target (the old bounds said 100: over).
    const at55 = await p99Of(Array.from({ length: 100 }, () => 55));
    assert.ok(at55 > 50 && at55 <= 60, `55 ms deliveries read as ${at55} ms`);
    // An unloaded interval of 20–30 ms deliveries is calm under 0.7 × 56 = 39 ms (the old bounds said 50: never calm).
    const calm = await p99Of(Array.from({ length: 100 }, (_, i) => 20 + (i % 11)));
    assert.ok(calm <= 39, `20–30 ms deliveries read as ${calm} ms`);
    // Past the last bucket: twice it.
    assert.equal(await p99Of([9000]), 10_000);
  });

  it('parses labels with escaped quotes and maps rows to limit scopes', () => {
    const [s] = parsePrometheus('x_total{reason="a\\"b",listener="l"} 4\n');
    assert.deepEqual(s, { name: 'x_total', labels: { reason: 'a"b', listener: 'l' }, value: 4 });
    assert.equal(scopeOf('user', 'Alice@Example.com', 'imap'), 'user:alice@example.com:imap');
    assert.equal(scopeOf('domain', 'example.org', 'pop3'), 'pop3.perDomain@example.org');
    assert.equal(scopeOf('listener', 'acme-imap', 'imap'), 'listener:acme-imap');
  });
});

describe('governor store', () => {
  it('skips a log line torn by a crash; one governor per state dir; a dead governor\'s lock is taken over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-gov-store-'));
    try {
      const store = new GovernorStore(dir);
      store.append({ at: 'a', event: 'start', mode: 'observe', resumed: [] });
      appendFileSync(store.logFile, '{"at":"b","event":"deci');
      assert.deepEqual(store.readLog().map((e) => e.at), ['a']);

      const other = spawn('sleep', ['30']);
      writeFileSync(store.lockFile, `${other.pid}\n`);
      assert.throws(() => store.lock(), /another governor \(pid \d+\) runs on/);
      const gone = new Promise((r) => other.once('exit', r));
      other.kill('SIGKILL');
      await gone;
      store.lock();
      store.unlock();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('governor log format', () => {
  it('advise entries carry the command a person runs; failures say why', () => {
    const decision = { action: 'lower' as const, scope: 'user:a@b.com:imap', kind: 'user' as const, from: 20, to: 4, signals: [], why: 'connections 10 > 6' };
    const text = formatGovernorLog([
      { at: 't1', event: 'decision', mode: 'advise', status: 'proposed', decision, command: 'mailfleet limit set user:a@b.com:imap 4 --by mailfleet-governor' },
      { at: 't2', event: 'decision', mode: 'enforce', status: 'failed', decision, error: 'did not answer' },
    ]);
    assert.match(text, /advise\s+proposed\s+lower\s+user:a@b\.com:imap\s+20\s+4\s+connections 10 > 6 → run: mailfleet limit set user:a@b\.com:imap 4 --by mailfleet-governor/);
    assert.match(text, /enforce\s+failed\s+lower .* FAILED: did not answer/);
  });
});
