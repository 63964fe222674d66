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
export function handWrittenRules(n: number, emit: (out: object) => void, oneLookup = false): (inp: Input) => void {
  const rules: Step[] = [];
  // `oneLookup`: each rule's state objects live in one array per device, found by one Map lookup per
  // input (as the fused executor's lane index finds every rule's group), instead of a Map per rule.
  const devices = new Map<string, unknown[]>();
  let row: unknown[] = [];
  const stateOf = <V>(i: number): Slot<V> =>
    oneLookup ? new RowSlot<V>(() => row, i) : new Map<string, V>();
  for (let i = 0; i < n; i++) {
    const f = FIELDS[i % 4]!;
    const g = FIELDS[(i + 1) % 4]!;
    switch (i % 6) {
      case 0: {
        const size = SIZES[i % 4]!;
        const lo = -50 + (i % 7);
        const m = stateOf<Win>(i);
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
        const m = stateOf<[Win, Win]>(i);
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
        const m = stateOf<Win>(i);
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
        const m = stateOf<{ raised: boolean }>(i);
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
        const m = stateOf<{ t: number; v: number }>(i);
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
        const m = stateOf<{ first: number; last: number; n: number; max: number }>(i);
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
    if (oneLookup) {
      let r = devices.get(inp.deviceId);
      if (r === undefined) devices.set(inp.deviceId, (r = new Array<unknown>(n).fill(undefined)));
      row = r;
    }
    for (let r = 0; r < rules.length; r++) rules[r]!(inp.deviceId, b, t);
  };
}

/** The two Map calls a rule makes on its state. */
interface Slot<V> {
  get(d: string): V | undefined;
  set(d: string, v: V): unknown;
}

/** A rule's state in the current device's row (handWrittenRules `oneLookup`): the Map calls the rules make, on the row. */
class RowSlot<V> {
  constructor(
    private readonly row: () => unknown[],
    private readonly i: number,
  ) {}
  get(_d: string): V | undefined {
    return this.row()[this.i] as V | undefined;
  }
  set(_d: string, v: V): this {
    this.row()[this.i] = v;
    return this;
  }
}

/** The per-rule state sizes (doubles) of {@link handWrittenColumnar}, by `i % 6` as in {@link handWrittenRules}. */
const WIDTH = [6, 8, 5, 1, 3, 5];

/**
 * The same n rules and outputs as {@link handWrittenRules}, with the state laid out as per-lane columnar
 * rows would hold it: ONE `Map<device, row>` lookup per input, then every rule's state in that device's
 * row of one shared Float64Array (6 to 8 doubles per rule, next to each other), instead of a Map and an
 * object per rule. What docs/performance.md ("Per-lane rows: the ceiling") measures it for: how far
 * the layout alone, with no engine around it, moves the rate over many devices, where the per-object
 * pass waits on memory.
 */
export function handWrittenColumnar(n: number, emit: (out: object) => void): (inp: Input) => void {
  const off: number[] = [];
  let width = 0;
  for (let i = 0; i < n; i++) {
    off.push(width);
    width += WIDTH[i % 6]!;
  }
  const rows = new Map<string, number>();
  let cells = new Float64Array(width * 1024);
  let used = 0;
  const open = (): number => {
    const at = used * width;
    if (at + width > cells.length) {
      const next = new Float64Array(cells.length * 2);
      next.set(cells);
      cells = next;
    }
    used++;
    // Fresh state: every rule's "no window yet" marks.
    for (let i = 0; i < n; i++) {
      const o = at + off[i]!;
      switch (i % 6) {
        case 0:
          cells[o] = Number.NaN;
          break;
        case 1:
          cells[o] = Number.NaN;
          break;
        case 2:
          cells[o] = Number.NaN;
          break;
        case 3:
          cells[o] = 0;
          break;
        case 4:
          cells[o + 2] = 0;
          break;
        default:
          cells[o + 4] = 0;
      }
    }
    return at;
  };
  const steps: Array<(c: Float64Array, o: number, d: string, b: Body, t: number) => void> = [];
  for (let i = 0; i < n; i++) {
    const f = FIELDS[i % 4]!;
    const g = FIELDS[(i + 1) % 4]!;
    switch (i % 6) {
      case 0: {
        const size = SIZES[i % 4]!;
        const lo = -50 + (i % 7);
        // [start, n, sum, sumSq, min, max]
        steps.push((c, o, d, b, t) => {
          const x = f(b);
          if (!(x > lo)) return;
          const start = t - (t % size);
          if (c[o] !== start) {
            if (c[o] === c[o]) {
              const wn = c[o + 1]!;
              const avg = c[o + 2]! / wn;
              emit({ rule: i, device: d, start: c[o], end: c[o]! + size, count: wn, values: { avg, min: c[o + 4], max: c[o + 5], sd: Math.sqrt(Math.max(0, (c[o + 3]! - wn * avg * avg) / (wn - 1))) } });
            }
            c[o] = start;
            c[o + 1] = 0;
            c[o + 2] = 0;
            c[o + 3] = 0;
            c[o + 4] = Infinity;
            c[o + 5] = -Infinity;
          }
          c[o + 1]!++;
          c[o + 2]! += x;
          c[o + 3]! += x * x;
          if (x < c[o + 4]!) c[o + 4] = x;
          if (x > c[o + 5]!) c[o + 5] = x;
        });
        break;
      }
      case 1: {
        // Two windows of [start, n, sum, max2]: the one starting 30 s before the event's slot, then the slot's.
        steps.push((c, o, d, b, t) => {
          const x = f(b);
          const y = g(b);
          const slot = t - (t % 30_000);
          if (c[o] !== c[o]) {
            c[o] = slot - 30_000;
            c[o + 1] = 0;
            c[o + 2] = 0;
            c[o + 3] = -Infinity;
            c[o + 4] = slot;
            c[o + 5] = 0;
            c[o + 6] = 0;
            c[o + 7] = -Infinity;
          }
          while (c[o + 4]! < slot) {
            const wn = c[o + 1]!;
            if (wn > 0) emit({ rule: i, device: d, start: c[o], end: c[o]! + 60_000, count: wn, values: { avg: c[o + 2]! / wn, n: wn, max: c[o + 3] } });
            c[o] = c[o + 4]!;
            c[o + 1] = c[o + 5]!;
            c[o + 2] = c[o + 6]!;
            c[o + 3] = c[o + 7]!;
            c[o + 4] = c[o]! + 30_000;
            c[o + 5] = 0;
            c[o + 6] = 0;
            c[o + 7] = -Infinity;
          }
          c[o + 1]!++;
          c[o + 2]! += x;
          if (y > c[o + 3]!) c[o + 3] = y;
          c[o + 5]!++;
          c[o + 6]! += x;
          if (y > c[o + 7]!) c[o + 7] = y;
        });
        break;
      }
      case 2: {
        const hum = 90 + (i % 5);
        // [start, n, sum, min2, max2]
        steps.push((c, o, d, b, t) => {
          if (!(b.ambient.humidity < hum && b.machine.pressure >= 0)) return;
          const x = f(b) * 1.8 + 32;
          const y = g(b);
          const start = t - (t % 60_000);
          if (c[o] !== start) {
            if (c[o] === c[o] && c[o + 4]! - c[o + 3]! >= 0) emit({ rule: i, device: d, start: c[o], end: c[o]! + 60_000, count: c[o + 1], values: { avg: c[o + 2]! / c[o + 1]!, range: c[o + 4]! - c[o + 3]! } });
            c[o] = start;
            c[o + 1] = 0;
            c[o + 2] = 0;
            c[o + 3] = Infinity;
            c[o + 4] = -Infinity;
          }
          c[o + 1]!++;
          c[o + 2]! += x;
          if (y < c[o + 3]!) c[o + 3] = y;
          if (y > c[o + 4]!) c[o + 4] = y;
        });
        break;
      }
      case 3: {
        const above = 1000 + i;
        // [raised]
        steps.push((c, o, d, b, t) => {
          const x = f(b);
          if (c[o] === 0 && x > above) {
            c[o] = 1;
            emit({ rule: i, device: d, state: 'raised', time: t, value: x });
          } else if (c[o] === 1 && x < above - 2) {
            c[o] = 0;
            emit({ rule: i, device: d, state: 'cleared', time: t, value: x });
          }
        });
        break;
      }
      case 4: {
        const max = 50 + i;
        // [t, v, seen]
        steps.push((c, o, d, b, t) => {
          const x = b.machine.temperature;
          if (c[o + 2] === 0) {
            c[o] = t;
            c[o + 1] = x;
            c[o + 2] = 1;
            return;
          }
          if (t > c[o]! && (Math.abs(x - c[o + 1]!) / (t - c[o]!)) * 1000 > max) emit({ rule: i, device: d, state: 'raised', time: t, value: x });
          c[o] = t;
          c[o + 1] = x;
        });
        break;
      }
      default: {
        // [first, last, n, max, open]
        steps.push((c, o, d, b, t) => {
          const x = f(b);
          if (c[o + 4] === 1 && (t - c[o + 1]! > 30_000 || t - c[o]! >= 300_000)) {
            emit({ rule: i, device: d, start: c[o], end: c[o + 1], count: c[o + 2], values: { n: c[o + 2], last: c[o + 3] } });
            c[o + 4] = 0;
          }
          if (c[o + 4] === 0) {
            c[o] = t;
            c[o + 1] = t;
            c[o + 2] = 0;
            c[o + 3] = -Infinity;
            c[o + 4] = 1;
          }
          c[o + 1] = t;
          c[o + 2]!++;
          if (x > c[o + 3]!) c[o + 3] = x;
        });
      }
    }
  }
  return (inp) => {
    const b = JSON.parse(inp.body.toString('utf8')) as Body;
    const t = Date.parse(b.timeCreated);
    const d = inp.deviceId;
    let at = rows.get(d);
    if (at === undefined) {
      at = open();
      rows.set(d, at);
    }
    const c = cells;
    for (let r = 0; r < steps.length; r++) steps[r]!(c, at + off[r]!, d, b, t);
  };
}
