import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';
import { oracleLag, type OracleEvent } from '../../oracle/lagOracle.js';

/*
 * docs/asa-migration.md: LAG inside a windowed statement's aggregate argument. ASA's LAG reference
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics): LAG is computed per
 * event, "evaluated before" WHERE ("LAG isn't affected by predicates in the WHERE clause"), over the
 * events of its PARTITION BY key within LIMIT DURATION, NULL (or the default) when there is none; the
 * aggregate then runs over the events WHERE keeps, and "Except for the COUNT function, aggregate
 * functions ignore null values" (COUNT(x) counts the non-null ones). Tumbling windows hold (start, end].
 * The oracle is test/oracle/lagOracle.ts (a plain loop over the whole history) plus plain loops here.
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVS = ['d1', 'd2', 'd3'];

interface In { dev: string; ts: number; t: number | null }

function events(seed: number, count = 300): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  let ts = T0;
  return Array.from({ length: count }, () => {
    // Gaps up to 1.5 s over three devices: a device's previous reading is sometimes 3 s or more old.
    ts += 1 + Math.floor(rnd() * 1500);
    const dev = DEVS[Math.floor(rnd() * DEVS.length)]!;
    const t = rnd() < 0.08 ? null : Math.round(rnd() * 400) / 10;
    return { dev, ts, t };
  });
}

function run(rules: CompiledRule[], evs: readonly In[], rejected: (reason: string) => void = () => undefined): OutputMessage[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of evs) engine.process([{ body: { ...e }, deviceId: 'gw', moduleId: 'sensor', input: 'i', arrival: CLOCK0 }]);
  engine.flushWindows();
  return out;
}

const QUERY = `SELECT dev,
  AVG(t - LAG(t) OVER (PARTITION BY dev LIMIT DURATION(second, 3))) AS avgStep,
  COUNT(t - LAG(t) OVER (PARTITION BY dev LIMIT DURATION(second, 3))) AS steps,
  MAX(t - LAG(t, 2, 0) OVER (PARTITION BY dev LIMIT DURATION(second, 3))) AS jump2,
  COUNT(*) AS n, System.Timestamp() AS WindowEnd
INTO o FROM i TIMESTAMP BY ts
WHERE t > 20
GROUP BY dev, TumblingWindow(second, 5)`;

/** QUERY's twin, written by hand in docs/rules.md's notation. */
const TWIN = {
  o: {
    kind: 'aggregate', input: 'i', groupBy: ['dev'], timestamp: 'ts', nulls: 'skip', where: 't > 20',
    lag: {
      prev: { value: 't', partitionBy: ['dev'], duration: '3s' },
      prev2: { value: 't', offset: 2, default: 0, partitionBy: ['dev'], duration: '3s' },
    },
    window: { type: 'tumbling', size: '5s', bounds: '(]' },
    select: { avgStep: 'avg(t - lag("prev"))', steps: 'count(t - lag("prev"))', jump2: 'max(t - lag("prev2"))', n: 'count()' },
    row: { dev: { group: 'dev' }, avgStep: { select: 'avgStep' }, steps: { select: 'steps' }, jump2: { select: 'jump2' }, n: { select: 'n' }, WindowEnd: { window: 'end' } },
    output: 'o',
  },
};

function oracle(evs: readonly In[]): Record<string, unknown>[] {
  const hist: OracleEvent[] = evs.map((e) => ({ t: e.ts, body: { ...e } }));
  const base = { durationMs: 3_000, partition: (e: OracleEvent) => e.body.dev, value: (e: OracleEvent) => e.body.t };
  // Every event is LAG's history, those WHERE drops included.
  const lag1 = oracleLag(hist, { ...base, offset: 1, dflt: null });
  const lag2 = oracleLag(hist, { ...base, offset: 2, dflt: 0 });
  const wins = new Map<string, { step: number[]; jump: number[]; n: number }>();
  evs.forEach((e, i) => {
    if (e.t === null || !(e.t > 20)) return;
    const k = `${Math.ceil(e.ts / 5_000) * 5_000} ${e.dev}`;
    const w = wins.get(k) ?? { step: [], jump: [], n: 0 };
    w.n++;
    const a = lag1[i];
    if (typeof a === 'number') w.step.push(e.t - a);
    const b = lag2[i];
    if (typeof b === 'number') w.jump.push(e.t - b);
    wins.set(k, w);
  });
  return [...wins.entries()].map(([k, w]) => {
    const [end, dev] = k.split(' ') as [string, string];
    let sum = 0;
    for (const s of w.step) sum += s;
    let max: number | null = null;
    for (const j of w.jump) max = max === null || j > max ? j : max;
    return { dev, avgStep: w.step.length === 0 ? null : sum / w.step.length, steps: w.step.length, jump2: max, n: w.n, WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z') };
  });
}

const rounded = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(9)) : v])));
const byKey = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => `${String(a.WindowEnd)} ${String(a.dev)}`.localeCompare(`${String(b.WindowEnd)} ${String(b.dev)}`));

