import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../src/rules/engine.js';
import type { IngestEvent } from '../../src/contracts/event.js';
import { compileQueryText } from '../../src/asa/compileQuery.js';
import { mulberry32 } from '../../src/util/mulberry32.js';
import { fromQuery } from '../helpers/asaQueries.js';
import {
  asaRows, passRows, passText, queryText, EDDY_DOCUMENTED,
  type AsaEvent, type Cond, type Having, type PassSpec, type QuerySpec, type Row, type WindowSpec,
} from './asaSemanticsOracle.js';

/*
 * eddy's ASA compiler and engine against an oracle written from Microsoft's ASA query reference
 * (test/oracle/asaSemanticsOracle.ts, which cites the page of each rule it encodes and applies only the
 * differences docs/asa-migration.md documents). Seeded random queries of one family (tumbling or hopping
 * GROUP BY, with or without a device key, every aggregate of the aggregate-functions page, WHERE in
 * three-valued logic, HAVING, a CASE column) over seeded events whose fields are numbers (small, negative,
 * fractional, around 1e12), JSON null, missing, strings and booleans.
 */
const T0 = Date.UTC(2026, 2, 1, 6, 0, 0);
const CLOCK0 = T0 + 86_400_000;

/** Seeded inputs, so each case is reproducible from its seed (src/util/mulberry32.ts). */
const prng = mulberry32;

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** A numeric field: mostly numbers (some around 1e12), sometimes null or missing; `odd` adds strings and booleans. */
function value(rnd: () => number, odd: boolean): unknown {
  const r = rnd();
  if (r < 0.12) return null;
  if (r < 0.24) return undefined;
  if (odd && r < 0.28) return pick(rnd, ['21.5', 'abc', '', true, false]);
  if (r < 0.34) return 1e12 + Math.round(rnd() * 1000) / 4;
  if (r < 0.4) return pick(rnd, [0, -0.5, 7, 7, 7]);
  return Math.round((rnd() * 200 - 50) * 100) / 100;
}

/**
 * `tag` values come from their own PRNG (`tagSeed`), so adding them left every other field of a seed's
 * events as it was: numbers, their strings, booleans and the string of one, null, missing.
 */
function events(rnd: () => number, count: number, oddX: boolean, tagSeed = 1): AsaEvent[] {
  const tagRnd = prng(tagSeed * 65537 + 11);
  const out: AsaEvent[] = [];
  let ts = T0;
  for (let i = 0; i < count; i++) {
    // In time order, often on a whole second (a window's end) and sometimes several at one time.
    const step = pick(rnd, [0, 250, 1000, 1000, 2000, 3700]);
    ts += step;
    const r = rnd();
    const dev = r < 0.04 ? null : r < 0.07 ? undefined : pick(rnd, ['d1', 'd2', 'd3']);
    const ev: Record<string, unknown> & { ts: number; conn: string } = { ts, conn: pick(rnd, ['sensorA', 'sensorB']) };
    if (dev !== undefined) ev.dev = dev;
    const x = value(rnd, oddX);
    if (x !== undefined) ev.x = x;
    const y = value(rnd, false);
    if (y !== undefined) ev.y = y;
    const c = pick(rnd, [null, undefined, 'on', 'off', '', 3, true, false, { k: 1 }]);
    if (c !== undefined) ev.c = c;
    const s = pick(rnd, [null, undefined, 'on', 'off', '']);
    if (s !== undefined) ev.s = s;
    const tag = pick(tagRnd, [null, undefined, 'on', 'off', '', '3', 3, 0, -0, 2.5, true, false, 'true', 'd1']);
    if (tag !== undefined) ev.tag = tag;
    out.push(ev as AsaEvent);
  }
  return out;
}

function cond(rnd: () => number, depth: number): Cond {
  const r = rnd();
  if (depth < 2 && r < 0.3) return { op: pick(rnd, ['and', 'or'] as const), a: cond(rnd, depth + 1), b: cond(rnd, depth + 1) };
  if (depth < 2 && r < 0.4) return { op: 'not', a: cond(rnd, depth + 1) };
  if (r < 0.5) return { op: 'cmp', field: 'y', rel: pick(rnd, ['>', '<=', '='] as const), value: pick(rnd, [0, 7, 25, 60]) };
  if (r < 0.6) return { op: 'arith', value: pick(rnd, [5, 40]) };
  if (r < 0.7) return { op: 'caseOn', value: pick(rnd, [-1, 10]) };
  if (r < 0.85) return { op: 'streq', field: 's', neg: rnd() < 0.5, value: pick(rnd, ['on', 'off']) };
  return { op: 'isnull', field: pick(rnd, ['x', 'y'] as const), neg: rnd() < 0.5 };
}

