/**
 * Differential test for session windows (`maxSizeAt` "start" and "aligned"): the real engine against the
 * oracle's plain reading of the documented sessions (test/oracle/oracle.ts `oracleSessions`) over random
 * runs. Each device's events arrive in time order (the placement of out-of-order events in a session is
 * eddy's own heuristic, docs in src/windows/sessionWindow.ts, with nothing independent to check it
 * against); devices interleave, the connected clock advances past `idleTimeout` (provisional emissions
 * that later events extend), and the module restarts from a JSON checkpoint. Event times are on a 500 ms
 * grid, so events fall exactly on a session's timeout end and on maximum-duration checks.
 * `EDDY_ORACLE_RUNS` sets the number of runs (default 500: about 8 s of one core).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { oracleSessions, type OracleResult, type OracleWindow } from './oracle.js';
import { runEngine } from './engineDriver.js';
import { compareWithOracle } from './compareWithOracle.js';
import type { Run, RunRules, RunStep } from './oracleRun.js';

const RUNS = Number(process.env.EDDY_ORACLE_RUNS ?? 500);
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const DEVICES = ['d1', 'd2'];

const runShape = fc.record({
  gap: fc.constantFrom(1_000, 2_000, 5_000),
  // maxSize close to the gap too, so sessions run into their maximum duration often.
  maxSize: fc.constantFrom(5_000, 6_000, 10_000, 30_000),
  aligned: fc.boolean(),
  lateness: fc.constantFrom(0, 1_000, 3_000),
  idle: fc.constantFrom(500, 2_000, 60_000),
  /** Seconds after T0 the first events come (a session need not start on a check). */
  lead: fc.integer({ min: 0, max: 40 }),
  steps: fc.array(
    fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('deliver' as const), device: fc.integer({ min: 0, max: 1 }), dt: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 8 }, { arbitrary: fc.integer({ min: 4, max: 14 }), weight: 1 }), v: fc.integer({ min: -9, max: 9 }) }), weight: 10 },
      { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 50 }).map((k) => k * 100) }), weight: 2 },
      { arbitrary: fc.record({ kind: fc.constant('restart' as const) }), weight: 1 },
    ),
    { minLength: 20, maxLength: 100, size: "max" },
  ),
});

type Shape = typeof runShape extends fc.Arbitrary<infer X> ? X : never;

function build(s: Shape): { run: Run; oracle: OracleResult } {
  const window: Record<string, unknown> = { type: 'session', gap: `${s.gap}ms`, maxSize: `${s.maxSize}ms` };
  if (s.aligned) window.maxSizeAt = 'aligned';
  const rules: RunRules = {
    sess: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'ts', window, maxLateness: `${s.lateness}ms`, idleTimeout: `${s.idle}ms`, select: { n: 'count()', sum: 'sum(v)' } },
  };
  const times = DEVICES.map(() => T0 + s.lead * 1_000);
  const perDevice: Array<Array<{ t: number; v: number }>> = DEVICES.map(() => []);
  let connected = T0;
  const steps: RunStep[] = [];
  for (const st of s.steps) {
    if (st.kind === 'deliver') {
      // Each device's clock moves forward by 0 to 7 s (mostly at most 1.5 s) in 500 ms steps: in order, ties included.
      const t = (times[st.device] = times[st.device]! + st.dt * 500);
      perDevice[st.device]!.push({ t, v: st.v });
      connected = Math.max(connected, t);
      steps.push({ kind: 'deliver', wall: connected, connected, events: [{ deviceId: DEVICES[st.device]!, body: { ts: t, v: st.v } }] });
    } else if (st.kind === 'advance') {
      connected += st.ms;
      steps.push({ kind: 'advance', wall: connected, connected });
    } else steps.push({ kind: 'restart', rules });
  }
  const windows: OracleWindow[] = [];
  perDevice.forEach((evs, d) => {
    for (const w of oracleSessions(evs, s.gap, s.maxSize, s.aligned)) {
      windows.push({ rule: 'sess', epoch: 0, deviceId: DEVICES[d]!, type: 'session', start: w.start, end: w.end, count: w.count, values: { n: w.count, sum: w.sum } });
    }
  });
  const considered = perDevice.reduce((a, e) => a + e.length, 0);
  return { run: { startWall: T0, startConnected: T0, rules, steps }, oracle: { windows, rejected: {}, considered: { sess: considered }, accepted: { sess: considered }, alerts: [] } };
}

