import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { expect } from 'vitest';
import type { WindowType } from '../../../src/contracts/rule.js';
import type { WindowAggregator, WindowDrop, WindowInput, WindowResult } from '../../../src/contracts/window.js';

/** Count + sum of numeric items; throws on a negative item so tests can provoke `aggregate-error`. */
export interface CountSum {
  n: number;
  sum: number;
}
export const countSum: WindowAggregator<number, CountSum, CountSum> = {
  init: () => ({ n: 0, sum: 0 }),
  add(s, item) {
    if (item < 0) throw new Error(`negative item ${item}`);
    s.n++;
    s.sum += item;
  },
  result: (s) => ({ n: s.n, sum: s.sum }),
};

export function newTestScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** An input of group `key` at event time `time` with item `item`. */
export function ev(time: number, item = 1, key = 'k'): WindowInput<number> {
  return { time, key, group: { deviceId: key }, item };
}

/** The expected WindowResult; `n` is checked twice (count and the aggregator's own n). */
export function win(type: WindowType, start: number, end: number, n: number, sum: number, revision = 0, key = 'k', size?: number): WindowResult<CountSum> {
  return {
    kind: 'window',
    key,
    group: { deviceId: key },
    window: size === undefined ? { type, start, end } : { type, start, end, size },
    count: n,
    value: { n, sum },
    revision,
  };
}

export function drop(time: number, reason: WindowDrop['reason'] = 'too-late', key = 'k'): WindowDrop {
  return { kind: 'drop', reason, key, time };
}

/**
 * Wraps a scheduler to record what the operator schedules: every Subscription it got back and the
 * virtual times its work ran at, so a test can tell that the sweep timer was released.
 */
export function spyScheduler(inner: SchedulerLike): SchedulerLike & { subs: Subscription[]; runs: number[] } {
  const subs: Subscription[] = [];
  const runs: number[] = [];
  return {
    subs,
    runs,
    now: () => inner.now(),
    schedule<S>(work: (this: SchedulerAction<S>, state?: S) => void, delay?: number, state?: S): Subscription {
      const sub = inner.schedule<S>(
        function (this: SchedulerAction<S>, st?: S) {
          runs.push(inner.now());
          work.call(this, st);
        },
        delay,
        state,
      );
      subs.push(sub);
      return sub;
    },
  };
}
