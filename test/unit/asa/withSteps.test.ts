import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compileQueryRules } from '../../../src/rules/queryRules.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';

/*
 * docs/asa-migration.md, WITH steps (https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics:
 * "a temporary named result set which can be referenced by a FROM clause in the query"). A step that
 * filters and projects each event of an input gives each statement reading it the events of that
 * input that pass its WHERE, with its columns and its timestamp: the same as one statement over the
 * input with both WHEREs and the step's expressions in place of its column names. The twins below are
 * that statement written by hand as eddy rules (docs/rules.md), not the compiler's output.
 */
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 7 * 86_400_000;

interface Seen { deviceId: string; t: number; temp: number }

/** The seeded SimulatedTemperatureSensor traffic of two devices (machine temperature climbing from 21 °C) through an Engine. */
function run(rules: CompiledRule[]): { out: OutputMessage[]; seen: Seen[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  const sensor = new SimulatedSensor({ devices: ['a', 'b'], start: T0, stepMs: 5_000, seed: 11 });
  const seen: Seen[] = [];
  for (let k = 0; k < 60; k++) {
    for (let i = 0; i < 2; i++) {
      const m = sensor.next(i);
      const body = JSON.parse(m.body) as { machine: { temperature: number }; timeCreated: string };
      seen.push({ deviceId: m.deviceId, t: Date.parse(body.timeCreated.slice(0, 23) + 'Z'), temp: body.machine.temperature });
      engine.process(decodeMessage(Buffer.from(m.body), { input: 'telemetry', deviceId: m.deviceId, arrival: CLOCK0 }).events);
    }
  }
  return { out, seen };
}

const shape = (out: OutputMessage[]) => out.map((m) => ({ kind: m.kind, output: m.output, rule: m.rule, body: m.body }));

/** One step (a filter, a metadata column, a unit conversion, the event time) read by two statements, one through a second step. */
const WITH_QUERY = `WITH Warm AS (
  SELECT IoTHub.ConnectionDeviceId AS dev, machine.temperature * 1.8 + 32 AS tempF, machine.pressure
  FROM telemetry TIMESTAMP BY timeCreated
  WHERE machine.temperature > 25
),
Fahrenheit AS (SELECT * FROM Warm WHERE tempF < 110)
SELECT dev, System.Timestamp() AS t, AVG(tempF) AS avgF, COUNT(*) AS n
INTO warm
FROM Fahrenheit
GROUP BY dev, TumblingWindow(second, 30)
HAVING MAX(tempF) > 90

SELECT System.Timestamp() AS t, MAX(pressure) AS hiP
INTO pressure
FROM Warm
GROUP BY TumblingWindow(minute, 1)`;

const TWIN = {
  warm: {
    kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated',
    where: 'machine.temperature > 25 and machine.temperature * 1.8 + 32 < 110',
    window: { type: 'tumbling', size: '30s', bounds: '(]' },
    select: { avgF: 'avg(machine.temperature * 1.8 + 32)', n: 'count()', hiF: 'max(machine.temperature * 1.8 + 32)' },
    having: 'hiF > 90',
    row: { dev: { group: '$deviceId' }, t: { window: 'end' }, avgF: { select: 'avgF' }, n: { select: 'n' } },
    output: 'warm',
  },
  pressure: {
    kind: 'aggregate', input: 'telemetry', timestamp: 'timeCreated', where: 'machine.temperature > 25',
    window: { type: 'tumbling', size: '1m', bounds: '(]' },
    select: { hiP: 'max(machine.pressure)' },
    row: { t: { window: 'end' }, hiP: { select: 'hiP' } },
    output: 'pressure',
  },
};

describe('WITH steps inlined into the statements that read them', () => {
  it('give the rows of the hand-written twin, each the (start, end] aggregate of the events passing both WHEREs', () => {
    const a = run(fromQuery(WITH_QUERY));
    const b = run(compiled(TWIN));
    expect(shape(a.out)).toEqual(shape(b.out));
    const warm = a.out.filter((m) => m.output === 'warm').map((m) => m.body as { dev: string; t: string; avgF: number; n: number });
    expect(warm.length).toBeGreaterThan(3);
    const f = (c: number): number => c * 1.8 + 32;
    const passes = (e: Seen): boolean => e.temp > 25 && f(e.temp) < 110;
    // Both WHEREs exclude events of this traffic (it starts at 21 °C and climbs past 43.3 °C = 110 °F).
    expect(a.seen.some((e) => e.temp <= 25)).toBe(true);
    expect(a.seen.some((e) => e.temp > 25 && f(e.temp) >= 110)).toBe(true);
    for (const r of warm) {
      const end = Date.parse(r.t);
      const inWin = a.seen.filter((e) => e.deviceId === r.dev && e.t > end - 30_000 && e.t <= end && passes(e));
      expect(r.n).toBe(inWin.length);
      expect(r.avgF).toBeCloseTo(inWin.reduce((x, e) => x + f(e.temp), 0) / inWin.length, 9);
      expect(Math.max(...inWin.map((e) => f(e.temp)))).toBeGreaterThan(90);
    }
    // Windows whose events are all at or below 90 °F are held back by HAVING.
    const ends = new Set(warm.map((r) => `${r.dev}@${r.t}`));
    const heldBack = a.seen.filter((e) => passes(e) && f(e.temp) <= 90 && !ends.has(`${e.deviceId}@${new Date(Math.ceil(e.t / 30_000) * 30_000).toISOString().replace('Z', '0000Z')}`));
    expect(heldBack.length).toBeGreaterThan(0);
    expect(a.out.some((m) => m.output === 'pressure')).toBe(true);
  });

  it('a step read by two statements is in both rules; a step no statement reads is ignored', () => {
    const r = compileQueryText(`WITH Unused AS (SELECT * FROM other WHERE x > 1), ${WITH_QUERY.slice('WITH '.length)}`);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(Object.keys(r.rules)).toEqual(['warm', 'pressure']);
    expect(r.rules.warm).toMatchObject({ input: 'telemetry', timestamp: 'timeCreated', where: '((machine.temperature > 25) and (((machine.temperature * 1.8) + 32) < 110))' });
    expect(r.rules.pressure).toMatchObject({ input: 'telemetry', timestamp: 'timeCreated', where: '(machine.temperature > 25)', select: { hiP: 'max(machine.pressure)' } });
  });

  it('an anomaly statement reads a step through its value, PARTITION BY and WHEN', () => {
    const r = compileQueryText(`WITH s AS (SELECT IoTHub.ConnectionDeviceId AS dev, CASE WHEN v > 100 THEN 100 ELSE v END AS capped FROM telemetry TIMESTAMP BY t WHERE v > 0)
SELECT AnomalyDetection_SpikeAndDip(capped, 95, 60, 'spikes') OVER (PARTITION BY dev LIMIT DURATION(minute, 10) WHEN capped < 99) AS scores INTO alerts FROM s`);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.alerts).toMatchObject({
      kind: 'anomaly', input: 'telemetry', timestamp: 't', groupBy: ['$deviceId'],
      where: '((v > 0)) and ((((v > 100) ? 100 : v) < 99))', value: '((v > 100) ? 100 : v)',
    });
  });

  it('the WITH reference example: its first two steps and its pass-through of a per-event step compile; its misnamed column is refused where it is', () => {
    // The example of https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics, unchanged.
    const example = `WITH
NormalReadings AS
(
SELECT *
FROM Sensor
WHERE Reading < 100 AND Reading > 0
),
Averages AS
(
SELECT SensorId, AVG(Reading) as AvgNormalReading
FROM NormalReadings
GROUP BY SensorId, TumblingWindow(minute, 1)
),
BadAverages AS
(
SELECT *
FROM Averages
WHERE AvgNormalReadings < 10
)
SELECT * INTO outputAlerts FROM BadAverages
SELECT * INTO outputLog FROM NormalReadings`;
    const refused = compileQueryRules(example);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.errors).toEqual([
      // BadAverages reads the rows of Averages (test/unit/asa/aggregateSteps.test.ts) by a name Averages does not give.
      { statement: 1, line: 18, column: 7, error: expect.stringMatching(/^column AvgNormalReadings is not supported yet: WITH step "Averages" has no column AvgNormalReadings/) },
    ]);
    // Its pass-through of NormalReadings alone is a select rule: the step's WHERE, the body unchanged.
    const log = compileQueryText(example.slice(0, example.indexOf(',\nAverages AS')) + '\n' + example.slice(example.indexOf('SELECT * INTO outputLog')));
    if (!log.ok) throw new Error(JSON.stringify(log.errors));
    expect(log.rules).toEqual({ outputLog: { kind: 'select', input: 'Sensor', where: '((Reading < 100) and (Reading > 0))', output: 'outputLog', nulls: 'skip' } });
    // Its steps NormalReadings and Averages, with Averages as the statement writing to an output.
    const subset = example.slice(0, example.indexOf('),\nBadAverages')).replace(',\nAverages AS\n(\n', '\n').replace('FROM NormalReadings', 'INTO averages FROM NormalReadings');
    const r = compileQueryText(subset);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules).toEqual({
      averages: {
        kind: 'aggregate', input: 'Sensor', where: '((Reading < 100) and (Reading > 0))', groupBy: ['SensorId'],
        window: { type: 'tumbling', size: 60000, bounds: '(]' },
        select: { AvgNormalReading: 'avg(Reading)' },
        row: { SensorId: { group: 'SensorId' }, AvgNormalReading: { select: 'AvgNormalReading' } },
        output: 'averages',
        nulls: 'skip',
      },
    });
  });
});

