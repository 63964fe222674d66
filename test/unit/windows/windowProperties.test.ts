import fc from 'fast-check';
import { from } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { WindowAggregator, WindowEmission, WindowInput, WindowResult, WindowState } from '../../../src/contracts/window.js';
import { hoppingWindow } from '../../../src/windows/hoppingWindow.js';
import { sessionWindow } from '../../../src/windows/sessionWindow.js';
import { slidingWindow } from '../../../src/windows/slidingWindow.js';
import { tumblingWindow } from '../../../src/windows/tumblingWindow.js';
import { advanceAligned, alignedEmittedUpTo, alignedSettled, createAlignedGroup, flushAligned, placeInHops, type AlignedGroup } from '../../../src/windows/alignedWindows.js';
import { groupedWindowOperator, type WindowOperator } from '../../../src/windows/groupedWindowOperator.js';
import { snapshotWindow } from '../../../src/windows/snapshotWindow.js';
import { countSum, newTestScheduler, type CountSum } from './windowTestKit.js';

type Op = (l: number) => (s: import('rxjs').Observable<WindowInput<number>>) => import('rxjs').Observable<WindowEmission<CountSum>>;

function runAll(inputs: WindowInput<number>[], op: Op, maxLateness: number): WindowEmission<CountSum>[] {
  const out: WindowEmission<CountSum>[] = [];
  from(inputs).pipe(op(maxLateness)).subscribe((e) => out.push(e));
  return out;
}

/** Events of two groups, times jittered back by at most `jitter` from a rising clock. */
const events = (jitter: number) =>
  fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: jitter }), fc.integer({ min: 0, max: 9 }), fc.boolean()), { maxLength: 60 }).map((xs) => {
    let clock = 1000;
    return xs.map(([dt, back, item, p]) => {
      clock += dt;
      return { time: clock - back, key: p ? 'p' : 'q', group: { deviceId: p ? 'p' : 'q' }, item };
    });
  });

/** The last revision of each (key, start): what a consumer ends up with. */
function finals(out: WindowEmission<CountSum>[]): Map<string, WindowResult<CountSum>> {
  const m = new Map<string, WindowResult<CountSum>>();
  for (const e of out) {
    if (e.kind !== 'window') continue;
    const id = `${e.key}@${e.window.start}`;
    const prev = m.get(id);
    if (prev !== undefined) expect(e.revision).toBe(prev.revision + 1);
    else expect(e.revision).toBe(0);
    m.set(id, e);
  }
  return m;
}

