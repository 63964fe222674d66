import { describe, it, expect } from 'vitest';
import { compileSelect, type CompiledSelect } from '../../../src/aggregate/compileSelect.js';
import { EvalFailure } from '../../../src/aggregate/compileExpression.js';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule } from '../../../src/rules/compileRule.js';

/*
 * distinct(x) over strings and booleans (docs/rules.md "Nulls", docs/asa-migration.md COUNT(DISTINCT x)):
 * ASA's COUNT(DISTINCT x) counts "unique non-null values" of "an expression of any type". The reference
 * here is a JavaScript Set of the non-null values: SameValueZero, so -0 == 0, while 1 and "1", true and
 * "true" are different values.
 */

function select(sel: Record<string, string>, options: { maxValuesPerWindow?: number; nulls?: 'reject' | 'skip' } = {}): CompiledSelect {
  const r = compileSelect(sel, options);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const MISSING = Symbol('missing');

/** Feeds the events (x = MISSING: a body without x) through evaluateArgs and the aggregator; JSON round trip before event `roundTripAt`. */
function run(s: CompiledSelect, xs: readonly unknown[], roundTripAt = -1, from?: unknown): Record<string, number | null> {
  let state = from ?? s.aggregator.init();
  xs.forEach((x, i) => {
    if (i === roundTripAt) state = JSON.parse(JSON.stringify(state)) as unknown;
    const item = new Array<number>(s.args.length);
    s.evaluateArgs({ body: x === MISSING ? {} : { x }, deviceId: 'd', moduleId: 'm' }, item);
    s.aggregator.add(state, item, 1000 + i);
  });
  return s.aggregator.result(state);
}

const reference = (xs: readonly unknown[]): number => new Set(xs.filter((x) => x !== null && x !== MISSING)).size;

const MIXED = ['on', 'off', 'on', true, false, true, 1, '1', 0, -0, '0', 'true', 'false', '', '', 's1', 2.5, '2.5', 'constructor', '__proto__', 'toString'];

describe('distinct(x) over any JSON scalar', () => {
  it('counts strings, booleans and numbers as different values (a number is not its string)', () => {
    for (const nulls of ['reject', 'skip'] as const) {
      expect(run(select({ d: 'distinct(x)', n: 'count()' }, { nulls }), MIXED)).toEqual({ d: reference(MIXED), n: MIXED.length });
    }
    expect(reference(MIXED)).toBe(17);
  });

  it('leaves nulls and missing fields out under nulls: "skip"; count(x) counts the non-null values of any type', () => {
    const xs = [null, 'a', MISSING, 'a', true, null, 3, MISSING];
    expect(run(select({ d: 'distinct(x)', nx: 'count(x)', n: 'count()' }, { nulls: 'skip' }), xs)).toEqual({ d: 3, nx: 4, n: 8 });
  });

  it('a string still rejects the event where a number aggregate shares the argument; a record always does', () => {
    const s = select({ d: 'distinct(x)', a: 'avg(x)' }, { nulls: 'skip' });
    expect(() => s.evaluateArgs({ body: { x: 'on' }, deviceId: 'd', moduleId: 'm' }, [0])).toThrow(EvalFailure);
    expect(() => s.evaluateArgs({ body: { x: true }, deviceId: 'd', moduleId: 'm' }, [0])).toThrow(EvalFailure);
    const only = select({ d: 'distinct(x)' }, { nulls: 'skip' });
    expect(() => only.evaluateArgs({ body: { x: { k: 1 } }, deviceId: 'd', moduleId: 'm' }, [0])).toThrow(EvalFailure);
  });

  it('is exact up to maxValuesPerWindow, then a HyperLogLog estimate over strings and numbers alike', () => {
    const s = select({ d: 'distinct(x)' }, { maxValuesPerWindow: 100 });
    const exact = [...Array.from({ length: 50 }, (_, i) => `id-${i}`), ...Array.from({ length: 50 }, (_, i) => i)];
    expect(run(s, exact)).toEqual({ d: 100 });
    const many: unknown[] = [];
    for (let i = 0; i < 10_000; i++) many.push(`device-${i}`, i, `${i}`);
    const got = run(s, many, 5000).d!;
    // 30,000 distinct values; the standard error is 1.6 % (aggregateFunctions.ts), 5 % is over 3 sigma.
    expect(Math.abs(got - 30_000) / 30_000).toBeLessThan(0.05);
  });

  it('a JSON checkpoint mid-window restores exactly, before and after the bound', () => {
    const xs: unknown[] = [];
    for (let i = 0; i < 300; i++) xs.push(i % 3 === 0 ? `v${i % 97}` : i % 3 === 1 ? i % 41 : i % 2 === 0);
    for (const cap of [1000, 50]) {
      const s = select({ d: 'distinct(x)', n: 'count()' }, { maxValuesPerWindow: cap });
      const whole = run(s, xs);
      for (const at of [1, 40, 150, 299]) expect(run(s, xs, at), `cap ${cap} at ${at}`).toEqual(whole);
      if (cap === 1000) expect(whole.d).toBe(reference(xs));
    }
  });

  it('restores a checkpoint of number keys as earlier versions wrote it, and adds strings beside them', () => {
    const s = select({ d: 'distinct(x)', n: 'count()' }, { nulls: 'skip' });
    // The packed layout [events, non-null count of x, exact set, distinct count]: number keys as String(x).
    const fresh = s.aggregator.init() as unknown[];
    expect(fresh.length).toBe(4);
    const old = JSON.parse('[3, 3, {"1":1,"-2.5":1,"0":1}, 3]') as unknown;
    expect(run(s, [1, '1', true, -0, 'x'], -1, old)).toEqual({ d: 6, n: 8 });
    // A number-only window's state is unchanged in form: keys are the canonical number strings.
    const st = s.aggregator.init();
    for (const x of [1, -0, 2.5]) {
      const item = [0];
      s.evaluateArgs({ body: { x }, deviceId: 'd', moduleId: 'm' }, item);
      s.aggregator.add(st, item, 1);
    }
    expect(JSON.stringify(st)).toBe('[3,3,{"0":1,"1":1,"2.5":1},3]');
  });
});

describe('distinct(x) over strings in an engine rule', () => {
  it('keeps an event with a string status in avg(temp) beside distinct(status); a string temp rejects it', () => {
    const compiled = compileRule('r', {
      kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', output: 'summaries',
      window: { type: 'tumbling', size: '10s' },
      select: { d: 'distinct(status)', a: 'avg(temp)', n: 'count()', dt: 'distinct(temp)' },
    });
    if (!compiled.ok) throw new Error(compiled.error);
    const scheduler = new VirtualTimeScheduler();
    const t0 = Date.UTC(2026, 0, 1);
    scheduler.frame = t0;
    const out: unknown[] = [];
    const rejected: string[] = [];
    const engine = new Engine({
      scheduler, tickIntervalMs: 0, emit: (ms) => { for (const m of ms) out.push(m.body); },
      observer: { rejected: (reason: string) => { rejected.push(reason); }, windowResult: () => undefined, alert: () => undefined },
    });
    engine.setRules([compiled.rule]);
    const bodies = [
      { status: 'ok', temp: 20 }, { status: 'ok', temp: 22 }, { status: 'fault', temp: 30 }, { status: true, temp: 20 },
      { status: 1, temp: 40 }, { status: '1', temp: 'hot' },
    ];
    bodies.forEach((b, i) => engine.process([{ body: { ...b, ts: t0 + 1000 * i }, deviceId: 'dev1', moduleId: 'm', input: 'telemetry', arrival: t0 }]));
    engine.flushWindows();
    engine.close();
    // The last event's temp is a string: avg(temp) and distinct(temp) share it as a number, so it is rejected whole.
    expect(out).toEqual([expect.objectContaining({ count: 5, values: { d: 4, a: 26.4, n: 5, dt: 4 } })]);
    expect(rejected).toEqual(['not-a-number']);
  });
});
