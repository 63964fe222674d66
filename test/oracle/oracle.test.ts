/**
 * The oracle's own tests: hand-computed cases from the documented semantics (docs/contract.md sections
 * 3 to 5, docs/rules.md "Windows" and "Changing a rule through the twin"), written without running
 * either the oracle or the engine, plus one accounting property over random runs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { oracleDuration, oracleEventTime, runOracle, windowStartsFor, type OracleResult, type OracleWindow } from './oracle.js';
import type { Run, RunEvent, RunRules, RunStep } from './oracleRun.js';
import { runArbitrary } from './scheduleArbitrary.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

const tumbling = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  kind: 'aggregate',
  groupBy: ['$deviceId'],
  timestamp: 'ts',
  window: { type: 'tumbling', size: '2s' },
  maxLateness: '1s',
  select: { n: 'count()', sum: 'sum(v)', min: 'min(v)', max: 'max(v)', avg: 'avg(v)' },
  ...extra,
});

const ev = (ts: unknown, v: unknown, deviceId = 'd1', extra: Record<string, unknown> = {}): RunEvent => ({ deviceId, body: { ts, v, ...extra } });
const at = (wall: number, ...events: RunEvent[]): RunStep => ({ kind: 'deliver', wall, connected: wall, events });
const run = (rules: RunRules, ...steps: RunStep[]): Run => ({ startWall: T0, startConnected: T0, rules, steps });

const find = (r: OracleResult, rule: string, start: number, deviceId = 'd1', epoch = 0): OracleWindow | undefined => r.windows.find((w) => w.rule === rule && w.start === start && w.deviceId === deviceId && w.epoch === epoch);

describe('oracle', () => {
  it('reads durations and event times as documented', () => {
    expect(oracleDuration('250ms')).toBe(250);
    expect(oracleDuration('30s')).toBe(30_000);
    expect(oracleDuration('5m')).toBe(300_000);
    expect(oracleDuration('1h')).toBe(3_600_000);
    expect(oracleDuration('1d')).toBe(86_400_000);
    expect(oracleDuration(1500)).toBe(1500);
    expect(oracleEventTime('2026-11-26T03:00:00.250Z')).toBe(T0 + 250);
    expect(oracleEventTime(T0 + 7)).toBe(T0 + 7);
    expect(oracleEventTime('not a time')).toBeNull();
    expect(oracleEventTime('1795662000000')).toBeNull();
    expect(oracleEventTime(true)).toBeNull();
  });

  it('places a time in the epoch-aligned windows that hold it (start <= t < end)', () => {
    expect(windowStartsFor(T0 + 1_999, 2_000, 2_000)).toEqual([T0]);
    expect(windowStartsFor(T0 + 2_000, 2_000, 2_000)).toEqual([T0 + 2_000]);
    // Hopping 4 s / 2 s: 03:00:03 is in [03:00:00, 03:00:04) and [03:00:02, 03:00:06).
    expect(windowStartsFor(T0 + 3_000, 4_000, 2_000)).toEqual([T0, T0 + 2_000]);
    expect(windowStartsFor(T0 + 2_000, 4_000, 2_000)).toEqual([T0, T0 + 2_000]);
    expect(windowStartsFor(T0 + 1_999, 4_000, 2_000)).toEqual([T0 - 2_000, T0]);
  });

  it('with bounds "(]" places a time in the windows with start < t <= end, moved by offset', () => {
    // ASA: a 12:00-1:00 window "will include events that happened exactly at 1:00 PM, but will not
    // include events that happened at 12:00PM" (tumbling-window-azure-stream-analytics).
    expect(windowStartsFor(T0 + 2_000, 2_000, 2_000, true)).toEqual([T0]);
    expect(windowStartsFor(T0, 2_000, 2_000, true)).toEqual([T0 - 2_000]);
    expect(windowStartsFor(T0 + 2_000, 4_000, 2_000, true)).toEqual([T0 - 2_000, T0]);
    // Offset -1: (T0 - 1, T0 + 1999] holds T0 and T0 + 1999, not T0 + 2000.
    expect(windowStartsFor(T0, 2_000, 2_000, true, -1)).toEqual([T0 - 1]);
    expect(windowStartsFor(T0 + 2_000, 2_000, 2_000, true, -1)).toEqual([T0 + 1_999]);
  });

  it('aggregates a tumbling window: count, sum, min, max, avg by hand', () => {
    const r = runOracle(run({ a: tumbling() }, at(T0, ev(T0 + 1, 10), ev(T0 + 501, 4)), at(T0 + 1_000, ev(T0 + 1_999, 7)), at(T0 + 2_000, ev(T0 + 2_001, -3))));
    expect(find(r, 'a', T0)).toMatchObject({ count: 3, end: T0 + 2_000, values: { n: 3, sum: 21, min: 4, max: 10, avg: 7 } });
    expect(find(r, 'a', T0 + 2_000)).toMatchObject({ count: 1, values: { n: 1, sum: -3, min: -3, max: -3, avg: -3 } });
    expect(r.windows).toHaveLength(2);
    expect(r.rejected).toEqual({});
    expect(r.considered).toEqual({ a: 4 });
  });

  it('puts an event in every hopping window that holds it', () => {
    const hop = tumbling({ window: { type: 'hopping', size: '4s', hop: '2s' }, select: { n: 'count()', sum: 'sum(v)' } });
    const r = runOracle(run({ h: hop }, at(T0, ev(T0 + 3_001, 5), ev(T0 + 1_001, 1))));
    expect(find(r, 'h', T0 - 2_000)).toMatchObject({ count: 1, values: { sum: 1 } });
    expect(find(r, 'h', T0)).toMatchObject({ count: 2, values: { sum: 6 } });
    expect(find(r, 'h', T0 + 2_000)).toMatchObject({ count: 1, values: { sum: 5 } });
    expect(r.windows).toHaveLength(3);
  });

  it('keeps groups apart', () => {
    const r = runOracle(run({ a: tumbling() }, at(T0, ev(T0 + 1, 1, 'd1'), ev(T0 + 3, 2, 'd2'), ev(T0 + 5, 3, 'd1'))));
    expect(find(r, 'a', T0, 'd1')).toMatchObject({ count: 2, values: { sum: 4 } });
    expect(find(r, 'a', T0, 'd2')).toMatchObject({ count: 1, values: { sum: 2 } });
  });

  it('accepts a late event until the watermark passes end + maxLateness, then counts it too-late', () => {
    // Window [0 s, 2 s), maxLateness 1 s: final once maxTime - 1 s > 2 s + 1 s, i.e. maxTime > 4 s.
    const early = runOracle(run({ a: tumbling() }, at(T0, ev(T0 + 1, 1)), at(T0 + 3_000, ev(T0 + 3_999, 2)), at(T0 + 3_000, ev(T0 + 1_001, 4))));
    expect(find(early, 'a', T0)).toMatchObject({ count: 2, values: { sum: 5 } });
    expect(early.rejected).toEqual({});
    const late = runOracle(run({ a: tumbling() }, at(T0, ev(T0 + 1, 1)), at(T0 + 3_000, ev(T0 + 4_001, 2)), at(T0 + 3_000, ev(T0 + 1_001, 4))));
    expect(find(late, 'a', T0)).toMatchObject({ count: 1, values: { sum: 1 } });
    expect(late.rejected).toEqual({ a: { 'too-late': 1 } });
    // The watermark is per group: d2 has not moved and still takes the same time.
    const other = runOracle(run({ a: tumbling() }, at(T0, ev(T0 + 1, 1)), at(T0 + 3_000, ev(T0 + 4_001, 2)), at(T0 + 3_000, ev(T0 + 1_001, 4, 'd2'))));
    expect(find(other, 'a', T0, 'd2')).toMatchObject({ count: 1 });
    expect(other.rejected).toEqual({});
  });

  it('defaults maxLateness to 5 s', () => {
    const rule = tumbling();
    delete rule.maxLateness;
    // Window [0, 2 s) is final once maxTime > 2 s + 10 s.
    const kept = runOracle(run({ a: rule }, at(T0, ev(T0 + 11_999, 1)), at(T0, ev(T0 + 1, 1))));
    expect(kept.rejected).toEqual({});
    const dropped = runOracle(run({ a: rule }, at(T0, ev(T0 + 12_001, 1)), at(T0, ev(T0 + 1, 1))));
    expect(dropped.rejected).toEqual({ a: { 'too-late': 1 } });
  });

  it('takes a hopping event that still has one open window, and counts it too-late only when all are final', () => {
    const hop = tumbling({ window: { type: 'hopping', size: '4s', hop: '2s' }, maxLateness: '0s', select: { n: 'count()' } });
    // maxTime 4.5 s: [0, 4 s) is final (4.5 > 4), [2 s, 6 s) is not; t = 3 s goes to the second only.
    const r = runOracle(run({ h: hop }, at(T0, ev(T0 + 4_501, 1)), at(T0, ev(T0 + 3_001, 1)), at(T0, ev(T0 + 1_001, 1))));
    expect(find(r, 'h', T0)).toBeUndefined();
    expect(find(r, 'h', T0 + 2_000)).toMatchObject({ count: 2 });
    expect(r.rejected).toEqual({ h: { 'too-late': 1 } });
  });

  it('rejects a timestamp more than maxClockSkew ahead of arrival, and it does not move the watermark', () => {
    const r = runOracle(
      run(
        { a: tumbling({ maxLateness: '0s' }) },
        at(T0, ev(T0 + 300_001, 1)),
        at(T0, ev(T0 + 299_999, 2)),
        // The accepted 04:59.999 moved the watermark: the window [0, 2 s) is final and this is too-late.
        at(T0, ev(T0 + 1, 3)),
      ),
    );
    expect(r.rejected).toEqual({ a: { 'future-timestamp': 1, 'too-late': 1 } });
    expect(find(r, 'a', T0 + 298_000)).toMatchObject({ count: 1, values: { sum: 2 } });
    // Had the rejected 03:05:00.001 moved d1's watermark, [0, 2 s) would be final and 03:00:00.001 too-late.
    const r2 = runOracle(run({ a: tumbling({ maxLateness: '0s' }) }, at(T0, ev(T0 + 1_001, 0)), at(T0, ev(T0 + 300_001, 1)), at(T0, ev(T0 + 1, 3))));
    expect(r2.rejected).toEqual({ a: { 'future-timestamp': 1 } });
    expect(find(r2, 'a', T0)).toMatchObject({ count: 2, values: { sum: 3 } });
    // maxClockSkew per rule, measured from the arrival (wall clock), not from earlier events.
    const r3 = runOracle(run({ a: tumbling({ maxClockSkew: '1s' }) }, at(T0, ev(T0 + 1_001, 1)), at(T0 + 1_000, ev(T0 + 1_003, 1))));
    expect(r3.rejected).toEqual({ a: { 'future-timestamp': 1 } });
  });

  it('is strict about types: a numeric string or a boolean is not a number, a missing value is a missing field', () => {
    const steps = [at(T0, ev(T0 + 1, '21.5'), ev(T0 + 3, true), ev(T0 + 5, false), ev(T0 + 7, 2)), at(T0, { deviceId: 'd1', body: { ts: T0 + 9 } })];
    const r = runOracle(run({ a: tumbling(), c: tumbling({ select: { n: 'count()' } }) }, ...steps));
    expect(r.rejected).toEqual({ a: { 'not-a-number': 3, 'missing-field': 1 } });
    expect(find(r, 'a', T0)).toMatchObject({ count: 1, values: { n: 1, sum: 2, min: 2, max: 2, avg: 2 } });
    // count() needs no number: every event counts.
    expect(find(r, 'c', T0)).toMatchObject({ count: 5, values: { n: 5 } });
  });

  it('compares a boolean field with true in where', () => {
    const r = runOracle(run({ a: tumbling({ where: 'on == true' }) }, at(T0, ev(T0 + 1, 1, 'd1', { on: true }), ev(T0 + 3, 2, 'd1', { on: false }), ev(T0 + 5, 4, 'd1', { on: 'true' }))));
    expect(find(r, 'a', T0)).toMatchObject({ count: 1, values: { sum: 1 } });
    expect(r.considered).toEqual({ a: 1 });
  });

  it('rejects a missing or unparsable timestamp as bad-timestamp, for that rule alone', () => {
    const other = tumbling({ timestamp: 'other' });
    const r = runOracle(run({ a: tumbling(), b: other }, at(T0, { deviceId: 'd1', body: { v: 1, other: T0 + 1 } }, ev('yesterday', 1, 'd1', { other: T0 + 1 }))));
    expect(r.rejected).toEqual({ a: { 'bad-timestamp': 2 } });
    expect(find(r, 'b', T0)).toMatchObject({ count: 2 });
  });

  it('keeps a rule state across a change of description only, and restarts it on a change of window', () => {
    const r = runOracle(
      run(
        { a: tumbling({ description: 'one' }) },
        at(T0, ev(T0 + 1, 1)),
        { kind: 'setRules', rules: { a: tumbling({ description: 'two' }) } },
        at(T0, ev(T0 + 3, 2)),
        { kind: 'setRules', rules: { a: tumbling({ description: 'three', window: { type: 'tumbling', size: '4s' } }) } },
        at(T0, ev(T0 + 5, 4)),
      ),
    );
    expect(find(r, 'a', T0, 'd1', 0)).toMatchObject({ count: 2, end: T0 + 2_000, values: { sum: 3 } });
    expect(find(r, 'a', T0, 'd1', 1)).toMatchObject({ count: 1, end: T0 + 4_000, values: { sum: 4 } });
    expect(r.windows).toHaveLength(2);
  });

  it('starts a changed rule afresh with a new watermark', () => {
    const r = runOracle(
      run(
        { a: tumbling({ maxLateness: '0s' }) },
        at(T0, ev(T0 + 10_001, 1)),
        { kind: 'restart', rules: { a: tumbling({ maxLateness: '0s', where: 'v >= 0' }) } },
        at(T0, ev(T0 + 1, 2)),
      ),
    );
    expect(r.rejected).toEqual({});
    expect(find(r, 'a', T0 + 10_000, 'd1', 0)).toMatchObject({ count: 1 });
    expect(find(r, 'a', T0, 'd1', 1)).toMatchObject({ count: 1, values: { sum: 2 } });
  });

  it('carries state across a restart with the same rules', () => {
    const r = runOracle(run({ a: tumbling({ maxLateness: '0s' }) }, at(T0, ev(T0 + 1, 1)), { kind: 'restart', rules: { a: tumbling({ maxLateness: '0s' }) } }, at(T0, ev(T0 + 5_001, 2)), at(T0, ev(T0 + 3, 2))));
    expect(find(r, 'a', T0)).toMatchObject({ count: 1 });
    expect(r.rejected).toEqual({ a: { 'too-late': 1 } });
  });

  it('counts a duplicate delivery twice: the engine has no way to tell it from a second reading', () => {
    const e = ev(T0 + 1, 5);
    const r = runOracle(run({ a: tumbling() }, at(T0, e), at(T0, e)));
    expect(find(r, 'a', T0)).toMatchObject({ count: 2, values: { sum: 10 } });
  });

  it('raises a threshold alert above the limit and clears it only once back by the hysteresis', () => {
    const spike = { kind: 'anomaly', groupBy: ['$deviceId'], value: 'v', detector: { type: 'threshold', above: 50, hysteresis: 10 } };
    const r = runOracle(
      run(
        { s: spike },
        at(T0, ev(0, 50), ev(0, 51, 'd2')),
        at(T0 + 100, ev(0, 51)),
        at(T0 + 200, ev(0, 45), ev(0, 80)),
        at(T0 + 300, ev(0, 40)),
        at(T0 + 400, ev(0, '60'), ev(0, true), { deviceId: 'd1', body: {} }),
        at(T0 + 500, ev(0, 61)),
      ),
    );
    expect(r.alerts).toEqual([
      { rule: 's', deviceId: 'd2', state: 'raised', time: T0, value: 51 },
      { rule: 's', deviceId: 'd1', state: 'raised', time: T0 + 100, value: 51 },
      { rule: 's', deviceId: 'd1', state: 'cleared', time: T0 + 300, value: 40 },
      { rule: 's', deviceId: 'd1', state: 'raised', time: T0 + 500, value: 61 },
    ]);
    expect(r.rejected).toEqual({ s: { 'not-a-number': 2, 'missing-field': 1 } });
  });

  it('raises missing after timeout of connected time without an arrival, not counting an outage, and clears on the next arrival', () => {
    const silent = { kind: 'anomaly', groupBy: ['$deviceId'], value: 'z', detector: { type: 'missing', timeout: '2050ms' } };
    const z = (deviceId = 'd1'): RunEvent => ({ deviceId, body: { z: 0 } });
    const r = runOracle(
      run(
        { m: silent },
        at(T0, z()),
        // 2 s connected + a 10 s outage: 2 s of silence only.
        { kind: 'advance', wall: T0 + 2_000, connected: T0 + 2_000 },
        { kind: 'outage', wall: T0 + 12_000, connected: T0 + 2_000 },
        { kind: 'deliver', wall: T0 + 12_000, connected: T0 + 2_000, events: [z()] },
        // 2.1 s connected: raised once, however many ticks see it.
        { kind: 'advance', wall: T0 + 14_000, connected: T0 + 4_000 },
        { kind: 'advance', wall: T0 + 14_100, connected: T0 + 4_100 },
        { kind: 'advance', wall: T0 + 19_100, connected: T0 + 9_100 },
        { kind: 'deliver', wall: T0 + 19_100, connected: T0 + 9_100, events: [z()] },
      ),
    );
    expect(r.alerts).toEqual([
      { rule: 'm', deviceId: 'd1', state: 'raised', time: null, value: null },
      { rule: 'm', deviceId: 'd1', state: 'cleared', time: T0 + 19_100, value: 0 },
    ]);
  });

  it('keeps a threshold alert across a new limit, and ends it with a clear (value null) when the rule starts afresh', () => {
    const spike = { kind: 'anomaly', groupBy: ['$deviceId'], value: 'v', detector: { type: 'threshold', above: 50, hysteresis: 10 } };
    const r = runOracle(
      run(
        { s: spike },
        at(T0, ev(0, 51)),
        // A new limit is a decision parameter: the alert stays raised; 55 <= 60 - 10 is false, 45 clears.
        { kind: 'setRules', rules: { s: { ...spike, detector: { type: 'threshold', above: 60, hysteresis: 10 } } } },
        at(T0 + 100, ev(0, 55)),
        at(T0 + 200, ev(0, 70)),
        { kind: 'restart', rules: { s: { ...spike, where: 'v > -100' } } },
        at(T0 + 300, ev(0, 30)),
      ),
    );
    expect(r.alerts).toEqual([
      { rule: 's', deviceId: 'd1', state: 'raised', time: T0, value: 51 },
      { rule: 's', deviceId: 'd1', state: 'cleared', time: null, value: null },
    ]);
  });

  it('accounts for every considered event: in exactly one tumbling window or under one reason', () => {
    fc.assert(
      fc.property(runArbitrary(), (r) => {
        const o = runOracle(r);
        for (const [rule, n] of Object.entries(o.considered)) {
          if (rule !== 'tumble') continue;
          const placed = o.windows.filter((w) => w.rule === rule).reduce((a, w) => a + w.count, 0);
          const rejected = Object.values(o.rejected[rule] ?? {}).reduce((a, b) => a + b, 0);
          expect(placed + rejected).toBe(n);
          expect(placed).toBe(o.accepted[rule] ?? 0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
