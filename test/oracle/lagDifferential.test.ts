import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../src/rules/engine.js';
import { compileRule } from '../../src/rules/compileRule.js';
import type { OutputMessage } from '../../src/contracts/output.js';
import type { IngestEvent } from '../../src/contracts/event.js';
import type { CompiledRule } from '../../src/rules/compileRule.js';
import { compiled, fromQuery } from '../helpers/asaQueries.js';
import { oracleLag, type OracleEvent, type OracleLag } from './lagOracle.js';
import { oracleSessions } from './oracle.js';

/*
 * LAG through the Engine against the oracle of lagOracle.ts (ASA's LAG reference read as a plain loop
 * over the history), on seeded random inputs in temporal order: several partitions (a missing
 * partition field is a partition of its own, ASA's NULL key), gaps of 0 to 5 s (equal timestamps and
 * gaps exactly the LIMIT DURATION), values that are missing (NULL), offsets 1 to 3, a default or none,
 * a WHEN over a field that is sometimes missing. The select rule's WHERE reads a LAG, so events it
 * drops must still be LAG history. The rows must be the oracle's, in order, with SQL's NULL logic for
 * the WHERE: `lag != x` is NULL, not true, when the LAG is NULL.
 */

/** A seeded LCG (Numerical Recipes constants): the test's own generator, not src/'s. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

interface Case {
  events: OracleEvent[];
  deviceIds: string[];
  durations: [number, number, number];
  offsetB: number;
  defaultB: number | null;
}

function makeCase(seed: number): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const events: OracleEvent[] = [];
  const deviceIds: string[] = [];
  let t = Date.UTC(2026, 0, 1);
  for (let i = 0; i < 300; i++) {
    t += pick([0, 0, 500, 1000, 1000, 2000, 3000, 5000]);
    const body: Record<string, unknown> = { i, t, x: Math.floor(r() * 4), w: r() };
    if (r() < 0.9) body.dev = pick(['a', 'b', 'c']);
    if (r() < 0.8) body.v = Math.floor(r() * 4);
    else if (r() < 0.5) body.v = null;
    if (r() < 0.85) body.u = Math.floor(r() * 3) - 1;
    events.push({ t, body });
    deviceIds.push(pick(['d1', 'd2']));
  }
  return { events, deviceIds, durations: [pick([1000, 2000, 3000]), pick([2000, 5000, 10000]), pick([1000, 4000])], offsetB: pick([1, 2, 3]), defaultB: pick([null, -1]) };
}

function engineRows(c: Case): unknown[] {
  const [da, db, dc] = c.durations;
  const doc = {
    kind: 'select',
    input: 'in',
    timestamp: 't',
    lag: {
      a: { value: 'v', duration: da, partitionBy: ['dev'] },
      b: { value: 'x * 10', offset: c.offsetB, ...(c.defaultB === null ? {} : { default: c.defaultB }), duration: db, when: 'u > 0' },
      c: { value: 'i', offset: 2, duration: dc, partitionBy: '$deviceId' },
    },
    where: 'lag("a") != x or w > 0.8',
    row: { i: { expr: 'i' }, a: { expr: 'lag("a")' }, b: { expr: 'lag("b")' }, c: { expr: 'lag("c")' }, d: { expr: 'x - lag("a")' } },
    output: 'out',
  };
  const compiled = compileRule('lagdiff', doc);
  if (!compiled.ok) throw new Error(compiled.error);
  const scheduler = new VirtualTimeScheduler();
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r) => rejected.push(r), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules([compiled.rule]);
  const arrival = c.events[c.events.length - 1]!.t + 1;
  for (const [k, e] of c.events.entries()) {
    const ev: IngestEvent = { body: e.body, deviceId: c.deviceIds[k]!, moduleId: 'm', input: 'in', arrival };
    engine.process([ev]);
  }
  expect(rejected).toEqual([]);
  return out.map((m) => m.body);
}

function oracleRows(c: Case): unknown[] {
  const [da, db, dc] = c.durations;
  const ev: OracleEvent[] = c.events.map((e, k) => ({ t: e.t, body: { ...e.body, deviceId: c.deviceIds[k] } }));
  const a: OracleLag = { value: (e) => e.body.v ?? null, offset: 1, dflt: null, durationMs: da, partition: (e) => e.body.dev ?? null };
  const b: OracleLag = {
    value: (e) => (e.body.x as number) * 10,
    offset: c.offsetB,
    dflt: c.defaultB,
    durationMs: db,
    // SQL: a missing u is NULL, and NULL > 0 is NULL (not true).
    when: (e) => (e.body.u === undefined ? null : (e.body.u as number) > 0),
    partition: () => null,
  };
  const cc: OracleLag = { value: (e) => e.body.i, offset: 2, dflt: null, durationMs: dc, partition: (e) => e.body.deviceId };
  const la = oracleLag(ev, a);
  const lb = oracleLag(ev, b);
  const lc = oracleLag(ev, cc);
  const rows: unknown[] = [];
  ev.forEach((e, k) => {
    const x = e.body.x as number;
    // WHERE lag(a) <> x OR w > 0.8, in SQL's three-valued logic: NULL <> x is NULL, NULL OR FALSE is NULL (dropped).
    const cmp = la[k] === null ? null : la[k] !== x;
    const keep = cmp === true || (e.body.w as number) > 0.8;
    if (!keep) return;
    rows.push({ i: e.body.i, a: la[k], b: lb[k], c: lc[k], d: la[k] === null ? null : x - (la[k] as number) });
  });
  return rows;
}

describe('LAG: the Engine against an oracle written from the ASA LAG reference', () => {
  const seeds = Array.from({ length: 20 }, (_, i) => i + 1);

  it.each(seeds)('seed %i: the same rows', (seed) => {
    const c = makeCase(seed);
    const expected = oracleRows(c);
    expect(expected.length).toBeGreaterThan(20);
    expect(expected.length).toBeLessThan(300);
    expect(engineRows(c)).toEqual(expected);
  });

  it('the inputs are not vacuous: every LAG gives values and NULLs or defaults, and the duration bound decides some', () => {
    const rows = seeds.flatMap((seed) => oracleRows(makeCase(seed)) as Array<Record<string, unknown>>);
    for (const col of ['a', 'b', 'c'] as const) {
      expect(rows.some((r) => r[col] === null || r[col] === -1)).toBe(true);
      expect(rows.some((r) => typeof r[col] === 'number' && (r[col] as number) >= 0)).toBe(true);
    }
    // An event exactly LIMIT DURATION after the one LAG would return: with a bound 1 ms longer, some value changes.
    const boundaryHits = seeds.filter((seed) => {
      const c = makeCase(seed);
      const ev = c.events.map((e) => ({ t: e.t, body: e.body }));
      const lag: OracleLag = { value: (e) => e.body.v ?? null, offset: 1, dflt: null, durationMs: c.durations[0], partition: (e) => e.body.dev ?? null };
      return JSON.stringify(oracleLag(ev, lag)) !== JSON.stringify(oracleLag(ev, { ...lag, durationMs: lag.durationMs + 1 }));
    });
    expect(boundaryHits.length).toBeGreaterThan(5);
  });
});

/*
 * The LAG forms a query can hold beyond the one above, each as an ASA query compiled by eddy and as a
 * hand-written JSON rule, both through the Engine against the oracle on the same seeded inputs (u is
 * always present here: a WHERE over a missing field is eddy's `missing-field` reject, not the case
 * under test):
 *  - a default that is an expression (evaluated on the current event: there is no event at the offset);
 *  - LAG(*), the whole earlier event, and a field of it read through a WITH step;
 *  - a LAG in a WITH step (over the step's input, before the step's WHERE) read by a statement;
 *  - a LAG in a statement reading a WITH step: its history is the step's events, those the step's
 *    WHERE keeps (the oracle filters the events first, then runs LAG over what is left), through two
 *    steps too, and with a WHEN over a step column that is itself a LAG (each earlier step event's own
 *    value of it) and a step WHERE that reads a LAG;
 *  - a LAG in an aggregate argument of a session window partitioned by a subset of GROUP BY, and
 *    of one without OVER (sessions over the whole input, rows per group).
 */
