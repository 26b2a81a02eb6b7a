/**
 * A plain SVG bar chart of a bench's figures, written next to its JSON (bench/results/<name>.svg) so the
 * README can show it. Hand-written SVG: a handful of bars needs no plotting library.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PlotBar {
  readonly label: string;
  readonly value: number;
}

export interface PlotProps {
  readonly title: string;
  /** Shown after each value, e.g. 'msg/s'. */
  readonly unit: string;
  readonly bars: readonly PlotBar[];
}

const RESULTS_DIR = join(import.meta.dirname, '..', 'results');

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(Number(v.toPrecision(3)));
}

/** Horizontal bars, one per figure, scaled to the largest. */
export function barChartSvg(p: PlotProps): string {
  const rowH = 28;
  const labelW = Math.min(220, 12 + 7.5 * Math.max(4, ...p.bars.map((b) => b.label.length)));
  const barW = 360;
  const valueW = 150;
  const top = 40;
  const width = labelW + barW + valueW;
  const height = top + rowH * p.bars.length + 12;
  const max = Math.max(0, ...p.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))) || 1;
  const rows = p.bars.map((b, i) => {
    const y = top + i * rowH;
    const w = Math.max(0, (Number.isFinite(b.value) ? b.value : 0) / max) * barW;
    return [
      `<text x="${labelW - 8}" y="${y + 18}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="#3b82f6"><title>${esc(`${b.label}: ${fmt(b.value)} ${p.unit}`)}</title></rect>`,
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 18}">${esc(`${fmt(b.value)} ${p.unit}`)}</text>`,
    ].join('');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(p.title)}" font-family="system-ui, sans-serif" font-size="13">
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="22" font-size="15" font-weight="600">${esc(p.title)}</text>
${rows.join('\n')}
</svg>
`;
}

/** Writes bench/results/<name>.svg and returns its path. */
export function writePlot(name: string, props: PlotProps): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.svg`);
  writeFileSync(file, barChartSvg(props));
  return file;
}