describe('window operators against a brute-force model', () => {
  const ts = newTestScheduler();
  const opts = (maxLateness: number) => ({ maxLateness, idleTimeout: 1e9, scheduler: ts });

  it('tumbling: with disorder within maxLateness, the final revisions equal the exact per-window aggregates', () => {
    fc.assert(
      fc.property(events(7), (inputs) => {
        const out = runAll(inputs, (l) => tumblingWindow({ type: 'tumbling', size: 10 }, countSum, opts(l)), 7);
        expect(out.filter((e) => e.kind === 'drop')).toEqual([]);
        const got = finals(out);
        const want = new Map<string, { n: number; sum: number }>();
        for (const e of inputs) {
          const id = `${e.key}@${Math.floor(e.time / 10) * 10}`;
          const w = want.get(id) ?? { n: 0, sum: 0 };
          w.n++;
          w.sum += e.item;
          want.set(id, w);
        }
        expect(new Map([...got].map(([k, v]) => [k, v.value]))).toEqual(want);
      }),
    );
  });

  it('hopping: every event is counted in each of its windows exactly once (final revisions)', () => {
    fc.assert(
      fc.property(events(5), (inputs) => {
        const out = runAll(inputs, (l) => hoppingWindow({ type: 'hopping', size: 10, hop: 4 }, countSum, opts(l)), 5);
        const got = finals(out);
        for (const [id, r] of got) {
          const inside = inputs.filter((e) => `${e.key}@${r.window.start}` === id && e.time >= r.window.start && e.time < r.window.end);
          expect(r.count).toBe(inside.length);
          expect(r.window.start % 4).toBe(0);
          expect(r.window.end - r.window.start).toBe(10);
        }
        const windowsPerEvent = inputs.reduce((n, e) => n + [0, 1, 2, 3].filter((k) => { const s = Math.floor(e.time / 4) * 4 - 4 * k; return s <= e.time && e.time < s + 10; }).length, 0);
        expect([...got.values()].reduce((n, r) => n + r.count, 0)).toBe(windowsPerEvent);
      }),
    );
  });

  it('hopping: the in-window fast path emits exactly what the general placement does', () => {
    // The general placement alone (hoppingWindow minus its hot path), as the reference.
    const general = (size: number, hop: number) => (l: number) =>
      groupedWindowOperator<number, { n: number; sum: number }, CountSum, AlignedGroup<{ n: number; sum: number }>>(
        {
          type: 'hopping',
          create: createAlignedGroup,
          place: (g, key, input, out) => placeInHops(g, key, size, hop, input, l, out),
          advance: (g, key, _prev, out) => advanceAligned(g, key, l, out),
          flush: (g, key, out) => flushAligned(g, key, out),
          settled: alignedSettled,
          emittedUpTo: alignedEmittedUpTo,
        },
        countSum,
        opts(l),
      );
    fc.assert(
      fc.property(events(9), fc.constantFrom([10, 4], [12, 4], [10, 3], [5, 5], [9, 2]), fc.integer({ min: 0, max: 9 }), (inputs, [size, hop], lateness) => {
        const fast = runAll(inputs, (l) => hoppingWindow({ type: 'hopping', size: size!, hop: hop! }, countSum, opts(l)), lateness);
        expect(fast).toEqual(runAll(inputs, general(size!, hop!), lateness));
      }),
      { numRuns: 300 },
    );
  });

  it('sliding: every emitted window holds exactly the events within its bounds (in order, no lateness)', () => {
    fc.assert(
      fc.property(events(0), (inputs) => {
        const out = runAll(inputs, (l) => slidingWindow({ type: 'sliding', size: 10 }, countSum, opts(l)), 0);
        for (const e of out) {
          if (e.kind !== 'window') throw new Error('unexpected drop');
          const inside = inputs.filter((x) => x.key === e.key && x.time >= e.window.start && x.time < e.window.end);
          expect(e.count).toBe(inside.length);
          expect(e.value.sum).toBe(inside.reduce((s, x) => s + x.item, 0));
        }
        // every event time is an emission point (its enter window ends at t + 1)
        for (const x of inputs) expect(out.some((e) => e.kind === 'window' && e.key === x.key && e.window.end === x.time + 1)).toBe(true);
      }),
    );
  });

  it('session: in-order events give the sessions of the definition (gap, maxSize), each once', () => {
    fc.assert(
      fc.property(events(0), (inputs) => {
        const out = runAll(inputs, (l) => sessionWindow({ type: 'session', gap: 4, maxSize: 9 }, countSum, opts(l)), 0);
        const want: { key: string; start: number; end: number; n: number; sum: number }[] = [];
        for (const key of ['p', 'q']) {
          let cur: (typeof want)[number] | null = null;
          let last = 0;
          for (const e of inputs.filter((x) => x.key === key)) {
            if (cur === null || e.time >= Math.min(last + 4, cur.start + 9)) {
              if (cur !== null) want.push(cur);
              cur = { key, start: e.time, end: 0, n: 0, sum: 0 };
            }
            last = e.time;
            cur.n++;
            cur.sum += e.item;
            cur.end = Math.min(last + 4, cur.start + 9);
          }
          if (cur !== null) want.push(cur);
        }
        const got = out.map((e) => {
          if (e.kind !== 'window') throw new Error('unexpected drop');
          expect(e.revision).toBe(0);
          return { key: e.key, start: e.window.start, end: e.window.end, n: e.count, sum: e.value.sum };
        });
        const order = (a: { key: string; start: number }, b: { key: string; start: number }) => a.key.localeCompare(b.key) || a.start - b.start;
        expect(got.sort(order)).toEqual(want.sort(order));
      }),
    );
  });
});

/** countSum whose states can be emptied in place, so the aligned kinds reuse a purged window's state too. */
const reusable: WindowAggregator<number, CountSum, CountSum> = {
  ...countSum,
  reset: (s) => {
    s.n = 0;
    s.sum = 0;
    return true;
  },
};

/**
 * Feeds `inputs` one at a time through the operator's direct core (as the engine does), recording which
 * input each emission came from (`inputs.length`: the completion flush). At `restartAt` the state goes
 * through JSON into a new instance, as after a crash restore: no spare window, no known array room.
 */
function runIndexed(inputs: WindowInput<number>[], make: (state: WindowState) => WindowOperator<number, CountSum>, restartAt = -1): Array<[number, WindowEmission<CountSum>]> {
  const out: Array<[number, WindowEmission<CountSum>]> = [];
  let at = 0;
  const sink = { emit: (e: WindowEmission<CountSum>) => void out.push([at, e]), closed: () => false };
  let state: WindowState = { groups: new Map() };
  let core = make(state).direct(sink);
  for (; at < inputs.length; at++) {
    if (at === restartAt) {
      core.stop();
      state = { groups: new Map(JSON.parse(JSON.stringify([...state.groups])) as Array<[string, unknown]>) };
      core = make(state).direct(sink);
    }
    core.next(inputs[at]!);
  }
  core.complete();
  core.stop();
  return out;
}

