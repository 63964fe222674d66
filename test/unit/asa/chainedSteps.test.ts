import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { fromQuery } from '../../helpers/asaQueries.js';
import { runStage, type OracleRow, type OracleStage } from '../../oracle/chainOracle.js';

/*
 * docs/asa-migration.md: a statement that aggregates again the rows of an aggregating WITH step (an aggregate of
 * aggregates) compiles to a rule with `from` (docs/rules.md "Rules over the rows of a rule"). The
 * oracle is test/oracle/chainOracle.ts, written from ASA's window documentation: windows hold
 * (start, end], a windowed row's time is its window end.
 */
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const CLOCK0 = T0 + 86_400_000;

function run(rules: CompiledRule[], events: readonly Record<string, unknown>[], input = 'input'): Record<string, unknown>[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r, rule) => rejected.push(`${rule}:${r}`), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  for (const e of events) engine.process([{ body: { ...e }, deviceId: String(e.dev ?? 'x'), moduleId: 'm', input, arrival: CLOCK0 }]);
  // Removing the rules finishes them: the step's last windows go downstream, the open windows out.
  engine.setRules([]);
  expect(rejected).toEqual([]);
  return out.map((m) => ({ output: m.output, ...(m.body as Record<string, unknown>) }));
}

const iso = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;

