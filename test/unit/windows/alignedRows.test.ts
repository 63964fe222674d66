import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SchedulerLike } from 'rxjs';
import type { EvalContext } from '../../../src/contracts/event.js';
import type { WindowEmission, WindowState } from '../../../src/contracts/window.js';
import { compileSelect } from '../../../src/aggregate/compileSelect.js';
import { createWindowOperator, windowKind, type NormalizedWindow } from '../../../src/windows/windowRegistry.js';
import type { WindowCore, WindowGroupRef } from '../../../src/windows/groupedWindowOperator.js';
import type { AlignedGroup } from '../../../src/windows/alignedWindows.js';
import type { AlignedRows } from '../../../src/windows/alignedRows.js';
import { hotWindowStep, type HotWindowStep } from '../../../src/rules/hotWindowStep.js';

/**
 * A tumbling or hopping rule whose groups keep their newest window in rows (src/windows/alignedRows.ts, driven by
 * the rule's own step, src/rules/hotWindowStep.ts) against the window operator's general path on
 * objects, which the window marble tests and test/oracle check against docs/contract.md section 5:
 * the same random events (in order, late, jumps of minutes, other keys) through both, with the idle
 * sweep running on processing time (provisional revisions, dirty windows re-emitted), a small
 * `maxGroups` (evictions, tombstones, evicted drops), flushes, and a checkpoint taken and restored
 * into a new operator midway. Emissions must be the same, in the same order, at the same events, and
 * every checkpoint the same JSON text (the byte-compatibility of checkpoints written from rows).
 */
const SELECT = { a: 'avg(x)', lo: 'min(x)', hi: 'max(y)', sd: 'stdev(y)', f: 'first(x)', l: 'last(y)', n: 'count()', s: 'sum(x * 2)' };

interface Ev {
  readonly key: number;
  readonly dt: number;
  /** Processing time that passes before the event (ms): sometimes longer than the idle timeout. */
  readonly wait: number;
  readonly x: number;
  readonly y: number;
  /** 0: nothing; 1: complete() (flush every group); 2: checkpoint and restore into a new operator. */
  readonly act: number;
}

/** A scheduler the test drives: actions run when `advance` passes their time (the operator's idle sweep). */
class Clock {
  now = 1_000;
  private actions: Array<{ at: number; fn: () => void; live: boolean }> = [];
  readonly scheduler = {
    now: () => this.now,
    schedule: (fn: () => void, delay = 0) => {
      const a = { at: this.now + delay, fn, live: true };
      this.actions.push(a);
      return { unsubscribe: () => void (a.live = false), closed: false };
    },
  } as unknown as SchedulerLike;

  advance(to: number): void {
    for (;;) {
      const due = this.actions.filter((a) => a.live && a.at <= to).sort((p, q) => p.at - q.at)[0];
      if (due === undefined) break;
      due.live = false;
      this.now = due.at;
      due.fn();
    }
    this.actions = this.actions.filter((a) => a.live);
    this.now = to;
  }
}

type Window = { type: 'tumbling'; size: number; bounds?: '(]'; offset?: number } | { type: 'hopping'; size: number; hop: number; bounds?: '(]'; offset?: number };

function run(window: Window, maxLateness: number, events: readonly Ev[], rows: boolean, maxGroups = 3): { out: string[]; checkpoints: string[]; taken: number; shrank: number } {
  const compiled = compileSelect(SELECT);
  if (!compiled.ok) throw new Error('select');
  const select = compiled.value;
  const clock = new Clock();
  const out: string[] = [];
  const checkpoints: string[] = [];
  let state: WindowState = { groups: new Map(), tombstones: new Map() };
  const item: number[] = new Array<number>(select.argFns.length);
  let core!: WindowCore<readonly number[]>;
  const hot: { step: HotWindowStep | null; rows: AlignedRows | null } = { step: null, rows: null };
  let shrank = 0;
  const start = (): void => {
    core = createWindowOperator<readonly number[], unknown, unknown>(window, select.aggregator, { maxLateness, idleTimeout: 30_000, scheduler: clock.scheduler, state, maxGroups }).direct({
      emit: (em: WindowEmission<unknown>) => out.push(JSON.stringify(em)),
      closed: () => false,
    });
    if (!rows) return;
    const hotRows = windowKind(window.type)!.hotRows!(window as NormalizedWindow, maxLateness, select.packedLength);
    if (hotRows === null) throw new Error('no rows for a covered rule');
    core.attachRows((g) => hotRows.rows.unrow(g as unknown as AlignedGroup<unknown>), () => hotRows.rows.trim());
    hot.rows = hotRows.rows;
    hot.step = hotWindowStep(window, maxLateness, select, core, item, undefined, null, hotRows);
    if (hot.step === null) throw new Error('no step for a covered rule');
  };
  const checkpoint = (): string => {
    core.settleRows();
    return JSON.stringify([[...state.groups], [...state.tombstones!], state.stats ?? null]);
  };
  start();
  let t = 1_700_000_000_000;
  let taken = 0;
  for (const e of events) {
    t += e.dt;
    const size = hot.rows?.data.length ?? 0;
    clock.advance(clock.now + e.wait);
    out.push(`@${clock.now}`);
    const key = `k${e.key}`;
    const ev: EvalContext = { body: { x: e.x, y: e.y }, deviceId: key, moduleId: 'm' };
    const ref = state.groups.get(key) as WindowGroupRef | undefined;
    const step = hot.step;
    if (step !== null && ref !== undefined && step(ref, ev, t, key, clock.now, [])) taken++;
    else if (step !== null && ref === undefined) {
      // As the engine's rule step does (src/rules/engine.ts): a new group, then the step, else the general path.
      const input = { time: t, key, group: { deviceId: key }, item, seen: clock.now };
      const g = core.groupFor(input);
      if (g !== null && step(g, ev, t, key, clock.now, [])) taken++;
      else if (g !== null) core.feed(g, input);
    } else {
      if (step === null || ref === undefined) select.evaluateArgs(ev, item);
      core.next({ time: t, key, group: { deviceId: key }, item, seen: clock.now });
    }
    if ((hot.rows?.data.length ?? 0) < size) shrank++;
    if (e.act === 1) core.complete();
    if (e.act === 2) {
      // A crash restore: the state as the checkpoint has it, into a new operator (and new rows).
      const saved = checkpoint();
      checkpoints.push(saved);
      core.stop();
      const [groups, tombstones, stats] = JSON.parse(saved) as [Array<[string, unknown]>, Array<[string, { wm: number; floor: number }]>, { evictedGroups: number } | null];
      state = { groups: new Map(groups), tombstones: new Map(tombstones), ...(stats === null ? {} : { stats }) };
      start();
    }
  }
  checkpoints.push(checkpoint());
  core.complete();
  checkpoints.push(checkpoint());
  return { out, checkpoints, taken, shrank };
}

