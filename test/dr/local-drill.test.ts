/**
 * The local DR drill end to end: two real daemons as child processes, rsync replication, a real SMTP
 * stream, SIGKILL, promotion, IMAP verification and fail-back. Needs `mailfleet serve` and
 * `mailfleet users` (the local platform); without them it fails and says so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runLocalDrill } from '../../lib/dr/local-drill.js';
import { formatReportText } from '../../lib/dr/report.js';
import { loadSpec } from '../../lib/spec/index.js';

const targets = loadSpec('examples/dr-local.yaml').spec.dr!;

describe('local DR drill', { timeout: 90_000 }, () => {
  it('GIVEN a mail stream WHEN the primary is SIGKILLed after a checkpoint THEN DR serves every acknowledged message within the targets and fail-back leaves the primary consistent', async () => {
    const report = await runLocalDrill({
      config: 'examples/dr-local.yaml',
      drillId: 'test-drill',
      streamSeconds: 2,
      afterSeconds: 0.5,
      replicationIntervalMs: 100,
    });
    const text = formatReportText(report);
    assert.equal(report.pass, true, text);
    assert.ok(report.messages!.acknowledged > 0, 'the primary acknowledged mail before the failure');
    assert.equal(report.lost, 0, 'zero acknowledged messages lost');
    assert.equal(report.messages!.readableInDr, report.messages!.acknowledged);
    assert.ok(
      report.rpo.seconds !== null && report.rpo.seconds <= targets.rpoSeconds,
      `RPO within ${targets.rpoSeconds} s`,
    );
    assert.ok(
      report.rto.seconds !== null && report.rto.seconds <= targets.rtoSeconds,
      `RTO within ${targets.rtoSeconds} s`,
    );
    assert.ok(report.messages!.acceptedByDr > 0, 'DR accepted mail after the switch');
    assert.equal(report.failback.ok, true, text);
    assert.equal(report.failback.missing, 0);
    assert.equal(report.failback.duplicates, 0);
    assert.equal(
      report.failback.primaryMessages,
      report.messages!.readableInDr + report.messages!.acceptedByDr,
    );
    assert.match(text, /RPO \(seconds at risk\)/);
    assert.match(text, /RTO\s+\d+\.\d+ s/);
  });
});
