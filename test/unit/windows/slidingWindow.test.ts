import { describe, expect, it } from 'vitest';
import type { WindowInput, WindowState } from '../../../src/contracts/window.js';
import { slidingWindow } from '../../../src/windows/slidingWindow.js';
import { countSum, drop, ev, newTestScheduler, spyScheduler, win } from './windowTestKit.js';

const S = 'sliding' as const;
type TS = ReturnType<typeof newTestScheduler>;
/** size 10: the window at point p holds p-10 < t <= p and has bounds [p-9, p+1). */
const op = (ts: TS, maxLateness = 0, o: { idleTimeout?: number; state?: WindowState } = {}) =>
  slidingWindow({ type: S, size: 10 }, countSum, { maxLateness, idleTimeout: o.idleTimeout ?? 1000, scheduler: ts, state: o.state });

describe('slidingWindow', () => {
  it('empty and never', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<WindowInput<number>>('|').pipe(op(ts))).toBe('|');
      expectObservable(cold<WindowInput<number>>('-').pipe(op(ts))).toBe('-');
    });
  });

  it('one event: its enter window on completion (its leave window is empty, so not emitted)', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a: ev(5, 3) }).pipe(op(ts))).toBe('-(x|)', { x: win(S, -4, 6, 1, 3) });
    });
  });

  it('enter and leave: one emission per point where the content changes', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // points: 1 (a enters), 4 (b enters), 11 (a leaves), 14 (b leaves: empty), 20 (c enters), 30 (empty)
      const src = cold('a----b----c----|', { a: ev(1, 1), b: ev(4, 2), c: ev(20, 4) });
      expectObservable(src.pipe(op(ts))).toBe('-----x----(yz)-(w|)', {
        x: win(S, -8, 2, 1, 1),
        y: win(S, -5, 5, 2, 3),
        z: win(S, 2, 12, 1, 2),
        w: win(S, 11, 21, 1, 4),
      });
    });
  });

  it('out of order within lateness joins the windows; too late is dropped', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 5. b: wm 7 -> point 1 emitted (and forgotten: 1 + 1 + 5 <= 7).
      // c (t=3) is late: its enter point 3 is closed, not forgotten -> emitted at once.
      // d: wm 25 -> points 11 12 13 (22 is empty). e (t=2): 2 + 10 + 5 <= 25 -> too late.
      const src = cold('a----b----c----d----e----|', { a: ev(1, 1), b: ev(12, 2), c: ev(3, 4), d: ev(30, 8), e: ev(2, 16) });
      expectObservable(src.pipe(op(ts, 5))).toBe('-----x----y----(uvw)d----(z|)', {
        x: win(S, -8, 2, 1, 1),
        y: win(S, -6, 4, 2, 5),
        u: win(S, 2, 12, 1, 4),
        v: win(S, 3, 13, 2, 6),
        w: win(S, 4, 14, 1, 2),
        d: drop(2),
        z: win(S, 21, 31, 1, 8),
      });
    });
  });

  it('revision: a late event re-emits the kept points whose windows it joins', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 5. b: wm 3 -> point 1 emitted and kept. c (t=0): new point 0, point 1 revised.
      const src = cold('a----b----c----|', { a: ev(1, 1), b: ev(8, 2), c: ev(0, 4) });
      expectObservable(src.pipe(op(ts, 5))).toBe('-----x----(yz)-(uvw|)', {
        x: win(S, -8, 2, 1, 1),
        y: win(S, -9, 1, 1, 4),
        z: win(S, -8, 2, 2, 5, 1),
        u: win(S, -1, 9, 3, 7),
        v: win(S, 1, 11, 2, 3),
        w: win(S, 2, 12, 1, 2),
      });
    });
  });

  it('idle flush emits the pending enter and leave points provisionally; the group is kept', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    const state: WindowState = { groups: new Map() };
    ts.run(({ cold, expectObservable }) => {
      const o = slidingWindow({ type: S, size: 10 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy, state });
      expectObservable(cold('a-b', { a: ev(1, 1), b: ev(5, 2) }).pipe(o)).toBe('--x---(yz)', {
        x: win(S, -8, 2, 1, 1),
        y: win(S, -4, 6, 2, 3),
        z: win(S, 2, 12, 1, 2),
      });
    });
    expect(state.groups.size).toBe(1);
    expect(spy.runs.at(-1)).toBe(6);
  });

  it('aggregator that throws, source error, early unsubscribe', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a-b|', { a: ev(1, -1), b: ev(2, 2) }).pipe(op(ts))).toBe('e--(x|)', { e: drop(1, 'aggregate-error'), x: win(S, -7, 3, 1, 2) });
      expectObservable(cold('a-#', { a: ev(1) }).pipe(op(ts))).toBe('--#');
      const o = slidingWindow({ type: S, size: 10 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy });
      expectObservable(cold('a-', { a: ev(1) }).pipe(o), '^-!').toBe('--');
    });
    expect(spy.subs.every((s) => s.closed)).toBe(true);
    expect(spy.runs).toEqual([]);
  });

  it('state (JSON round trip) handed to a new instance keeps the buffered events', () => {
    const ts = newTestScheduler();
    const first: WindowState = { groups: new Map() };
    const second: WindowState = { groups: new Map() };
    ts.run(({ hot, expectObservable }) => {
      const src = hot('a----b----|', { a: ev(1, 1), b: ev(4, 2) });
      expectObservable(src.pipe(op(ts, 0, { state: first })), '^-!').toBe('--');
      ts.schedule(() => {
        for (const [k, v] of JSON.parse(JSON.stringify([...first.groups])) as [string, unknown][]) second.groups.set(k, v);
      }, 3);
      expectObservable(src.pipe(op(ts, 0, { state: second })), '----^').toBe('-----x----(yz|)', {
        x: win(S, -8, 2, 1, 1),
        y: win(S, -5, 5, 2, 3),
        z: win(S, 2, 12, 1, 2),
      });
    });
  });

  it('idle flush is provisional: a later event at the same point makes it go out again with revision + 1 when it closes', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // Idle at 4: the point 1 goes out (revision 0); its leave point 11 holds nothing. b (t=1 again) lands
      // in it; c (t=30) moves the watermark past it: revision 1 with both events.
      const src = cold('a---------b-c|', { a: ev(1), b: ev(1), c: ev(30) });
      const o = slidingWindow({ type: S, size: 10 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: ts });
      expectObservable(src.pipe(o)).toBe('----x-------y(z|)', { x: win(S, -8, 2, 1, 1), y: win(S, -8, 2, 2, 2, 1), z: win(S, 21, 31, 1, 1) });
    });
  });
});
