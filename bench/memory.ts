/**
 * Section 5 of `npm run bench`: heap and RSS of the engine against the number of groups (devices ×
 * rules), and bytes per idle group per rule. Run with `--expose-gc` (bench/run.ts does): each case
 * builds an engine, sends one input per device (every rule opens a group and a window), collects
 * garbage and reads `heapUsed`. Baseline: the hand-written aggregator's Map<device, running window>
 * measured the same way.
 *
 *   node --expose-gc --import tsx bench/memory.ts [--quick]
 */
import { asyncScheduler } from 'rxjs';
import { Engine } from '../src/rules/engine.js';
import { decodeMessage } from '../src/ingest/decodeMessage.js';
import type { RuleSet } from '../src/contracts/rule.js';
import { report, row, type Row } from './harness.js';
import { compileAll, defaultRules, generatedRules, makeInputs } from './workload.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const quick = process.argv.includes('--quick');

function heap(): { heap: number; rss: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

/** Heap bytes of `devices` idle groups under `set`; the inputs themselves are made (and kept) before the first reading. */
function engineBytes(set: RuleSet, devices: number): { perGroup: number; heapMB: number; rssMB: number } {
  const inputs = makeInputs(devices, devices, 5_000);
  const rules = compileAll(set);
  const engine = new Engine({ scheduler: asyncScheduler, tickIntervalMs: 0, emit: () => undefined, observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  engine.setRules(rules);
  const before = heap();
  const arrival = Date.now();
  for (const inp of inputs) engine.process(decodeMessage(inp.body, { input: 'telemetry', deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor', arrival }).events);
  const after = heap();
  const groups = Object.values(engine.ruleStats()).reduce((s, r) => s + r.groups, 0);
  engine.close();
  if (groups !== devices * rules.length) throw new Error(`expected ${devices * rules.length} groups, got ${groups}`);
  return { perGroup: (after.heap - before.heap) / groups, heapMB: after.heap / 2 ** 20, rssMB: after.rss / 2 ** 20 };
}

function handWrittenBytes(devices: number): number {
  const inputs = makeInputs(devices, devices, 5_000);
  const before = heap();
  const groups = new Map<string, { start: number; n: number; sum: number; sumSq: number; min: number; max: number }>();
  for (const inp of inputs) {
    const o = JSON.parse(inp.body.toString('utf8')) as { machine: { temperature: number }; timeCreated: string };
    const t = Date.parse(o.timeCreated);
    const v = o.machine.temperature;
    groups.set(inp.deviceId, { start: t - (t % 60_000), n: 1, sum: v, sumSq: v * v, min: v, max: v });
  }
  const after = heap();
  if (groups.size !== devices) throw new Error('hand-written: wrong group count');
  return (after.heap - before.heap) / devices;
}

const rows: Row[] = [];
const one: RuleSet = { machine1m: defaultRules().machine1m };
const cases: Array<[string, RuleSet, number[]]> = [
  ['1 rule (machine1m)', one, quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]],
  ['default rules (5)', defaultRules(), quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]],
  ['10 rules', generatedRules(10), quick ? [1_000] : [1_000, 10_000]],
];
const base = handWrittenBytes(10_000);
rows.push(row('memory', 'hand-written Map<device, running window>, 10k devices', base, 'B/group', 'hand-written', base));
for (const [name, set, sizes] of cases) {
  for (const devices of sizes) {
    const r = engineBytes(set, devices);
    const label = `${name}, ${devices / 1000}k devices`;
    rows.push(row('memory', `${label}: bytes per idle group per rule`, r.perGroup, 'B/group', 'hand-written', base, { target: '≤ 1 KB per idle group per rule', pass: r.perGroup <= 1024 }));
    rows.push(row('memory', `${label}: heap used / RSS`, r.heapMB, 'MB heap', 'RSS (MB)', r.rssMB));
  }
}
report(rows);
