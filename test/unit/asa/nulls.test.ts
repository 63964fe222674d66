import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * docs/asa-migration.md, ASA's null handling, checked against an oracle written from Microsoft's documentation
 * (it shares no code with src/):
 *  - "Except for the COUNT function, aggregate functions ignore null values"
 *    (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics);
 *  - COUNT(*) "returns the number of events, including NULL values", COUNT(expression) "returns the
 *    number of non-null values", COUNT(DISTINCT expression) "the number of unique non-null values"
 *    (https://learn.microsoft.com/stream-analytics-query/count-azure-stream-analytics);
 *  - `expression IS [ NOT ] NULL` in WHERE (https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics);
 *  - an aggregate over no (non-null) value is NULL, as SQL's; STDEV/VAR (sample) of one value is NULL
 *    (T-SQL's STDEV, which ASA's reference mirrors);
 *  - a field missing from an event reads as NULL (ASA reads JSON without a schema).
 * Tumbling windows hold (start, end] and System.Timestamp() is the end (tumbling window reference).
 * Seeded inputs: `t` is a number, JSON null or missing, and some windows hold only nulls.
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const DEVICES = ['d1', 'd2', 'd3'];

interface In { dev: string; ts: number; t: number | null | undefined }

/** Seeded events every 700 ms over 3 devices; d3's t is null or missing during its first 20 s. */
function events(seed: number, count = 240): In[] {
  let x = seed;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  const out: In[] = [];
  for (let k = 0; k < count; k++) {
    const dev = DEVICES[k % 3]!;
    const ts = T0 + 1 + Math.floor(k / 3) * 700 + (k % 3);
    const r = rnd();
    let t: number | null | undefined = Math.round(rnd() * 2000) / 20 - 20;
    if (r < 0.15) t = null;
    else if (r < 0.3) t = undefined;
    if (dev === 'd3' && ts < T0 + 20_000) t = r < 0.5 ? null : undefined;
    out.push({ dev, ts, t });
  }
  return out;
}

/**
 * Runs `evs` through an Engine holding `rules`; with `restartAt`, the engine is checkpointed after that
 * many events (the snapshot through JSON, as the SQLite store keeps it) and a new one restored from it.
 */
function run(rules: CompiledRule[], evs: readonly In[], restartAt = -1): { out: OutputMessage[]; rejected: string[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const make = (): Engine => new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (reason) => rejected.push(reason), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
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
    const body: Record<string, unknown> = { dev: e.dev, ts: e.ts };
    if (e.t !== undefined) body.t = e.t;
    const ev: IngestEvent = { body, deviceId: e.dev, moduleId: 'sensor', input: 'telemetry', arrival: CLOCK0 };
    engine.process([ev]);
  }
  engine.flushWindows();
  return { out, rejected };
}

/** The last row sent per (output, dev, window end): the window's final revision. */
function finalRows(out: readonly OutputMessage[]): Map<string, Record<string, unknown>> {
  const m = new Map<string, Record<string, unknown>>();
  for (const o of out) {
    const b = o.body as Record<string, unknown>;
    m.set(`${o.output} ${String(b.dev)} ${String(b.WindowEnd)}`, b);
  }
  return m;
}

const SIZE = 10_000;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

/** ASA's documented aggregates over the window (start, end] of each device, from the events alone. */
function oracle(evs: readonly In[]): Map<string, Record<string, unknown>> {
  const byWin = new Map<string, In[]>();
  for (const e of evs) {
    const end = Math.ceil(e.ts / SIZE) * SIZE;
    const k = `${e.dev} ${end}`;
    byWin.set(k, [...(byWin.get(k) ?? []), e]);
  }
  const rows = new Map<string, Record<string, unknown>>();
  for (const [k, es] of byWin) {
    const [dev, endS] = k.split(' ') as [string, string];
    const xs = es.map((e) => e.t).filter((t): t is number => typeof t === 'number');
    const n = xs.length;
    const sum = xs.reduce((a, b) => a + b, 0);
    const mean = n === 0 ? null : sum / n;
    const ss = mean === null ? 0 : xs.reduce((a, b) => a + (b - mean) * (b - mean), 0);
    const sorted = [...xs].sort((a, b) => a - b);
    const pos = 0.5 * (n - 1);
    const med = n === 0 ? null : sorted[Math.floor(pos)]! + (sorted[Math.ceil(pos)]! - sorted[Math.floor(pos)]!) * (pos - Math.floor(pos));
    rows.set(`out ${dev} ${iso(Number(endS))}`, {
      dev,
      WindowEnd: iso(Number(endS)),
      n: es.length,
      nt: n,
      nd: new Set(xs).size,
      a: mean,
      s: n === 0 ? null : sum,
      lo: n === 0 ? null : Math.min(...xs),
      hi: n === 0 ? null : Math.max(...xs),
      sd: n < 2 ? null : Math.sqrt(ss / (n - 1)),
      vp: n === 0 ? null : ss / n,
      med,
    });
  }
  return rows;
}

const QUERY = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS n, COUNT(t) AS nt, COUNT(DISTINCT t) AS nd,
  AVG(t) AS a, SUM(t) AS s, MIN(t) AS lo, MAX(t) AS hi, STDEV(t) AS sd, VARP(t) AS vp,
  PERCENTILE_CONT(0.5) OVER (ORDER BY t) AS med
INTO out FROM telemetry TIMESTAMP BY ts
GROUP BY dev, TumblingWindow(second, 10)`;

/** QUERY's JSON twin, written by hand in docs/rules.md's notation. */
const TWIN = {
  out: {
    kind: 'aggregate', input: 'telemetry', groupBy: ['dev'], timestamp: 'ts', nulls: 'skip',
    window: { type: 'tumbling', size: '10s', bounds: '(]' },
    select: { n: 'count()', nt: 'count(t)', nd: 'distinct(t)', a: 'avg(t)', s: 'sum(t)', lo: 'min(t)', hi: 'max(t)', sd: 'stdev(t)', vp: 'varp(t)', med: 'percentile(t, 50)' },
    row: {
      dev: { group: 'dev' }, WindowEnd: { window: 'end' }, n: { select: 'n' }, nt: { select: 'nt' }, nd: { select: 'nd' }, a: { select: 'a' }, s: { select: 's' },
      lo: { select: 'lo' }, hi: { select: 'hi' }, sd: { select: 'sd' }, vp: { select: 'vp' }, med: { select: 'med' },
    },
    output: 'out',
  },
};

// With PERCENTILE_CONT and COUNT(DISTINCT) the window keeps values (the block state); without them
// it keeps the packed state (src/aggregate/packedSelectState.ts): both are checked.
const PACKED_QUERY = QUERY.replace(', COUNT(DISTINCT t) AS nd', '').replace(',\n  PERCENTILE_CONT(0.5) OVER (ORDER BY t) AS med', '');
const { nd: _nd, med: _med, ...packedSelect } = TWIN.out.select;
const { nd: _rnd, med: _rmed, ...packedRow } = TWIN.out.row;
const PACKED_TWIN = { out: { ...TWIN.out, select: packedSelect, row: packedRow } };

function expectRowsClose(got: Map<string, Record<string, unknown>>, want: Map<string, Record<string, unknown>>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) {
    const g = got.get(k)!;
    for (const [col, v] of Object.entries(w)) {
      if (typeof v === 'number' && typeof g[col] === 'number') expect(g[col] as number, `${k} ${col}`).toBeCloseTo(v, 9);
      else expect(g[col], `${k} ${col}`).toEqual(v);
    }
  }
}

describe('ASA null handling (nulls: "skip")', () => {
  it('the compiler gives query rules nulls: "skip" and COUNT(x) as a count of the non-null values of x; a count()-only select stays as it was', () => {
    const r = compileQueryText(QUERY);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.rules.out).toMatchObject({ nulls: 'skip', select: { n: 'count()', nt: 'count((isNull(t) ? null : 1))', nd: 'distinct(t)' } });
    const countOnly = compileQueryText('SELECT COUNT(*) AS n INTO o FROM i GROUP BY TumblingWindow(second, 10)');
    expect(countOnly.ok && countOnly.rules.o!.nulls).toBe(undefined);
  });

  for (const [seed, packed] of [[1, false], [7, false], [42, true], [2026, true], [3, true]] as const) {
    it(`seed ${seed}${packed ? ' (packed state)' : ''}: the query and its JSON twin give identical rows, equal to the documented aggregates`, () => {
      const evs = events(seed);
      const a = run(fromQuery(packed ? PACKED_QUERY : QUERY), evs);
      const b = run(compiled(packed ? PACKED_TWIN : TWIN), evs);
      expect(PACKED_QUERY).not.toContain('DISTINCT');
      expect(a.out.map((m) => m.body)).toEqual(b.out.map((m) => m.body));
      // Every event is in a window: nothing is rejected for a null or missing t.
      expect(a.rejected).toEqual([]);
      const want = oracle(evs);
      if (packed) for (const r of want.values()) {
        delete r.nd;
        delete r.med;
      }
      expectRowsClose(finalRows(a.out), want);
      // The windows of d3 that hold only nulls: COUNT(*) counts them, every other aggregate is NULL (COUNT(t) 0).
      const allNull = [...finalRows(a.out).values()].filter((r) => r.dev === 'd3' && r.nt === 0);
      expect(allNull.length).toBeGreaterThan(0);
      for (const r of allNull) expect(r).toMatchObject({ a: null, s: null, lo: null, hi: null, sd: null, vp: null, ...(packed ? {} : { nd: 0, med: null }) });
      expect((allNull[0]!.n as number) > 0).toBe(true);
    });
  }

  it('a sliding window skips nulls the same way (its buffered items hold the null marker)', () => {
    const evs = events(5, 120);
    const q = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(t) AS nt, AVG(t) AS a INTO out FROM telemetry TIMESTAMP BY ts GROUP BY dev, SlidingWindow(second, 5)`;
    const rows = run(fromQuery(q), evs).out.map((m) => m.body as { dev: string; WindowEnd: string; nt: number; a: number | null });
    expect(rows.length).toBeGreaterThan(50);
    for (const r of rows) {
      const end = Date.parse(r.WindowEnd);
      const xs = evs.filter((e) => e.dev === r.dev && e.ts > end - 5_000 && e.ts <= end).map((e) => e.t).filter((t): t is number => typeof t === 'number');
      expect(r.nt).toBe(xs.length);
      if (xs.length === 0) expect(r.a).toBe(null);
      else expect(r.a).toBeCloseTo(xs.reduce((x, y) => x + y, 0) / xs.length, 9);
    }
  });

  it('a checkpoint taken mid-run (through JSON) restores the null counts and markers: the rows are those of an uninterrupted run', () => {
    const evs = events(11, 150);
    const sliding = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(t) AS nt, AVG(t) AS a, MIN(t) AS lo INTO s FROM telemetry TIMESTAMP BY ts GROUP BY dev, SlidingWindow(second, 5)`;
    for (const q of [PACKED_QUERY, QUERY, sliding]) {
      const whole = run(fromQuery(q), evs);
      const restarted = run(fromQuery(q), evs, 77);
      expect(whole.out.length).toBeGreaterThan(10);
      expect(restarted.out.map((m) => m.body)).toEqual(whole.out.map((m) => m.body));
    }
  });

  it('a numeric CASE testing an aggregate for NULL (CASE WHEN AVG(t) IS NULL THEN 0 ELSE AVG(t) END) gives 0 for a window without values', () => {
    const evs = events(13);
    const q = `SELECT dev, System.Timestamp() AS WindowEnd, CASE WHEN AVG(t) IS NULL THEN 0 ELSE AVG(t) END AS a0, COUNT(t) AS nt INTO out FROM telemetry TIMESTAMP BY ts GROUP BY dev, TumblingWindow(second, 10)`;
    const got = finalRows(run(fromQuery(q), evs).out);
    const want = oracle(evs);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    let zeros = 0;
    for (const [k, w] of want) {
      const g = got.get(k)!;
      expect(g.nt).toBe(w.nt);
      if (w.a === null) {
        zeros++;
        expect(g.a0).toBe(0);
      } else expect(g.a0 as number).toBeCloseTo(w.a as number, 9);
    }
    expect(zeros).toBeGreaterThan(0);
  });

  it('IS NULL inside an aggregate argument: AVG(CASE WHEN t IS NULL THEN 0 ELSE t END) counts a missing t as 0', () => {
    const evs = events(21);
    const q = `SELECT dev, System.Timestamp() AS WindowEnd, AVG(CASE WHEN t IS NULL THEN 0 ELSE t END) AS a0, SUM(t) AS s INTO out FROM telemetry TIMESTAMP BY ts GROUP BY dev, TumblingWindow(second, 10)`;
    const got = finalRows(run(fromQuery(q), evs).out);
    const want = oracle(evs);
    expect(got.size).toBe(want.size);
    for (const [k, w] of want) {
      // Every event has a value for the CASE (0 when t is null or missing): the average is over all n events.
      expect(got.get(k)!.a0 as number, k).toBeCloseTo(((w.s as number | null) ?? 0) / (w.n as number), 9);
    }
  });

  it('IS NULL / IS NOT NULL in WHERE and HAVING', () => {
    const evs = events(3);
    const q = `SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS gaps INTO gaps FROM telemetry TIMESTAMP BY ts WHERE t IS NULL GROUP BY dev, TumblingWindow(second, 10)
SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS n INTO empty FROM telemetry TIMESTAMP BY ts GROUP BY dev, TumblingWindow(second, 10) HAVING AVG(t) IS NULL
SELECT dev, System.Timestamp() AS WindowEnd, COUNT(*) AS n INTO valued FROM telemetry TIMESTAMP BY ts WHERE t IS NOT NULL AND t > 50 GROUP BY dev, TumblingWindow(second, 10)`;
    const got = finalRows(run(fromQuery(q), evs).out);
    const want = new Map<string, Record<string, unknown>>();
    const win = (e: In): number => Math.ceil(e.ts / SIZE) * SIZE;
    const add = (out: string, e: In, col: string): void => {
      const k = `${out} ${e.dev} ${iso(win(e))}`;
      const r = want.get(k) ?? { dev: e.dev, WindowEnd: iso(win(e)), [col]: 0 };
      r[col] = (r[col] as number) + 1;
      want.set(k, r);
    };
    for (const e of evs) {
      if (e.t === null || e.t === undefined) add('gaps', e, 'gaps');
      if (typeof e.t === 'number' && e.t > 50) add('valued', e, 'n');
    }
    const o = oracle(evs);
    for (const r of o.values()) if (r.a === null) want.set(`empty ${String(r.dev)} ${String(r.WindowEnd)}`, { dev: r.dev, WindowEnd: r.WindowEnd, n: r.n });
    expect([...want.keys()].some((k) => k.startsWith('empty '))).toBe(true);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  });

  it('a JSON rule without nulls keeps eddy\'s contract: an event whose t is missing or null is rejected for the rule', () => {
    const evs = events(9, 60);
    const plain = { out: { ...TWIN.out, nulls: undefined, select: { n: 'count()', nt: 'count(t)', a: 'avg(t)' }, row: { dev: { group: 'dev' }, WindowEnd: { window: 'end' }, n: { select: 'n' }, nt: { select: 'nt' }, a: { select: 'a' } } } };
    delete (plain.out as Record<string, unknown>).nulls;
    const { out, rejected } = run(compiled(plain), evs);
    const bad = evs.filter((e) => typeof e.t !== 'number');
    expect(rejected.length).toBe(bad.length);
    expect(rejected.filter((r) => r === 'missing-field').length).toBe(bad.filter((e) => e.t === undefined).length);
    expect(rejected.filter((r) => r === 'not-a-number').length).toBe(bad.filter((e) => e.t === null).length);
    for (const r of finalRows(out).values()) expect(r.n).toBe(r.nt);
  });
});
