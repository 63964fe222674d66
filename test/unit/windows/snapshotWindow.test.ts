import { describe, expect, it } from 'vitest';
import type { WindowInput } from '../../../src/contracts/window.js';
import { snapshotWindow } from '../../../src/windows/snapshotWindow.js';
import { countSum, drop, ev, newTestScheduler, spyScheduler, win } from './windowTestKit.js';

const P = 'snapshot' as const;
type TS = ReturnType<typeof newTestScheduler>;
const op = (ts: TS, maxLateness = 0, idleTimeout = 1000) => snapshotWindow({ type: P }, countSum, { maxLateness, idleTimeout, scheduler: ts });

describe('snapshotWindow', () => {
  it('empty and never', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<WindowInput<number>>('|').pipe(op(ts))).toBe('|');
      expectObservable(cold<WindowInput<number>>('-').pipe(op(ts))).toBe('-');
    });
  });

  it('one and many: events with the same timestamp form one window [t, t+1)', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a: ev(5, 2) }).pipe(op(ts))).toBe('-(x|)', { x: win(P, 5, 6, 1, 2) });
      const src = cold('a-b-c-d|', { a: ev(5, 1), b: ev(5, 2), c: ev(6, 4), d: ev(9, 8) });
      expectObservable(src.pipe(op(ts))).toBe('----x-y(z|)', { x: win(P, 5, 6, 2, 3), y: win(P, 6, 7, 1, 4), z: win(P, 9, 10, 1, 8) });
    });
  });

  it('out of order within lateness, revision, too late', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 2. b: wm 6 -> [5,6) emitted, kept until wm >= 8. c (t=5) revises it; d: wm 8 forgets it
      // (and leaves [8,9) open); e is too late.
      const src = cold('a-b-c-d-e|', { a: ev(5, 1), b: ev(8, 2), c: ev(5, 4), d: ev(10, 8), e: ev(5, 16) });
      expectObservable(src.pipe(op(ts, 2))).toBe('--x-y---w(zu|)', {
        x: win(P, 5, 6, 1, 1),
        y: win(P, 5, 6, 2, 5, 1),
        z: win(P, 8, 9, 1, 2),
        w: drop(5),
        u: win(P, 10, 11, 1, 8),
      });
    });
  });

  it('idle flush, aggregator error, early unsubscribe', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      const o = snapshotWindow({ type: P }, countSum, { maxLateness: 0, idleTimeout: 3, scheduler: spy });
      expectObservable(cold('a-b', { a: ev(5, 1), b: ev(5, -2) }).pipe(o)).toBe('--e--x', { e: drop(5, 'aggregate-error'), x: win(P, 5, 6, 1, 1) });
      expectObservable(cold('a-', { a: ev(5) }).pipe(op(ts, 0, 3)), '^!').toBe('-');
    });
    // The flush is provisional: the group keeps its window, and no timer runs after it.
    expect(spy.runs.at(-1)).toBe(5);
  });
});
