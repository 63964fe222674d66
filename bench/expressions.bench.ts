/**
 * Expression evaluation: eddy's compiled closures against a hand-written closure (the baseline)
 * and mathjs' `compile().evaluate()` (~2 µs vs ~5 ns per call: docs/performance.md).
 * Run: `npx tsx bench/expressions.bench.ts`. Prints ops/s and the ratio to the baseline measured in
 * the same run, and writes bench/expressions.bench.json for later comparison.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Benchmark from 'benchmark';
import { compile as mathCompile } from 'mathjs';
import { compileExpression, compilePredicate } from '../src/aggregate/compileExpression.js';
import { compileSelect } from '../src/aggregate/compileSelect.js';
import type { EvalContext } from '../src/contracts/event.js';

const SOURCE = 'machine.temperature > 30 and ambient.humidity < 80';

// 1,024 bodies shaped like SimulatedTemperatureSensor's, cycled so the branch predictor cannot settle.
const contexts: EvalContext[] = Array.from({ length: 1024 }, (_, i) => ({
  body: { machine: { temperature: 20 + ((i * 37) % 200) / 10, pressure: 1 + (i % 10) / 100 }, ambient: { temperature: 20.9, humidity: 20 + ((i * 13) % 80) }, timeCreated: '2026-11-26T03:00:00.000Z' },
  deviceId: `dev${i % 10}`,
  moduleId: 'sim',
}));

const handWritten = (c: EvalContext): boolean => {
  const m = c.body.machine as { temperature: number };
  const a = c.body.ambient as { humidity: number };
  return m.temperature > 30 && a.humidity < 80;
};
const compiledExpr = compileExpression(SOURCE);
const compiledPred = compilePredicate(SOURCE);
if (!compiledExpr.ok || !compiledPred.ok) throw new Error('did not compile');
const expr = compiledExpr.value;
const pred = compiledPred.value;
const mathjsCode = mathCompile(SOURCE);

const select = compileSelect({ avg: 'avg(machine.temperature)', max: 'max(machine.temperature)', sd: 'stdev(machine.temperature)', n: 'count()' });
if (!select.ok) throw new Error('select did not compile');
const sel = select.value;
const state = sel.aggregator.init();
const item: number[] = [0];
const selectValues = compileSelect({ p95: 'percentile(machine.temperature, 95)', d: 'distinct(round(machine.temperature))' });
if (!selectValues.ok) throw new Error('select did not compile');
const selV = selectValues.value;
let stateV = selV.aggregator.init();
const itemV: number[] = [0, 0];
let added = 0;

let i = 0;
let sink = 0;
const suite = new Benchmark.Suite('expressions');
suite
  .add('hand-written closure (baseline)', () => {
    if (handWritten(contexts[i++ & 1023]!)) sink++;
  })
  .add('eddy compilePredicate', () => {
    if (pred(contexts[i++ & 1023]!)) sink++;
  })
  .add('eddy compileExpression.evaluate', () => {
    if (expr.evaluate(contexts[i++ & 1023]!)) sink++;
  })
  .add('mathjs compile().evaluate(scope)', () => {
    const c = contexts[i++ & 1023]!;
    if (mathjsCode.evaluate(c.body)) sink++;
  })
  .add('eddy select: evaluateArgs + add (avg,max,stdev,count)', () => {
    sel.evaluateArgs(contexts[i++ & 1023]!, item);
    sel.aggregator.add(state, item, i);
  })
  .add('eddy select: evaluateArgs + add (percentile, distinct; window of 1,000)', () => {
    // A fresh window every 1,000 events, so the kept values stay at a realistic size.
    if (++added % 1000 === 0) stateV = selV.aggregator.init();
    selV.evaluateArgs(contexts[i++ & 1023]!, itemV);
    selV.aggregator.add(stateV, itemV, i);
  })
  .on('cycle', (e: Benchmark.Event) => console.log(String(e.target)))
  .on('complete', function (this: Benchmark.Suite) {
    const benches = this.map((b: Benchmark) => b) as Benchmark[];
    const base = benches[0]!.hz;
    const rows = benches.map((b) => ({ name: b.name ?? '', opsPerSec: Math.round(b.hz), nsPerOp: +(1e9 / b.hz).toFixed(1), rmePct: +b.stats.rme.toFixed(2), slowdownVsBaseline: +(base / b.hz).toFixed(2) }));
    console.log('\nname | ops/s | ns/op | x slower than baseline');
    for (const r of rows) console.log(`${r.name} | ${r.opsPerSec.toLocaleString('en-US')} | ${r.nsPerOp} | ${r.slowdownVsBaseline}`);
    const out = fileURLToPath(new URL('./expressions.bench.json', import.meta.url));
    writeFileSync(out, `${JSON.stringify({ suite: 'expressions', expression: SOURCE, node: process.version, rows }, null, 2)}\n`);
    if (sink < 0) console.log(sink);
  })
  .run({ async: false });
