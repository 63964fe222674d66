import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md: SQL's NULL in a query's expressions, and CASE mixing strings, NULL, per-event values and
 * GROUP BY columns. What the oracles below follow, from Microsoft's pages and SQL's three-valued logic:
 * - a field an event lacks or holds as null is NULL; "Except for the COUNT function, aggregate functions
 *   ignore null values" (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics);
 * - arithmetic and comparisons with a NULL give NULL (unknown); NOT unknown is unknown; unknown AND
 *   false is false, unknown OR true is true; WHERE and HAVING keep a row only when the condition is
 *   TRUE (https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics);
 * - CASE returns the result of the first WHEN that "evaluates to true", else ELSE
 *   (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics); "it is records that
 *   have a type and not columns" (data types reference), so one column can be 'hot' in one row and 21.5
 *   in the next.
 * The oracles are plain loops over the events written from these rules; they import nothing of src/.
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVS = ['d1', 'd2', 'd3'];

type In = { dev: string; ts: number; t?: number | null; u?: number | null };

function events(seed: number, count = 300): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  let ts = T0;
  return Array.from({ length: count }, () => {
    ts += 1 + Math.floor(rnd() * 300);
    const e: In = { dev: DEVS[Math.floor(rnd() * DEVS.length)]!, ts };
    // t: a number, null, or missing; u likewise.
    const a = rnd();
    if (a < 0.8) e.t = Math.round(rnd() * 400) / 10;
    else if (a < 0.9) e.t = null;
    const b = rnd();
    if (b < 0.6) e.u = Math.floor(rnd() * 12);
    else if (b < 0.8) e.u = null;
    return e;
  });
}

function run(rules: CompiledRule[], evs: readonly In[], rejected: (reason: string) => void = () => undefined): Record<string, unknown>[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of evs) engine.process([{ body: { ...e }, deviceId: 'gw', moduleId: 'sensor', input: 'i', arrival: CLOCK0 }]);
  engine.flushWindows();
  return out.map((m) => m.body as Record<string, unknown>);
}

/** SQL's three-valued logic, null standing for unknown. */
const sqlOr = (a: boolean | null, b: boolean | null): boolean | null => (a === true || b === true ? true : a === null || b === null ? null : false);
const num = (v: number | null | undefined): number | null => (typeof v === 'number' ? v : null);
const gt = (a: number | null, b: number): boolean | null => (a === null ? null : a > b);
const lt = (a: number | null, b: number): boolean | null => (a === null ? null : a < b);

describe('SQL NULL in a statement without GROUP BY (a select rule)', () => {
  const QUERY = `SELECT dev,
  CASE WHEN t > 30 THEN 'hot' WHEN t IS NULL THEN NULL ELSE t END AS s,
  t + NULL AS nothing,
  t * 2 AS t2,
  CASE WHEN NOT (u < 5) THEN 'many' ELSE dev END AS label
INTO o FROM i TIMESTAMP BY ts
WHERE t > 10 OR u > 2`;

  const TWIN = {
    o: {
      kind: 'select', input: 'i', timestamp: 'ts', nulls: 'skip', where: 't > 10 or u > 2',
      row: {
        dev: { expr: 'dev' },
        s: { expr: 't > 30 ? "hot" : (isNull(t) ? null : t)' },
        nothing: { expr: 't + null' },
        t2: { expr: 't * 2' },
        label: { expr: 'not (u < 5) ? "many" : dev' },
      },
      output: 'o',
    },
  };

  function oracle(evs: readonly In[]): Record<string, unknown>[] {
    const rows: Record<string, unknown>[] = [];
    for (const e of evs) {
      const t = num(e.t);
      const u = num(e.u);
      if (sqlOr(gt(t, 10), gt(u, 2)) !== true) continue;
      const small = lt(u, 5);
      rows.push({
        dev: e.dev,
        s: gt(t, 30) === true ? 'hot' : t === null ? null : t,
        nothing: null,
        t2: t === null ? null : t * 2,
        label: (small === null ? null : !small) === true ? 'many' : e.dev,
      });
    }
    return rows;
  }

  it('compiles NULL and a CASE giving a string, NULL or a per-event value, with nulls: "skip"', () => {
    const r = compileQueryText(QUERY);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.o).toMatchObject({ kind: 'select', nulls: 'skip', row: { nothing: { expr: '(t + null)' }, s: { expr: '((t > 30) ? "hot" : (isNull(t) ? null : t))' } } });
  });

  for (const seed of [5, 77, 4242]) {
    it(`seed ${seed}: the query, its JSON twin and the oracle give the same rows, and no event is rejected`, () => {
      const evs = events(seed);
      const rejected: string[] = [];
      const a = run(fromQuery(QUERY), evs, (r) => rejected.push(r));
      const b = run(compiled(TWIN), evs);
      expect(a).toEqual(b);
      expect(a).toEqual(oracle(evs));
      // An event whose t or u is null or missing is dropped by an unknown WHERE, not rejected.
      expect(rejected).toEqual([]);
      // Not vacuous: every kind of result and rows kept by u alone (t null or missing).
      for (const s of ['hot', null]) expect(a.some((r) => r.s === s), String(s)).toBe(true);
      expect(a.some((r) => typeof r.s === 'number')).toBe(true);
      expect(a.some((r) => r.label === 'many') && a.some((r) => r.label !== 'many')).toBe(true);
      expect(a.some((r) => r.t2 === null)).toBe(true);
    });
  }
});

