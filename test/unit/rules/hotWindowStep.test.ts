import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SchedulerLike } from 'rxjs';
import type { EvalContext } from '../../../src/contracts/event.js';
import type { Tombstone, WindowEmission, WindowState } from '../../../src/contracts/window.js';
import { compileSelect } from '../../../src/aggregate/compileSelect.js';
import { EvalFailure } from '../../../src/aggregate/compileExpression.js';
import { addPacked, packedAdder, packedLayout } from '../../../src/aggregate/packedSelectState.js';
import { createWindowOperator } from '../../../src/windows/windowRegistry.js';
import type { WindowGroupRef } from '../../../src/windows/groupedWindowOperator.js';
import { hotWindowStep } from '../../../src/rules/hotWindowStep.js';

/**
 * The rule's own step for the common event (src/rules/hotWindowStep.ts) against the window operator's
 * general path, which the window marble tests and test/oracle check against the documented semantics:
 * the same random events (late ones, jumps, other keys) through both, with flushes between them
 * (provisional windows the step must leave to the general path) and a small `maxGroups` (eviction,
 * tombstones, floors), must give the same emissions in the same order and the same state, as the
 * engine uses the step (src/rules/engine.ts aggregateRuntime).
 */
const SELECT = { a: 'avg(x)', lo: 'min(x)', hi: 'max(y)', sd: 'stdev(y)', f: 'first(x)', l: 'last(y)', n: 'count()', s: 'sum(x * 2)' };

interface Ev {
  readonly key: number;
  readonly dt: number;
  readonly x: unknown;
  readonly y: number;
  readonly flush: boolean;
}

/**
 * The executor's value scratch as docs/contract.md section 3 describes a number field: the value when
 * it is a finite JSON number, NaN for anything else (missing, null, a string, a boolean, an object,
 * 1e400 parsed as Infinity), which the step must then leave to the argument's own reader.
 */
function scratchOf(body: Record<string, unknown>, path: readonly string[]): number {
  let o: unknown = body;
  for (const k of path) o = o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k) ? (o as Record<string, unknown>)[k] : undefined;
  return typeof o === 'number' && Number.isFinite(o) ? o : Number.NaN;
}

function run(
  window: { type: 'tumbling'; size: number } | { type: 'hopping'; size: number; hop: number },
  maxLateness: number,
  events: readonly Ev[],
  hot: boolean,
  scratch = false,
): { out: unknown[]; groups: unknown; tombstones: Array<[string, Tombstone]>; taken: number } {
  const compiled = compileSelect(SELECT);
  if (!compiled.ok) throw new Error('select');
  const select = compiled.value;
  let now = 1_000;
  const scheduler = { now: () => now, schedule: () => ({ unsubscribe: () => undefined, closed: false }) } as unknown as SchedulerLike;
  const state: WindowState = { groups: new Map(), tombstones: new Map() };
  const out: unknown[] = [];
  const core = createWindowOperator<readonly number[], unknown, unknown>(window, select.aggregator, { maxLateness, idleTimeout: 60_000, scheduler, state, maxGroups: 3 }).direct({
    emit: (em: WindowEmission<unknown>) => out.push(em),
    closed: () => false,
  });
  const item: number[] = new Array<number>(select.argFns.length);
  const paths = select.argPaths.filter((p): p is readonly string[] => p !== null);
  const vals = new Float64Array(paths.length);
  const at = select.argPaths.map((p) => (p === null ? -1 : paths.indexOf(p)));
  const step = hot ? hotWindowStep(window, maxLateness, select, core, item, undefined, scratch ? { vals, at } : null) : null;
  if (hot && step === null) throw new Error('no hot step for a covered rule');
  let t = 1_700_000_000_000;
  let taken = 0;
  for (const e of events) {
    t += e.dt;
    now += 10;
    const key = `k${e.key}`;
    const ev: EvalContext = { body: e.x === undefined ? { y: e.y } : { x: e.x, y: e.y }, deviceId: key, moduleId: 'm' };
    for (let i = 0; i < paths.length; i++) vals[i] = scratchOf(ev.body, paths[i]!);
    const ref = state.groups.get(key) as WindowGroupRef | undefined;
    try {
      if (step !== null && ref !== undefined && step(ref, ev, t, key, now, [])) {
        taken++;
      } else {
        if (step === null || ref === undefined) select.evaluateArgs(ev, item);
        core.next({ time: t, key, group: { deviceId: key }, item, seen: now });
      }
    } catch (err) {
      // The engine counts a failing argument under the rule (src/rules/fusedRules.ts): the same failure, at the same event.
      out.push({ failed: err instanceof EvalFailure ? `${err.reason} ${err.detail}` : String(err) });
    }
    if (e.flush) core.complete();
  }
  core.complete();
  return { out, groups: JSON.parse(JSON.stringify([...state.groups])) as unknown, tombstones: [...state.tombstones!], taken };
}

