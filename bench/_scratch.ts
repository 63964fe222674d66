import { asyncScheduler, Observable } from 'rxjs';
import type { WindowAggregator, WindowInput } from '../src/contracts/window.js';
import { tumblingWindow } from '../src/windows/tumblingWindow.js';
import { groupedWindowOperator, baseGroup } from '../src/windows/groupedWindowOperator.js';
interface Acc { n: number; sum: number }
const agg: WindowAggregator<number, Acc, Acc> = { init: () => ({ n: 0, sum: 0 }), add(s, v) { s.n++; s.sum += v; }, result: (s) => ({ n: s.n, sum: s.sum }) };
const N = 1_000_000, GROUPS = 1000, SIZE = 60_000, T0 = Date.UTC(2026, 10, 26);
const keys = Array.from({ length: GROUPS }, (_, i) => `dev${i}`);
const inputs: WindowInput<number>[] = [];
for (let i = 0; i < N; i++) { const g = i % GROUPS; inputs.push({ time: T0 + Math.floor(i / GROUPS) * 1000, key: keys[g]!, group: { deviceId: keys[g]! }, item: i & 0xff }); }
const fixed = { now: () => 0, schedule: asyncScheduler.schedule.bind(asyncScheduler) } as any;
function run(name: string, op: any) {
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    let out = 0;
    const src = new Observable<WindowInput<number>>((s) => { for (let i = 0; i < inputs.length; i++) s.next(inputs[i]!); s.complete(); });
    const t = performance.now(); src.pipe(op()).subscribe(() => out++); best = Math.min(best, performance.now() - t);
  }
  console.log(name, (best * 1e6 / N).toFixed(1));
}
run('tumbling async', () => tumblingWindow({ type: 'tumbling', size: SIZE }, agg, { maxLateness: 0, idleTimeout: SIZE, scheduler: asyncScheduler }));
run('tumbling fixed clock', () => tumblingWindow({ type: 'tumbling', size: SIZE }, agg, { maxLateness: 0, idleTimeout: SIZE, scheduler: fixed }));
run('noop kind fixed clock', () => groupedWindowOperator({ type: 'tumbling', create: baseGroup, place() {}, advance() {}, flush() {} } as any, agg, { maxLateness: 0, idleTimeout: SIZE, scheduler: fixed }));
process.exit(0);