const events = fc.array(
  fc.record({
    // Mostly two keys; the others push groups out (maxGroups 3).
    key: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) }),
    // Mostly forward by a few seconds, sometimes late (back up to a minute) or a jump of minutes, in
    // quarter seconds so that watermarks meet window ends exactly; rarely by any millisecond count.
    dt: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 12 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: -240, max: 0 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: 240, max: 1_600 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3_000 }) }),
    wait: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 2_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 25_000, max: 70_000 }) }),
    x: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    y: fc.integer({ min: -50, max: 150 }),
    act: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) }),
  }),
  { minLength: 20, maxLength: 300, size: 'medium' },
);

describe('a tumbling or hopping rule on rows (alignedRows.ts)', () => {
  const windows: Window[] = [
    { type: 'tumbling', size: 10_000 },
    { type: 'tumbling', size: 15_000, bounds: '(]', offset: 2_000 },
    { type: 'hopping', size: 60_000, hop: 20_000 },
    { type: 'hopping', size: 30_000, hop: 10_000, bounds: '(]', offset: 3_000 },
  ];
  for (const window of windows) {
    it(`gives the object path's emissions and checkpoints: ${JSON.stringify(window)}`, () => {
      let taken = 0;
      let all = 0;
      let revisions = 0;
      let evictions = 0;
      let restores = 0;
      fc.assert(
        fc.property(events, fc.constantFrom(0, 5_000, 30_000), (evs, lateness) => {
          const objects = run(window, lateness, evs, false);
          const rows = run(window, lateness, evs, true);
          taken += rows.taken;
          all += evs.length;
          revisions += objects.out.filter((o) => o.includes('"revision":1')).length;
          evictions += objects.out.filter((o) => o.includes('"evicted"')).length;
          restores += evs.filter((e) => e.act === 2).length;
          expect(rows.out).toEqual(objects.out);
          expect(rows.checkpoints).toEqual(objects.checkpoints);
        }),
        { numRuns: 200 },
      );
      // Not vacuous: the rows took a share of the events, and the rarer paths were reached.
      expect(taken).toBeGreaterThan(all * 0.15);
      expect(revisions).toBeGreaterThan(0);
      expect(evictions).toBeGreaterThan(0);
      expect(restores).toBeGreaterThan(20);
    });
  }

  it('gives the same with hundreds of groups, whose rows shrink when they go idle', () => {
    // Devices in turn, a pause longer than the idle timeout now and then: the sweep puts the idle
    // groups' windows back into objects and the rows array shrinks (renumbering the live rows).
    const many = fc.array(
      fc.record({
        key: fc.integer({ min: 0, max: 299 }),
        dt: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 10 }) }, { weight: 1, arbitrary: fc.integer({ min: -4_000, max: 20_000 }) }),
        wait: fc.oneof({ weight: 300, arbitrary: fc.integer({ min: 0, max: 100 }) }, { weight: 1, arbitrary: fc.integer({ min: 30_000, max: 40_000 }) }),
        x: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        y: fc.integer({ min: -50, max: 150 }),
        act: fc.oneof({ weight: 400, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(2) }),
      }),
      { minLength: 1_000, maxLength: 3_000 },
    );
    let shrank = 0;
    for (const window of [windows[0]!, windows[2]!]) {
      fc.assert(
        fc.property(many, fc.constantFrom(0, 5_000), (drawn, lateness) => {
          // Mostly in turn, as devices sending at one rate do, so that most groups hold a row.
          const evs = drawn.map((e, i) => ({ ...e, key: (i + (e.key % 3)) % 300 }));
          const objects = run(window, lateness, evs, false, 250);
          const rows = run(window, lateness, evs, true, 250);
          shrank += rows.shrank;
          expect(rows.out).toEqual(objects.out);
          expect(rows.checkpoints).toEqual(objects.checkpoints);
        }),
        { numRuns: 15 },
      );
    }
    expect(shrank).toBeGreaterThan(0);
  });

  it('covers only a hop that divides the size', () => {
    expect(windowKind('hopping')!.hotRows!({ type: 'hopping', size: 50_000, hop: 15_000 }, 0, 5)).toBeNull();
    expect(windowKind('hopping')!.hotRows!({ type: 'hopping', size: 60_000, hop: 15_000 }, 0, 5)).not.toBeNull();
  });
});
