/**
 * Cost of the `auto` detector and of each of its components (`node --expose-gc --import tsx
 * bench/autoDetector.bench.ts`): ns per event over 2^20 events of a noisy daily series with spikes
 * (timed after a warm-up of the same length), and memory per group: heap growth (after gc) per group for
 * 200 groups each fed 30 000 events (a wandering series, so every component's state is as full as it
 * gets; typed arrays' backing stores included), and the checkpointed JSON size per group. Writes bench/autoDetector.bench.json; with names
 * as arguments (`... bench/autoDetector.bench.ts point 'auto defaults (rules/nab/best.json)'`) runs only
 * those rows and replaces only them in that file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateDetector } from '../src/anomaly/detectorRegistry.js';

const gc = (globalThis as { gc?: () => void }).gc;
const N = 1 << 20;
const MIN = 60_000;
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
const values = new Float64Array(N);
for (let i = 0; i < N; i++) values[i] = 10 + 5 * Math.sin((2 * Math.PI * i) / 1440) + (rnd() + rnd() + rnd() - 1.5) * 2 + (rnd() < 0.002 ? 20 : 0) + i * 1e-5;

const defs: Record<string, Record<string, unknown> & { type: string }> = {
  'point': { type: 'auto', components: ['point'], season: 'none' },
  'range': { type: 'auto', components: ['range'], season: 'none', explain: false },
  'seasonal (auto period)': { type: 'auto', components: ['seasonal'], explain: false },
  'sequence': { type: 'auto', components: ['sequence'], season: 'none', explain: false },
  'context': { type: 'auto', components: ['context'], season: 'none', explain: false },
  'auto (point+range+seasonal)': { type: 'auto', components: ['point', 'range', 'seasonal'], threshold: 5, rearm: 2, escalate: 0 },
  'auto (point+range+context)': { type: 'auto', components: ['point', 'range', 'context'], season: 'none', sparse: [], escalate: 0, ctxCoarse: 4, ctxShort: 5 },
  'auto (all four)': { type: 'auto', components: ['point', 'range', 'seasonal', 'sequence'], threshold: 5, rearm: 2, escalate: 0 },
  'zscore (rules/nab/zscore.json)': { type: 'zscore', window: 1500, threshold: 7, likelihoodWindow: 5000, shortWindow: 3, likelihoodThreshold: 4, season: '1d', seasonThreshold: 6 },
  // The components of bench/nab's calibrated designs (levelShift.ts, sparseLikelihood.ts) and the design
  // the protocol selects on all real categories (rules/nab/best.json, the shipped NAB rule).
  'shift': { type: 'auto', components: ['shift'], season: 'none', explain: false },
  'context, sparse calibration': { type: 'auto', components: ['context'], sparse: ['context'], season: 'none', explain: false },
  // `{"type": "auto"}`: its defaults are this design (test/unit/anomaly/autoDetector.test.ts).
  'auto defaults (rules/nab/best.json)': { type: 'auto' },
  // The same without the calibration's warm-up in event time (`learnTime`, on in the defaults).
  'auto defaults, learnTime 0': { type: 'auto', learnTime: 0 },
  // The spread shift (src/anomaly/spreadShift.ts) alone, and the defaults without it.
  'spread': { type: 'auto', components: ['spread'], season: 'none', explain: false },
  'auto defaults without spread': { type: 'auto', components: ['point', 'range', 'seasonal', 'shift', 'context'] },
  'all six, range+context sparse': { type: 'auto', components: ['point', 'range', 'seasonal', 'sequence', 'context', 'shift'], sparse: ['range', 'context'], threshold: 5, rearm: 2, escalate: 0 },
  // The recurrence memory (src/anomaly/recurrence.ts) under point + shift, and the defaults with it.
  'point + shift, recurrence': { type: 'auto', components: ['point', 'shift'], season: 'none', recurrence: true },
  'auto defaults + recurrence': { type: 'auto', recurrence: true },
  // The point component calibrated by peaks over threshold (src/anomaly/potLikelihood.ts), alone and in the defaults.
  'point, pot': { type: 'auto', components: ['point'], season: 'none', pot: ['point'] },
  'auto defaults + pot': { type: 'auto', pot: ['point'] },
  // The HTM memory (src/anomaly/htmMemory.ts, spatial pooler + temporal memory), alone and added to the
  // protocol's design (rules/nab/protocol.json).
  'htm': { type: 'auto', components: ['htm'], season: 'none', explain: false },
  'protocol.json + htm': { type: 'auto', components: ['point', 'range', 'shift', 'context', 'htm'], season: 'none', sparse: ['context'], learnTime: 0 },
  'protocol.json (same run)': { type: 'auto', components: ['point', 'range', 'shift', 'context'], season: 'none', sparse: ['context'], learnTime: 0 },
  // Its encoder's options: the time of day in the input and the resolution following the spread.
  'htm, htmTime + htmAdapt': { type: 'auto', components: ['htm'], season: 'none', explain: false, htmTime: true, htmAdapt: true },
};

/**
 * Rows too slow for 2^20 events timed after 2^20 of warm-up and 200 groups of 30 000 events (tens of
 * minutes on a shared machine): timed over `events` after as many of warm-up, memory over `groups`
 * groups of 30 000 events each (per-group figures, so comparable with the other rows).
 */
