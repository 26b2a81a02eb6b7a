/**
 * The drill report: one shape for the local and the AWS drill, rendered for the terminal, as JSON and
 * as Markdown (the audit trail an operator files after each drill).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StepRecord {
  readonly id: string;
  readonly title: string;
  readonly status: 'ok' | 'failed' | 'skipped';
  readonly seconds: number;
  readonly detail?: string;
}

export interface MessageCounts {
  /** Messages the stream tried to send. */
  readonly sent: number;
  /** Messages answered 250 by the primary before the failure. */
  readonly acknowledged: number;
  /** Acknowledged messages that were not yet on the DR copy at the moment of the failure (RPO set). */
  readonly atRisk: number;
  /** Acknowledged messages readable through DR IMAP after promotion. */
  readonly readableInDr: number;
  /** Acknowledged but not readable through DR IMAP. */
  readonly lost: number;
  /** Messages accepted by DR after the switch (the stream kept going). */
  readonly acceptedByDr: number;
}

export interface DrillReport {
  readonly kind: 'local' | 'aws';
  readonly drillId: string;
  readonly platform: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly targets: { readonly rpoSeconds: number; readonly rtoSeconds: number };
  /** Data at risk at the failure: seconds between the newest replicated ack and the failure, and messages. */
  readonly rpo: { readonly seconds: number | null; readonly messages: number | null };
  /** From the failure until DR accepts SMTP and serves IMAP login + FETCH. */
  readonly rto: { readonly seconds: number | null };
  /** Acknowledged messages lost (null where the drill cannot count messages, e.g. on AWS). */
  readonly lost: number | null;
  readonly messages?: MessageCounts;
  readonly replication?: {
    readonly mechanism: string;
    readonly intervalMs: number;
    readonly cycles: number;
    readonly mode: string;
  };
  readonly steps: readonly StepRecord[];
  readonly failback: {
    readonly ran: boolean;
    readonly ok: boolean;
    readonly steps: readonly StepRecord[];
    /** Local drill: messages on the primary after fail-back, each exactly once. */
    readonly primaryMessages?: number;
    readonly duplicates?: number;
    readonly missing?: number;
  };
  readonly notes: readonly string[];
  readonly pass: boolean;
  /** Why the drill did not pass (empty when it did). */
  readonly reasons: readonly string[];
}

const fmtS = (s: number | null) => (s === null ? 'n/a' : `${s.toFixed(2)} s`);
const mark = (ok: boolean) => (ok ? 'within target' : 'ABOVE TARGET');

function summaryRows(r: DrillReport): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    [
      'RPO (seconds at risk)',
      `${fmtS(r.rpo.seconds)} (target ≤ ${r.targets.rpoSeconds} s, ${r.rpo.seconds === null ? 'not measured' : mark(r.rpo.seconds <= r.targets.rpoSeconds)})`,
    ],
    ['RPO (messages at risk)', r.rpo.messages === null ? 'n/a' : String(r.rpo.messages)],
    [
      'RTO',
      `${fmtS(r.rto.seconds)} (target ≤ ${r.targets.rtoSeconds} s, ${r.rto.seconds === null ? 'not measured' : mark(r.rto.seconds <= r.targets.rtoSeconds)})`,
    ],
    ['messages lost', r.lost === null ? 'n/a' : String(r.lost)],
  ];
  const m = r.messages;
  if (m)
    rows.push(
      ['messages acknowledged by primary', String(m.acknowledged)],
      ['readable through DR IMAP', String(m.readableInDr)],
      ['accepted by DR after the switch', String(m.acceptedByDr)],
    );
  if (r.replication)
    rows.push([
      'replication',
      `${r.replication.mechanism}, every ${r.replication.intervalMs} ms, ${r.replication.cycles} cycles, mode ${r.replication.mode}`,
    ]);
  const fb = r.failback;
  rows.push([
    'fail-back',
    !fb.ran
      ? 'not run'
      : `${fb.ok ? 'ok' : 'FAILED'}${fb.primaryMessages !== undefined ? `: primary holds ${fb.primaryMessages} messages, ${fb.missing ?? 0} missing, ${fb.duplicates ?? 0} duplicated` : ''}`,
  ]);
  rows.push(['result', r.pass ? 'PASS' : `FAIL: ${r.reasons.join('; ')}`]);
  return rows;
}

export function formatReportText(r: DrillReport): string {
  const rows = summaryRows(r);
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = [`DR drill ${r.drillId} (${r.kind}, ${r.platform}) ${r.startedAt} → ${r.finishedAt}`, ''];
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(w)}  ${v}`);
  lines.push('', '  steps:');
  for (const s of [...r.steps, ...r.failback.steps])
    lines.push(
      `    ${s.status === 'ok' ? '✔' : s.status === 'failed' ? '✘' : '-'} ${s.title} (${s.seconds.toFixed(2)} s)${s.detail ? ' — ' + s.detail : ''}`,
    );
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `  note: ${n}`));
  return lines.join('\n');
}

export function formatReportMarkdown(r: DrillReport): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `# DR drill ${r.drillId}`,
    '',
    `- kind: ${r.kind}; platform: ${r.platform}`,
    `- started ${r.startedAt}, finished ${r.finishedAt}`,
    `- result: **${r.pass ? 'PASS' : 'FAIL'}**${r.reasons.length ? ' — ' + r.reasons.join('; ') : ''}`,
    '',
    '| measure | value |',
    '|---|---|',
    ...summaryRows(r).map(([k, v]) => `| ${esc(k)} | ${esc(v)} |`),
    '',
    '## Steps',
    '',
    '| step | status | seconds | detail |',
    '|---|---|---:|---|',
    ...[...r.steps, ...r.failback.steps].map(
      (s) => `| ${esc(s.title)} | ${s.status} | ${s.seconds.toFixed(2)} | ${esc(s.detail ?? '')} |`,
    ),
  ];
  if (r.notes.length) lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}

export function formatReportJson(r: DrillReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}

/** Writes the JSON and Markdown forms; returns their paths. */
export function writeReport(r: DrillReport, opts: { json?: string; markdown?: string }): string[] {
  const written: string[] = [];
  for (const [path, text] of [
    [opts.json, formatReportJson(r)],
    [opts.markdown, formatReportMarkdown(r)],
  ] as const) {
    if (!path) continue;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    written.push(path);
  }
  return written;
}
