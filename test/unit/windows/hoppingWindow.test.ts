import { describe, expect, it } from 'vitest';
import type { WindowInput, WindowState } from '../../../src/contracts/window.js';
import { hoppingWindow } from '../../../src/windows/hoppingWindow.js';
import { countSum, drop, ev, newTestScheduler, spyScheduler, win } from './windowTestKit.js';

const H = 'hopping' as const;
type TS = ReturnType<typeof newTestScheduler>;

/** size 10, hop 5 unless told: windows [0,10) [5,15) [10,20) ... */
function op(ts: TS, maxLateness = 0, o: { size?: number; hop?: number; idleTimeout?: number; state?: WindowState } = {}) {
  return hoppingWindow({ type: H, size: o.size ?? 10, hop: o.hop ?? 5 }, countSum, { maxLateness, idleTimeout: o.idleTimeout ?? 1000, scheduler: ts, state: o.state });
}

describe('hoppingWindow', () => {
  it('empty and never', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold<WindowInput<number>>('|').pipe(op(ts))).toBe('|');
      expectObservable(cold<WindowInput<number>>('-').pipe(op(ts))).toBe('-');
    });
  });

  it('one event lands in size/hop overlapping windows', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a: ev(7, 3) }).pipe(op(ts))).toBe('-(xy|)', { x: win(H, 0, 10, 1, 3), y: win(H, 5, 15, 1, 3) });
    });
  });

  it('overlap counts: each event counted in every window holding it', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // t=1 in [-5,5) [0,10); t=6 in [0,10) [5,15); t=12 in [5,15) [10,20); t=30 closes all of those.
      // (A group "(xy)" spans 4 frames in run mode, hence the spacing.)
      const src = cold('a----b----c----d----|', { a: ev(1, 1), b: ev(6, 2), c: ev(12, 4), d: ev(30, 8) });
      expectObservable(src.pipe(op(ts))).toBe('-----x----y----(zw)-(uv|)', {
        x: win(H, -5, 5, 1, 1),
        y: win(H, 0, 10, 2, 3),
        z: win(H, 5, 15, 2, 6),
        w: win(H, 10, 20, 1, 4),
        u: win(H, 25, 35, 1, 8),
        v: win(H, 30, 40, 1, 8),
      });
    });
  });

  it('a hop that does not divide the size: windows still start at multiples of hop', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // size 10, hop 4: t=9 is in [0,10) [4,14) [8,18)
      expectObservable(cold('a|', { a: ev(9) }).pipe(op(ts, 0, { hop: 4 }))).toBe('-(xyz|)', {
        x: win(H, 0, 10, 1, 1),
        y: win(H, 4, 14, 1, 1),
        z: win(H, 8, 18, 1, 1),
      });
    });
  });

  it('revision and too-late are per window: an event is too late only when all its windows are forgotten', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 3. b: wm 13 -> [-5,5) and [0,10) emitted and, as 13 >= 10 + 3, forgotten at once;
      // c (t=8) is in [0,10) (forgotten) and [5,15) (not yet open): it opens [5,15) only.
      // d: wm 17 -> [5,15) emitted. e (t=4) is in [-5,5) and [0,10): both forgotten, so too late.
      const src = cold('a----b----c----d----e----|', { a: ev(1, 1), b: ev(16, 2), c: ev(8, 4), d: ev(20, 8), e: ev(4, 16) });
      expectObservable(src.pipe(op(ts, 3))).toBe('-----(xy)------z----w----(uvs|)', {
        x: win(H, -5, 5, 1, 1),
        y: win(H, 0, 10, 1, 1),
        z: win(H, 5, 15, 1, 4),
        w: drop(4),
        u: win(H, 10, 20, 1, 2),
        v: win(H, 15, 25, 2, 10),
        s: win(H, 20, 30, 1, 8),
      });
    });
  });

  it('a late event within lateness re-emits every kept window it falls into', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 10: b -> wm 10: [-5,5) and [0,10) emitted, kept until wm >= 15 / 20.
      const src = cold('a----b----c----|', { a: ev(1, 1), b: ev(20, 2), c: ev(3, 4) });
      expectObservable(src.pipe(op(ts, 10))).toBe('-----(xy)-(uv)-(wz|)', {
        x: win(H, -5, 5, 1, 1),
        y: win(H, 0, 10, 1, 1),
        u: win(H, -5, 5, 2, 5, 1),
        v: win(H, 0, 10, 2, 5, 1),
        w: win(H, 15, 25, 1, 2),
        z: win(H, 20, 30, 1, 2),
      });
    });
  });

  it('idle flush, then the timer stops; aggregator errors are one drop per input', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a-b', { a: ev(1, 1), b: ev(2, -1) });
      const o = hoppingWindow({ type: H, size: 10, hop: 5 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy });
      expectObservable(src.pipe(o)).toBe('--d---(xy)', { d: drop(2, 'aggregate-error'), x: win(H, -5, 5, 1, 1), y: win(H, 0, 10, 1, 1) });
    });
    // The flush is provisional: the group keeps its windows, and no timer runs after it.
    expect(spy.runs.at(-1)).toBe(6);
  });

  it('source error propagates; early unsubscribe releases the timer', () => {
    const ts = newTestScheduler();
    const spy = spyScheduler(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('a-#', { a: ev(1) }).pipe(op(ts))).toBe('--#');
      const o = hoppingWindow({ type: H, size: 10, hop: 5 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: spy });
      expectObservable(cold('a-', { a: ev(1) }).pipe(o), '^-!').toBe('--');
    });
    expect(spy.subs.every((s) => s.closed)).toBe(true);
    expect(spy.runs).toEqual([]);
  });

  it('state handed to a new instance continues the windows', () => {
    const ts = newTestScheduler();
    const state: WindowState = { groups: new Map() };
    ts.run(({ hot, expectObservable }) => {
      const src = hot('a----b----c----|', { a: ev(1, 1), b: ev(6, 2), c: ev(30, 4) });
      expectObservable(src.pipe(op(ts, 0, { state })), '^-!').toBe('--');
      // x holds a, which only the first instance saw
      expectObservable(src.pipe(op(ts, 0, { state })), '---^').toBe('-----x----(yz)-(uv|)', {
        x: win(H, -5, 5, 1, 1),
        y: win(H, 0, 10, 2, 3),
        z: win(H, 5, 15, 1, 2),
        u: win(H, 25, 35, 1, 4),
        v: win(H, 30, 40, 1, 4),
      });
    });
  });

  it('idle flush is provisional: windows go out again with revision + 1 once a later event closes them', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // Idle at 4: [-5,5) and [0,10) go out (revision 0). b (t=3) lands in both; c (t=30) closes both: revision 1.
      const src = cold('a---------b-c', { a: ev(1), b: ev(3), c: ev(30) });
      const o = hoppingWindow({ type: H, size: 10, hop: 5 }, countSum, { maxLateness: 0, idleTimeout: 4, scheduler: ts });
      expectObservable(src.pipe(o)).toBe('----(xy)----(vw)(pq)', {
        x: win(H, -5, 5, 1, 1), y: win(H, 0, 10, 1, 1),
        v: win(H, -5, 5, 2, 2, 1), w: win(H, 0, 10, 2, 2, 1),
        p: win(H, 25, 35, 1, 1), q: win(H, 30, 40, 1, 1),
      });
    });
  });
});