describe('WITH: what is refused, with line and column inside the query', () => {
  const rejects: Array<[string, string, number, number, RegExp]> = [
    // The snapshot window page's "Tumbling window snapshot example": a count per window, then a count of those rows.
    ['a step with a sliding window whose rows another statement aggregates', `WITH PerInterval AS (
SELECT Topic, User, COUNT(*) AS n
FROM TwitterStream TIMESTAMP BY CreatedAt
GROUP BY Topic, User, SlidingWindow(minute, 30)
)
SELECT Topic, COUNT(*) AS users INTO o FROM PerInterval GROUP BY Topic, SnapshotWindow()`, 4, 23, /^a sliding window in WITH step "PerInterval" whose rows another statement aggregates is not supported yet: only TumblingWindow and HoppingWindow/],
    ['an anomaly function in a step', `WITH s AS (SELECT AnomalyDetection_ChangePoint(v, 95, 40) OVER (LIMIT DURATION(minute, 5)) AS cp FROM i)\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 1, 19, /^AnomalyDetection_ChangePoint in a WITH step is not supported yet/],
    ['TIMESTAMP BY on a step', `WITH s AS (SELECT * FROM i TIMESTAMP BY t)\nSELECT COUNT(*) AS n INTO o FROM s TIMESTAMP BY u GROUP BY TumblingWindow(second, 30)`, 2, 49, /^TIMESTAMP BY on WITH step "s" is not supported yet/],
    ['a column the step does not have', `WITH s AS (SELECT t * 2 AS t2 FROM i)\nSELECT AVG(t) AS a INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 2, 12, /^column t is not supported yet: WITH step "s" has no column t \(its columns: t2\)/],
    ['a computed step column without AS', `WITH s AS (SELECT t * 2 FROM i)\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 1, 19, /^column t \* 2 without AS in WITH step "s" is not supported yet/],
    ['a field of a computed step column', `WITH s AS (SELECT t * 2 AS x FROM i)\nSELECT AVG(x.y) AS a INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 2, 12, /^column x\.y is not supported yet/],
    ['metadata read through a step', `WITH s AS (SELECT * FROM i)\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY GetMetadataPropertyValue(s, '[IoTHub].[ConnectionDeviceId]'), TumblingWindow(second, 30)`, 2, 45, /^GetMetadataPropertyValue over WITH step "s" is not supported yet/],
    ['System.Timestamp() in a step', `WITH s AS (SELECT System.Timestamp() AS ts, t FROM i)\nSELECT AVG(t) AS a INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 1, 19, /^System\.Timestamp\(\) here is not supported yet/],
    ['LAG whose default is a step column computed by LAG', `WITH s AS (SELECT i, LAG(t) OVER (LIMIT DURATION(hour, 1)) AS prev FROM i)\nSELECT LAG(i, 1, prev) OVER (LIMIT DURATION(hour, 1)) AS p2 INTO o FROM s`, 2, 8, /^LAG whose default or PARTITION BY is a column that WITH step "s" computes with LAG is not supported yet/],
    ['LAG(*) over a step that selects columns', `WITH s AS (SELECT t FROM i)\nSELECT LAG(*) OVER (LIMIT DURATION(hour, 1)) AS p INTO o FROM s`, 2, 12, /^LAG\(\*\) over WITH step "s", which selects columns is not supported yet/],
    ['LAG over the rows of a window step', `WITH s AS (SELECT dev, AVG(t) AS a FROM i GROUP BY dev, TumblingWindow(second, 30))\nSELECT a, LAG(a) OVER (LIMIT DURATION(hour, 1)) AS p INTO o FROM s`, 2, 11, /^LAG over the rows of WITH step "s" is not supported yet/],
    ['two steps with one name', `WITH s AS (SELECT * FROM i),\n  S AS (SELECT * FROM j)\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 2, 3, /^WITH step "S" is defined twice/],
    ['a step reading itself', `WITH s AS (SELECT * FROM s)\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY TumblingWindow(second, 30)`, 1, 26, /^WITH step "s" reading itself/],
  ];
  it.each(rejects)('%s', (_name, q, line, column, message) => {
    const r = compileQueryText(q);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ line, column });
    expect(r.errors[0]!.message).toMatch(message);
  });

  it('a syntax error inside a step names its token, line and column', () => {
    const r = compileQueryText('WITH s AS (\n  SELECT * FROM i WHERE t > )\nSELECT COUNT(*) AS n INTO o FROM s GROUP BY TumblingWindow(second, 30)');
    expect(r).toMatchObject({ ok: false, errors: [{ line: 2, column: 29, token: ')' }] });
  });
});

