import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, recordReported, startModule, upstreamOf, useEmulator, waitUntil } from './moduleProcess.js';
import { sensorBody, T0 } from './traffic.js';

/*
 * The twin's `query` with the built module over the real SDK: an Azure Stream Analytics query set
 * through the twin's desired `query` (docs/contract.md section 6). The expected rows are computed
 * here from ASA's documented semantics of a tumbling window, not from eddy's code:
 * https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics —
 * a window holds (start, end] ("inclusive in the end of the window and exclusive in the beginning"),
 * and `Offset(millisecond, -1)` moves every bound 1 ms earlier, so with millisecond timestamps an
 * event at t belongs to the 10 s window (k*10000 - 1, (k+1)*10000 - 1] with k = floor(t / 10000),
 * and that window's row carries System.Timestamp() = (k+1)*10000 - 1 ms
 * (https://learn.microsoft.com/stream-analytics-query/system-timestamp-stream-analytics).
 * AVG is the mean, COUNT(*) the number of events, MAX the largest value
 * (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics).
 */

const SECOND = 1_000;
const WINDOW = 10 * SECOND;

/** An ASA output row of the statements below: the GROUP BY column, the window end, the named aggregates. */
type Row = Record<string, string | number>;

/**
 * THE ONE PLACE that reads eddy's output as ASA rows. A query rule's body is the flat row of its SELECT
 * list (docs/contract.md section 4, "Rows"); System.Timestamp() is written in ASA's datetime format
 * (seven fractional digits), compared here as the millisecond ISO text the oracle computes. One
 * emission per window: a correction would be a second row for the same window, which the exact
 * comparisons below reject.
 */
function rowsOf(emu: EdgeHubEmulator, moduleId: string, output: string): Row[] {
  return upstreamOf(emu, moduleId, output).map((m) => {
    const { windowEnd, ...rest } = bodyOf<Row>(m);
    const ts = String(windowEnd);
    expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}0000Z$/);
    return { ...rest, timestamp: `${ts.slice(0, 23)}Z` };
  });
}

interface Reading {
  readonly deviceId: string;
  readonly t: number;
  readonly temp: number;
  readonly pressure: number;
}

/**
 * System.Timestamp() of the ASA window holding t: the window (k*W - 1, (k+1)*W - 1] (10 s tumbling,
 * Offset(millisecond, -1)) holds t when k*W - 1 < t <= (k+1)*W - 1, i.e. k = floor(t / W) for whole ms.
 */
const windowEnd = (t: number): number => (Math.floor(t / WINDOW) + 1) * WINDOW - 1;

/** Oracle of statement 1 (AVG and COUNT(*) per device and window), rows sorted by device then time. */
function expectedAvgRows(rs: readonly Reading[]): Row[] {
  const cells = new Map<string, { deviceId: string; end: number; temps: number[] }>();
  for (const r of rs) {
    const end = windowEnd(r.t);
    const key = `${r.deviceId}|${end}`;
    const c = cells.get(key) ?? { deviceId: r.deviceId, end, temps: [] };
    c.temps.push(r.temp);
    cells.set(key, c);
  }
  return [...cells.values()]
    .map((c) => ({ timestamp: new Date(c.end).toISOString(), deviceId: c.deviceId, avgTemp: c.temps.reduce((a, b) => a + b, 0) / c.temps.length, n: c.temps.length }))
    .sort(byDeviceThenTime);
}

/** Oracle of a MAX(machine.pressure) or MIN(...) statement over all devices per window. */
function expectedPressureRows(rs: readonly Reading[], name: string, f: (xs: number[]) => number): Row[] {
  const cells = new Map<number, number[]>();
  for (const r of rs) cells.set(windowEnd(r.t), [...(cells.get(windowEnd(r.t)) ?? []), r.pressure]);
  return [...cells].map(([end, ps]) => ({ timestamp: new Date(end).toISOString(), [name]: f(ps) })).sort(byDeviceThenTime);
}

function byDeviceThenTime(a: Row, b: Row): number {
  return String(a.deviceId ?? '').localeCompare(String(b.deviceId ?? '')) || String(a.timestamp).localeCompare(String(b.timestamp));
}

const AVG_STATEMENT = `SELECT IoTHub.ConnectionDeviceId AS deviceId, AVG(machine.temperature) AS avgTemp, COUNT(*) AS n, System.Timestamp() AS windowEnd
INTO avgOut
FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(Duration(second, 10), Offset(millisecond, -1))`;

const pressureStatement = (fn: 'MAX' | 'MIN', name: string): string => `SELECT ${fn}(machine.pressure) AS ${name}, System.Timestamp() AS windowEnd
INTO pressureOut
FROM telemetry TIMESTAMP BY timeCreated
GROUP BY TumblingWindow(Duration(second, 10), Offset(millisecond, -1))`;

