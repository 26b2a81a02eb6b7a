/**
 * Summarises a V8 .cpuprofile (from `run.ts --cpu-prof <dir>`): the top functions by self time, and the
 * top files by self time, as percentages of the sampled time.
 *
 *   npx tsx bench/imap-stress/profile.ts <file.cpuprofile | dir> [--top 15]
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '15' } } });
let file = positionals[0]!;
if (statSync(file).isDirectory()) {
  const newest = readdirSync(file)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(file, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) throw new Error(`no .cpuprofile in ${file}`);
  file = newest;
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const where = (url: string) => (url.startsWith('file://') ? relative(process.cwd(), url.slice(7)) : url || '(native)');
const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of self) {
  const cf = byId.get(id)!.callFrame;
  const k = `${cf.functionName || '(anonymous)'}  ${where(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fn.set(k, (fn.get(k) ?? 0) + us);
  const f = where(cf.url);
  files.set(f, (files.get(f) ?? 0) + us);
}
// Inclusive time of the project's own functions (lib/): a sample counts once for every distinct lib
// function on its stack, so a command handler shows what it costs with everything it calls.
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
for (const [id, us] of self) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const cf = byId.get(at)!.callFrame;
    const w = where(cf.url);
    if (!w.startsWith('lib/')) continue;
    const k = `${cf.functionName || '(anonymous)'}  ${w}:${cf.lineNumber + 1}`;
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const top = Number(values.top);
const show = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, us]) => console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`));
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n\nTop functions by self time:`);
show(fn);
console.log('\nTop files by self time:');
show(files);
console.log('\nTop lib/ functions by inclusive time (self + callees; async continuations count where they resume):');
show(inclusive);
