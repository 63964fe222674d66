/**
 * A baseline for `engineThroughput.ts`: the 10 generated rules of `workload.ts` written by hand as one
 * single pass, the fastest plain JavaScript a person would write for them without any engine. Per
 * input: `JSON.parse`, `Date.parse` once, then per rule a `Map<device, state>` of plain objects, as
 * the hand-written one-rule baseline does. Outputs are plain objects with the window's values;
 * simplifications that only make it cheaper than eddy: no message ids, no lateness or revisions
 * (a window closes at the first event past its end), no idle flush, no group bound, no checkpointable
 * state. So its rate is an upper bound for any engine running these rules with per-group objects.
 */
import type { Input } from './workload.js';

interface Body {
  machine: { temperature: number; pressure: number };
  ambient: { temperature: number; humidity: number };
  timeCreated: string;
}

const FIELDS: Array<(b: Body) => number> = [(b) => b.machine.temperature, (b) => b.machine.pressure, (b) => b.ambient.temperature, (b) => b.ambient.humidity];
const SIZES = [10_000, 30_000, 60_000, 300_000];

interface Win {
  start: number;
  n: number;
  sum: number;
  sumSq: number;
  min: number;
  max: number;
  min2: number;
  max2: number;
}

const newWin = (start: number): Win => ({ start, n: 0, sum: 0, sumSq: 0, min: Infinity, max: -Infinity, min2: Infinity, max2: -Infinity });

type Step = (device: string, b: Body, t: number) => void;

/** The per-input step of the 10 rules (`generatedRules(10)` in workload.ts), emitting into `emit`. */
export function handWrittenRules(n: number, emit: (out: object) => void): (inp: Input) => void {
  const rules: Step[] = [];
  for (let i = 0; i < n; i++) {
    const f = FIELDS[i % 4]!;
    const g = FIELDS[(i + 1) % 4]!;
    switch (i % 6) {
      case 0: {
        const size = SIZES[i % 4]!;
        const lo = -50 + (i % 7);
        const m = new Map<string, Win>();
        rules.push((d, b, t) => {
          const x = f(b);
          if (!(x > lo)) return;
          const start = t - (t % size);
          let w = m.get(d);
          if (w === undefined || w.start !== start) {
            if (w !== undefined) {
              const avg = w.sum / w.n;
              emit({ rule: i, device: d, start: w.start, end: w.start + size, count: w.n, values: { avg, min: w.min, max: w.max, sd: Math.sqrt(Math.max(0, (w.sumSq - w.n * avg * avg) / (w.n - 1))) } });
            }
            w = newWin(start);
            m.set(d, w);
          }
          w.n++;
          w.sum += x;
          w.sumSq += x * x;
          if (x < w.min) w.min = x;
          if (x > w.max) w.max = x;
        });
        break;
      }
      case 1: {
        // Hopping 1m every 30s: an event is in the window starting at its 30 s slot and the one before.
        const m = new Map<string, [Win, Win]>();
        rules.push((d, b, t) => {
          const x = f(b);
          const y = g(b);
          const slot = t - (t % 30_000);
          let ws = m.get(d);
          if (ws === undefined) {
            ws = [newWin(slot - 30_000), newWin(slot)];
            m.set(d, ws);
          }
          while (ws[1].start < slot) {
            const done = ws[0];
            if (done.n > 0) emit({ rule: i, device: d, start: done.start, end: done.start + 60_000, count: done.n, values: { avg: done.sum / done.n, n: done.n, max: done.max2 } });
            ws[0] = ws[1];
            ws[1] = newWin(ws[1].start + 30_000);
          }
          for (const w of ws) {
            w.n++;
            w.sum += x;
            if (y > w.max2) w.max2 = y;
          }
        });
        break;
      }
      case 2: {
        const hum = 90 + (i % 5);
        const m = new Map<string, Win>();
        rules.push((d, b, t) => {
          if (!(b.ambient.humidity < hum && b.machine.pressure >= 0)) return;
          const x = f(b) * 1.8 + 32;
          const y = g(b);
          const start = t - (t % 60_000);
          let w = m.get(d);
          if (w === undefined || w.start !== start) {
            if (w !== undefined && w.max2 - w.min2 >= 0) emit({ rule: i, device: d, start: w.start, end: w.start + 60_000, count: w.n, values: { avg: w.sum / w.n, range: w.max2 - w.min2 } });
            w = newWin(start);
            m.set(d, w);
          }
          w.n++;
          w.sum += x;
          if (y < w.min2) w.min2 = y;
          if (y > w.max2) w.max2 = y;
        });
        break;
      }
      case 3: {
        const above = 1000 + i;
        const m = new Map<string, { raised: boolean }>();
        rules.push((d, b, t) => {
          const x = f(b);
          let s = m.get(d);
          if (s === undefined) m.set(d, (s = { raised: false }));
          if (!s.raised && x > above) {
            s.raised = true;
            emit({ rule: i, device: d, state: 'raised', time: t, value: x });
          } else if (s.raised && x < above - 2) {
            s.raised = false;
            emit({ rule: i, device: d, state: 'cleared', time: t, value: x });
          }
        });
        break;
      }
      case 4: {
        const max = 50 + i;
        const m = new Map<string, { t: number; v: number }>();
        rules.push((d, b, t) => {
          const x = b.machine.temperature;
          const s = m.get(d);
          if (s === undefined) {
            m.set(d, { t, v: x });
            return;
          }
          if (t > s.t && (Math.abs(x - s.v) / (t - s.t)) * 1000 > max) emit({ rule: i, device: d, state: 'raised', time: t, value: x });
          s.t = t;
          s.v = x;
        });
        break;
      }
      default: {
        const m = new Map<string, { first: number; last: number; n: number; max: number }>();
        rules.push((d, b, t) => {
          const x = f(b);
          let s = m.get(d);
          if (s !== undefined && (t - s.last > 30_000 || t - s.first >= 300_000)) {
            emit({ rule: i, device: d, start: s.first, end: s.last, count: s.n, values: { n: s.n, last: s.max } });
            s = undefined;
          }
          if (s === undefined) m.set(d, (s = { first: t, last: t, n: 0, max: -Infinity }));
          s.last = t;
          s.n++;
          if (x > s.max) s.max = x;
        });
      }
    }
  }
  return (inp) => {
    const b = JSON.parse(inp.body.toString('utf8')) as Body;
    const t = Date.parse(b.timeCreated);
    for (let r = 0; r < rules.length; r++) rules[r]!(inp.deviceId, b, t);
  };
}