function runRules(rules: readonly CompiledRule[], c: Case, flush = false): unknown[] {
  const scheduler = new VirtualTimeScheduler();
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r) => rejected.push(r), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  const arrival = c.events[c.events.length - 1]!.t + 1;
  for (const [k, e] of c.events.entries()) engine.process([{ body: e.body, deviceId: c.deviceIds[k]!, moduleId: 'm', input: 'input', arrival }]);
  if (flush) engine.flushWindows();
  expect(rejected).toEqual([]);
  return out.map((m) => m.body);
}

/** makeCase with u always present (see above). */
function caseWithU(seed: number): Case {
  const c = makeCase(seed);
  return { ...c, events: c.events.map((e) => ({ t: e.t, body: { ...e.body, u: e.body.u ?? 0 } })) };
}

const SQL_GT = (a: unknown, b: number): boolean | null => (a === undefined || a === null ? null : (a as number) > b);

interface Form {
  readonly query: string;
  readonly twin: Record<string, unknown>;
  readonly oracle: (ev: readonly OracleEvent[]) => unknown[];
  /** Whether a row's LAG column is the no-event result (NULL or the default). */
  readonly noEvent: (row: Record<string, unknown>) => boolean;
  /** A reading ASA's reference excludes; the inputs must tell it from the oracle's. */
  readonly wrong?: (ev: readonly OracleEvent[]) => unknown[];
}

