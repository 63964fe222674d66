import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../src/rules/engine.js';
import { compileRule } from '../../src/rules/compileRule.js';
import type { OutputMessage } from '../../src/contracts/output.js';
import type { IngestEvent } from '../../src/contracts/event.js';
import { oracleLag, type OracleEvent, type OracleLag } from './lagOracle.js';

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
