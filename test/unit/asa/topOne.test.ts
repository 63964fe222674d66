import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md: TopOne. The oracle is written from Microsoft's pages alone (it imports nothing of src/):
 * - TopOne (https://learn.microsoft.com/stream-analytics-query/topone-azure-stream-analytics): "Returns
 *   the top-rank record, where rank defines the ranking position of the event in the window according to
 *   the specified ordering"; "Without the parameter, full event record is returned"; the aggregate form
 *   `TopOne() OVER (ORDER BY (<column name> [ASC |DESC])+)` with GROUP BY a window.
 * - ORDER BY's default is ascending (as every ASA ORDER BY); "Null is treated as the minimal value"
 *   (CollectTop, the same ranking: https://learn.microsoft.com/stream-analytics-query/collecttop-azure-stream-analytics).
 * - The pages do not say which of two events tied on every key is the top one: eddy keeps the one that
 *   arrived first (docs/asa-migration.md), and so does the oracle (a stable sort).
 * Tumbling windows hold (start, end].
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVS = ['d1', 'd2'];

interface In { dev: string; ts: number; seq: number; value: number | null; note: string }

function events(seed: number, count = 300): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  let ts = T0;
  return Array.from({ length: count }, (_, seq) => {
    ts += 1 + Math.floor(rnd() * 400);
    // Few distinct values: ties on value are common, broken by seq (or, for ASC-only, by arrival).
    const value = rnd() < 0.1 ? null : Math.floor(rnd() * 6);
    return { dev: DEVS[Math.floor(rnd() * DEVS.length)]!, ts, seq: Math.floor(rnd() * 4), value, note: `e${seq}` };
  });
}

/** Runs the events; at `restartAt` the engine is checkpointed through JSON and a new one restored from it. */
function run(rules: CompiledRule[], evs: readonly In[], restartAt = -1): Record<string, unknown>[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const make = (): Engine => new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  let engine = make();
  engine.setRules(rules);
  for (const [i, e] of evs.entries()) {
    if (i === restartAt) {
      const saved = JSON.stringify([...engine.snapshot()]);
      engine.close();
      engine = make();
      engine.restore(new Map(JSON.parse(saved) as [string, RuleSnapshot][]));
      engine.setRules(rules);
    }
    engine.process([{ body: { ...e }, deviceId: 'gw', moduleId: 'sensor', input: 'i', arrival: CLOCK0 }]);
  }
  engine.flushWindows();
  return out.map((m) => m.body as Record<string, unknown>);
}

const QUERY = `SELECT dev, System.Timestamp() AS WindowEnd,
  TopOne() OVER (ORDER BY value DESC, seq) AS top,
  TopOne() OVER (ORDER BY value) AS low,
  COUNT(*) AS n
INTO o FROM i TIMESTAMP BY ts
GROUP BY dev, TumblingWindow(second, 5)`;

/** QUERY's twin, written by hand in docs/rules.md's notation. */
const TWIN = {
  o: {
    kind: 'aggregate', input: 'i', groupBy: ['dev'], timestamp: 'ts', nulls: 'skip',
    window: { type: 'tumbling', size: '5s', bounds: '(]' },
    select: { top: 'topOne(value, "desc", seq)', low: 'topOne(value)', n: 'count()' },
    row: { dev: { group: 'dev' }, WindowEnd: { window: 'end' }, top: { select: 'top' }, low: { select: 'low' }, n: { select: 'n' } },
    output: 'o',
  },
};

type Key = { get: (e: In) => number | null; desc: boolean };

/** The first event of `evs` in ORDER BY order: a stable sort, null below every number. */
function first(evs: readonly In[], keys: readonly Key[]): In {
  const cmp = (a: In, b: In): number => {
    for (const k of keys) {
      const x = k.get(a);
      const y = k.get(b);
      if (x === y) continue;
      const up = x === null ? -1 : y === null ? 1 : x - y;
      return k.desc ? -up : up;
    }
    return 0;
  };
  return [...evs].sort(cmp)[0]!;
}

function oracle(evs: readonly In[]): Record<string, unknown>[] {
  const wins = new Map<string, In[]>();
  for (const e of evs) {
    const k = `${Math.ceil(e.ts / 5_000) * 5_000} ${e.dev}`;
    wins.set(k, [...(wins.get(k) ?? []), e]);
  }
  return [...wins.entries()].map(([k, w]) => {
    const [end, dev] = k.split(' ') as [string, string];
    return {
      dev, WindowEnd: new Date(Number(end)).toISOString().replace('Z', '0000Z'),
      top: first(w, [{ get: (e) => e.value, desc: true }, { get: (e) => e.seq, desc: false }]),
      low: first(w, [{ get: (e) => e.value, desc: false }]),
      n: w.length,
    };
  });
}

const byKey = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => `${String(a.WindowEnd)} ${String(a.dev)}`.localeCompare(`${String(b.WindowEnd)} ${String(b.dev)}`));

describe('TopOne', () => {
  it("compiles the reference page's example to topOne, whose value is the whole event", () => {
    const r = compileQueryText('SELECT TopOne() OVER (ORDER BY value DESC) as topEvent FROM input GROUP BY Tumbling(second, 10)');
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.output).toMatchObject({ select: { topEvent: 'topOne(value, "desc")' }, row: { topEvent: { select: 'topEvent' } } });
  });

  for (const seed of [8, 64, 777]) {
    it(`seed ${seed}: the query, its JSON twin and the oracle from the reference pages give the same rows`, () => {
      const evs = events(seed);
      const a = run(fromQuery(QUERY), evs);
      const b = run(compiled(TWIN), evs);
      expect(a).toEqual(b);
      expect(byKey(a)).toEqual(byKey(oracle(evs)));
      // Not vacuous: ties on value broken by seq, and a null value ranking lowest (the ASC top).
      expect(a.some((r) => (r.low as In).value === null)).toBe(true);
      expect(a.some((r) => (r.low as In).value !== null)).toBe(true);
      expect(a.length).toBeGreaterThan(10);
    });
  }

  it('a checkpoint taken mid-run (through JSON) keeps the top event: the rows are those of an uninterrupted run', () => {
    const evs = events(31, 200);
    const sliding = QUERY.replace('TumblingWindow(second, 5)', 'SlidingWindow(second, 3)');
    for (const q of [QUERY, sliding]) {
      const whole = run(fromQuery(q), evs);
      expect(whole.length).toBeGreaterThan(10);
      expect(run(fromQuery(q), evs, 97)).toEqual(whole);
    }
  });

  it('refuses a projection and the analytic form, with line and column; topOne inside arithmetic is refused at validation', () => {
    for (const [q, msg] of [
      ['SELECT TopOne(x * y) OVER (ORDER BY value DESC) AS t INTO o FROM i GROUP BY TumblingWindow(second, 10)', /TopOne with a projection is not supported yet/],
      ['SELECT TopOne() OVER (PARTITION BY dev ORDER BY value LIMIT DURATION(minute, 1)) AS t INTO o FROM i GROUP BY TumblingWindow(second, 10)', /TopOne as an analytic function/],
    ] as const) {
      const r = compileQueryText(q);
      expect(r.ok, q).toBe(false);
      if (!r.ok) {
        expect(r.errors[0]!.message).toMatch(msg);
        expect(r.errors[0]!.line).toBe(1);
      }
    }
    const bad = compileRule('bad', { ...TWIN.o, select: { top: 'topOne(value) + 1' }, row: { top: { select: 'top' } } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/bad\.select\.top: topOne\(\.\.\.\) must be the whole select expression/);
  });
});
