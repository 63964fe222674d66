/**
 * Counter-examples the differential test (test/oracle/differential.test.ts) shrank to, kept as fixed
 * cases named after the behaviour they pin. Each runs the real engine through the
 * schedule and expects both the oracle's answer and, written out by hand, what the documents say.
 */
import { describe, expect, it } from 'vitest';
import { runOracle } from './oracle.js';
import { runEngine, type EngineRunResult } from './engineDriver.js';
import { compareWithOracle } from './compareWithOracle.js';
import type { Run, RunEvent, RunRules, RunStep } from './oracleRun.js';
import type { AlertBody, SummaryBody } from '../../src/contracts/output.js';
import { ANOMALY_RULES } from './scheduleArbitrary.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

const rule = (window: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  kind: 'aggregate',
  groupBy: ['$deviceId'],
  timestamp: 'ts',
  window,
  maxLateness: '0ms',
  select: { n: 'count()' },
  ...extra,
});
const tumble2s = (extra: Record<string, unknown> = {}): Record<string, unknown> => rule({ type: 'tumbling', size: '2s' }, extra);
const hop2s = (extra: Record<string, unknown> = {}): Record<string, unknown> => rule({ type: 'hopping', size: '2s', hop: '1s' }, extra);

const ev = (ts: number, body: Record<string, unknown> = {}, deviceId = 'd1'): RunEvent => ({ deviceId, body: { ts, v: 0, ...body } });
const deliver = (ms: number, ...events: RunEvent[]): RunStep => ({ kind: 'deliver', wall: T0 + ms, connected: T0 + ms, events });
const advance = (ms: number): RunStep => ({ kind: 'advance', wall: T0 + ms, connected: T0 + ms });
const run = (rules: RunRules, ...steps: RunStep[]): Run => ({ startWall: T0, startConnected: T0, rules, steps });

/** Runs the engine, expects the oracle's answer, and returns the engine's result for the hand-written checks. */
function expectOracle(r: Run): EngineRunResult {
  const got = runEngine(r);
  expect(compareWithOracle(got, runOracle(r))).toEqual([]);
  return got;
}

/** The last revision emitted per rule and window start (ISO). */
function finals(got: EngineRunResult): Record<string, SummaryBody> {
  const last: Record<string, SummaryBody> = {};
  for (const m of got.outputs) {
    if (m.kind !== 'summary') continue;
    const b = m.body as SummaryBody;
    last[`${b.rule} ${String(b.group.deviceId)} ${b.window.start}`] = b;
  }
  return last;
}

