import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg } from '../../bench/lib/plot.js';

test('the bench plot scales bars to the largest figure and escapes labels', () => {
  const svg = barChartSvg({
    title: 'a <b> & c',
    unit: 'msg/s',
    bars: [
      { label: 'mailfleetd', value: 900 },
      { label: 'post<fix>', value: 300 },
    ],
  });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(widths, [360, 120]);
  assert.match(svg, /a &lt;b&gt; &amp; c/);
  assert.match(svg, /post&lt;fix&gt;/);
  assert.doesNotMatch(svg, /<b>|post<fix>/);
  assert.match(svg, />900 msg\/s</);
});
