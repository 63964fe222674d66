import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md: a statement reading the rows of an aggregating WITH step
 * (https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics). ASA's meaning, the
 * oracle here: the step gives one row per group and window (tumbling windows hold (start, end], the
 * row's time is the window end: https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions),
 * and the statement keeps the rows its WHERE holds for (a comparison with NULL does not hold) with the
 * columns it selects. Seeded inputs with nulls in `t`.
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVS = ['d1', 'd2', 'd3'];

interface In { dev: string; ts: number; t: number | null }

function events(seed: number, count = 240): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  return Array.from({ length: count }, (_, k) => {
    const dev = DEVS[k % 3]!;
    const r = rnd();
    // d3 sends no t during its first 20 s: its first windows' AVG is NULL.
    const t = r < 0.1 || (dev === 'd3' && k < 90) ? null : Math.round(rnd() * 1000) / 10;
    return { dev, ts: T0 + 1 + Math.floor(k / 3) * 700, t };
  });
}

function run(rules: CompiledRule[], evs: readonly In[]): Record<string, unknown>[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of evs) engine.process([{ body: { ...e }, deviceId: e.dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }]);
  engine.flushWindows();
  return out.map((m) => ({ output: m.output, ...(m.body as Record<string, unknown>) }));
}

/** ASA's rows of the aggregating step: one per dev and 10 s window (start, end]. */
function stepRows(evs: readonly In[]): { dev: string; end: number; a: number | null; n: number }[] {
  const wins = new Map<string, In[]>();
  for (const e of evs) {
    const k = `${e.dev} ${Math.ceil(e.ts / 10_000) * 10_000}`;
    wins.set(k, [...(wins.get(k) ?? []), e]);
  }
  return [...wins].map(([k, es]) => {
    const [dev, end] = k.split(' ') as [string, string];
    const ts = es.map((e) => e.t).filter((t): t is number => t !== null);
    return { dev, end: Number(end), a: ts.length === 0 ? null : ts.reduce((p, q) => p + q, 0) / ts.length, n: es.length };
  });
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('Z', '0000Z');
const sorted = (rows: Record<string, unknown>[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

const QUERY = `WITH agg AS (
  SELECT dev, AVG(t) AS a, COUNT(*) AS n, System.Timestamp() AS WindowEnd
  FROM telemetry TIMESTAMP BY ts
  GROUP BY dev, TumblingWindow(second, 10)
)
SELECT * INTO out FROM agg WHERE a > 50 AND dev <> 'd2'`;

const TWIN = {
  out: {
    kind: 'aggregate', input: 'telemetry', timestamp: 'ts', groupBy: ['dev'], where: 'dev != "d2"', nulls: 'skip',
    window: { type: 'tumbling', size: '10s', bounds: '(]' },
    select: { a: 'avg(t)', n: 'count()' },
    having: 'a > 50',
    row: { dev: { group: 'dev' }, a: { select: 'a' }, n: { select: 'n' }, WindowEnd: { window: 'end' } },
    output: 'out',
  },
};

describe('a statement reading the rows of an aggregating WITH step', () => {
  it('compiles to the step\'s rule: its WHERE on aggregates joins HAVING, on GROUP BY columns the step\'s WHERE', () => {
    const r = compileQueryText(QUERY);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules).toEqual({
      out: {
        kind: 'aggregate', input: 'telemetry', where: '(dev != "d2")', groupBy: ['dev'], timestamp: 'ts',
        window: { type: 'tumbling', size: 10_000, bounds: '(]' },
        select: { a: 'avg(t)', n: 'count()' }, having: '(a > 50)',
        row: { dev: { group: 'dev' }, a: { select: 'a' }, n: { select: 'n' }, WindowEnd: { window: 'end' } },
        output: 'out', nulls: 'skip',
      },
    });
  });

  for (const seed of [2, 31, 77]) {
    it(`seed ${seed}: the query and its JSON twin give the step's rows its WHERE keeps`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs);
      expect(a).toEqual(run(compiled(TWIN), evs));
      const want = stepRows(evs)
        .filter((w) => w.a !== null && w.a > 50 && w.dev !== 'd2')
        .map((w) => ({ output: 'out', dev: w.dev, a: w.a, n: w.n, WindowEnd: iso(w.end) }));
      expect(want.length).toBeGreaterThan(3);
      expect(sorted(a.map((r) => ({ ...r, a: Math.round((r.a as number) * 1e9) / 1e9 })))).toEqual(sorted(want.map((r) => ({ ...r, a: Math.round(r.a! * 1e9) / 1e9 }))));
    });
  }

  it('through a per-event step, renaming columns and selecting System.Timestamp(); IS NULL keeps the rows without an average', () => {
    const q = `WITH agg AS (SELECT dev, AVG(t) AS a, COUNT(*) AS n FROM telemetry TIMESTAMP BY ts GROUP BY dev, TumblingWindow(second, 10)),
  empty AS (SELECT * FROM agg WHERE a IS NULL)
SELECT dev AS device, n AS events, System.Timestamp() AS t, 'no-data' AS status INTO gaps FROM empty`;
    const evs = events(5);
    const got = run(fromQuery(q), evs);
    const want = stepRows(evs).filter((w) => w.a === null).map((w) => ({ output: 'gaps', device: w.dev, events: w.n, t: iso(w.end), status: 'no-data' }));
    expect(want.length).toBeGreaterThan(0);
    expect(sorted(got)).toEqual(sorted(want));
  });

  it('the WITH reference example: its BadAverages filter names AvgNormalReadings, which Averages does not have; with the name fixed it compiles', () => {
    // The example of https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics (its last statement left out).
    const example = `WITH
NormalReadings AS
(
SELECT *
FROM Sensor
WHERE Reading < 100 AND Reading > 0
),
Averages AS
(
SELECT SensorId, AVG(Reading) as AvgNormalReading
FROM NormalReadings
GROUP BY SensorId, TumblingWindow(minute, 1)
),
BadAverages AS
(
SELECT *
FROM Averages
WHERE AvgNormalReadings < 10
)
SELECT * INTO outputAlerts FROM BadAverages`;
    const r = compileQueryText(example);
    expect(r).toMatchObject({ ok: false, errors: [{ line: 18, column: 7, message: expect.stringMatching(/WITH step "Averages" has no column AvgNormalReadings \(its columns: SensorId, AvgNormalReading\)/) }] });
    const fixed = compileQueryText(example.replace('WHERE AvgNormalReadings < 10', 'WHERE AvgNormalReading < 10'));
    expect(fixed).toEqual({
      ok: true,
      rules: {
        outputAlerts: {
          kind: 'aggregate', input: 'Sensor', where: '((Reading < 100) and (Reading > 0))', groupBy: ['SensorId'],
          window: { type: 'tumbling', size: 60_000, bounds: '(]' },
          select: { AvgNormalReading: 'avg(Reading)' }, having: '(AvgNormalReading < 10)',
          row: { SensorId: { group: 'SensorId' }, AvgNormalReading: { select: 'AvgNormalReading' } },
          output: 'outputAlerts', nulls: 'skip',
        },
      },
    });
  });

  it('compiles a second aggregation over the rows (an aggregate of aggregates) to a rule reading the step rule (from), and refuses a computed column over them, with line and column', () => {
    const second = compileQueryText(`WITH agg AS (SELECT dev, AVG(t) AS a FROM telemetry GROUP BY dev, TumblingWindow(second, 10))
SELECT MAX(a) AS m INTO o FROM agg GROUP BY TumblingWindow(minute, 1)`);
    expect(second).toMatchObject({ ok: true, rules: { o: { kind: 'aggregate', from: { input: 'telemetry', groupBy: ['dev'], select: { a: 'avg(t)' } }, select: { m: 'max(a)' } } } });
    const computed = compileQueryText(`WITH agg AS (SELECT dev, AVG(t) AS a FROM telemetry GROUP BY dev, TumblingWindow(second, 10))
SELECT a * 2 AS b INTO o FROM agg`);
    expect(computed).toMatchObject({ ok: false, errors: [{ line: 2, column: 8, message: expect.stringMatching(/^column a \* 2 over the rows of WITH step "agg" is not supported yet/) }] });
  });
});