type Reported = {
  config?: { desiredVersion?: number; status?: string };
  query?: { status: string; statements?: Record<string, { rule?: string; line: number; column: number; status: string; error?: string }> };
  rules?: Record<string, { status: string; source: string; statement?: number; error?: string } | null>;
};

/** Line and column (1-based) of the `‸` written by hand in `marked`, and the text without it. */
function marked(text: string): { text: string; line: number; column: number } {
  const i = text.indexOf('‸');
  const before = text.slice(0, i).split('\n');
  return { text: text.replace('‸', ''), line: before.length, column: before[before.length - 1]!.length + 1 };
}

describe('built module: desired query (an ASA job through the twin)', () => {
  let emu: EdgeHubEmulator;

  useEmulator((e) => (emu = e));

  const send = async (moduleId: string, rs: readonly Reading[]): Promise<void> => {
    for (const r of rs) await emu.sendInput(moduleId, 'telemetry', sensorBody(r.t, r.temp, r.pressure, 20, 25), { deviceId: r.deviceId });
  };
  /** The reported properties once the module has reported handling desired `version`. */
  const reportOf = async (moduleId: string, reported: Array<Record<string, unknown>>, version: number): Promise<Reported> => {
    await waitUntil(() => reported.some((r) => (r as Reported).config?.desiredVersion === version), 15_000, `report of desired version ${version}`);
    return emu.twin(moduleId).reported as Reported;
  };

  it('a query set through the twin gives exactly the rows ASA computes, events on a window bound included', { timeout: 60_000 }, async () => {
    const M = ('eddy-query-rows');
    const reported = recordReported(emu, M);
    await startModule(emu, M);
    const v1 = emu.pushDesired(M, { query: `${AVG_STATEMENT};\n\n${pressureStatement('MAX', 'maxP')}` });
    const r1 = await reportOf(M, reported, v1);
    expect(r1.config).toMatchObject({ status: 'applied' });
    expect(r1.query).toEqual({
      status: 'applied',
      statements: {
        1: { rule: 'avgOut', line: 1, column: 1, status: 'active' },
        2: { rule: 'pressureOut', line: 6, column: 1, status: 'active' },
      },
    });
    expect(r1.rules).toMatchObject({ avgOut: { status: 'active', source: 'query', statement: 1 }, pressureOut: { status: 'active', source: 'query', statement: 2 } });

    // Three 10 s windows; events 1 ms before and exactly on a bound (T0 is a multiple of 10 s).
    const rs: Reading[] = [
      { deviceId: 'dev-a', t: T0 + 0, temp: 20, pressure: 1 },
      { deviceId: 'dev-a', t: T0 + 4_000, temp: 21.5, pressure: 1.25 },
      { deviceId: 'dev-b', t: T0 + 5_000, temp: 30, pressure: 2 },
      { deviceId: 'dev-a', t: T0 + 9_999, temp: 23, pressure: 1.5 },
      { deviceId: 'dev-a', t: T0 + 10_000, temp: 40, pressure: 0.5 },
      { deviceId: 'dev-b', t: T0 + 12_000, temp: 31.25, pressure: 2.5 },
      { deviceId: 'dev-b', t: T0 + 19_999, temp: 32.75, pressure: 3 },
      { deviceId: 'dev-a', t: T0 + 20_000, temp: 41, pressure: 1 },
      { deviceId: 'dev-b', t: T0 + 25_500, temp: 33, pressure: 1.75 },
      { deviceId: 'dev-a', t: T0 + 29_999, temp: 42.5, pressure: 0.75 },
    ];
    // One event per device well past the last window (the watermark is the latest event time minus the
    // default maxLateness of 5 s, per rule and group): it closes the windows above; its own stays open.
    const closers: Reading[] = [
      { deviceId: 'dev-a', t: T0 + 60_000, temp: 0, pressure: 0 },
      { deviceId: 'dev-b', t: T0 + 60_000, temp: 0, pressure: 0 },
    ];
    await send(M, [...rs, ...closers]);
    const wantAvg = expectedAvgRows(rs);
    const wantP = expectedPressureRows(rs, 'maxP', (xs) => Math.max(...xs));
    expect(wantAvg).toHaveLength(6);
    expect(wantP).toHaveLength(3);
    await waitUntil(() => rowsOf(emu, M, 'avgOut').length >= wantAvg.length && rowsOf(emu, M, 'pressureOut').length >= wantP.length, 20_000, 'the rows of the three windows');
    expect((await emu.invokeMethod(M, 'flush', null)).status).toBe(200);
    const closed = (r: Row): boolean => Date.parse(String(r.timestamp)) < T0 + 60_000;
    expect(rowsOf(emu, M, 'avgOut').filter(closed).sort(byDeviceThenTime)).toEqual(wantAvg);
    expect(rowsOf(emu, M, 'pressureOut').filter(closed).sort(byDeviceThenTime)).toEqual(wantP);
  });

  it('a patch changing one of two statements keeps the other statement\'s open windows: its window spanning the patch has every event', { timeout: 60_000 }, async () => {
    const M = ('eddy-query-patch');
    const reported = recordReported(emu, M);
    await startModule(emu, M);
    const v1 = emu.pushDesired(M, { query: `${AVG_STATEMENT}\n${pressureStatement('MAX', 'maxP')}` });
    await reportOf(M, reported, v1);

    const before: Reading[] = [
      { deviceId: 'dev-p', t: T0 + 1_000, temp: 10, pressure: 1 },
      { deviceId: 'dev-p', t: T0 + 2_000, temp: 12, pressure: 3 },
      { deviceId: 'dev-p', t: T0 + 3_000, temp: 14, pressure: 2 },
    ];
    await send(M, before);
    // Only statement 2 changes (MAX -> MIN, a new column name); statement 1's text is the same.
    const v2 = emu.pushDesired(M, { query: `${AVG_STATEMENT}\n${pressureStatement('MIN', 'minP')}` });
    const r2 = await reportOf(M, reported, v2);
    expect(r2.query?.statements).toEqual({
      1: { rule: 'avgOut', line: 1, column: 1, status: 'active' },
      2: { rule: 'pressureOut', line: 5, column: 1, status: 'active' }, // the statements are joined by one newline here
    });
    const after: Reading[] = [
      { deviceId: 'dev-p', t: T0 + 6_000, temp: 20, pressure: 0.5 },
      { deviceId: 'dev-p', t: T0 + 8_000, temp: 24, pressure: 4 },
    ];
    await send(M, [...after, { deviceId: 'dev-p', t: T0 + 60_000, temp: 0, pressure: 0 }]);
    await waitUntil(() => rowsOf(emu, M, 'avgOut').length >= 1 && upstreamOf(emu, M, 'pressureOut').length >= 2, 20_000, 'the rows of window 0');
    expect((await emu.invokeMethod(M, 'flush', null)).status).toBe(200);

    // Statement 1: ONE row for the window, with the events of both sides of the patch.
    expect(rowsOf(emu, M, 'avgOut').filter((r) => Date.parse(String(r.timestamp)) < T0 + 60_000)).toEqual(expectedAvgRows([...before, ...after]));
    // Statement 2 changed: its old definition ended its open window at the patch (with the events it had
    // seen), the new one counts what came after (docs/rules.md "Changing a rule through the twin").
    const pressure = rowsOf(emu, M, 'pressureOut')
      .filter((r) => Date.parse(String(r.timestamp)) < T0 + 60_000)
      .map(({ timestamp: _end, ...values }) => values);
    expect(pressure).toEqual([{ maxP: 3 }, { minP: 0.5 }]);
  });

  it('a query with a syntax error in statement 2 is rejected whole with its statement, line and column (twin and log); the last good query keeps running; query null removes its rules', { timeout: 60_000 }, async () => {
    const M = ('eddy-query-bad');
    const reported = recordReported(emu, M);
    const mp = await startModule(emu, M);
    const v1 = emu.pushDesired(M, { query: AVG_STATEMENT });
    await reportOf(M, reported, v1);

    const bad = marked(`${AVG_STATEMENT}\n\nSELECT MAX(machine.pressure) AS maxP\nINTO pressureOut\n‸FORM telemetry TIMESTAMP BY timeCreated\nGROUP BY TumblingWindow(Duration(second, 10), Offset(millisecond, -1))`);
    const v2 = emu.pushDesired(M, { query: bad.text });
    const r2 = await reportOf(M, reported, v2);
    expect(r2.config).toMatchObject({ desiredVersion: v2, status: 'partial' });
    // Statement 1's line of the good query is gone (patched to null): only the statement with the error is listed.
    expect(r2.query).toEqual({ status: 'rejected', statements: { 2: { line: bad.line, column: bad.column, status: 'rejected', error: expect.stringContaining('FORM') } } });
    // The last good query's rule keeps running, and says where it comes from.
    expect(r2.rules).toMatchObject({ avgOut: { status: 'active', source: 'query', statement: 1 } });
    expect(r2.rules?.pressureOut).toBeUndefined();
    await mp.waitForLog((l) => l.statement === 2 && l.line === bad.line && l.column === bad.column && String(l.msg).includes('FORM'), 5_000, 'the log line of the rejected statement');

    // Also after a SIGKILL and a restart: the rejected query is still in the twin, the last good one runs.
    mp.child.kill('SIGKILL');
    await mp.exit;
    const seen = reported.length;
    const mp2 = await startModule(emu, M, { dataDir: mp.dataDir });
    await waitUntil(() => reported.length > seen, 15_000, 'the report after the restart');
    const again = emu.twin(M).reported as Reported;
    expect(again.query).toEqual(r2.query);
    expect(again.rules).toMatchObject({ avgOut: { status: 'active', source: 'query', statement: 1 } });
    await mp2.waitForLog((l) => l.msg === 'desired query rejected; the last good query keeps running', 5_000, 'the log of the fallback after the restart');

    const rs: Reading[] = [
      { deviceId: 'dev-q', t: T0 + 1_000, temp: 10, pressure: 1 },
      { deviceId: 'dev-q', t: T0 + 60_000, temp: 0, pressure: 0 },
    ];
    await send(M, rs);
    await waitUntil(() => rowsOf(emu, M, 'avgOut').length >= 1, 15_000, 'a row of the last good query');
    expect(rowsOf(emu, M, 'avgOut')[0]).toEqual(expectedAvgRows(rs.slice(0, 1))[0]);

    // `query: null` deletes the property: the query's rules are removed and reported as gone.
    const v3 = emu.pushDesired(M, { query: null });
    const r3 = await reportOf(M, reported, v3);
    expect(r3.query).toEqual({ status: 'none' });
    expect(r3.config).toMatchObject({ status: 'applied' });
    expect(r3.rules?.avgOut).toBeUndefined();
    const stats = await emu.invokeMethod(M, 'getStats', null);
    expect(Object.keys((stats.payload as { rules: object }).rules)).not.toContain('avgOut');
  });

  it('an id both desired.rules and the query define is rejected on both sides, the rest applies; validateRules checks a query', { timeout: 60_000 }, async () => {
    const M = ('eddy-query-validate');
    const reported = recordReported(emu, M);
    await startModule(emu, M);
    const own = { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } };
    const v1 = emu.pushDesired(M, { rules: { avgOut: own, other: own }, query: `${AVG_STATEMENT}\n${pressureStatement('MAX', 'maxP')}` });
    const r1 = await reportOf(M, reported, v1);
    expect(r1.config).toMatchObject({ status: 'partial' });
    expect(r1.rules).toMatchObject({
      avgOut: { status: 'rejected', source: 'twin', statement: 1, error: expect.stringContaining('both in desired.rules and by desired.query statement 1') },
      other: { status: 'active', source: 'twin' },
      pressureOut: { status: 'active', source: 'query', statement: 2 },
    });
    expect(r1.query?.status).toBe('partial');
    expect(r1.query?.statements).toEqual({
      1: { rule: 'avgOut', line: 1, column: 1, status: 'rejected', error: r1.rules?.avgOut?.error },
      2: { rule: 'pressureOut', line: 5, column: 1, status: 'active' }, // the statements are joined by one newline here
    });

    const good = await emu.invokeMethod(M, 'validateRules', { query: AVG_STATEMENT });
    expect(good).toEqual({ status: 200, payload: { valid: true, rules: {}, query: { valid: true, statements: [{ statement: 1, rule: 'avgOut', line: 1, column: 1 }], errors: null } } });

    const bad = marked(`${AVG_STATEMENT}\n\nSELECT ‸CollectTop(2) OVER (ORDER BY machine.pressure) AS maxP\nINTO pressureOut\nFROM telemetry TIMESTAMP BY timeCreated\nGROUP BY TumblingWindow(second, 10)`);
    const res = await emu.invokeMethod(M, 'validateRules', { query: bad.text });
    expect(res.status).toBe(200);
    expect(res.payload).toEqual({ valid: false, rules: {}, query: { valid: false, statements: null, errors: [{ statement: 2, line: bad.line, column: bad.column, error: expect.stringMatching(/not supported/) }] } });

    const both = await emu.invokeMethod(M, 'validateRules', { rules: { avgOut: own }, query: AVG_STATEMENT });
    expect(both.payload).toMatchObject({ valid: false, rules: { avgOut: { ok: false } }, query: { valid: false, errors: [{ statement: 1, line: 1, column: 1 }] } });

    expect((await emu.invokeMethod(M, 'validateRules', { query: 5 })).status).toBe(400);
    expect((await emu.invokeMethod(M, 'validateRules', {})).status).toBe(400);
    // A dry run: nothing changed.
    expect((emu.twin(M).reported as Reported).rules).toEqual(r1.rules);
  });
});
