import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md: CASE with string results in a windowed SELECT list, simple and searched forms. The oracle is
 * ASA's CASE reference (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics):
 * the simple form compares the input expression with each WHEN, the searched form tests each WHEN; the
 * result of the first that holds is returned, else ELSE; "Both formats require an ELSE argument". A
 * comparison with NULL (AVG over no value) is not true, so it falls through to the next WHEN (SQL's
 * three-valued logic); `IS NULL` catches it. Tumbling windows hold (start, end].
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const TYPES = ['S', 'T', 'V', 'X'];

interface In { vehicleType: string; ts: number; speed: number | null }

function events(seed: number, count = 200): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  return Array.from({ length: count }, (_, k) => {
    const vehicleType = TYPES[Math.floor(rnd() * TYPES.length)]!;
    const r = rnd();
    // Type V never reports a speed: its windows' AVG(speed) is NULL.
    const speed = vehicleType === 'V' || r < 0.1 ? null : Math.round(rnd() * 1000) / 10;
    return { vehicleType, ts: T0 + 1 + k * 400, speed };
  });
}

function run(rules: CompiledRule[], evs: readonly In[]): OutputMessage[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of evs) engine.process([{ body: { ...e }, deviceId: 'cam1', moduleId: 'sensor', input: 'Input', arrival: CLOCK0 }]);
  engine.flushWindows();
  return out;
}

const QUERY = `SELECT vehicleType,
  CASE vehicleType WHEN 'S' THEN 'Sedan' WHEN 'T' THEN 'Truck' WHEN 'V' THEN 'Van' ELSE 'Other' END AS kind,
  CASE WHEN AVG(speed) > 60 THEN 'fast' WHEN AVG(speed) IS NULL THEN 'unknown' WHEN COUNT(*) >= 5 THEN 'busy' ELSE 'slow' END AS pace,
  System.Timestamp() AS WindowEnd, COUNT(*) AS n
INTO Output FROM Input TIMESTAMP BY ts
GROUP BY vehicleType, TumblingWindow(second, 5)`;

/** QUERY's twin, written by hand in docs/rules.md's notation. */
const TWIN = {
  Output: {
    kind: 'aggregate', input: 'Input', groupBy: ['vehicleType'], timestamp: 'ts', nulls: 'skip',
    window: { type: 'tumbling', size: '5s', bounds: '(]' },
    select: { n: 'count()', avgSpeed: 'avg(speed)' },
    row: {
      vehicleType: { group: 'vehicleType' },
      kind: { case: [{ when: 'vehicleType == "S"', then: 'Sedan' }, { when: 'vehicleType == "T"', then: 'Truck' }, { when: 'vehicleType == "V"', then: 'Van' }], else: 'Other' },
      pace: { case: [{ when: 'avgSpeed > 60', then: 'fast' }, { when: 'isNull(avgSpeed)', then: 'unknown' }, { when: 'n >= 5', then: 'busy' }], else: 'slow' },
      WindowEnd: { window: 'end' },
      n: { select: 'n' },
    },
    output: 'Output',
  },
};

/** The rows ASA's CASE reference gives, computed from the events alone. */
function oracle(evs: readonly In[]): Record<string, unknown>[] {
  const wins = new Map<string, In[]>();
  for (const e of evs) {
    const end = Math.ceil(e.ts / 5_000) * 5_000;
    const k = `${end} ${e.vehicleType}`;
    wins.set(k, [...(wins.get(k) ?? []), e]);
  }
  return [...wins.entries()].map(([k, es]) => {
    const [end, vehicleType] = k.split(' ') as [string, string];
    const speeds = es.map((e) => e.speed).filter((s): s is number => s !== null);
    const avg = speeds.length === 0 ? null : speeds.reduce((a, b) => a + b, 0) / speeds.length;
    const kind = ({ S: 'Sedan', T: 'Truck', V: 'Van' } as Record<string, string>)[vehicleType] ?? 'Other';
    const pace = avg !== null && avg > 60 ? 'fast' : avg === null ? 'unknown' : es.length >= 5 ? 'busy' : 'slow';
    return { vehicleType, kind, pace, WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z'), n: es.length };
  });
}

const byKey = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => `${String(a.WindowEnd)} ${String(a.vehicleType)}`.localeCompare(`${String(b.WindowEnd)} ${String(b.vehicleType)}`));