const SIZE: Record<string, { events: number; groups: number }> = {
  'htm': { events: 1 << 16, groups: 20 },
  'protocol.json + htm': { events: 1 << 16, groups: 20 },
  'htm, htmTime + htmAdapt': { events: 1 << 16, groups: 20 },
};

async function settle(): Promise<void> {
  gc?.();
  await new Promise((r) => setImmediate(r));
  gc?.();
}

const only = process.argv.slice(2);
for (const n of only) if (!(n in defs)) throw new Error(`unknown row ${JSON.stringify(n)}; rows: ${Object.keys(defs).join(', ')}`);
type Row = { name: string; nsPerEvent: number; heapBytesPerGroup: number | null; jsonBytesPerGroup: number };
const out: Row[] = [];
console.log(`${'detector'.padEnd(30)}${'ns/event'.padStart(10)}${'heap B/group'.padStart(14)}${'JSON B/group'.padStart(14)}`);
for (const [name, def] of Object.entries(defs)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const v = validateDetector(def);
  if (!v.ok) throw new Error(v.error);
  const { detector, config } = v;
  let sink = 0;
  const st = detector.init(config);
  const n = SIZE[name]?.events ?? N;
  for (let i = 0; i < n; i++) sink += detector.update(config, st, i * MIN, values[i]!, 0).score;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += detector.update(config, st, (n + i) * MIN, values[i]!, 0).score;
  const ns = Number(process.hrtime.bigint() - t0) / n;
  const G = SIZE[name]?.groups ?? 200;
  // Typed arrays' backing stores of the previous row are released after the collection that finds
  // them dead, not by it: a second collection after a turn of the event loop, or the release would be
  // counted against this row (a row of typed arrays measured a fraction of its arrays after another).
  await settle();
  // Typed arrays' backing stores live outside the JS heap (htmMemory.ts keeps its model in them):
  // counted as well, so the figure is the group's whole memory.
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const h0 = used();
  const groups: unknown[] = [];
  for (let g = 0; g < G; g++) {
    const s = detector.init(config);
    for (let i = 0; i < 30_000; i++) sink += detector.update(config, s, i * MIN, values[(i * 7 + g * 101) & (N - 1)]! + g, 0).score;
    groups.push(s);
  }
  await settle();
  const heap = gc ? (used() - h0) / G : null;
  const json = groups.reduce<number>((a, s) => a + JSON.stringify(s).length, 0) / G;
  out.push({ name, nsPerEvent: ns, heapBytesPerGroup: heap, jsonBytesPerGroup: json });
  console.log(`${name.padEnd(30)}${ns.toFixed(0).padStart(10)}${(heap === null ? 'n/a (no --expose-gc)' : heap.toFixed(0)).padStart(14)}${json.toFixed(0).padStart(14)}`);
  if (sink === 42 && groups.length === 0) console.log('');
}
const file = join(import.meta.dirname, 'autoDetector.bench.json');
// A partial run keeps the other rows of the last full run, in the table's order.
const kept: Row[] = only.length > 0 && existsSync(file) ? ((JSON.parse(readFileSync(file, 'utf8')) as { results: Row[] }).results) : [];
const results = Object.keys(defs).flatMap((n) => out.find((r) => r.name === n) ?? kept.find((r) => r.name === n) ?? []);
writeFileSync(file, JSON.stringify({ node: process.version, results }, null, 2) + '\n');