function query(rnd: () => number): QuerySpec {
  const offset = rnd() < 0.7 ? 0 : pick(rnd, [-1, -250, 1000]);
  const r = rnd();
  const window: WindowSpec = r < 0.4
    ? { kind: 'tumbling', size: pick(rnd, [5000, 10000, 30000]), offset }
    : r < 0.75
      ? { ...pick(rnd, [{ size: 10000, hop: 5000 }, { size: 30000, hop: 10000 }, { size: 20000, hop: 5000 }, { size: 10000, hop: 3000 }]), kind: 'hopping', offset }
      : { kind: 'sliding', size: pick(rnd, [2000, 5000, 10000]) };
  const having: Having | null = pick(rnd, [
    null, null,
    { op: 'countAtLeast', k: pick(rnd, [2, 3]) },
    { op: 'avgAbove', value: pick(rnd, [10, 40]) },
    { op: 'rangeAtLeast', value: pick(rnd, [20, 100]) },
    { op: 'noAvgOrCount', k: 3 },
    { op: 'notAvgAbove', value: 20 },
  ] as const);
  return {
    window,
    group: pick(rnd, ['dev', 'dev', 'conn', null] as const),
    where: rnd() < 0.6 ? cond(rnd, 0) : null,
    having,
    caseAt: rnd() < 0.6 ? pick(rnd, [0, 30]) : null,
  };
}

/**
 * Runs `evs` through an Engine holding the compiled query; the last revision of each row, keyed as the
 * oracle keys them. `isoTs`: the events carry `ts` as an ISO 8601 string, as a datetime in JSON.
 */
function eddyRows(q: QuerySpec, evs: readonly AsaEvent[], isoTs = false): Map<string, Row> {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const rows = new Map<string, Row>();
  const engine = new Engine({
    scheduler,
    emit: (ms) => {
      for (const m of ms) {
        const b = m.body as Row;
        const key = q.group === 'dev' ? String(b.dev) : q.group === 'conn' ? String(b.ConnectionDeviceId) : '*';
        rows.set(`${key}|${String(b.WindowEnd)}`, b);
      }
    },
    observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined },
    tickIntervalMs: 0,
  });
  engine.setRules(fromQuery(queryText(q)));
  for (const { conn, ...body } of evs) {
    const ev: IngestEvent = { body: isoTs ? { ...body, ts: new Date(body.ts).toISOString() } : body, deviceId: conn, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 };
    engine.process([ev]);
  }
  engine.flushWindows();
  engine.close();
  return rows;
}

/** Equal as ASA's JSON values: numbers to a relative 1e-9 (sums of a different order), the rest exactly. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return a === b;
}

function mismatches(want: Map<string, Row>, got: Map<string, Row>): string[] {
  const out: string[] = [];
  for (const [k, w] of want) {
    const g = got.get(k);
    if (g === undefined) { out.push(`missing row ${k}: ${JSON.stringify(w)}`); continue; }
    const cols = new Set([...Object.keys(w), ...Object.keys(g)]);
    for (const c of cols) if (!same(w[c], g[c])) out.push(`${k} ${c}: oracle ${JSON.stringify(w[c])}, eddy ${JSON.stringify(g[c])}`);
  }
  for (const [k, g] of got) if (!want.has(k)) out.push(`extra row ${k}: ${JSON.stringify(g)}`);
  return out;
}

const SEEDS = Array.from({ length: 120 }, (_, i) => i + 1);

/** Seed `seed`'s query and events; odd seeds' `x` is a number, null or missing, even seeds' also a string or boolean. */
function seedCase(seed: number): { q: QuerySpec; evs: AsaEvent[] } {
  const rnd = prng(seed * 7919);
  const q = query(rnd);
  return { q, evs: events(rnd, 160, seed % 2 === 0, seed) };
}