const FORMS: Record<string, Form> = {
  'a default that is an expression of the current event': {
    query: `SELECT i, LAG(v, 2, u * 10) OVER (PARTITION BY dev LIMIT DURATION(second, 3)) AS a INTO out FROM input TIMESTAMP BY t`,
    twin: { kind: 'select', input: 'input', timestamp: 't', lag: { p: { value: 'v', offset: 2, default: { expr: 'u * 10' }, partitionBy: ['dev'], duration: '3s' } }, row: { i: { expr: 'i' }, a: { expr: 'lag("p")' } }, output: 'out' },
    oracle: (ev) => {
      const a = oracleLag(ev, { value: (e) => e.body.v ?? null, offset: 2, dflt: null, dfltOf: (e) => (e.body.u as number) * 10, durationMs: 3000, partition: (e) => e.body.dev ?? null });
      return ev.map((e, k) => ({ i: e.body.i, a: a[k] }));
    },
    noEvent: (r) => typeof r.a === 'number' && (r.a === -10 || r.a === 10),
    // A constant default (here 0) instead of the current event's expression.
    wrong: (ev) => oracleLag(ev, { value: (e) => e.body.v ?? null, offset: 2, dflt: 0, durationMs: 3000, partition: (e) => e.body.dev ?? null }).map((a, k) => ({ i: ev[k]!.body.i, a })),
  },
  'LAG(*): the whole earlier event, a nested record': {
    query: `SELECT i, LAG(*) OVER (PARTITION BY dev LIMIT DURATION(second, 3)) AS prev INTO out FROM input TIMESTAMP BY t`,
    twin: { kind: 'select', input: 'input', timestamp: 't', lag: { p: { value: '*', partitionBy: ['dev'], duration: '3s' } }, row: { i: { expr: 'i' }, prev: { expr: 'lag("p")' } }, output: 'out' },
    oracle: (ev) => {
      const p = oracleLag(ev, { value: (e) => e.body, offset: 1, dflt: null, durationMs: 3000, partition: (e) => e.body.dev ?? null });
      return ev.map((e, k) => ({ i: e.body.i, prev: p[k] }));
    },
    noEvent: (r) => r.prev === null,
  },
  'LAG(*) in a WITH step (before its WHERE), a field of it read by the statement': {
    query: `WITH s AS (SELECT i, x, LAG(*) OVER (PARTITION BY dev LIMIT DURATION(second, 3)) AS prev FROM input TIMESTAMP BY t WHERE w > 0.3)
SELECT i, x - prev.x AS d INTO out FROM s`,
    twin: { kind: 'select', input: 'input', timestamp: 't', where: 'w > 0.3', lag: { px: { value: 'x', partitionBy: ['dev'], duration: '3s' } }, row: { i: { expr: 'i' }, d: { expr: 'x - lag("px")' } }, output: 'out' },
    oracle: (ev) => {
      // LAG "is evaluated before" the WHERE of its own statement, the step: every input event is history.
      const prev = oracleLag(ev, { value: (e) => e.body, offset: 1, dflt: null, durationMs: 3000, partition: (e) => e.body.dev ?? null }) as Array<Record<string, unknown> | null>;
      return ev.flatMap((e, k) => ((e.body.w as number) > 0.3 ? [{ i: e.body.i, d: prev[k] === null ? null : (e.body.x as number) - (prev[k]!.x as number) }] : []));
    },
    noEvent: (r) => r.d === null,
    // The LAG's history cut by the step's WHERE.
    wrong: (all) => {
      const ev = all.filter((e) => (e.body.w as number) > 0.3);
      const px = oracleLag(ev, { value: (e) => e.body.x, offset: 1, dflt: null, durationMs: 3000, partition: (e) => e.body.dev ?? null });
      return ev.map((e, k) => ({ i: e.body.i, d: px[k] === null ? null : (e.body.x as number) - (px[k] as number) }));
    },
  },
  "LAG in a statement reading a WITH step: its history is the step's events": {
    query: `WITH s AS (SELECT i, v, dev, u FROM input TIMESTAMP BY t WHERE u > 0)
SELECT i, LAG(v, 1, u * 100) OVER (PARTITION BY dev LIMIT DURATION(second, 5) WHEN v > 0) AS a INTO out FROM s WHERE i > 10`,
    twin: { kind: 'select', input: 'input', timestamp: 't', where: 'u > 0 and i > 10', lag: { p: { value: 'v', default: { expr: 'u * 100' }, partitionBy: ['dev'], duration: '5s', when: 'u > 0 and v > 0' } }, row: { i: { expr: 'i' }, a: { expr: 'lag("p")' } }, output: 'out' },
    oracle: (all) => {
      const ev = all.filter((e) => (e.body.u as number) > 0);
      const a = oracleLag(ev, { value: (e) => e.body.v ?? null, offset: 1, dflt: null, dfltOf: (e) => (e.body.u as number) * 100, durationMs: 5000, when: (e) => SQL_GT(e.body.v, 0), partition: (e) => e.body.dev ?? null });
      return ev.flatMap((e, k) => ((e.body.i as number) > 10 ? [{ i: e.body.i, a: a[k] }] : []));
    },
    noEvent: (r) => r.a === 100,
    // The LAG's history every input event (the step's WHERE ignored).
    wrong: (ev) => {
      const a = oracleLag(ev, { value: (e) => e.body.v ?? null, offset: 1, dflt: null, dfltOf: (e) => (e.body.u as number) * 100, durationMs: 5000, when: (e) => SQL_GT(e.body.v, 0), partition: (e) => e.body.dev ?? null });
      return ev.flatMap((e, k) => ((e.body.u as number) > 0 && (e.body.i as number) > 10 ? [{ i: e.body.i, a: a[k] }] : []));
    },
  },
  'two WITH steps, a LAG in each statement over its own source': {
    query: `WITH s2 AS (SELECT * FROM input TIMESTAMP BY t WHERE u > 0),
s1 AS (SELECT i, v AS val, dev, LAG(v) OVER (PARTITION BY dev LIMIT DURATION(second, 9)) AS pv FROM s2 WHERE w > 0.5)
SELECT i, pv, LAG(val, 1, val * 2) OVER (PARTITION BY dev LIMIT DURATION(second, 3)) AS p INTO out FROM s1`,
    twin: {
      kind: 'select', input: 'input', timestamp: 't', where: 'u > 0 and w > 0.5',
      lag: { pv: { value: 'v', partitionBy: ['dev'], duration: '9s', when: 'u > 0' }, p: { value: 'v', default: { expr: 'v * 2' }, partitionBy: ['dev'], duration: '3s', when: 'u > 0 and w > 0.5' } },
      row: { i: { expr: 'i' }, pv: { expr: 'lag("pv")' }, p: { expr: 'lag("p")' } }, output: 'out',
    },
    oracle: (all) => {
      const s2 = all.filter((e) => (e.body.u as number) > 0);
      const pv = oracleLag(s2, { value: (e) => e.body.v ?? null, offset: 1, dflt: null, durationMs: 9000, partition: (e) => e.body.dev ?? null });
      const s1 = s2.map((e, k) => ({ e, pv: pv[k] })).filter(({ e }) => (e.body.w as number) > 0.5);
      // A missing v is NULL, and NULL * 2 is NULL.
      const p = oracleLag(s1.map(({ e }) => e), { value: (e) => e.body.v ?? null, offset: 1, dflt: null, dfltOf: (e) => (e.body.v === undefined || e.body.v === null ? null : (e.body.v as number) * 2), durationMs: 3000, partition: (e) => e.body.dev ?? null });
      return s1.map(({ e, pv: x }, k) => ({ i: e.body.i, pv: x, p: p[k] }));
    },
    noEvent: (r) => r.pv === null,
  },
  "LAG over a step column computed by LAG, the step's WHERE reading LAG": {
    query: `WITH s AS (SELECT i, x, dev, LAG(x) OVER (PARTITION BY dev LIMIT DURATION(second, 5)) AS px FROM input TIMESTAMP BY t WHERE LAG(w) OVER (LIMIT DURATION(second, 5)) > 0.2)
SELECT i, px, LAG(i) OVER (PARTITION BY dev LIMIT DURATION(second, 10) WHEN px > 1) AS a INTO out FROM s`,
    // The entry reading the others comes first: each LAG is looked up before any is remembered.
    twin: {
      kind: 'select', input: 'input', timestamp: 't', where: 'lag("lw") > 0.2',
      lag: { a: { value: 'i', partitionBy: ['dev'], duration: '10s', when: 'lag("lw") > 0.2 and lag("px") > 1' }, lw: { value: 'w', duration: '5s' }, px: { value: 'x', partitionBy: ['dev'], duration: '5s' } },
      row: { i: { expr: 'i' }, px: { expr: 'lag("px")' }, a: { expr: 'lag("a")' } }, output: 'out',
    },
    oracle: (all) => {
      const lw = oracleLag(all, { value: (e) => e.body.w, offset: 1, dflt: null, durationMs: 5000, partition: () => null });
      const px = oracleLag(all, { value: (e) => e.body.x, offset: 1, dflt: null, durationMs: 5000, partition: (e) => e.body.dev ?? null });
      // The step's events, each with its column px; NULL > 0.2 is not true.
      const s = all.map((e, k): OracleEvent => ({ t: e.t, body: { ...e.body, px: px[k] } })).filter((_, k) => lw[k] !== null && (lw[k] as number) > 0.2);
      const a = oracleLag(s, { value: (e) => e.body.i, offset: 1, dflt: null, durationMs: 10_000, when: (e) => SQL_GT(e.body.px, 1), partition: (e) => e.body.dev ?? null });
      return s.map((e, k) => ({ i: e.body.i, px: e.body.px, a: a[k] }));
    },
    noEvent: (r) => r.a === null,
    // WHEN over the current px instead of each earlier event's own.
    wrong: (all) => {
      const lw = oracleLag(all, { value: (e) => e.body.w, offset: 1, dflt: null, durationMs: 5000, partition: () => null });
      const px = oracleLag(all, { value: (e) => e.body.x, offset: 1, dflt: null, durationMs: 5000, partition: (e) => e.body.dev ?? null });
      const s = all.map((e, k): OracleEvent => ({ t: e.t, body: { ...e.body, px: px[k] } })).filter((_, k) => lw[k] !== null && (lw[k] as number) > 0.2);
      const a = oracleLag(s, { value: (e) => e.body.i, offset: 1, dflt: null, durationMs: 10_000, partition: (e) => e.body.dev ?? null });
      return s.map((e, k) => ({ i: e.body.i, px: e.body.px, a: (e.body.px as number | null) !== null && (e.body.px as number) > 1 ? a[k] : null }));
    },
  },
};