describe('LAG inside a windowed statement\'s aggregate argument', () => {
  it('compiles each LAG to the rule\'s lag, read by the aggregate argument', () => {
    const r = compileQueryText(QUERY);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.o).toMatchObject({
      where: '(t > 20)',
      lag: { lag1: { value: 't', partitionBy: ['dev'], duration: 3000 }, lag2: { value: 't', offset: 2, default: 0, partitionBy: ['dev'], duration: 3000 } },
      select: { avgStep: 'avg((t - lag("lag1")))', steps: 'count((t - lag("lag1")))', jump2: 'max((t - lag("lag2")))', n: 'count()' },
      nulls: 'skip',
    });
  });

  for (const seed of [7, 41, 1234]) {
    it(`seed ${seed}: the query, its JSON twin and the LAG oracle give the same rows`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs).map((m) => m.body as Record<string, unknown>);
      const b = run(compiled(TWIN), evs).map((m) => m.body as Record<string, unknown>);
      expect(a).toEqual(b);
      expect(rounded(byKey(a))).toEqual(rounded(byKey(oracle(evs))));
      // Not vacuous: windows with and without a step, steps left out (a NULL LAG) beside counted ones.
      expect(a.some((r) => r.avgStep === null)).toBe(true);
      expect(a.some((r) => typeof r.avgStep === 'number' && r.avgStep !== 0)).toBe(true);
      expect(a.some((r) => (r.steps as number) < (r.n as number) && (r.steps as number) > 0)).toBe(true);
    });
  }

  // ASA's GROUP BY: "One row is returned for each group. Aggregate functions in the SELECT clause's
  // <select> list provide information about each group instead of individual rows"
  // (https://learn.microsoft.com/stream-analytics-query/group-by-azure-stream-analytics); LAG is a value of
  // one event, evaluated before GROUP BY. Not a form eddy lacks: a query ASA does not accept.
  it('a LAG outside an aggregate in a windowed statement is refused as invalid ASA, at the LAG, with the way to write it', () => {
    for (const [q, column, place] of [
      [`SELECT AVG(t) - LAG(t) OVER (LIMIT DURATION(minute, 1)) AS p INTO o FROM i GROUP BY TumblingWindow(second, 5)`, 17, 'SELECT list'],
      [`SELECT COUNT(*) AS n INTO o FROM i GROUP BY TumblingWindow(second, 5) HAVING LAG(t) OVER (LIMIT DURATION(minute, 1)) > 1`, 78, 'HAVING'],
      [`SELECT dev, LAG(t) OVER (PARTITION BY dev LIMIT DURATION(minute, 1)) AS p INTO o FROM i GROUP BY dev, SessionWindow(second, 5, 60)`, 13, 'SELECT list'],
    ] as const) {
      const r = compileQueryText(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) {
        expect(r.errors[0]!.message).toBe(`LAG outside an aggregate in the ${place} of a statement with GROUP BY is not valid in ASA: a windowed row summarizes its group, and LAG is a value of one event (computed before GROUP BY): put it inside an aggregate, e.g. AVG(t) - AVG(LAG(t) OVER (...)) or AVG(t - LAG(t) OVER (...))`);
        expect(r.errors[0]).toMatchObject({ line: 1, column });
      }
    }
  });

  it('under nulls "reject" a NULL LAG argument rejects the event for the rule (not-a-number), as a null field does', () => {
    const doc = { ...TWIN.o, nulls: 'reject', where: undefined, select: { avgStep: 'avg(t - lag("prev"))' }, row: undefined };
    const evs: In[] = [{ dev: 'd1', ts: T0 + 1, t: 10 }, { dev: 'd1', ts: T0 + 2, t: 13 }, { dev: 'd2', ts: T0 + 3, t: 5 }, { dev: 'd1', ts: T0 + 4, t: 19 }];
    const reasons: string[] = [];
    const out = run(compiled({ o: JSON.parse(JSON.stringify(doc)) as Record<string, unknown> }), evs, (r) => reasons.push(r));
    // d1's first and d2's only event have no previous reading: rejected; d1's steps are 3 and 6.
    expect(reasons).toEqual(['not-a-number', 'not-a-number']);
    expect(out.map((m) => (m.body as { values: Record<string, unknown> }).values ?? m.body)).toEqual([{ avgStep: 4.5 }]);
  });

  it('an aggregate argument naming no lag entry is refused at validation', () => {
    const r = compileRule('bad', { ...TWIN.o, select: { a: 'avg(t - lag("nope"))' }, row: { a: { select: 'a' } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/bad\.select\.a: lag\("nope"\): no such entry/);
  });
});
