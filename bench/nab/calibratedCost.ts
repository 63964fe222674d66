/**
 * Cost of the components the `--with-calibrated` designs add (levelShift.ts, the sparse calibration of
 * sparseLikelihood.ts) and of the design that grid selects on all real categories
 * (rules/nab/calibrated.json), measured as bench/autoDetector.bench.ts measures the others: ns per event
 * over 2^20 events of a noisy daily series with spikes (after a warm-up of the same length), heap growth
 * per group after gc for 200 groups fed 30 000 events of a wandering series each, and checkpoint JSON per
 * group. `node --expose-gc --import tsx bench/nab/calibratedCost.ts` (docs/anomaly-auto.md, "Cost").
 */
import { validateDetector } from '../../src/anomaly/detectorRegistry.js';

const gc = (globalThis as { gc?: () => void }).gc;
const N = 1 << 20;
const MIN = 60_000;
let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
const values = new Float64Array(N);
for (let i = 0; i < N; i++) values[i] = 10 + 5 * Math.sin((2 * Math.PI * i) / 1440) + (rnd() + rnd() + rnd() - 1.5) * 2 + (rnd() < 0.002 ? 20 : 0) + i * 1e-5;

const defs: Record<string, Record<string, unknown> & { type: string }> = {
  'point (same run, for scale)': { type: 'auto', components: ['point'], season: 'none' },
  'shift alone': { type: 'auto', components: ['shift'], season: 'none', explain: false },
  'context, sparse calibration': { type: 'auto', components: ['context'], sparse: ['context'], season: 'none', explain: false },
  'calibrated.json design': { type: 'auto', components: ['point', 'range', 'shift', 'context'], season: 'none', threshold: 4, rearm: 1, sparse: ['context'], ctxOrder: 2, ctxRes: 2, escalate: 2 },
  'all six, range+context sparse': { type: 'auto', components: ['point', 'range', 'seasonal', 'sequence', 'context', 'shift'], sparse: ['range', 'context'] },
};

console.log(`${'detector'.padEnd(32)}${'ns/event'.padStart(10)}${'heap B/group'.padStart(14)}${'JSON B/group'.padStart(14)}`);
let sink = 0;
for (const [name, def] of Object.entries(defs)) {
  const v = validateDetector(def);
  if (!v.ok) throw new Error(v.error);
  const { detector, config } = v;
  const st = detector.init(config);
  for (let i = 0; i < N; i++) sink += detector.update(config, st, i * MIN, values[i]!, 0).score;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += detector.update(config, st, (N + i) * MIN, values[i]!, 0).score;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  const G = 200;
  gc?.();
  const h0 = process.memoryUsage().heapUsed;
  const groups: unknown[] = [];
  for (let g = 0; g < G; g++) {
    const s = detector.init(config);
    for (let i = 0; i < 30_000; i++) sink += detector.update(config, s, i * MIN, values[(i * 7 + g * 101) & (N - 1)]! + g, 0).score;
    groups.push(s);
  }
  gc?.();
  const heap = gc ? (process.memoryUsage().heapUsed - h0) / G : null;
  const json = groups.reduce<number>((a, s) => a + JSON.stringify(s).length, 0) / G;
  console.log(`${name.padEnd(32)}${ns.toFixed(0).padStart(10)}${(heap === null ? 'n/a (no --expose-gc)' : heap.toFixed(0)).padStart(14)}${json.toFixed(0).padStart(14)}`);
}
if (sink === 42) console.log('');