describe('aligned windows reuse purged windows without carrying values over', () => {
  const ts = newTestScheduler();
  const opts = (maxLateness: number, state: WindowState) => ({ maxLateness, idleTimeout: 1e9, scheduler: ts, state });
  const kinds: Array<[string, (agg: WindowAggregator<number, CountSum, CountSum>, l: number) => (state: WindowState) => WindowOperator<number, CountSum>]> = [
    ['tumbling', (agg, l) => (st) => tumblingWindow({ type: 'tumbling', size: 10 }, agg, opts(l, st))],
    ['hopping', (agg, l) => (st) => hoppingWindow({ type: 'hopping', size: 10, hop: 4 }, agg, opts(l, st))],
    ['snapshot', (agg, l) => (st) => snapshotWindow({ type: 'snapshot' }, agg, opts(l, st))],
  ];

  for (const [name, make] of kinds) {
    it(`${name}: every emission, revisions included, holds exactly the events placed in its bounds so far`, () => {
      fc.assert(
        fc.property(events(9), fc.integer({ min: 0, max: 9 }), fc.nat(), (inputs, lateness, restart) => {
          const got = runIndexed(inputs, make(reusable, lateness), inputs.length === 0 ? -1 : restart % inputs.length);
          const dropped = new Set(got.filter(([, e]) => e.kind === 'drop').map(([i]) => i));
          for (const [i, e] of got) {
            if (e.kind !== 'window') continue;
            const inside = inputs.filter((x, j) => j <= i && !dropped.has(j) && x.key === e.key && x.time >= e.window.start && x.time < e.window.end);
            expect(e.count).toBe(inside.length);
            expect(e.value).toEqual({ n: inside.length, sum: inside.reduce((a, x) => a + x.item, 0) });
          }
          // Emptied in place or made fresh by init: the same emissions.
          expect(got).toEqual(runIndexed(inputs, make(countSum, lateness)));
        }),
        { numRuns: 300 },
      );
    });
  }

  it('a window kept for a late revision, then purged, holds the next window with only its own events', () => {
    const state: WindowState = { groups: new Map() };
    const op = tumblingWindow({ type: 'tumbling', size: 10 }, reusable, opts(5, state));
    const ins: Array<[number, number]> = [[1, 1], [3, 2], [12, 4], [16, 8], [5, 16], [21, 32], [26, 64], [31, 128], [36, 256], [27, 512], [45, 1024]];
    const got = runIndexed(ins.map(([t, item]) => ({ time: t, key: 'k', group: { deviceId: 'k' }, item })), () => op);
    const w = (start: number, n: number, sum: number, revision: number) => ({ kind: 'window', key: 'k', group: { deviceId: 'k' }, window: { type: 'tumbling', start, end: start + 10 }, count: n, value: { n, sum }, revision });
    // Each open falls on the event that expires the oldest window, which then holds the new one:
    // [0, 10) (revised late) holds [20, 30) from 21 on, [10, 20) holds [30, 40), [20, 30) holds [40, 50).
    expect(got.map(([, e]) => e)).toEqual([w(0, 2, 3, 0), w(0, 3, 19, 1), w(10, 2, 12, 0), w(20, 2, 96, 0), w(20, 3, 608, 1), w(30, 2, 384, 0), w(40, 1, 1024, 0)]);
  });

  it('the window [0, 10), revised late, is the very object that holds [20, 30) once it expires', () => {
    const state: WindowState = { groups: new Map() };
    const core = tumblingWindow({ type: 'tumbling', size: 10 }, reusable, opts(5, state)).direct({ emit: () => undefined, closed: () => false });
    const feed = (time: number) => core.next({ time, key: 'k', group: { deviceId: 'k' }, item: 1 });
    const g = () => state.groups.get('k') as AlignedGroup<CountSum>;
    feed(1);
    const first = g().wins[0]!;
    const firstAcc = first.acc;
    for (const t of [16, 5]) feed(t);
    const array = g().wins;
    expect(first).toMatchObject({ start: 0, count: 2, revision: 1 });
    // 21 raises the watermark to 16: [0, 10) expires (10 + 5 <= 16) as [20, 30) opens.
    feed(21);
    expect(g().wins.map((x) => x.start)).toEqual([10, 20]);
    expect(g().wins[1]).toBe(first);
    expect(first.acc).toBe(firstAcc);
    expect(first).toEqual({ start: 20, end: 30, count: 1, acc: { n: 1, sum: 1 }, revision: -1, dirty: false });
    // The window array itself was shifted in place, not copied.
    expect(g().wins).toBe(array);
    core.stop();
  });
});
