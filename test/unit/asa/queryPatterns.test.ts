import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';

/*
 * Worked migration 2 of docs/asa-migration.md: "Send data to multiple outputs" of Microsoft's "Common
 * query patterns in Azure Stream Analytics"
 * (https://learn.microsoft.com/azure/stream-analytics/stream-analytics-stream-analytics-query-patterns).
 * Its AlertOutput statement, unchanged, on the page's own five input events must give the page's
 * AlertOutput row: Make2, 2023-01-01T00:00:10.0000000Z, 3 (Make1 has two events, under the HAVING).
 * The page's first statement (`SELECT * INTO ArchiveOutput`) is a pass-through eddy does not run.
 */
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
