/**
 * Prints the top self-time functions of a `.cpuprofile` (written by `node --cpu-prof`).
 *
 *   npx tsx bench/cpuProfileTop.ts /tmp/prof/CPU.*.cpuprofile [top] [--inclusive | --packages]
 *
 * `--packages`: busy milliseconds by package (eddy's by folder of dist/, Node's by internal module),
 * a native frame counted with the nearest JavaScript caller's package: to set one module's profile
 * against another's (eddy and the bare echo under bench/cpuProfilePreload.mjs).
 */
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
const file = process.argv[2];
if (!file) throw new Error('usage: cpuProfileTop.ts <file.cpuprofile> [top]');
/** How many rows: the first plain number among the arguments (default 25). */
const TOP = Number(process.argv.slice(3).find((a) => /^\d+$/.test(a)) ?? 25);
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
if (process.argv.includes('--packages')) {
  const parent = new Map<number, Node>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const deltas = (prof as unknown as { timeDeltas: number[] }).timeDeltas;
  const ms = new Map<number, number>();
  prof.samples.forEach((s, i) => ms.set(s, (ms.get(s) ?? 0) + (deltas[i + 1] ?? 0) / 1000));
  const pkg = (u: string): string =>
    u.includes('node_modules/') ? u.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1') : u.startsWith('node:') ? `node:${u.slice(5).split('/')[0]}` : u.includes('/dist/') ? `eddy:${u.replace(/^.*\/dist\//, '').split('/')[0]}` : u;
  const byPkg = new Map<string, number>();
  let busy = 0;
  for (const n of prof.nodes) {
    const t = ms.get(n.id) ?? 0;
    if (t === 0 || n.callFrame.functionName === '(idle)') continue;
    busy += t;
    let p: Node | undefined = n;
    while (p && !p.callFrame.url) p = parent.get(p.id);
    const k = n.callFrame.url ? pkg(n.callFrame.url) : p ? `native@${pkg(p.callFrame.url)}` : n.callFrame.functionName;
    byPkg.set(k, (byPkg.get(k) ?? 0) + t);
  }
  console.log(`busy ${busy.toFixed(0)} ms`);
  for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${v.toFixed(0).padStart(6)} ms  ${k}`);
  process.exit(0);
}
if (process.argv.includes('--inclusive')) {
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
  process.exit(0);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
for (const [k, v] of top) console.log(`${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