const events = fc.array(
  fc.record({
    // Mostly two keys; the others push groups out (maxGroups 3).
    key: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1 }) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) }),
    // Mostly forward by a few seconds, sometimes late (back up to a minute) or a jump of minutes, in
    // quarter seconds so that watermarks meet window ends exactly; rarely by any millisecond count.
    dt: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 12 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: -240, max: 0 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: 240, max: 1_600 }).map((v) => v * 250) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3_000 }) }),
    x: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
    y: fc.integer({ min: -50, max: 150 }),
    flush: fc.integer({ min: 0, max: 19 }).map((v) => v === 0),
  }),
  { minLength: 1, maxLength: 300 },
);

describe('hotWindowStep', () => {
  for (const window of [{ type: 'tumbling', size: 10_000 } as const, { type: 'hopping', size: 60_000, hop: 20_000 } as const, { type: 'hopping', size: 50_000, hop: 15_000 } as const]) {
    it(`gives the general path's emissions and state: ${JSON.stringify(window)}`, () => {
      let takenAll = 0;
      let eventsAll = 0;
      fc.assert(
        fc.property(events, fc.constantFrom(0, 5_000, 30_000), (evs, lateness) => {
          const general = run(window, lateness, evs, false);
          const hot = run(window, lateness, evs, true);
          takenAll += hot.taken;
          eventsAll += evs.length;
          expect(hot.out).toEqual(general.out);
          expect(hot.groups).toEqual(general.groups);
          expect(hot.tombstones).toEqual(general.tombstones);
        }),
        { numRuns: 150 },
      );
      // Not vacuous: the step took a share of the events.
      expect(takenAll).toBeGreaterThan(eventsAll * 0.2);
    });
  }

  it("with the executor's value scratch, gives the general path's emissions, state and failures, bad values included", () => {
    // x is sometimes not a finite number: the step must fail (or not) exactly as the argument's reader does.
    const bad = fc.oneof(
      { weight: 8, arbitrary: fc.double({ min: -1e6, max: 1e6, noNaN: true }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, null, 'hot', '21.5', true, false, { v: 1 }, [1], Infinity, -Infinity, -0) },
    );
    const withBad = fc.array(fc.record({ key: fc.integer({ min: 0, max: 2 }), dt: fc.integer({ min: 0, max: 12 }).map((v) => v * 250), x: bad, y: fc.integer({ min: -50, max: 150 }), flush: fc.integer({ min: 0, max: 19 }).map((v) => v === 0) }), { minLength: 1, maxLength: 200 });
    let taken = 0;
    let failed = 0;
    let all = 0;
    for (const window of [{ type: 'tumbling', size: 10_000 } as const, { type: 'hopping', size: 60_000, hop: 20_000 } as const]) {
      fc.assert(
        fc.property(withBad, fc.constantFrom(0, 5_000), (evs, lateness) => {
          const general = run(window, lateness, evs, false);
          const hot = run(window, lateness, evs, true, true);
          taken += hot.taken;
          all += evs.length;
          failed += hot.out.filter((o) => (o as { failed?: string }).failed !== undefined).length;
          expect(hot.out).toEqual(general.out);
          expect(hot.groups).toEqual(general.groups);
          expect(hot.tombstones).toEqual(general.tombstones);
        }),
        { numRuns: 150 },
      );
    }
    // Not vacuous: the step took events, and bad values failed some.
    expect(taken).toBeGreaterThan(all * 0.2);
    expect(failed).toBeGreaterThan(all * 0.02);
  });

  it('declines what it does not cover: session windows, selects that keep values', () => {
    const withValues = compileSelect({ m: 'median(x)' });
    const plain = compileSelect({ a: 'avg(x)' });
    if (!withValues.ok || !plain.ok) throw new Error('select');
    expect(withValues.value.packedAdd).toBeNull();
    const core = { arrive: () => true } as never;
    expect(hotWindowStep({ type: 'session', gap: 1_000, maxSize: 5_000 }, 0, plain.value, core, [])).toBeNull();
    expect(hotWindowStep({ type: 'tumbling', size: 1_000 }, 0, withValues.value, core, [])).toBeNull();
  });
});

describe('packedAdder', () => {
  it('writes what addPacked writes, slot for slot', () => {
    const needs = fc.record({ sum: fc.boolean(), variance: fc.boolean(), min: fc.boolean(), max: fc.boolean(), first: fc.boolean(), last: fc.boolean(), values: fc.constant(false), distinct: fc.constant(false) });
    fc.assert(
      fc.property(
        fc.array(needs, { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constant(-0), fc.constant(1e308)), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 40 }),
        (argNeeds, items) => {
          const layout = packedLayout(argNeeds, 100);
          const add = packedAdder(layout)!;
          const a = new Array<number>(layout.length).fill(0);
          const b = new Array<number>(layout.length).fill(0);
          for (const [item, time] of items) {
            addPacked(a, layout, item, time);
            add(b, item, time);
            expect(b.map((v) => Object.is(v, -0) ? 'neg0' : v)).toEqual(a.map((v) => Object.is(v, -0) ? 'neg0' : v));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
