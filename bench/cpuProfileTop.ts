/**
 * Prints the top self-time functions of a `.cpuprofile` (written by `node --cpu-prof`).
 *
 *   npx tsx bench/cpuProfileTop.ts /tmp/prof/CPU.*.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
const file = process.argv[2];
if (!file) throw new Error('usage: cpuProfileTop.ts <file.cpuprofile> [top]');
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
const total = prof.samples.length;
const self = new Map<string, number>();
for (const n of prof.nodes) {
  const f = n.callFrame;
  const key = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(src|node_modules|bench)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n.hitCount);
}
// Inclusive time: a frame's own samples plus its callees' (counted once per stack even under recursion).
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const incl = new Map<string, number>();
const keyOf = (n: Node) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(src|node_modules|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const walk = (n: Node, onStack: Set<string>): number => {
  let t = n.hitCount;
  const k = keyOf(n);
  const fresh = !onStack.has(k);
  if (fresh) onStack.add(k);
  for (const c of n.children ?? []) t += walk(byId.get(c)!, onStack);
  if (fresh) {
    onStack.delete(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
  return t;
};
walk(prof.nodes[0]!, new Set());
if (process.argv.includes('--inclusive')) {
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25))) console.log(`${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
  process.exit(0);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25));
for (const [k, v] of top) console.log(`${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