describe('LAG forms of a query: the compiled query and its JSON twin against the oracle', () => {
  const seeds = Array.from({ length: 10 }, (_, i) => i + 1);
  for (const [name, form] of Object.entries(FORMS)) {
    it.each(seeds)(`${name}: seed %i`, (seed) => {
      const c = caseWithU(seed);
      const ev = c.events.map((e) => ({ t: e.t, body: e.body }));
      const expected = form.oracle(ev);
      expect(expected.length).toBeGreaterThan(20);
      expect(runRules(fromQuery(form.query), c)).toEqual(expected);
      expect(runRules(compiled({ out: form.twin }), c)).toEqual(expected);
    });
  }

  it('the forms are not vacuous: each gives earlier values and no-event results, and tells the wrong reading apart', () => {
    for (const [name, form] of Object.entries(FORMS)) {
      const rows = seeds.flatMap((seed) => form.oracle(caseWithU(seed).events) as Array<Record<string, unknown>>);
      expect(rows.some(form.noEvent), name).toBe(true);
      expect(rows.some((r) => !form.noEvent(r)), name).toBe(true);
      const wrong = form.wrong;
      if (wrong !== undefined) expect(seeds.filter((seed) => JSON.stringify(wrong(caseWithU(seed).events)) !== JSON.stringify(form.oracle(caseWithU(seed).events))).length, name).toBeGreaterThan(5);
    }
    // The expression default differs between events (u is -1, 0 or 1).
    const d = seeds.flatMap((seed) => FORMS['a default that is an expression of the current event']!.oracle(caseWithU(seed).events) as Array<{ a: unknown }>);
    expect(new Set(d.map((r) => r.a)).has(-10)).toBe(true);
    expect(new Set(d.map((r) => r.a)).has(10)).toBe(true);
  });
});