describe('ASA query semantics: eddy against an oracle from the ASA reference', () => {
  it.each(SEEDS)('seed %i', (seed) => {
    const { q, evs } = seedCase(seed);
    expect(mismatches(asaRows(q, evs), eddyRows(q, evs, seed % 3 === 0)), queryText(q)).toEqual([]);
  });

  it('the seeded cases are not vacuous: most give rows, and the documented differences decide some', () => {
    const sizes = SEEDS.map((seed) => { const { q, evs } = seedCase(seed); return asaRows(q, evs).size; });
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(90);
    // With a documented difference switched off the oracle disagrees with eddy on some seed: the inputs
    // reach both (strings and booleans in x), so the comparison above checks them. Rejecting the events
    // without dev, as a rule without `nulls: "skip"` would, disagrees too: they reach the NULL group.
    for (const off of [{ rejectNonNumeric: false }, { rejectMissingGroup: true }]) {
      const differing = SEEDS.filter((seed) => {
        const { q, evs } = seedCase(seed);
        return mismatches(asaRows(q, evs, { ...EDDY_DOCUMENTED, ...off }), eddyRows(q, evs)).length > 0;
      });
      expect(differing.length, JSON.stringify(off)).toBeGreaterThan(0);
    }
    // COUNT(DISTINCT tag) meets strings and booleans in rows the comparison checks: counting numbers
    // alone would give another dt on some rows of most seeds.
    const stringsDecide = SEEDS.filter((seed) => {
      const { q, evs } = seedCase(seed);
      const rows = asaRows(q, evs.map((e) => (typeof e.tag === 'number' ? e : { ...e, tag: null })));
      return [...asaRows(q, evs)].some(([k, r]) => rows.get(k)?.dt !== r.dt);
    });
    expect(stringsDecide.length).toBeGreaterThanOrEqual(100);
  });

  it('COUNT(DISTINCT expression) counts unique non-null values of any type, the event kept for the other aggregates', () => {
    // COUNT reference: COUNT(DISTINCT expression) "the number of unique non-null values", "an expression of any type".
    const q: QuerySpec = { window: { kind: 'tumbling', size: 10000, offset: 0 }, group: 'dev', where: null, having: null, caseAt: null };
    const tags: unknown[] = ['on', 'on', 3, '3', true, 'true', false, -0, 0, null, undefined];
    const evs: AsaEvent[] = tags.map((tag, i) => ({ ts: T0 + 500 * (i + 1), conn: 's', dev: 'd1', x: i, ...(tag === undefined ? {} : { tag }) }));
    const got = eddyRows(q, evs);
    expect(got.get('d1|2026-03-01T06:00:10.0000000Z')).toMatchObject({ n: 11, nx: 11, dt: 7, total: 55 });
    expect(mismatches(asaRows(q, evs), got)).toEqual([]);
  });

  it('COUNT(expression) counts non-null values of any type: strings, booleans and records too', () => {
    // COUNT reference: "Is an expression of any type"; "returns the number of non-null values".
    const q: QuerySpec = { window: { kind: 'tumbling', size: 10000, offset: 0 }, group: 'dev', where: null, having: null, caseAt: null };
    const evs: AsaEvent[] = [
      { ts: T0 + 1000, conn: 's', dev: 'd1', x: 1, c: 'on' },
      { ts: T0 + 2000, conn: 's', dev: 'd1', x: 2, c: true },
      { ts: T0 + 3000, conn: 's', dev: 'd1', x: 3, c: { k: 1 } },
      { ts: T0 + 4000, conn: 's', dev: 'd1', x: 4, c: null },
      { ts: T0 + 5000, conn: 's', dev: 'd1', x: 5 },
      { ts: T0 + 6000, conn: 's', dev: 'd1', c: 0 },
    ];
    const got = eddyRows(q, evs);
    expect(got.get('d1|2026-03-01T06:00:10.0000000Z')).toMatchObject({ n: 6, nc: 4, nx: 5 });
    expect(mismatches(asaRows(q, evs), got)).toEqual([]);
  });
});

/** Runs `evs` through an Engine holding the compiled statement without GROUP BY; its rows in order. */
function eddyPassRows(q: PassSpec, evs: readonly AsaEvent[]): Row[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const rows: Row[] = [];
  const engine = new Engine({
    scheduler,
    emit: (ms) => { for (const m of ms) rows.push(m.body as Row); },
    observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined },
    tickIntervalMs: 0,
  });
  engine.setRules(fromQuery(passText(q)));
  for (const { conn, ...body } of evs) engine.process([{ body, deviceId: conn, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }]);
  engine.close();
  return rows;
}

const PASS_SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

function passCase(seed: number): { q: PassSpec; evs: AsaEvent[] } {
  const rnd = prng(seed * 104729);
  const q: PassSpec = { where: rnd() < 0.8 ? cond(rnd, 0) : null, caseAt: pick(rnd, [0, 5, 40]) };
  return { q, evs: events(rnd, 120, true) };
}

