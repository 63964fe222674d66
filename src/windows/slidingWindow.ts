import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { groupedWindowOperator, NO_TIME, type GroupBase, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';
import { duration, fail } from './windowFields.js';
import { defineWindowKind } from './windowKind.js';

/** Most events one sliding group keeps; past it a new event is dropped as `aggregate-error`. */
export const MAX_SLIDING_EVENTS = 100_000;

/** Group state of a sliding window. Items are kept, so for sliding windows they must be plain JSON too. */
export interface SlidingGroup extends GroupBase {
  /** Buffered `[time, item]`, sorted by time (equal times in arrival order). */
  events: [number, unknown][];
  /** Emitted points still kept for corrections: `[point, revision]`, sorted by point. */
  marks: [number, number][];
}

/**
 * Sliding windows (ASA-like: output when an event enters or leaves the window). The window "at" time
 * `p` holds the events with `p - size < t <= p`; with whole-millisecond event times its bounds are
 * `[p - size + 1, p + 1)`, which keeps the contract's `start <= t < end`.
 *
 * The emission points are every event time `t` (the event enters) and every `t + size` (it leaves);
 * a point is emitted when the watermark reaches its end `p + 1`, only if its window is not empty, and
 * points that coincide give one emission. Corrections follow the tumbling rules per point: a late event
 * re-emits (`revision + 1`) the kept points whose windows it joins, and emits its own new points that
 * are closed already; it is `too-late` when every point holding it is forgotten
 * (`t + size + maxLateness <= watermark`).
 *
 * Memory: a group keeps its events until their leave point is forgotten (`watermark >= t + size + 1 +
 * maxLateness`), at most {@link MAX_SLIDING_EVENTS}; each emission re-aggregates its window, so the cost
 * per event is O(events in a window). An idle flush emits every pending point, leave points included,
 * provisionally.
 */
export function slidingWindow<T, S, R>(
  spec: SlidingSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { size } = spec;
  const lateness = options.maxLateness;

  // One aggregator state reused by every emitted point and every probe of an arriving event, emptied
  // in place by the aggregator's `reset` (WindowAggregator: `result` values share no object with the
  // state): a fresh state per point and per event was the sliding rules' largest allocation in the
  // 100-rule mix (docs/performance.md, "Sliding windows reuse one aggregator state"). Taken out of
  // `spare` while in use, so an emission that re-enters this operator gets a fresh one.
  let spare: S | null = null;
  const emptyState = (out: WindowEmitter<T, S, R>): S => {
    const acc = spare;
    spare = null;
    const agg = out.aggregator;
    if (acc !== null && agg.reset !== undefined) {
      try {
        if (agg.reset(acc)) return acc;
      } catch {
        // a state the aggregator cannot empty: a fresh one below
      }
    }
    return agg.init();
  };
  /** `out.first(item, t) !== null` (the event's item can be aggregated), on the spare state. */
  const probe = (item: T, t: number, out: WindowEmitter<T, S, R>): boolean => {
    const acc = emptyState(out);
    if (!out.add(acc, item, t)) return false;
    spare = acc;
    return true;
  };

  const emitPoint = (g: SlidingGroup, key: string, p: number, out: WindowEmitter<T, S, R>): void => {
    const ev = g.events;
    const hi = upperBound(ev, p);
    const acc = emptyState(out);
    let count = 0;
    for (let i = upperBound(ev, p - size); i < hi; i++) {
      const e = ev[i]!;
      // The item was probed when it arrived; an aggregator that throws now anyway just leaves it out.
      if (out.add(acc, e[1] as T, e[0])) count++;
    }
    if (count === 0) {
      spare = acc;
      return;
    }
    const marks = g.marks;
    const m = lowerBoundMark(marks, p);
    let revision = 0;
    if (m < marks.length && marks[m]![0] === p) revision = marks[m]![1] = marks[m]![1] + 1;
    else if (p + 1 + lateness > g.wm) {
      if (m === marks.length) marks.push([p, 0]);
      else marks.splice(m, 0, [p, 0]);
    }
    out.window(key, g.group, p - size + 1, p + 1, count, acc, revision);
    spare = acc;
  };

  /**
   * Emits the points p with `a < p <= b`, ascending and unique: event times and event times + size.
   * Merged as they are emitted, with no array of them: `emitPoint` changes the marks only, never the
   * events the two cursors walk.
   */
  const emitPoints = (g: SlidingGroup, key: string, a: number, b: number, out: WindowEmitter<T, S, R>): void => {
    const events = g.events;
    let i = upperBound(events, a);
    const iEnd = upperBound(events, b);
    let j = upperBound(events, a - size);
    const jEnd = upperBound(events, b - size);
    let any = false;
    let last = 0;
    while (i < iEnd || j < jEnd) {
      const x = i < iEnd ? events[i]![0] : Infinity;
      const y = j < jEnd ? events[j]![0] + size : Infinity;
      const p = x < y ? x : y;
      if (x === p) i++;
      if (y === p) j++;
      if (!any || last !== p) emitPoint(g, key, p, out);
      any = true;
      last = p;
    }
  };

  const advance = (g: SlidingGroup, key: string, prev: number, out: WindowEmitter<T, S, R>): void => {
    const wm = g.wm;
    emitPoints(g, key, prev - 1, wm - 1, out);
    let m = 0;
    while (m < g.marks.length && g.marks[m]![0] + 1 + lateness <= wm) m++;
    // `shift` for the usual single one: `splice` allocates the array of what it removes.
    if (m === 1) g.marks.shift();
    else if (m > 0) g.marks.splice(0, m);
    let e = 0;
    while (e < g.events.length && g.events[e]![0] + size + 1 + lateness <= wm) e++;
    if (e === 1) g.events.shift();
    else if (e > 0) g.events.splice(0, e);
  };

  return groupedWindowOperator<T, S, R, SlidingGroup>(
    {
      type: 'sliding',
      create: (group) => ({ group, wm: NO_TIME, seen: 0, at: 0, flushed: false, floor: NO_TIME, events: [], marks: [], [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' }),
      place(g, key, input, out) {
        const t = input.time;
        const wm = g.wm;
        if (t + size + lateness <= wm) return out.drop(key, t, 'too-late');
        if (g.events.length >= MAX_SLIDING_EVENTS || !probe(input.item, t, out)) return out.drop(key, t, 'aggregate-error');
        const at = upperBound(g.events, t);
        if (at === g.events.length) g.events.push([t, input.item]);
        else g.events.splice(at, 0, [t, input.item]);
        if (t + 1 > wm) return; // none of its points is closed yet: advance emits them
        // A late event: its closed, not forgotten points p (t <= p <= t + size) go out now.
        emitPoints(g, key, Math.max(wm - 1 - lateness, t - 1), Math.min(wm - 1, t + size), out);
      },
      advance,
      // Provisional (docs/contract.md section 5): every point the watermark has not reached goes out
      // with its next revision (its mark is kept), the watermark stays; when the watermark reaches a
      // point, `advance` emits it again with `revision + 1`, its content then final.
      flush(g, key, out) {
        const last = g.events[g.events.length - 1];
        if (last === undefined || last[0] + size + 1 <= g.wm) return;
        emitPoints(g, key, g.wm - 1, last[0] + size, out);
      },
      settled: (g) => g.events.length === 0 && g.marks.length === 0,
      // An event at t joins the windows of the points [t, t + size]; the points emitted reach last + size.
      emittedUpTo: (g) => {
        const last = g.events[g.events.length - 1];
        return last === undefined ? NO_TIME : last[0] + size + 1;
      },
    },
    aggregator,
    options,
  );
}

/** First index whose time is greater than `x`. */
function upperBound(events: readonly [number, unknown][], x: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid]![0] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose point is not less than `p`. */
function lowerBoundMark(marks: readonly [number, number][], p: number): number {
  let lo = 0;
  let hi = marks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (marks[mid]![0] < p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A sliding window's spec. */
export interface SlidingSpec {
  readonly type: 'sliding';
  readonly size: number;
}

/**
 * The sliding window type (windowKind.ts): windows at distinct points can share a start, so the end and
 * size join the messageId; the operator buffers the items (MAX_SLIDING_EVENTS bounds its state).
 */
export const slidingKind = defineWindowKind<SlidingSpec>({
  type: 'sliding',
  schema: { required: ['size'], properties: { type: true, size: { $ref: '#/definitions/duration' } }, additionalProperties: false },
  normalize(d) {
    const size = duration(d, 'size');
    if (typeof size === 'string') return fail(size);
    return { ok: true, value: { type: 'sliding', size } };
  },
  operator: slidingWindow,
  defaultIdleTimeout: (spec) => spec.size,
  id: 'start-end-size',
  retainsItems: true,
  timestampAt: 'last',
});
