import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md: PERCENTILE_DISC, and PERCENTILE_CONT over a descending order. The oracle below is written
 * from Microsoft's reference pages alone (it imports nothing of src/):
 * - PERCENTILE_DISC (https://learn.microsoft.com/stream-analytics-query/percentile-disc-azure-stream-analytics):
 *   "sorts the values of the expression in the ORDER BY clause and returns the value within the smallest
 *   cumulative distance that is greater than or equal to P"; "the result is equal to a specific value from
 *   the input data"; "The default sort order is ascending". The cumulative distribution of the i-th value
 *   of the sorted list (1-based, ties counted up to their last place) is i / n.
 * - PERCENTILE_CONT (https://learn.microsoft.com/stream-analytics-query/percentile-cont-azure-stream-analytics):
 *   interpolated between the two values around the rank p * (n - 1) of the sorted list.
 * - "Except for the COUNT function, aggregate functions ignore null values"
 *   (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics);
 *   tumbling windows hold (start, end].
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVS = ['d1', 'd2'];

interface In { dev: string; ts: number; t: number | null }

function events(seed: number, count = 400): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  let ts = T0;
  return Array.from({ length: count }, () => {
    ts += 1 + Math.floor(rnd() * 400);
    const dev = DEVS[Math.floor(rnd() * DEVS.length)]!;
    // One decimal in [0, 3]: many ties, which is where a cumulative distribution is easy to get wrong.
    const t = rnd() < 0.1 ? null : Math.round(rnd() * 30) / 10;
    return { dev, ts, t };
  });
}

function run(rules: CompiledRule[], evs: readonly In[]): Record<string, unknown>[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of evs) engine.process([{ body: { ...e }, deviceId: 'gw', moduleId: 'sensor', input: 'i', arrival: CLOCK0 }]);
  engine.flushWindows();
  return out.map((m) => m.body as Record<string, unknown>);
}

/** The percentiles, as fractions of 10,000 so that the oracle compares integers: 0, 0.07, 0.25, 0.5, 0.95, 1. */
const PS = [0, 700, 2500, 5000, 9500, 10000];
const pText = (p: number): string => String(p / 10000);

const QUERY = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS n,
  ${PS.map((p, i) => `PERCENTILE_DISC(${pText(p)}) OVER (ORDER BY t) AS a${i}, PERCENTILE_DISC(${pText(p)}) OVER (ORDER BY t DESC) AS d${i}`).join(',\n  ')},
  PERCENTILE_CONT(0.25) OVER (ORDER BY t DESC) AS c25d
