/**
 * Tumbling-window throughput: 1M events over 1,000 groups, count+sum aggregator, the operator against a
 * hand-written Map aggregator doing the same work (same windows, same emissions) in the same run.
 * Prints ns/event for both, their ratio, and one JSON line later runs can be compared with.
 *   npx tsx bench/windows.bench.ts [events] [groups]
 */
import { asyncScheduler, Observable, type SchedulerLike } from 'rxjs';
import type { WindowAggregator, WindowInput } from '../src/contracts/window.js';
import { tumblingWindow } from '../src/windows/tumblingWindow.js';

interface Acc { n: number; sum: number }
const agg: WindowAggregator<number, Acc, Acc> = {
  init: () => ({ n: 0, sum: 0 }),
  add(s, v) { s.n++; s.sum += v; },
  result: (s) => ({ n: s.n, sum: s.sum }),
};

const N = Number(process.argv[2] ?? 1_000_000);
const GROUPS = Number(process.argv[3] ?? 1_000);
const SIZE = 60_000;
const T0 = Date.UTC(2026, 10, 26);
// Each group sends one event every second of event time, groups interleaved: 17 windows per group.
const inputs: WindowInput<number>[] = [];
const keys = Array.from({ length: GROUPS }, (_, i) => `dev${i}`);
for (let i = 0; i < N; i++) {
  const g = i % GROUPS;
  inputs.push({ time: T0 + Math.floor(i / GROUPS) * 1000, key: keys[g]!, group: { deviceId: keys[g]! }, item: i & 0xff });
}

/** A scheduler whose clock is free: shows how much of the operator's cost is reading processing time. */
const frozenClock: SchedulerLike = { now: () => T0, schedule: asyncScheduler.schedule.bind(asyncScheduler) };

function runOperator(scheduler: SchedulerLike = asyncScheduler): { ms: number; out: number } {
  let out = 0;
  const src = new Observable<WindowInput<number>>((s) => {
    for (let i = 0; i < inputs.length; i++) s.next(inputs[i]!);
    s.complete();
  });
  const t = performance.now();
  src.pipe(tumblingWindow({ type: 'tumbling', size: SIZE }, agg, { maxLateness: 0, idleTimeout: SIZE, scheduler })).subscribe(() => out++);
  return { ms: performance.now() - t, out };
}

/** The baseline: one Map lookup and an add per event, a window emitted when the next one starts. */
function runBaseline(): { ms: number; out: number } {
  let out = 0;
  const emit = (x: unknown): void => { if (x !== undefined) out++; };
  const t = performance.now();
  const m = new Map<string, { start: number; acc: Acc }>();
  for (let i = 0; i < inputs.length; i++) {
    const e = inputs[i]!;
    const start = e.time - (e.time % SIZE);
    let g = m.get(e.key);
    if (g === undefined) { g = { start, acc: agg.init() }; m.set(e.key, g); }
    else if (g.start !== start) { emit({ key: e.key, start: g.start, value: agg.result(g.acc) }); g.start = start; g.acc = agg.init(); }
    agg.add(g.acc, e.item, e.time);
  }
  for (const [key, g] of m) emit({ key, start: g.start, value: agg.result(g.acc) });
  return { ms: performance.now() - t, out };
}

const rounds = 5;
let best = { op: Infinity, base: Infinity, frozen: Infinity };
let outs = { op: 0, base: 0 };
for (let r = 0; r < rounds; r++) {
  const b = runBaseline();
  const o = runOperator();
  const f = runOperator(frozenClock);
  best = { op: Math.min(best.op, o.ms), base: Math.min(best.base, b.ms), frozen: Math.min(best.frozen, f.ms) };
  outs = { op: o.out, base: b.out };
}
const nsOp = (best.op * 1e6) / N;
const nsBase = (best.base * 1e6) / N;
console.log(`tumblingWindow: ${nsOp.toFixed(1)} ns/event (${(1e3 / nsOp).toFixed(2)} M events/s), windows out ${outs.op}`);
const nsFrozen = (best.frozen * 1e6) / N;
console.log(`tumblingWindow with a free clock: ${nsFrozen.toFixed(1)} ns/event (the rest is scheduler.now())`);
console.log(`hand-written Map baseline: ${nsBase.toFixed(1)} ns/event, windows out ${outs.base}`);
console.log(`ratio operator/baseline: ${(nsOp / nsBase).toFixed(2)}`);
console.log(JSON.stringify({ bench: 'windows.tumbling', events: N, groups: GROUPS, nsPerEvent: +nsOp.toFixed(1), frozenClockNsPerEvent: +nsFrozen.toFixed(1), baselineNsPerEvent: +nsBase.toFixed(1), ratio: +(nsOp / nsBase).toFixed(2), node: process.version }));
process.exit(0);
