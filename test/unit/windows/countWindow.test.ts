import { describe, expect, it } from 'vitest';
import type { WindowInput, WindowState } from '../../../src/contracts/window.js';
import { countWindow } from '../../../src/windows/countWindow.js';
import { summaryMessageId } from '../../../src/rules/outputMessage.js';
import { countSum, drop, ev, newTestScheduler, spyScheduler, win } from './windowTestKit.js';

const C = 'count' as const;
type TS = ReturnType<typeof newTestScheduler>;
const op = (ts: TS, size: number, step: number, o: { idleTimeout?: number; state?: WindowState } = {}) =>
  countWindow({ type: C, size, step }, countSum, { maxLateness: 0, idleTimeout: o.idleTimeout ?? 1000, scheduler: ts, state: o.state });
/** A count window result: bounds are the first and last event time, `size` the configured size. */
const cw = (start: number, end: number, n: number, sum: number, size: number, key = 'k') => win(C, start, end, n, sum, 0, key, size);

describe('countWindow', () => {
  it('empty and never', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<WindowInput<number>>('|').pipe(op(ts, 3, 3))).toBe('|');
      expectObservable(cold<WindowInput<number>>('-').pipe(op(ts, 3, 3))).toBe('-');
    });
  });

  it('one event: a partial window on completion', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a: ev(10, 5) }).pipe(op(ts, 3, 3))).toBe('-(x|)', { x: cw(10, 10, 1, 5, 3) });
    });
  });

  it('windows with the bounds of the window before them carry a repeat number, so their messageIds differ', () => {
    const ts = newTestScheduler();
    const rep = (w: ReturnType<typeof cw>, repeat: number) => ({ ...w, window: { ...w.window, repeat } });
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abcdefg|', { a: ev(10, 1), b: ev(10, 2), c: ev(10, 4), d: ev(10, 8), e: ev(10, 16), f: ev(10, 32), g: ev(20, 64) });
      expectObservable(src.pipe(op(ts, 2, 2))).toBe('-x-y-z-(w|)', { x: cw(10, 10, 2, 3, 2), y: rep(cw(10, 10, 2, 12, 2), 1), z: rep(cw(10, 10, 2, 48, 2), 2), w: cw(20, 20, 1, 64, 2) });
    });
    const ids = [0, 1, 2].map((repeat) => summaryMessageId('r', 'h', 'k', { type: C, start: 10, end: 10, size: 2, ...(repeat > 0 ? { repeat } : {}) }, 0));
    expect(new Set(ids).size).toBe(3);
    // A window that repeats nothing keeps the id it had before the repeat number existed.
    expect(ids[0]).toBe(summaryMessageId('r', 'h', 'k', { type: C, start: 10, end: 10, size: 2 }, 0));
  });

  it('size = step: consecutive windows of size events', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abcdef|', { a: ev(10, 1), b: ev(20, 2), c: ev(30, 4), d: ev(40, 8), e: ev(50, 16), f: ev(60, 32) });
      expectObservable(src.pipe(op(ts, 3, 3))).toBe('--x--y|', { x: cw(10, 30, 3, 7, 3), y: cw(40, 60, 3, 56, 3) });
    });
  });

  it('size 3, step 2: every 2nd event emits the last 3; the rest is flushed on completion', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abcdef|', { a: ev(10, 1), b: ev(20, 2), c: ev(30, 4), d: ev(40, 8), e: ev(50, 16), f: ev(60, 32) });
      expectObservable(src.pipe(op(ts, 3, 2))).toBe('--x-y-(z|)', { x: cw(10, 30, 3, 7, 3), y: cw(30, 50, 3, 28, 3), z: cw(50, 60, 2, 48, 3) });
    });
  });

  it('size 3, step 1: a window per event once 3 arrived', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abcd|', { a: ev(10, 1), b: ev(20, 2), c: ev(30, 4), d: ev(40, 8) });
      expectObservable(src.pipe(op(ts, 3, 1))).toBe('--xy|', { x: cw(10, 30, 3, 7, 3), y: cw(20, 40, 3, 14, 3) });
    });
  });

  it('arrival order counts, bounds are the smallest and largest event time; groups count apart', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('abcd|', { a: ev(30, 1, 'p'), b: ev(5, 2, 'q'), c: ev(10, 4, 'p'), d: ev(7, 8, 'q') });
      expectObservable(src.pipe(op(ts, 2, 2))).toBe('--xy|', { x: cw(10, 30, 2, 5, 2, 'p'), y: cw(5, 7, 2, 10, 2, 'q') });
    });
  });

  it('idle flush emits the partial window; an aggregator error does not count the input', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    const state: WindowState = { groups: new Map() };
    ts.run(({ cold, expectObservable }) => {
      const o = countWindow({ type: C, size: 3, step: 3 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy, state });
      expectObservable(cold('abc', { a: ev(10, -1), b: ev(20, 2), c: ev(30, 4) }).pipe(o)).toBe('e-----x', { e: drop(10, 'aggregate-error'), x: cw(20, 30, 2, 6, 3) });
    });
    // A count group has nothing left to change after its flush: deleted at once, no second timer.
    expect(state.groups.size).toBe(0);
    expect(spy.runs.at(-1)).toBe(6);
  });

  it('source error; early unsubscribe releases the timer', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a-#', { a: ev(1) }).pipe(op(ts, 3, 3))).toBe('--#');
      const o = countWindow({ type: C, size: 3, step: 3 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy });
      expectObservable(cold('a-', { a: ev(1) }).pipe(o), '^-!').toBe('--');
    });
    expect(spy.subs.every((s) => s.closed)).toBe(true);
    expect(spy.runs).toEqual([]);
  });

  it('state handed to a new instance keeps counting', () => {
    const ts = newTestScheduler();
    const state: WindowState = { groups: new Map() };
    ts.run(({ hot, expectObservable }) => {
      const src = hot('ab-c|', { a: ev(10, 1), b: ev(20, 2), c: ev(30, 4) });
      expectObservable(src.pipe(op(ts, 3, 3, { state })), '^-!').toBe('--');
      expectObservable(src.pipe(op(ts, 3, 3, { state })), '--^').toBe('---x|', { x: cw(10, 30, 3, 7, 3) });
    });
  });
});
