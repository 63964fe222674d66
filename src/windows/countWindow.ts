import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import { groupedWindowOperator, NO_TIME, type GroupBase, type WindowOperator } from './groupedWindowOperator.js';
import type { WindowEmitter } from './windowEmitter.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV } from './recencyList.js';
import { count, fail, MAX_COUNT, MAX_WINDOWS_PER_EVENT } from './windowFields.js';
import { defineWindowKind } from './windowKind.js';

/** One count window being filled: `first`/`last` are the smallest and largest event times in it. Plain JSON. */
export interface CountBucket<S> {
  count: number;
  first: number;
  last: number;
  acc: S;
}

/** Group state of a count window. */
export interface CountGroup<S> extends GroupBase {
  /** Open windows, oldest (fullest) first; a new one opens every `step` events. */
  buckets: CountBucket<S>[];
  /** Events since the group started or was last flushed. */
  n: number;
  /** Events since the last emission: the ones no window has reported yet. */
  unreported: number;
  /**
   * The last emitted window's first and last event time, and how many windows in a row before it had
   * those bounds (absent in a checkpoint written before it: no window repeated yet).
   */
  prev?: [start: number, end: number, repeat: number];
}

/**
 * Count windows (`size`, `step`): per group, in arrival order, a window opens every `step` events and is
 * emitted once it holds `size` events, so from the `size`-th event on every `step`-th event emits the
 * last `size` events. Aggregation is incremental (each event is added to the `ceil(size/step)` open
 * windows); no items are kept.
 *
 * Bounds: `start`/`end` are the smallest and largest event time in the window and `size` the configured
 * size (docs/contract.md section 4); `count` is the number of events, always `size` except for a flush.
 * Event time plays no part otherwise: no watermark, revision or `too-late`.
 *
 * Idle flush, eviction and completion emit the oldest open window if it holds events no emission has
 * reported yet (a partial window, `count < size`), so no event goes unreported; the group then starts
 * counting afresh. A count window has no event-time finality (docs/contract.md section 5): that
 * partial window is final, and the next events belong to new windows with their own bounds, so no
 * (window, revision) goes out with two bodies.
 */
export function countWindow<T, S, R>(
  spec: CountSpec,
  aggregator: WindowAggregator<T, S, R>,
  options: WindowOperatorOptions,
): WindowOperator<T, R> {
  const { size, step } = spec;

  const emit = (g: CountGroup<S>, key: string, b: CountBucket<S>, out: WindowEmitter<T, S, R>): void => {
    g.unreported = 0;
    // Readings that share a timestamp give consecutive windows the same bounds and size: the repeat
    // joins their messageId, else the second is kept out of the outbox as a conflict, its events lost
    // (test/integration/blackbox/windowKindsSigkill.test.ts). Checkpointed, so a replay repeats it.
    const repeat = g.prev !== undefined && g.prev[0] === b.first && g.prev[1] === b.last ? g.prev[2] + 1 : 0;
    g.prev = [b.first, b.last, repeat];
    out.window(key, g.group, b.first, b.last, b.count, b.acc, 0, size, repeat);
  };

  return groupedWindowOperator<T, S, R, CountGroup<S>>(
    {
      type: 'count',
      create: (group) => ({ group, wm: NO_TIME, seen: 0, at: 0, flushed: false, floor: NO_TIME, buckets: [], n: 0, unreported: 0, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: '' }),
      place(g, key, input, out) {
        const t = input.time;
        const bs = g.buckets;
        if (g.n % step === 0) bs.push({ count: 0, first: t, last: t, acc: aggregator.init() });
        // The oldest window first: if the aggregator rejects the item there, no window has taken it
        // and the input is dropped whole. (It then takes the same item in the others.)
        for (let i = 0; i < bs.length; i++) {
          const b = bs[i]!;
          if (!out.add(b.acc, input.item, t)) {
            if (i > 0) continue;
            if (g.n % step === 0) bs.pop(); // the window this event would have opened
            return out.drop(key, t, 'aggregate-error');
          }
          b.count++;
          if (t < b.first) b.first = t;
          if (t > b.last) b.last = t;
        }
        g.n++;
        g.unreported++;
        if (bs[0]!.count >= size) emit(g, key, bs.shift()!, out);
      },
      advance: () => undefined,
      flush(g, key, out) {
        const b = g.buckets[0];
        if (b !== undefined && g.unreported > 0) emit(g, key, b, out);
        g.buckets = [];
        g.n = 0;
        g.unreported = 0;
      },
      // A flushed count group has nothing left that an event could change: its partial window went out
      // and it counts afresh (windows are keyed by their first/last event times and size).
      settled: () => true,
      emittedUpTo: () => NO_TIME,
    },
    aggregator,
    options,
  );
}

/** A count window's spec: sizes in events. */
export interface CountSpec {
  readonly type: 'count';
  readonly size: number;
  readonly step: number;
}

/**
 * The count window type (windowKind.ts). `step` defaults to `size` and must not exceed it (a step past
 * the size would skip events silently). A count window has no duration: its default idle timeout is one
 * minute. Windows can share a start (their first event time), so the end and size join the messageId;
 * one item goes to several windows, so the engine does not reuse it.
 */
export const countKind = defineWindowKind<CountSpec>({
  type: 'count',
  schema: { required: ['size'], properties: { type: true, size: { type: 'integer', minimum: 1 }, step: { type: 'integer', minimum: 1 } }, additionalProperties: false },
  normalize(d) {
    const size = count(d.size, 'size', MAX_COUNT);
    if (typeof size === 'string') return fail(size);
    const step = d.step === undefined ? size : count(d.step, 'step', MAX_COUNT);
    if (typeof step === 'string') return fail(step);
    if (step > size) return fail('window.step must not be greater than window.size');
    if (Math.ceil(size / step) > MAX_WINDOWS_PER_EVENT) {
      return fail(`window.step must be at least window.size / ${MAX_WINDOWS_PER_EVENT} (an event would fall into too many windows)`);
    }
    return { ok: true, value: { type: 'count', size, step } };
  },
  operator: countWindow,
  defaultIdleTimeout: () => 60_000,
  id: 'start-end-size',
  retainsItems: true,
});