INTO o FROM i TIMESTAMP BY ts
GROUP BY dev, TumblingWindow(second, 5)`;

/** QUERY's twin, written by hand in docs/rules.md's notation. */
const TWIN = {
  o: {
    kind: 'aggregate', input: 'i', groupBy: ['dev'], timestamp: 'ts', nulls: 'skip',
    window: { type: 'tumbling', size: '5s', bounds: '(]' },
    select: {
      n: 'count()',
      ...Object.fromEntries(PS.flatMap((p, i) => [[`a${i}`, `percentileDisc(t, ${p / 100})`], [`d${i}`, `-percentileDisc(-t, ${p / 100})`]])),
      c25d: 'percentile(t, 75)',
    },
    row: {
      dev: { group: 'dev' }, WindowEnd: { window: 'end' }, n: { select: 'n' },
      ...Object.fromEntries(PS.flatMap((_, i) => [[`a${i}`, { select: `a${i}` }], [`d${i}`, { select: `d${i}` }]])),
      c25d: { select: 'c25d' },
    },
    output: 'o',
  },
};

/** PERCENTILE_DISC from the page: walk the sorted values, return the first whose cumulative distribution i / n >= p. */
function disc(values: readonly number[], p10k: number, desc: boolean): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => (desc ? b - a : a - b));
  const n = sorted.length;
  for (let i = 0; i < n; i++) {
    // Ties share the cumulative distribution of their last place.
    let last = i;
    while (last + 1 < n && sorted[last + 1] === sorted[i]) last++;
    if ((last + 1) * 10000 >= p10k * n) return sorted[i]!;
    i = last;
  }
  return sorted[n - 1]!;
}

function cont(values: readonly number[], p: number, desc: boolean): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => (desc ? b - a : a - b));
  const rank = p * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

function oracle(evs: readonly In[]): Record<string, unknown>[] {
  const wins = new Map<string, { vals: number[]; n: number }>();
  for (const e of evs) {
    const k = `${Math.ceil(e.ts / 5_000) * 5_000} ${e.dev}`;
    const w = wins.get(k) ?? { vals: [], n: 0 };
    w.n++;
    if (e.t !== null) w.vals.push(e.t);
    wins.set(k, w);
  }
  return [...wins.entries()].map(([k, w]) => {
    const [end, dev] = k.split(' ') as [string, string];
    const row: Record<string, unknown> = { dev, WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z'), n: w.n };
    PS.forEach((p, i) => {
      row[`a${i}`] = disc(w.vals, p, false);
      row[`d${i}`] = disc(w.vals, p, true);
    });
    row.c25d = cont(w.vals, 0.25, true);
    return row;
  });
}

const rounded = (rows: Record<string, unknown>[]): Record<string, unknown>[] =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Number(v.toPrecision(9)) : v])));
const byKey = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => `${String(a.WindowEnd)} ${String(a.dev)}`.localeCompare(`${String(b.WindowEnd)} ${String(b.dev)}`));

describe('PERCENTILE_DISC', () => {
  it("gives the reference page's example: 0.99 for the 95th percentile of five regions' availability", () => {
    const q = 'SELECT PERCENTILE_DISC(0.95) OVER (ORDER BY serviceAvailability) AS p INTO o FROM i GROUP BY TumblingWindow(second, 10)';
    const r = compileQueryText(q);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.o!.select).toEqual({ p: 'percentileDisc(serviceAvailability, 95)' });
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    engine.setRules(fromQuery(q));
    const rows = [['A', 0.98], ['B', 0.93], ['C', 0.78], ['D', 0.99], ['E', 0.89]] as const;
    engine.process(rows.map(([region, serviceAvailability], k) => ({ body: { region, serviceAvailability }, deviceId: 'gw', moduleId: 'm', input: 'i', arrival: T0 + 1000 + k })));
    engine.flushWindows();
    expect(out.map((m) => m.body)).toEqual([{ p: 0.99 }]);
  });

  it('compiles DESC to the ascending order of the negated values, and a percentage as the query wrote it', () => {
    const r = compileQueryText('SELECT PERCENTILE_DISC(0.07) OVER (ORDER BY t DESC) AS d, PERCENTILE_CONT(0.07) OVER (ORDER BY t) AS c INTO o FROM i GROUP BY TumblingWindow(second, 10)');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    // 0.07 * 100 is 7.000000000000001 in doubles; the rule says 7.
    expect(r.rules.o!.select).toEqual({ d: '(-percentileDisc((-t), 7))', c: 'percentile(t, 7)' });
  });

  for (const seed of [3, 99, 2024]) {
    it(`seed ${seed}: the query, its JSON twin and the oracle from the reference pages give the same rows`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs);
      const b = run(compiled(TWIN), evs);
      expect(a).toEqual(b);
      expect(rounded(byKey(a))).toEqual(rounded(byKey(oracle(evs))));
      // Not vacuous: the percentiles differ from each other and from the interpolated one somewhere.
      expect(a.some((r) => r.a2 !== r.a3)).toBe(true);
      expect(a.some((r) => r.a3 !== r.d3)).toBe(true);
      expect(a.some((r) => r.d0 !== r.a5 || r.a0 !== r.d5)).toBe(false);
    });
  }

  it('a PERCENTILE_DISC form outside the reference is refused with line and column', () => {
    for (const q of [
      'SELECT PERCENTILE_DISC(1.5) OVER (ORDER BY t) AS p INTO o FROM i GROUP BY TumblingWindow(second, 5)',
      'SELECT PERCENTILE_DISC(0.5) OVER (ORDER BY t, u) AS p INTO o FROM i GROUP BY TumblingWindow(second, 5)',
      'SELECT PERCENTILE_DISC(0.5) OVER (PARTITION BY dev ORDER BY t) AS p INTO o FROM i GROUP BY TumblingWindow(second, 5)',
    ]) {
      const r = compileQueryText(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) {
        expect(r.errors[0]!.message).toMatch(/PERCENTILE_DISC/);
        expect(r.errors[0]!.line).toBe(1);
      }
    }
  });
});