/** A session-window case: sites, zones, readings x; gaps that end sessions and LAG's duration both. */
function sessionEvents(seed: number): Case {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const events: OracleEvent[] = [];
  let t = Date.UTC(2026, 0, 1);
  for (let i = 0; i < 200; i++) {
    t += pick([0, 500, 500, 1000, 1500, 2000, 2500, 4000]);
    events.push({ t, body: { i, t, site: pick(['A', 'B']), zone: pick(['1', '2']), x: Math.floor(r() * 10) } });
  }
  return { events, deviceIds: events.map(() => 'd'), durations: [0, 0, 0], offsetB: 1, defaultB: null };
}

/** ASA's rows of the session statement from the oracle's sessions (per `by` partition) and LAG (per zone, default 0). */
function sessionOracle(ev: readonly OracleEvent[], by: 'site' | null): unknown[] {
  const lag = oracleLag(ev, { value: (e) => e.body.x, offset: 1, dflt: 0, durationMs: 4000, partition: (e) => e.body.zone });
  const d = ev.map((e, k) => (e.body.x as number) - (lag[k] as number));
  const asa = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;
  const rows: Array<Record<string, unknown>> = [];
  for (const part of by === null ? [null] : ['A', 'B']) {
    const idx = ev.map((_, k) => k).filter((k) => part === null || ev[k]!.body.site === part);
    const sessions = oracleSessions(idx.map((k) => ({ t: ev[k]!.t, v: 0 })), 2000, 10_000, true);
    for (const s of sessions) {
      const inside = idx.filter((k) => ev[k]!.t >= s.start && ev[k]!.t < s.end);
      const groups = new Map<string, number[]>();
      for (const k of inside) {
        const g = by === null ? String(ev[k]!.body.zone) : `${String(ev[k]!.body.site)}|${String(ev[k]!.body.zone)}`;
        groups.set(g, [...(groups.get(g) ?? []), k]);
      }
      for (const [g, ks] of groups) {
        const [site, zone] = by === null ? [null, g] : g.split('|');
        rows.push({ ...(site === null ? {} : { site }), zone, n: ks.length, s: ks.reduce((a, k) => a + d[k]!, 0), te: asa(s.end) });
      }
    }
  }
  const key = (x: unknown): string => JSON.stringify(x);
  return rows.sort((a, b) => key(a).localeCompare(key(b)));
}