describe('string-valued CASE in a windowed SELECT list', () => {
  it('compiles to row case columns: the simple form over a GROUP BY column, the searched form over aggregates (hidden in select) and IS NULL', () => {
    const r = compileQueryText(QUERY);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.Output!.row).toMatchObject({
      kind: { case: [{ when: '(vehicleType == "S")', then: 'Sedan' }, { when: '(vehicleType == "T")', then: 'Truck' }, { when: '(vehicleType == "V")', then: 'Van' }], else: 'Other' },
      pace: { case: [{ when: '(_having1 > 60)', then: 'fast' }, { when: 'isNull(_having1)', then: 'unknown' }, { when: '(n >= 5)', then: 'busy' }], else: 'slow' },
    });
    expect(r.rules.Output!.select).toEqual({ _having1: 'avg(speed)', n: 'count()' });
  });

  for (const seed of [3, 17, 99]) {
    it(`seed ${seed}: the query and its JSON twin give the same rows, those of ASA's CASE`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs).map((m) => m.body as Record<string, unknown>);
      const b = run(compiled(TWIN), evs).map((m) => m.body as Record<string, unknown>);
      expect(a).toEqual(b);
      const want = oracle(evs);
      expect(byKey(a)).toEqual(byKey(want));
      // Every branch is taken somewhere, so no branch is checked vacuously.
      for (const p of ['fast', 'unknown', 'busy', 'slow']) expect(a.some((r) => r.pace === p), p).toBe(true);
      for (const k of ['Sedan', 'Truck', 'Van', 'Other']) expect(a.some((r) => r.kind === k), k).toBe(true);
    });
  }

  it('refuses what it cannot express, with line and column', () => {
    const cases: Array<[string, RegExp]> = [
      [`SELECT CASE WHEN AVG(t) > 1 THEN 'hi' ELSE t END AS x INTO o FROM i GROUP BY TumblingWindow(second, 5)`, /CASE giving t beside a string or NULL is not supported yet/],
      [`SELECT CASE WHEN AVG(t) > 1 THEN 'hi' ELSE 'lo' END + 1 AS x INTO o FROM i GROUP BY TumblingWindow(second, 5)`, /CASE giving 'hi' here is not supported yet/],
      [`SELECT CASE WHEN AVG(t) > 1 THEN 'hi' END AS x INTO o FROM i GROUP BY TumblingWindow(second, 5)`, /CASE without ELSE is not supported/],
      [`SELECT CASE WHEN t > 1 THEN 'hi' ELSE 'lo' END AS x INTO o FROM i GROUP BY TumblingWindow(second, 5)`, /column t in CASE is not supported yet/],
    ];
    for (const [q, msg] of cases) {
      const r = compileQueryText(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) {
        expect(r.errors[0]!.message).toMatch(msg);
        expect(r.errors[0]!.line).toBe(1);
      }
    }
  });

  it('a JSON case result naming no select name is refused at validation', () => {
    const bad = { ...TWIN.Output, row: { x: { case: [{ when: 'n > 3', then: { select: 'nope' } }], else: 'b' } } };
    const r = compileRule('bad', bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/bad\.row\.x\.case\[0\]\.then: select "nope" is not a name in select/);
  });

  it('a JSON case column whose when names neither a select name nor a groupBy path is refused at validation', () => {
    const bad = { ...TWIN.Output, row: { x: { case: [{ when: 'speed > 3', then: 'a' }], else: 'b' } } };
    const r = compileRule('bad', bad);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/bad\.row\.x\.case\[0\]\.when: a case column can only use select names .* unknown "speed"/);
  });
});

/*
 * CASE mixing constants (a string, NULL) with expressions over aggregates. ASA's CASE reference: THEN
 * is the "expression returned when ... boolean_expression evaluates to true", ELSE the "expression
 * returned if none of the conditions evaluated to TRUE"; AVG over no value is NULL ("Except for the
 * COUNT function, aggregate functions ignore null values"); "it is records that have a type and not
 * columns" (data types reference), so a column holds 'few' in one row and a number in another.
 */
const MIXED = `SELECT vehicleType,
  CASE WHEN COUNT(*) < 4 THEN 'few' ELSE AVG(speed) END AS avgOrFew,
  CASE WHEN AVG(speed) IS NULL THEN NULL ELSE MAX(speed) - MIN(speed) END AS spread,
  CASE vehicleType WHEN 'X' THEN NULL ELSE COUNT(speed) END AS counted,
  CASE WHEN MAX(speed) > 90 THEN MAX(speed) WHEN COUNT(*) <= 2 THEN 'sparse' ELSE NULL END AS peak,
  COUNT(*) AS n, System.Timestamp() AS WindowEnd
INTO Output FROM Input TIMESTAMP BY ts
GROUP BY vehicleType, TumblingWindow(second, 5)`;