describe('statement numbers with WITH: steps are not statements', () => {
  const q = `WITH s AS (SELECT * FROM i WHERE t > 0),
  u AS (SELECT t * 2 AS t2 FROM i)
SELECT COUNT(*) AS n INTO a FROM s GROUP BY TumblingWindow(second, 30)
SELECT AVG(t2) AS m INTO b FROM u GROUP BY TumblingWindow(second, 30)`;

  it('the rules are statements 1 and 2 at their SELECTs', () => {
    const r = compileQueryRules(q);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.rules.map((x) => [x.id, x.statement, x.line, x.column])).toEqual([['a', 1, 3, 1], ['b', 2, 4, 1]]);
  });

  it('an error in a step is given to the statement reading it, a syntax error to the statement it is in', () => {
    const inStep = compileQueryRules(q.replace('AVG(t2)', 'AVG(t3)').replace('t * 2 AS t2', 't * 2 AS t2, CAST(t AS bigint) AS t3'));
    expect(inStep).toMatchObject({ ok: false, errors: [{ statement: 2, line: 2, column: 29 }] });
    const syntax = compileQueryRules(q.replace('INTO b FROM u', 'INTO b FROM u u u'));
    expect(syntax).toMatchObject({ ok: false, errors: [{ statement: 2, line: 4 }] });
  });
});