describe('LAG in a session window partitioned by a subset of GROUP BY, and without OVER', () => {
  const variants = {
    'OVER (PARTITION BY site), rows per site and zone': {
      by: 'site' as const,
      query: `SELECT site, zone, COUNT(*) AS n, SUM(x - LAG(x, 1, 0) OVER (PARTITION BY zone LIMIT DURATION(second, 4))) AS s, System.Timestamp() AS te
INTO out FROM input TIMESTAMP BY t GROUP BY site, zone, SessionWindow(second, 2, 10) OVER (PARTITION BY site)`,
      twin: { kind: 'aggregate', input: 'input', timestamp: 't', groupBy: ['site', 'zone'], window: { type: 'session', gap: '2s', maxSize: '10s', maxSizeAt: 'aligned', partitionBy: ['site'] }, lag: { px: { value: 'x', default: 0, partitionBy: ['zone'], duration: '4s' } }, select: { n: 'count()', s: 'sum(x - lag("px"))' }, row: { site: { group: 'site' }, zone: { group: 'zone' }, n: { select: 'n' }, s: { select: 's' }, te: { window: 'end' } }, nulls: 'skip', output: 'out' },
    },
    'no OVER: sessions over the whole input, rows per zone': {
      by: null,
      query: `SELECT zone, COUNT(*) AS n, SUM(x - LAG(x, 1, 0) OVER (PARTITION BY zone LIMIT DURATION(second, 4))) AS s, System.Timestamp() AS te
INTO out FROM input TIMESTAMP BY t GROUP BY zone, SessionWindow(second, 2, 10)`,
      twin: { kind: 'aggregate', input: 'input', timestamp: 't', groupBy: ['zone'], window: { type: 'session', gap: '2s', maxSize: '10s', maxSizeAt: 'aligned', partitionBy: [] }, lag: { px: { value: 'x', default: 0, partitionBy: ['zone'], duration: '4s' } }, select: { n: 'count()', s: 'sum(x - lag("px"))' }, row: { zone: { group: 'zone' }, n: { select: 'n' }, s: { select: 's' }, te: { window: 'end' } }, nulls: 'skip', output: 'out' },
    },
  };
  for (const [name, v] of Object.entries(variants)) {
    it.each([1, 2, 3, 4, 5])(`${name}: seed %i`, (seed) => {
      const c = sessionEvents(seed);
      const expected = sessionOracle(c.events, v.by);
      // Sessions end at gaps and at the aligned 10 s checks; groups share sessions.
      expect(expected.length).toBeGreaterThan(10);
      const key = (x: unknown): string => JSON.stringify(x);
      const sorted = (xs: unknown[]): unknown[] => [...xs].sort((a, b) => key(a).localeCompare(key(b)));
      expect(sorted(runRules(fromQuery(v.query), c, true))).toEqual(expected);
      expect(sorted(runRules(compiled({ out: v.twin }), c, true))).toEqual(expected);
    });
  }
});
