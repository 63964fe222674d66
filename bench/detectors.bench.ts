/**
 * Per-event cost of each detector (`npx tsx bench/detectors.bench.ts`): benchmark.js, one event per
 * cycle over a pre-generated noisy series with spikes, ns/event and the ratio to a trivial baseline
 * (a running sum) measured in the same run. Writes bench/detectors.bench.json for later comparison.
 */
import Benchmark from 'benchmark';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateDetector } from '../src/anomaly/detectorRegistry.js';

const N = 1 << 16;
const values = new Float64Array(N);
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
for (let i = 0; i < N; i++) values[i] = 10 + (rnd() + rnd() + rnd() - 1.5) * 2 + (rnd() < 0.002 ? 20 : 0);

const defs: Record<string, { type: string; [k: string]: unknown }> = {
  threshold: { type: 'threshold', above: 20, below: 0, hysteresis: 1 },
  rateOfChange: { type: 'rateOfChange', maxPerSecond: 0.1 },
  flatline: { type: 'flatline', duration: '10m', tolerance: 0.01 },
  missing: { type: 'missing', timeout: '5m' },
  zscore: { type: 'zscore', window: 1000, threshold: 5 },
  ewma: { type: 'ewma', alpha: 0.01, threshold: 5 },
  'spikeAndDip h=120': { type: 'spikeAndDip', confidence: 99, history: 120, mode: 'both' },
  'spikeAndDip h=2000': { type: 'spikeAndDip', confidence: 99.99, history: 2000, mode: 'both' },
  'changePoint h=120': { type: 'changePoint', confidence: 99, history: 120 },
  'changePoint h=2000': { type: 'changePoint', confidence: 99.99, history: 2000 },
};

const suite = new Benchmark.Suite('detectors');
let sink = 0;
let i0 = 0;
suite.add('baseline (running sum)', () => {
  sink += values[i0++ & (N - 1)]!;
});
for (const [name, def] of Object.entries(defs)) {
  const v = validateDetector(def);
  if (!v.ok) throw new Error(v.error);
  const { detector, config } = v;
  const state = detector.init(config);
  let i = 0;
  suite.add(name, () => {
    const k = i++;
    sink += detector.update(config, state, k * 60_000, values[k & (N - 1)]!, k * 60_000).score;
  });
}

const results: { name: string; nsPerEvent: number; ratio: number; rme: number }[] = [];
suite
  .on('complete', function (this: Benchmark.Suite) {
    const benches = this.map((b: Benchmark) => b) as Benchmark[];
    const base = 1e9 / benches[0]!.hz;
    console.log(`${'detector'.padEnd(24)}${'ns/event'.padStart(10)}${'x baseline'.padStart(12)}${'±%'.padStart(7)}`);
    for (const b of benches) {
      const ns = 1e9 / b.hz;
      results.push({ name: b.name ?? '', nsPerEvent: ns, ratio: ns / base, rme: b.stats.rme });
      console.log(`${(b.name ?? '').padEnd(24)}${ns.toFixed(1).padStart(10)}${(ns / base).toFixed(1).padStart(12)}${b.stats.rme.toFixed(1).padStart(7)}`);
    }
    writeFileSync(join(import.meta.dirname, 'detectors.bench.json'), JSON.stringify({ node: process.version, results }, null, 2) + '\n');
    if (sink === 42) console.log('');
  })
  .run({ async: false });