describe('ASA statements without GROUP BY: eddy against the oracle', () => {
  it('the documented boolean rejection decides some seeds', () => {
    const off = { ...EDDY_DOCUMENTED, rejectBoolVsNumber: false };
    expect(PASS_SEEDS.filter((seed) => { const { q, evs } = passCase(seed); return passRows(q, evs, off).length !== eddyPassRows(q, evs).length; }).length).toBeGreaterThan(0);
  });

  it.each(PASS_SEEDS)('seed %i', (seed) => {
    const { q, evs } = passCase(seed);
    const want = passRows(q, evs);
    const got = eddyPassRows(q, evs);
    expect(got.length, passText(q)).toBe(want.length);
    const diffs = want.flatMap((w, i) => Object.keys(w).filter((k) => !same(w[k], got[i]![k]) && JSON.stringify(w[k]) !== JSON.stringify(got[i]![k])).map((k) => `row ${i} ${k}: oracle ${JSON.stringify(w[k])}, eddy ${JSON.stringify(got[i]![k])}`));
    expect(diffs, passText(q)).toEqual([]);
    expect(got.map((r) => Object.keys(r))).toEqual(want.map((r) => Object.keys(r)));
  });
});

describe('ASA compiler regressions found by the oracle', () => {
  it("a simple CASE's WHENs of another type than its input are unequal, not a rejected event", () => {
    // CASE reference: "The types of the when_expressions do not necessarily have to match".
    const q: PassSpec = { where: null, caseAt: 0 };
    const evs: AsaEvent[] = ['on', 3, 'x', { k: 1 }, null].map((c, i) => ({ ts: T0 + 1000 * (i + 1), conn: 's', c }));
    expect(eddyPassRows(q, evs).map((r) => r.kc)).toEqual([1, 2, 0, 0, 0]);
  });
  it("a sliding window's System.Timestamp() is the time its content changed, not 1 ms later", () => {
    // Sliding window reference: output "when an event entered or exits the window"; the window at p
    // holds (p - 10 s, p]. Events at 3 s, 5 s (two), 13 s and 40 s: the content changes at 3, 5, 13
    // (3 s leaves, 13 s enters), 15 (the two 5 s leave) and 40; 23 and 50 leave it empty (no row).
    const q: QuerySpec = { window: { kind: 'sliding', size: 10000 }, group: 'dev', where: null, having: null, caseAt: null };
    const evs: AsaEvent[] = [3000, 5000, 5000, 13000, 40000].map((t) => ({ ts: T0 + t, conn: 's', dev: 'd1', x: 1 }));
    const got = [...eddyRows(q, evs).values()].map((r) => [r.WindowEnd, r.n]);
    expect(got).toEqual([
      ['2026-03-01T06:00:03.0000000Z', 1], ['2026-03-01T06:00:05.0000000Z', 3], ['2026-03-01T06:00:13.0000000Z', 3],
      ['2026-03-01T06:00:15.0000000Z', 1], ['2026-03-01T06:00:40.0000000Z', 1],
    ]);
    expect(mismatches(asaRows(q, evs), eddyRows(q, evs))).toEqual([]);
  });

  it('a string literal beside < > <= >= or arithmetic is refused at its position, not printed as a rule the module refuses', () => {
    // docs/asa-migration.md: WHERE compares 'strings' with = and <> only, and a construct eddy cannot run
    // is refused "with its line and column"; the rule compiler refuses such a comparison
    // (src/cli/compile.ts calls that a compiler bug).
    for (const [where, column, op] of [["s > 'a'", 56, '>'], ["s + 'x' = 'onx'", 56, '+'], ["y < 3 OR 'b' <= s", 61, '<=']] as const) {
      const r = compileQueryText(`SELECT COUNT(*) AS n INTO out FROM telemetry WHERE ${where}\nGROUP BY TumblingWindow(second, 10)`);
      expect(r.ok, where).toBe(false);
      if (r.ok) continue;
      expect(r.errors, where).toEqual([expect.objectContaining({ line: 1, column, message: `a string with ${op} is not supported yet: eddy compares strings with = and <> only` })]);
    }
    const eq = compileQueryText("SELECT COUNT(*) AS n INTO out FROM telemetry WHERE s = 'a' OR s <> 'b'\nGROUP BY TumblingWindow(second, 10)");
    expect(eq.ok).toBe(true);
  });
});