/**
 * `partitionBy: []` (ASA's SessionWindow without OVER, docs/rules.md "Windows"): the sessions are the whole
 * stream's (the oracle's sessions over every device's events, which here arrive in time order across
 * devices), and each device with events in a session is one window with the session's bounds.
 */
function buildWholeStream(s: Shape): { run: Run; oracle: OracleResult } {
  const window: Record<string, unknown> = { type: 'session', gap: `${s.gap}ms`, maxSize: `${s.maxSize}ms`, partitionBy: [] };
  if (s.aligned) window.maxSizeAt = 'aligned';
  const rules: RunRules = {
    sess: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'ts', window, maxLateness: `${s.lateness}ms`, idleTimeout: `${s.idle}ms`, select: { n: 'count()', sum: 'sum(v)' } },
  };
  let t = T0 + s.lead * 1_000;
  const all: Array<{ t: number; v: number; d: number }> = [];
  let connected = T0;
  const steps: RunStep[] = [];
  for (const st of s.steps) {
    if (st.kind === 'deliver') {
      t += st.dt * 500; // one clock for the stream: in order across devices, ties included
      all.push({ t, v: st.v, d: st.device });
      connected = Math.max(connected, t);
      steps.push({ kind: 'deliver', wall: connected, connected, events: [{ deviceId: DEVICES[st.device]!, body: { ts: t, v: st.v } }] });
    } else if (st.kind === 'advance') {
      connected += st.ms;
      steps.push({ kind: 'advance', wall: connected, connected });
    } else steps.push({ kind: 'restart', rules });
  }
  const windows: OracleWindow[] = [];
  for (const w of oracleSessions(all, s.gap, s.maxSize, s.aligned)) {
    DEVICES.forEach((deviceId, d) => {
      const mine = all.filter((e) => e.d === d && e.t >= w.start && e.t < w.end);
      if (mine.length > 0) windows.push({ rule: 'sess', epoch: 0, deviceId, type: 'session', start: w.start, end: w.end, count: mine.length, values: { n: mine.length, sum: mine.reduce((a, e) => a + e.v, 0) } });
    });
  }
  return { run: { startWall: T0, startConnected: T0, rules, steps }, oracle: { windows, rejected: {}, considered: { sess: all.length }, accepted: { sess: all.length }, alerts: [] } };
}

describe('engine vs oracle: session windows', () => {
  it(`partitionBy []: one session sequence for the stream, a window per device in each, over ${Math.ceil(RUNS / 2)} random runs`, () => {
    let shared = 0;
    fc.assert(
      fc.property(runShape, (s) => {
        const { run, oracle } = buildWholeStream(s);
        if (oracle.windows.some((w, i) => oracle.windows.some((x, j) => j !== i && x.start === w.start))) shared++;
        expect(compareWithOracle(runEngine(run), oracle)).toEqual([]);
      }),
      { numRuns: Math.ceil(RUNS / 2), seed: 219 },
    );
    expect(shared).toBeGreaterThan(RUNS / 10);
  }, 600_000);

  it(`gives the documented sessions (maxSizeAt start and aligned) over ${RUNS} random runs`, () => {
    fc.assert(
      fc.property(runShape, (s) => {
        const { run, oracle } = build(s);
        expect(compareWithOracle(runEngine(run), oracle)).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  }, 600_000);

  it('the oracle on the reference page\'s figures: timeout 5, maximum duration 10, checks at 0, 10, 20', () => {
    const evs = [1, 4, 8, 12, 16, 19, 21, 23, 40].map((t) => ({ t, v: 1 }));
    expect(oracleSessions(evs, 5, 10, true).map((w) => [w.start, w.end, w.count])).toEqual([[1, 20, 6], [20, 28, 2], [40, 45, 1]]);
    expect(oracleSessions(evs, 5, 10, false).map((w) => [w.start, w.end, w.count])).toEqual([[1, 11, 3], [12, 22, 4], [23, 28, 1], [40, 45, 1]]);
  });
});
