import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createProgress } from '../../lib/dr/progress.js';
import {
  formatReportMarkdown,
  formatReportText,
  writeReport,
  type DrillReport,
} from '../../lib/dr/report.js';

const dir = mkdtempSync(join(tmpdir(), 'mf-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const report: DrillReport = {
  kind: 'local',
  drillId: 'drill-1',
  platform: 'dr-local',
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:09.000Z',
  targets: { rpoSeconds: 5, rtoSeconds: 20 },
  rpo: { seconds: 0.4, messages: 2 },
  rto: { seconds: 25.5 },
  lost: 0,
  messages: { sent: 50, acknowledged: 48, atRisk: 2, readableInDr: 48, lost: 0, acceptedByDr: 10 },
  replication: { mechanism: 'rsync', intervalMs: 250, cycles: 30, mode: 'checkpoint' },
  steps: [{ id: 'fail', title: 'SIGKILL | primary', status: 'ok', seconds: 0.01 }],
  failback: { ran: true, ok: true, steps: [], primaryMessages: 58, duplicates: 0, missing: 0 },
  notes: ['a note'],
  pass: false,
  reasons: ['RTO 25.50 s above target 20 s'],
};

describe('drill report', () => {
  it('text names RPO, RTO, losses and flags a missed target', () => {
    const t = formatReportText(report);
    assert.match(t, /RPO \(seconds at risk\)\s+0\.40 s \(target ≤ 5 s, within target\)/);
    assert.match(t, /RTO\s+25\.50 s \(target ≤ 20 s, ABOVE TARGET\)/);
    assert.match(t, /messages lost\s+0/);
    assert.match(t, /primary holds 58 messages, 0 missing, 0 duplicated/);
    assert.match(t, /result\s+FAIL: RTO 25\.50 s above target 20 s/);
  });

  it('Markdown escapes table pipes; JSON round-trips; both written to files', () => {
    const md = formatReportMarkdown(report);
    assert.match(md, /^# DR drill drill-1/);
    assert.match(md, /\| SIGKILL \\\| primary \| ok \|/);
    const paths = writeReport(report, { json: join(dir, 'a', 'r.json'), markdown: join(dir, 'a', 'r.md') });
    assert.equal(paths.length, 2);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'a', 'r.json'), 'utf8')), report);
    assert.equal(readFileSync(join(dir, 'a', 'r.md'), 'utf8'), md);
  });

  it('progress prints plain lines (no escape codes) when not on a TTY, and only changed updates', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const p = createProgress(out as unknown as NodeJS.WriteStream);
    p.start('promote DR');
    p.update('waiting');
    p.update('waiting');
    p.done('promote DR', true);
    assert.equal(text.includes('\u001b'), false, 'no escape codes');
    assert.equal(text.match(/waiting/g)?.length, 1);
    assert.match(text, /✔ promote DR \(\d+\.\d s\)/);
  });
});