describe('engine regressions found by the oracle', () => {
  it('idle flush: a later event in a provisionally emitted window re-emits it as revision 1, not too-late', () => {
    // 03:00:00.001 opens [03:00:00, 03:00:02) and [02:59:59, 03:00:01) / [03:00:00, 03:00:02); the group
    // falls silent for 3.1 s (idleTimeout defaults to the window size, 2 s), so those windows are emitted
    // early. The watermark is still 03:00:00.001 (maxLateness 0): no window is final, and 03:00:01.999
    // must correct [03:00:00, 03:00:02) in both rules.
    const got = expectOracle(run({ tumble: tumble2s(), hop: hop2s() }, deliver(0, ev(T0 + 1)), advance(3_100), deliver(3_100, ev(T0 + 1_999))));
    const f = finals(got);
    expect(f['tumble d1 2026-11-26T03:00:00.000Z']).toMatchObject({ count: 2, revision: 1 });
    expect(f['hop d1 2026-11-26T03:00:00.000Z']).toMatchObject({ count: 2, revision: 1 });
    expect(got.rejected).toEqual({});
  });

  it('idle flush: a group that comes back never gets a second revision 0 (one messageId, one body)', () => {
    // 02:59:59.999 is flushed after idleTimeout 1 s; two more events for the same window come later. They
    // must give revision 1 with count 3, not a new revision 0 (same messageId) with count 2.
    const got = expectOracle(
      run({ tumble: tumble2s({ idleTimeout: '1s' }) }, deliver(0, ev(T0 - 1, {}, 'd3')), advance(2_000), deliver(2_000, ev(T0 - 1, {}, 'd3'), ev(T0 - 1, {}, 'd3')), advance(2_100)),
    );
    expect(finals(got)['tumble d3 2026-11-26T02:59:58.000Z']).toMatchObject({ count: 3, revision: 1 });
    const ids = new Map<string, string>();
    for (const m of got.outputs) {
      const body = JSON.stringify(m.body);
      expect(ids.get(m.id) ?? body).toBe(body);
      ids.set(m.id, body);
    }
  });

  it('future-timestamp: an event more than 5 min ahead of its arrival is rejected and opens no window', () => {
    const got = expectOracle(run({ tumble: tumble2s(), hop: hop2s() }, deliver(0, ev(T0 + 400_001))));
    expect(got.outputs).toEqual([]);
    expect(got.rejected).toEqual({ tumble: { 'future-timestamp': 1 }, hop: { 'future-timestamp': 1 } });
  });

  it('future-timestamp: a rejected future event does not move the watermark', () => {
    // Had 03:06:37.001 moved d2's watermark, 03:00:00.001 would be too-late.
    const got = expectOracle(run({ tumble: tumble2s() }, deliver(0, ev(T0 + 1_001, {}, 'd2')), deliver(0, ev(T0 + 397_001 + 300_000, {}, 'd2')), deliver(0, ev(T0 + 1, {}, 'd2'))));
    expect(finals(got)['tumble d2 2026-11-26T03:00:00.000Z']).toMatchObject({ count: 2, revision: 0 });
    expect(got.rejected).toEqual({ tumble: { 'future-timestamp': 1 } });
  });

  it('strict types: a boolean value is not-a-number for sum/min/max/avg, not 0 or 1', () => {
    const full = { n: 'count()', sum: 'sum(v)', min: 'min(v)', max: 'max(v)', avg: 'avg(v)' };
    const got = expectOracle(run({ hop: hop2s({ select: full }) }, deliver(0, ev(T0 + 1, { v: false }), ev(T0 + 3, { v: true }), ev(T0 + 5, { v: 4 }))));
    expect(finals(got)['hop d1 2026-11-26T03:00:00.000Z']).toMatchObject({ count: 1, values: { n: 1, sum: 4, min: 4, max: 4, avg: 4 } });
    expect(got.rejected).toEqual({ hop: { 'not-a-number': 2 } });
  });

  it('rule changed across a restart: the old definition emits its open windows', () => {
    // The checkpoint holds [03:00:00, 03:00:02) with one event; the rule comes back with a new `where`,
    // which starts it afresh: the open window must still be emitted, under the old definition.
    const got = expectOracle(
      run(
        { tumble: tumble2s({ description: 'r0' }) },
        deliver(0, ev(T0 + 1, { z: 0 })),
        { kind: 'restart', rules: { tumble: tumble2s({ description: 'r2', where: 'z >= 1' }) } },
        deliver(0, ev(T0 + 1, { z: 0 })),
      ),
    );
    expect(got.outputs.map((m) => (m.body as SummaryBody).count)).toEqual([1]);
  });

  it('alerts: a group that raises, clears and raises again within one millisecond gets two messageIds, not one id with two bodies', () => {
    // One batch from d1 (one arrival, the event time of a rule without a timestamp path): 51 raises,
    // 0 clears, 52 raises again. The second raise is another alert: it must not reuse the first's id.
    const got = expectOracle(run({ spike: ANOMALY_RULES.spike! }, deliver(0, ev(0, { v: 51 }), ev(0, { v: 0 }), ev(0, { v: 52 }))));
    const raised = got.outputs.filter((m) => m.kind === 'alert' && (m.body as AlertBody).state === 'raised');
    expect(raised.map((m) => (m.body as AlertBody).value)).toEqual([51, 52]);
    expect(new Set(raised.map((m) => m.id)).size).toBe(2);
  });

  it('missing: silence is counted in connected time, from the last arrival, not from its wall-clock stamp', () => {
    // d1 arrives right after a 1.1 s outage (wall 03:00:01.1, connected 03:00:00), then 3.1 s of connected
    // time pass: more than the 2.05 s timeout, so `missing` is raised, and cleared by the next arrival.
    const got = expectOracle(
      run(
        { silent: ANOMALY_RULES.silent! },
        { kind: 'outage', wall: T0 + 1_100, connected: T0 },
        { kind: 'deliver', wall: T0 + 1_100, connected: T0, events: [ev(0, { z: 0 })] },
        { kind: 'advance', wall: T0 + 4_200, connected: T0 + 3_100 },
        { kind: 'deliver', wall: T0 + 4_200, connected: T0 + 3_100, events: [ev(0, { z: 0 })] },
      ),
    );
    expect(got.outputs.map((m) => (m.body as AlertBody).state)).toEqual(['raised', 'cleared']);
  });

  it('anomaly rule changed across a restart: its raised alert ends with a cleared of kind rule-changed', () => {
    // d1 raises (51 > 50); the module restarts with the rule's `where` changed, which starts it
    // afresh: the raised alert must be ended (value null), as a live change does.
    const changed = { ...ANOMALY_RULES.spike!, where: 'z >= 0', description: 'a2' };
    const got = expectOracle(run({ spike: ANOMALY_RULES.spike! }, deliver(0, ev(0, { v: 51, z: 0 })), { kind: 'restart', rules: { spike: changed } }));
    expect(got.outputs.map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).kind, (m.body as AlertBody).value])).toEqual([
      ['raised', 'above', 51],
      ['cleared', 'rule-changed', null],
    ]);
  });

  it('anomaly rule changed live: the same schedule without a restart already ends the alert (control)', () => {
    const changed = { ...ANOMALY_RULES.spike!, where: 'z >= 0', description: 'a2' };
    const got = expectOracle(run({ spike: ANOMALY_RULES.spike! }, deliver(0, ev(0, { v: 51, z: 0 })), { kind: 'setRules', rules: { spike: changed } }));
    expect(got.outputs.map((m) => [(m.body as AlertBody).state, (m.body as AlertBody).kind, (m.body as AlertBody).value])).toEqual([
      ['raised', 'above', 51],
      ['cleared', 'rule-changed', null],
    ]);
  });
});