const MIXED_TWIN = {
  Output: {
    kind: 'aggregate', input: 'Input', groupBy: ['vehicleType'], timestamp: 'ts', nulls: 'skip',
    window: { type: 'tumbling', size: '5s', bounds: '(]' },
    select: { n: 'count()', avgSpeed: 'avg(speed)', range: 'max(speed) - min(speed)', speeds: 'count(speed)', top: 'max(speed)' },
    row: {
      vehicleType: { group: 'vehicleType' },
      avgOrFew: { case: [{ when: 'n < 4', then: 'few' }], else: { select: 'avgSpeed' } },
      spread: { case: [{ when: 'isNull(avgSpeed)', then: null }], else: { select: 'range' } },
      counted: { case: [{ when: 'vehicleType == "X"', then: null }], else: { select: 'speeds' } },
      peak: { case: [{ when: 'top > 90', then: { select: 'top' } }, { when: 'n <= 2', then: 'sparse' }], else: null },
      n: { select: 'n' },
      WindowEnd: { window: 'end' },
    },
    output: 'Output',
  },
};

function mixedOracle(evs: readonly In[]): Record<string, unknown>[] {
  const wins = new Map<string, In[]>();
  for (const e of evs) {
    const k = `${Math.ceil(e.ts / 5_000) * 5_000} ${e.vehicleType}`;
    wins.set(k, [...(wins.get(k) ?? []), e]);
  }
  return [...wins.entries()].map(([k, es]) => {
    const [end, vehicleType] = k.split(' ') as [string, string];
    const speeds = es.map((e) => e.speed).filter((s): s is number => s !== null);
    let sum = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of speeds) {
      sum += s;
      lo = Math.min(lo, s);
      hi = Math.max(hi, s);
    }
    const avg = speeds.length === 0 ? null : sum / speeds.length;
    return {
      vehicleType,
      avgOrFew: es.length < 4 ? 'few' : avg,
      spread: avg === null ? null : hi - lo,
      counted: vehicleType === 'X' ? null : speeds.length,
      peak: speeds.length > 0 && hi > 90 ? hi : es.length <= 2 ? 'sparse' : null,
      n: es.length,
      WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z'),
    };
  });
}

/** Numbers to 9 significant digits: the engine's running sums may differ from a plain loop in the last bits. */
const rounded = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(9)) : v])));

describe('CASE mixing string or NULL results with aggregates in a windowed SELECT list', () => {
  it('compiles each computed result to a select name the row case column reads', () => {
    const r = compileQueryText(MIXED);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.Output!.select).toEqual({ n: 'count()', _having1: 'avg(speed)', _having2: '(max(speed) - min(speed))', _having3: 'count((isNull(speed) ? null : 1))', _having4: 'max(speed)' });
    expect(r.rules.Output!.row).toMatchObject({
      avgOrFew: { case: [{ when: '(n < 4)', then: 'few' }], else: { select: '_having1' } },
      spread: { case: [{ when: 'isNull(_having1)', then: null }], else: { select: '_having2' } },
      counted: { case: [{ when: '(vehicleType == "X")', then: null }], else: { select: '_having3' } },
      peak: { case: [{ when: '(_having4 > 90)', then: { select: '_having4' } }, { when: '(n <= 2)', then: 'sparse' }], else: null },
    });
  });

  for (const seed of [5, 23, 71]) {
    it(`seed ${seed}: the query, its JSON twin and a plain-loop oracle of ASA's CASE give the same rows`, () => {
      const evs = events(seed);
      const a = run(fromQuery(MIXED), evs).map((m) => m.body as Record<string, unknown>);
      const b = run(compiled(MIXED_TWIN), evs).map((m) => m.body as Record<string, unknown>);
      expect(a).toEqual(b);
      expect(rounded(byKey(a))).toEqual(rounded(byKey(mixedOracle(evs))));
      // Each result of each CASE is taken somewhere, so none is checked vacuously.
      expect(a.some((r) => r.avgOrFew === 'few')).toBe(true);
      expect(a.some((r) => typeof r.avgOrFew === 'number')).toBe(true);
      expect(a.some((r) => r.spread === null)).toBe(true);
      expect(a.some((r) => typeof r.spread === 'number' && r.spread > 0)).toBe(true);
      expect(a.some((r) => r.counted === null)).toBe(true);
      expect(a.some((r) => typeof r.counted === 'number')).toBe(true);
      for (const v of ['number', 'sparse', null]) expect(a.some((r) => (v === 'number' ? typeof r.peak === 'number' : r.peak === v)), String(v)).toBe(true);
    });
  }
});