describe('SQL NULL in a windowed statement', () => {
  const QUERY = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS n,
  AVG(CASE WHEN t > 5 THEN t ELSE NULL END) AS avgHigh,
  AVG(t) + NULL AS nothing,
  CASE WHEN COUNT(t) = 0 THEN NULL ELSE MAX(t) - MIN(t) END * 2 AS spread2,
  CASE WHEN AVG(t) > 20 THEN 'warm' WHEN AVG(t) IS NULL THEN NULL ELSE dev END AS label
INTO o FROM i TIMESTAMP BY ts
WHERE u IS NULL OR u < 8
GROUP BY dev, TumblingWindow(second, 5)
HAVING CASE WHEN COUNT(t) < 2 THEN NULL ELSE COUNT(t) END > 0`;

  const TWIN = {
    o: {
      kind: 'aggregate', input: 'i', groupBy: ['dev'], timestamp: 'ts', nulls: 'skip', where: 'isNull(u) or u < 8',
      window: { type: 'tumbling', size: '5s', bounds: '(]' },
      select: {
        n: 'count()',
        avgHigh: 'avg(t > 5 ? t : null)',
        nothing: 'avg(t) + null',
        spread2: '(count(t) == 0 ? null : max(t) - min(t)) * 2',
        avgT: 'avg(t)',
        counted: 'count(t)',
      },
      having: '(counted < 2 ? null : counted) > 0',
      row: {
        dev: { group: 'dev' }, WindowEnd: { window: 'end' }, n: { select: 'n' }, avgHigh: { select: 'avgHigh' },
        nothing: { select: 'nothing' }, spread2: { select: 'spread2' },
        label: { case: [{ when: 'avgT > 20', then: 'warm' }, { when: 'isNull(avgT)', then: null }], else: { group: 'dev' } },
      },
      output: 'o',
    },
  };

  function oracle(evs: readonly In[]): Record<string, unknown>[] {
    const wins = new Map<string, { ts: number[]; n: number }>();
    for (const e of evs) {
      const u = num(e.u);
      if (sqlOr(u === null, lt(u, 8)) !== true) continue;
      const k = `${Math.ceil(e.ts / 5_000) * 5_000} ${e.dev}`;
      const w = wins.get(k) ?? { ts: [], n: 0 };
      w.n++;
      const t = num(e.t);
      if (t !== null) w.ts.push(t);
      wins.set(k, w);
    }
    const avg = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((s, v) => s + v, 0) / xs.length);
    const rows: Record<string, unknown>[] = [];
    for (const [k, w] of wins) {
      const [end, dev] = k.split(' ') as [string, string];
      // HAVING: NULL (fewer than two values) is not TRUE.
      if (w.ts.length < 2) continue;
      const a = avg(w.ts);
      rows.push({
        dev, WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z'), n: w.n,
        avgHigh: avg(w.ts.filter((t) => t > 5)),
        nothing: null,
        spread2: (Math.max(...w.ts) - Math.min(...w.ts)) * 2,
        label: a !== null && a > 20 ? 'warm' : a === null ? null : dev,
      });
    }
    return rows;
  }

  const rounded = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
    rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(9)) : v])));
  const byKey = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => `${String(a.WindowEnd)} ${String(a.dev)}`.localeCompare(`${String(b.WindowEnd)} ${String(b.dev)}`));
  const shown = (rows: Record<string, unknown>[]): Record<string, unknown>[] => rows.map(({ dev, WindowEnd, n, avgHigh, nothing, spread2, label }) => ({ dev, WindowEnd, n, avgHigh, nothing, spread2, label }));

  it('compiles NULL inside arithmetic, in an aggregate argument and in HAVING, and a GROUP BY column as a CASE result', () => {
    const r = compileQueryText(QUERY);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.o).toMatchObject({
      nulls: 'skip',
      select: { avgHigh: 'avg(((t > 5) ? t : null))', nothing: '(avg(t) + null)', spread2: '(((count((isNull(t) ? null : 1)) == 0) ? null : (max(t) - min(t))) * 2)' },
      row: { label: { else: { group: 'dev' } } },
    });
  });

  for (const seed of [11, 202, 9001]) {
    it(`seed ${seed}: the query, its JSON twin and the oracle give the same rows`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs);
      const b = run(compiled(TWIN), evs);
      expect(rounded(byKey(shown(a)))).toEqual(rounded(byKey(shown(b))));
      expect(rounded(byKey(a))).toEqual(rounded(byKey(oracle(evs))));
      // Not vacuous: both labels, a window without a high value, windows HAVING dropped.
      expect(a.some((r) => r.label === 'warm') && a.some((r) => DEVS.includes(r.label as string))).toBe(true);
      expect(a.length).toBeGreaterThan(5);
    });
  }
});

describe('JSON rules keep reject-by-default', () => {
  it('without nulls: "skip" a null literal is refused and a missing field in where rejects the event', () => {
    const base = { kind: 'select', input: 'i', row: { x: { expr: 't + null' } } };
    const r = compileRule('r', base);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/r\.row\.x: .*null/);
    const rejected: string[] = [];
    const rows = run(compiled({ w: { kind: 'select', input: 'i', where: 't > 5 or u > 2' } }), [{ dev: 'd1', ts: T0 + 1, u: 3 }, { dev: 'd1', ts: T0 + 2, t: 6 }], (x) => rejected.push(x));
    expect(rejected).toEqual(['missing-field']);
    expect(rows).toEqual([{ dev: 'd1', ts: T0 + 2, t: 6 }]);
    // The same rule with nulls: "skip": t missing is NULL, u > 2 holds, so the event passes.
    expect(run(compiled({ w: { kind: 'select', input: 'i', where: 't > 5 or u > 2', nulls: 'skip' } }), [{ dev: 'd1', ts: T0 + 1, u: 3 }])).toEqual([{ dev: 'd1', ts: T0 + 1, u: 3 }]);
  });
});