describe('WITH step rows aggregated again (rule chaining)', () => {
  const QUERY = `WITH step AS (SELECT dev, AVG(t) AS a FROM input TIMESTAMP BY ts GROUP BY dev, TumblingWindow(second,10))
SELECT dev, MAX(a) AS m, COUNT(*) AS n, System.Timestamp() AS t INTO out FROM step GROUP BY dev, TumblingWindow(minute,1)`;

  it('compiles the step to the rule`s from, the statement to the rule over its rows', () => {
    const r = compileQueryText(QUERY);
    expect(r).toEqual({
      ok: true,
      rules: {
        out: {
          kind: 'aggregate',
          from: { kind: 'aggregate', input: 'input', groupBy: ['dev'], timestamp: 'ts', window: { type: 'tumbling', size: 10_000, bounds: '(]' }, select: { a: 'avg(t)' }, row: { dev: { group: 'dev' }, a: { select: 'a' } }, nulls: 'skip' },
          groupBy: ['dev'],
          window: { type: 'tumbling', size: 60_000, bounds: '(]' },
          select: { m: 'max(a)', n: 'count()' },
          row: { dev: { group: 'dev' }, m: { select: 'm' }, n: { select: 'n' }, t: { window: 'end' } },
          output: 'out',
          nulls: 'skip',
        },
      },
    });
  });

  it('gives the rows of two-stage aggregation on seeded input (out of order within the lateness)', () => {
    let x = 99;
    const rnd = (): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x / 4294967296;
    };
    const events = Array.from({ length: 600 }, (_, k) => ({ dev: `d${k % 3}`, ts: T0 + Math.floor(k / 3) * 900 + Math.round((rnd() - 0.5) * 4_000), t: Math.round(rnd() * 1_000) / 10 }));
    const rows = run(fromQuery(QUERY), events.map((e) => ({ ...e, ts: new Date(e.ts).toISOString() })));
    const stage1: OracleStage<(typeof events)[number]> = { window: { size: 10_000, bounds: '(]' }, key: (e) => e.dev, time: (e) => e.ts, select: { a: { fn: 'avg', of: (e) => e.t } } };
    const stage2: OracleStage<OracleRow> = { window: { size: 60_000, bounds: '(]' }, key: (r) => r.key, time: (r) => r.end, select: { m: { fn: 'max', of: (r) => r.values.a! }, n: { fn: 'count', of: () => 1 } } };
    const want = runStage(stage2, runStage(stage1, events)).map((r) => ({ output: 'out', dev: r.key, m: r.values.m, n: r.values.n, t: iso(r.end) }));
    // The last row of each window (a late upstream row could revise one; here none is late).
    const last = new Map<string, Record<string, unknown>>();
    for (const r of rows) last.set(`${String(r.dev)} ${String(r.t)}`, r);
    expect([...last.keys()].sort()).toEqual(want.map((w) => `${w.dev} ${w.t}`).sort());
    for (const w of want) {
      const got = last.get(`${w.dev} ${w.t}`)!;
      expect({ ...got, m: 0 }).toEqual({ ...w, m: 0 });
      expect(got.m as number).toBeCloseTo(w.m!, 9);
    }
    expect(rows.length).toBeGreaterThanOrEqual(12);
  });

  it("compiles Microsoft's snapshot example over a tumbling step (users per topic and 30-minute interval)", () => {
    // https://learn.microsoft.com/stream-analytics-query/snapshot-window-azure-stream-analytics, "Tumbling
    // window snapshot example", with the step's COUNT(*) named by AS and SnapshotWindow() for System.Timestamp().
    const q = `WITH PerInterval AS (
    SELECT Topic, User, COUNT(*) AS count
    FROM TwitterStream TIMESTAMP BY CreatedAt
    GROUP BY Topic, User, TumblingWindow(minute, 30)
)
SELECT Topic, COUNT(*) AS Users, SUM(count) AS Total, System.Timestamp() AS t
INTO UserTopicsCount FROM PerInterval
GROUP BY Topic, SnapshotWindow()`;
    const at = (min: number): string => new Date(T0 + min * 60_000).toISOString();
    const tweets = [
      { Topic: 'a', User: 'u1', CreatedAt: at(1) },
      { Topic: 'a', User: 'u1', CreatedAt: at(2) },
      { Topic: 'a', User: 'u2', CreatedAt: at(29) },
      { Topic: 'b', User: 'u1', CreatedAt: at(10) },
      { Topic: 'a', User: 'u3', CreatedAt: at(31) },
      // Moves every group's watermark past the first interval's end + lateness (the rows become final).
      { Topic: 'a', User: 'u1', CreatedAt: at(45) },
      { Topic: 'a', User: 'u2', CreatedAt: at(45) },
      { Topic: 'b', User: 'u1', CreatedAt: at(45) },
      { Topic: 'a', User: 'u3', CreatedAt: at(45) },
    ].map((e) => ({ ...e, dev: e.User }));
    const rows = run(fromQuery(q), tweets, 'TwitterStream');
    const byTime = (a: Record<string, unknown>, b: Record<string, unknown>): number => `${String(a.t)}${String(a.Topic)}`.localeCompare(`${String(b.t)}${String(b.Topic)}`);
    expect(rows.sort(byTime)).toEqual([
      { output: 'UserTopicsCount', Topic: 'a', Users: 2, Total: 3, t: iso(T0 + 30 * 60_000) },
      { output: 'UserTopicsCount', Topic: 'b', Users: 1, Total: 1, t: iso(T0 + 30 * 60_000) },
      { output: 'UserTopicsCount', Topic: 'a', Users: 3, Total: 4, t: iso(T0 + 60 * 60_000) },
      { output: 'UserTopicsCount', Topic: 'b', Users: 1, Total: 1, t: iso(T0 + 60 * 60_000) },
    ]);
  });

  it.each([
    ['TIMESTAMP BY over the rows', `WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, TumblingWindow(second, 10))\nSELECT MAX(a) AS m INTO o FROM s TIMESTAMP BY ts GROUP BY TumblingWindow(minute, 1)`, 2, 47, /^TIMESTAMP BY on WITH step "s" is not supported yet/],
    ['a column the step does not have', `WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, TumblingWindow(second, 10))\nSELECT MAX(t) AS m INTO o FROM s GROUP BY TumblingWindow(minute, 1)`, 2, 12, /^column t is not supported yet: WITH step "s" has no column t \(its columns: dev, a\)/],
    ['three stages', `WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, TumblingWindow(second, 10)),\n s2 AS (SELECT dev, MAX(a) AS m FROM s GROUP BY dev, TumblingWindow(minute, 1))\nSELECT MIN(m) AS x INTO o FROM s2 GROUP BY TumblingWindow(hour, 1)`, 1, 52, /^GROUP BY in a WITH step is not supported yet/],
    ['a hopping step with a sliding statement over it is fine, a session step is not', `WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, SessionWindow(second, 10, 60))\nSELECT MAX(a) AS m INTO o FROM s GROUP BY TumblingWindow(minute, 1)`, 1, 57, /^a session window in WITH step "s" whose rows another statement aggregates is not supported yet/],
  ])('refuses %s with line and column', (_name, q, line, column, message) => {
    const r = compileQueryText(q);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ line, column });
    expect(r.errors[0]!.message).toMatch(message);
  });

  it('compiles a step read through a per-event step, and a step read by a per-event and an aggregating statement', () => {
    const r = compileQueryText(`WITH agg AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, TumblingWindow(second, 10)),
  hot AS (SELECT dev, a AS hotA FROM agg WHERE a > 50)
SELECT dev, COUNT(*) AS hotWindows INTO perMinute FROM hot GROUP BY dev, TumblingWindow(minute, 1);
SELECT dev, a INTO raw FROM agg WHERE a > 90`);
    expect(r).toMatchObject({
      ok: true,
      rules: {
        // The per-event step's WHERE on an aggregate is the step rule's HAVING: only its rows go on.
        perMinute: { from: { select: { hotA: 'avg(t)' }, having: '(hotA > 50)', row: { dev: { group: 'dev' }, hotA: { select: 'hotA' } } }, groupBy: ['dev'], select: { hotWindows: 'count()' } },
        raw: { input: 'i', having: '(a > 90)' },
      },
    });
  });

  it('compiles a hopping step read by a sliding statement', () => {
    const r = fromQuery(`WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, HoppingWindow(second, 10, 5))\nSELECT dev, MAX(a) AS m INTO o FROM s GROUP BY dev, SlidingWindow(minute, 1)`);
    expect(r[0]).toMatchObject({ kind: 'aggregate', input: 'i', window: { type: 'sliding' }, upstream: { window: { type: 'hopping', size: 10_000, hop: 5_000 } } });
  });
});
