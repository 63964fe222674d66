import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { parseQuery } from '../../../src/asa/parseQuery.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';

/*
 * Worked migration 2 of docs/asa-migration.md: "Send data to multiple outputs" of Microsoft's "Common
 * query patterns in Azure Stream Analytics"
 * (https://learn.microsoft.com/azure/stream-analytics/stream-analytics-stream-analytics-query-patterns).
 * Its AlertOutput statement, unchanged, on the page's own five input events must give the page's
 * AlertOutput row: Make2, 2023-01-01T00:00:10.0000000Z, 3 (Make1 has two events, under the HAVING).
 * The page's first statement (`SELECT * INTO ArchiveOutput`) passes every event on unchanged.
 */
const ARCHIVE_STATEMENT = `SELECT
	*
INTO
	ArchiveOutput
FROM
	Input TIMESTAMP BY Time`;
const ALERT_STATEMENT = `SELECT
	Make,
	System.Timestamp() AS Time,
	COUNT(*) AS [Count]
INTO
	AlertOutput
FROM
	Input TIMESTAMP BY Time
GROUP BY
	Make,
	TumblingWindow(second, 10)
HAVING
	[Count] >= 3`;

const INPUT: Array<[string, string]> = [
  ['Make1', '2023-01-01T00:00:01.0000000Z'],
  ['Make1', '2023-01-01T00:00:02.0000000Z'],
  ['Make2', '2023-01-01T00:00:01.0000000Z'],
  ['Make2', '2023-01-01T00:00:02.0000000Z'],
  ['Make2', '2023-01-01T00:00:03.0000000Z'],
];

function rulesOf(query: string): CompiledRule[] {
  const r = compileQueryText(query);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return Object.entries(r.rules).map(([id, doc]) => {
    const c = compileRule(id, doc);
    if (!c.ok) throw new Error(c.error);
    return c.rule;
  });
}

