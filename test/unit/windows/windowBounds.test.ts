import { describe, expect, it } from 'vitest';
import { tumblingWindow } from '../../../src/windows/tumblingWindow.js';
import { hoppingWindow } from '../../../src/windows/hoppingWindow.js';
import { normalizeWindow } from '../../../src/windows/windowSpec.js';
import { countSum, drop, ev, newTestScheduler, win } from './windowTestKit.js';

/*
 * End-inclusive windows (`window.bounds: "(]"`, src/windows/windowBounds.ts), checked against Azure
 * Stream Analytics' documented rule, not against eddy's code: "tumbling windows are inclusive in the
 * end of the window and exclusive in the beginning - for example 12:00 PM - 1:00 PM window will
 * include events that happened exactly at 1:00 PM, but will not include events that happened at
 * 12:00PM (these events will be part of 11:00 AM - 12:00 PM window)"
 * (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics); hopping
 * windows the same (hopping-window-azure-stream-analytics). Offsets move the bounds.
 */
const T = 'tumbling' as const;
const H = 'hopping' as const;

describe('end-inclusive tumbling windows (start, end]', () => {
  it('an event exactly on a bound belongs to the window that ends there', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // Events at 0, 10, 11, 20: (-10, 0] holds 0; (0, 10] holds 10; (10, 20] holds 11 and 20.
      const src = cold('a-b-c-d|', { a: ev(0, 1), b: ev(10, 2), c: ev(11, 4), d: ev(20, 8) });
      const op = tumblingWindow({ type: T, size: 10, bounds: '(]' }, countSum, { maxLateness: 0, idleTimeout: 1000, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('--x-y--(z|)', { x: win(T, -10, 0, 1, 1), y: win(T, 0, 10, 1, 2), z: win(T, 10, 20, 2, 12) });
    });
  });

  it('the window stays open while an event at its end is on time, closes after, then corrects or drops per maxLateness', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 0. b at 10 leaves (0, 10] open (a second event at 10 is on time: c joins it); d at
      // 11 closes it; e at 10 after that is too late (the watermark 11 is past end 10 + 0).
      const src = cold('a-b-c-d-e-f|', { a: ev(5, 1), b: ev(10, 2), c: ev(10, 4), d: ev(11, 8), e: ev(10, 16), f: ev(30, 32) });
      const op = tumblingWindow({ type: T, size: 10, bounds: '(]' }, countSum, { maxLateness: 0, idleTimeout: 1000, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('------x-y-z(w|)', { x: win(T, 0, 10, 3, 7), y: drop(10), z: win(T, 10, 20, 1, 8), w: win(T, 20, 30, 1, 32) });
    });
  });

  it('within maxLateness an event on the end of an emitted window is a revision of that window', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // maxLateness 3: c at 14 moves the watermark to 11, closing (0, 10]; d at 10 corrects it (revision 1).
      const src = cold('a-c-d-e|', { a: ev(5, 1), c: ev(14, 2), d: ev(10, 4), e: ev(40, 8) });
      const op = tumblingWindow({ type: T, size: 10, bounds: '(]' }, countSum, { maxLateness: 3, idleTimeout: 1000, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('--x-y-z(w|)', { x: win(T, 0, 10, 1, 1), y: win(T, 0, 10, 2, 5, 1), z: win(T, 10, 20, 1, 2), w: win(T, 30, 40, 1, 8) });
    });
  });

  it('offset moves the bounds: Offset(-1) gives (k*size - 1, (k+1)*size - 1], i.e. [k*size, (k+1)*size) reported one ms earlier', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      const src = cold('a-b-c|', { a: ev(0, 1), b: ev(9, 2), c: ev(10, 4) });
      const op = tumblingWindow({ type: T, size: 10, bounds: '(]', offset: -1 }, countSum, { maxLateness: 0, idleTimeout: 1000, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('----x(y|)', { x: win(T, -1, 9, 2, 3), y: win(T, 9, 19, 1, 4) });
    });
  });
});

describe('end-inclusive hopping windows (k*hop, k*hop + size]', () => {
  it('an event on a hop bound belongs to the windows that end there or hold it inside, not the one starting there', () => {
    const ts = newTestScheduler();
    ts.run(({ cold, expectObservable }) => {
      // size 10, hop 5. t=10 is in (0, 10] and (5, 15], not (10, 20]. t=15 is in (5, 15] and (10, 20].
      const src = cold('a-b-c------|', { a: ev(10, 1), b: ev(15, 2), c: ev(40, 4) });
      const op = hoppingWindow({ type: H, size: 10, hop: 5, bounds: '(]' }, countSum, { maxLateness: 0, idleTimeout: 1000, scheduler: ts });
      expectObservable(src.pipe(op)).toBe('--x-(yz)---(uv|)', {
        x: win(H, 0, 10, 1, 1),
        y: win(H, 5, 15, 2, 3),
        z: win(H, 10, 20, 1, 2),
        u: win(H, 30, 40, 1, 4),
        v: win(H, 35, 45, 1, 4),
      });
    });
  });
});

describe('normalizeWindow: bounds and offset', () => {
  it('keeps the default shape when absent, and validates the values', () => {
    expect(normalizeWindow({ type: 'tumbling', size: '30s' })).toEqual({ ok: true, value: { type: 'tumbling', size: 30_000 } });
    expect(normalizeWindow({ type: 'tumbling', size: '30s', bounds: '[)', offset: 0 })).toEqual({ ok: true, value: { type: 'tumbling', size: 30_000 } });
    expect(normalizeWindow({ type: 'hopping', size: '1m', hop: '10s', bounds: '(]', offset: -1 })).toEqual({ ok: true, value: { type: 'hopping', size: 60_000, hop: 10_000, bounds: '(]', offset: -1 } });
    expect(normalizeWindow({ type: 'tumbling', size: 10, offset: 10 })).toEqual({ ok: false, error: 'window.offset must be between -window.size and window.size (exclusive)' });
    expect(normalizeWindow({ type: 'hopping', size: 10, hop: 5, offset: -5 })).toEqual({ ok: false, error: 'window.offset must be between -window.hop and window.hop (exclusive)' });
    expect(normalizeWindow({ type: 'tumbling', size: 10, bounds: ']' as never })).toMatchObject({ ok: false });
    expect(normalizeWindow({ type: 'tumbling', size: 10, offset: 0.5 })).toMatchObject({ ok: false });
  });
});