function engineOn(arrival: number): { engine: Engine; out: OutputMessage[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = arrival;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  return { engine, out };
}

describe('Common query patterns: send data to multiple outputs (both statements)', () => {
  it("the page's whole query: ArchiveOutput gets the five events unchanged, AlertOutput the page's row", () => {
    const arrival = Date.UTC(2023, 0, 1, 0, 1, 0);
    const { engine, out } = engineOn(arrival);
    engine.setRules(rulesOf(`${ARCHIVE_STATEMENT}\n\n${ALERT_STATEMENT}`));
    const events: IngestEvent[] = INPUT.map(([Make, Time]) => ({ body: { Make, Time }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival }));
    engine.process(events);
    engine.flushWindows();
    expect(out.filter((m) => m.output === 'ArchiveOutput').map((m) => m.body)).toEqual(INPUT.map(([Make, Time]) => ({ Make, Time })));
    expect(out.filter((m) => m.output === 'AlertOutput').map((m) => m.body)).toEqual([{ Make: 'Make2', Time: '2023-01-01T00:00:10.0000000Z', Count: 3 }]);
    // eddy's properties: a row goes out as a summary, with a messageId per event.
    expect(new Set(out.filter((m) => m.output === 'ArchiveOutput').map((m) => m.id)).size).toBe(5);
    expect(out.every((m) => m.kind === 'summary')).toBe(true);
  });
});

/*
 * The LAG pattern of the same page ("use LAG to peek into the input stream one event back, retrieving
 * the Make value and comparing it to the Make value of the current event"): the statement keeps an
 * event whose Make differs from the previous one. Its query, and an input in the page's Make/Time
 * shape (Make1 at 00:00:01 and :02, Make2 at :03 on 2023-01-01), whose one row by ASA's LAG reference
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics) is Make2 at :03:
 * the first event has no previous one, LAG is NULL and `NULL <> 'Make1'` is not true.
 */
const CHANGE_QUERY = `SELECT
    Make,
    Time
FROM
    Input TIMESTAMP BY Time
WHERE
    LAG(Make, 1) OVER (LIMIT DURATION(minute, 1)) <> Make`;

describe('Common query patterns: detect when a value changes (LAG)', () => {
  it('gives the one row of a change', () => {
    const arrival = Date.UTC(2023, 0, 1, 0, 1, 0);
    const { engine, out } = engineOn(arrival);
    engine.setRules(rulesOf(CHANGE_QUERY));
    const input: Array<[string, string]> = [
      ['Make1', '2023-01-01T00:00:01.0000000Z'],
      ['Make1', '2023-01-01T00:00:02.0000000Z'],
      ['Make2', '2023-01-01T00:00:03.0000000Z'],
    ];
    engine.process(input.map(([Make, Time]) => ({ body: { Make, Time }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival })));
    expect(out.map((m) => ({ output: m.output, body: m.body }))).toEqual([{ output: 'output', body: { Make: 'Make2', Time: '2023-01-01T00:00:03.0000000Z' } }]);
  });

  it('a change more than LIMIT DURATION after the previous event is not one (LAG is NULL then)', () => {
    const arrival = Date.UTC(2023, 0, 1, 0, 5, 0);
    const { engine, out } = engineOn(arrival);
    engine.setRules(rulesOf(CHANGE_QUERY));
    engine.process([
      { body: { Make: 'Make1', Time: '2023-01-01T00:00:01.0000000Z' }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival },
      { body: { Make: 'Make2', Time: '2023-01-01T00:01:01.0000000Z' }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival },
      { body: { Make: 'Make1', Time: '2023-01-01T00:02:00.0000000Z' }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival },
    ]);
    // Make2 is exactly one minute after Make1 (timed out); Make1 at 00:02:00 is 59 s after Make2.
    expect(out.map((m) => m.body)).toEqual([{ Make: 'Make1', Time: '2023-01-01T00:02:00.0000000Z' }]);
  });
});

describe('Common query patterns: send data to multiple outputs (AlertOutput)', () => {
  it("gives the page's AlertOutput row on the page's input", () => {
    const arrival = Date.UTC(2023, 0, 1, 0, 1, 0);
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = arrival;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    engine.setRules(rulesOf(ALERT_STATEMENT));
    const events: IngestEvent[] = INPUT.map(([Make, Time]) => ({ body: { Make, Time }, deviceId: 'cam1', moduleId: '', input: 'Input', arrival }));
    engine.process(events);
    engine.flushWindows();
    expect(out.map((m) => ({ output: m.output, body: m.body }))).toEqual([{ output: 'AlertOutput', body: { Make: 'Make2', Time: '2023-01-01T00:00:10.0000000Z', Count: 3 } }]);
    expect(JSON.stringify(out[0]!.body)).toBe('{"Make":"Make2","Time":"2023-01-01T00:00:10.0000000Z","Count":3}');
  });
});

/*
 * CASE with string results (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics).
 * The reference's two examples, quoted, select per event (no window): they parse; eddy runs a CASE
 * column in a windowed SELECT list, so the rows below come from the same CASE expressions over a
 * GROUP BY column and over an aggregate, on inputs written for the test, with the rows the reference's
 * rule gives: the result of the first WHEN that holds, else ELSE (`ELSE NULL` writes null).
 */
const CASE_SIMPLE = `  SELECT
    CASE vehicleType
      WHEN 'S' THEN 'Sedan'
      WHEN 'T' THEN 'Truck'
      WHEN 'V' THEN 'Van'
      ELSE NULL
    END as vehicleTypeName
  FROM vehicles`;
const CASE_SEARCHED = `  SELECT
    CASE
      WHEN temperature < 60 THEN 'Alert'
      ELSE 'OK'
    END as currentStatus
  FROM sensor`;

function runRows(rules: CompiledRule[], bodies: Record<string, unknown>[], input: string): unknown[] {
  const arrival = Date.UTC(2023, 0, 1, 0, 1, 0);
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = arrival;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  engine.process(bodies.map((body) => ({ body, deviceId: 'cam1', moduleId: '', input, arrival })));
  engine.flushWindows();
  return out.map((m) => m.body);
}

describe('CASE reference examples with string results', () => {
  it('both examples parse as written', () => {
    expect(parseQuery(CASE_SIMPLE).ok).toBe(true);
    expect(parseQuery(CASE_SEARCHED).ok).toBe(true);
  });

  it('the simple CASE over a GROUP BY column gives each window its type name, NULL for an unknown type', () => {
    const q = CASE_SIMPLE.replace('  FROM vehicles', `  , COUNT(*) AS n, System.Timestamp() AS t
  FROM vehicles TIMESTAMP BY Time
  GROUP BY vehicleType, TumblingWindow(second, 10)`);
    const bodies = [['S', 1], ['T', 2], ['X', 3], ['S', 4], ['V', 12]].map(([vehicleType, s]) => ({ vehicleType, Time: `2023-01-01T00:00:${String(s).padStart(2, '0')}.0000000Z` }));
    // Windows of different groups go out in no documented order: compared as a set.
    const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
    expect(sorted(runRows(rulesOf(q), bodies, 'vehicles'))).toEqual(sorted([
      { vehicleTypeName: 'Sedan', n: 2, t: '2023-01-01T00:00:10.0000000Z' },
      { vehicleTypeName: 'Truck', n: 1, t: '2023-01-01T00:00:10.0000000Z' },
      { vehicleTypeName: null, n: 1, t: '2023-01-01T00:00:10.0000000Z' },
      { vehicleTypeName: 'Van', n: 1, t: '2023-01-01T00:00:20.0000000Z' },
    ]));
  });

  it('the searched CASE over an aggregate gives Alert or OK per window', () => {
    const q = CASE_SEARCHED.replace('temperature < 60', 'AVG(temperature) < 60').replace('  FROM sensor', `  , System.Timestamp() AS t
  FROM sensor TIMESTAMP BY Time
  GROUP BY TumblingWindow(second, 10)`);
    const bodies = [[50, 1], [65, 2], [70, 11], [64, 12], [null, 13]].map(([temperature, s]) => ({ temperature, Time: `2023-01-01T00:00:${String(s).padStart(2, '0')}.0000000Z` }));
    // (50 + 65) / 2 = 57.5 < 60; (70 + 64) / 2 = 67 (the NULL is skipped, as AVG ignores null values).
    expect(runRows(rulesOf(q), bodies, 'sensor')).toEqual([
      { currentStatus: 'Alert', t: '2023-01-01T00:00:10.0000000Z' },
      { currentStatus: 'OK', t: '2023-01-01T00:00:20.0000000Z' },
    ]);
  });

  it('"Specify logic for different cases" of the query-patterns page parses; its CONCAT is refused with line and column', () => {
    // From https://learn.microsoft.com/azure/stream-analytics/stream-analytics-stream-analytics-query-patterns.
    const q = `SELECT
	CASE
		WHEN COUNT(*) = 1 THEN CONCAT('1 ', Make)
		ELSE CONCAT(CAST(COUNT(*) AS NVARCHAR(MAX)), ' ', Make, 's')
	END AS CarsPassed,
	System.Timestamp() AS Time
INTO Output
FROM Input TIMESTAMP BY Time
GROUP BY
	Make,
	TumblingWindow(second, 10)`;
    const r = compileQueryText(q);
    expect(r.ok).toBe(false);
    // The first CONCAT compiled is ELSE's (line 4, column 8); CAST(... AS NVARCHAR(MAX)) inside it parses.
    if (!r.ok) expect(r.errors[0]).toMatchObject({ line: 4, column: 8, message: 'function CONCAT is not supported at the edge' });
  });
});
