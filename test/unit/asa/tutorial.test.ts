import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { TUTORIAL_QUERY } from '../../helpers/asaQueries.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';

/*
 * docs/asa-migration.md: the query of Microsoft's tutorial "Deploy Azure Stream Analytics as an IoT
 * Edge module" (https://learn.microsoft.com/azure/iot-edge/tutorial-deploy-stream-analytics), unchanged,
 * through the Engine on seeded SimulatedTemperatureSensor traffic, gives the rows an oracle written
 * from ASA's documentation expects, not from eddy's code:
 *  - "tumbling windows are inclusive in the end of the window and exclusive in the beginning"
 *    (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics), aligned
 *    so that a 30 s window ends on every 30 s of the clock: an event at t belongs to the window ending at
 *    ceil(t / 30 s) * 30 s;
 *  - HAVING keeps a window's row when its condition holds; the row is the SELECT list, here only
 *    `command` ("reset"), written to the INTO output `alert`;
 *  - "The timestamp of the result of the aggregate is the end of the time window"
 *    (https://learn.microsoft.com/stream-analytics-query/system-timestamp-stream-analytics), written as
 *    ASA writes a datetime to JSON, "2023-01-01T00:00:10.0000000Z"
 *    (https://learn.microsoft.com/azure/stream-analytics/stream-analytics-stream-analytics-query-patterns).
 * The sensor sends every 5 s from a 30 s boundary, so every window's last event lies exactly on its end:
 * a [start, end) engine would give other rows (checked below, so the test cannot pass vacuously).
 */

const T0 = Date.UTC(2026, 11, 6, 4, 0, 0);
const CLOCK0 = T0 + 86_400_000;
const SIZE = 30_000;

interface Reading { t: number; temp: number }

function rulesOf(query: string): CompiledRule[] {
  const r = compileQueryText(query);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return Object.entries(r.rules).map(([id, doc]) => {
    const c = compileRule(id, doc);
    if (!c.ok) throw new Error(c.error);
    return c.rule;
  });
}

/** Two simulated sensors (the tutorial's module sends one stream; two make the window average mix them) on input `temperature`. */
function run(rules: CompiledRule[], messages = 150): { out: OutputMessage[]; readings: Reading[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  const sensor = new SimulatedSensor({ devices: ['edge1', 'edge2'], start: T0 + 5_000, stepMs: 5_000, seed: 2026 });
  const readings: Reading[] = [];
  for (let k = 0; k < messages; k++) {
    for (let i = 0; i < 2; i++) {
      const m = sensor.next(i);
      const body = JSON.parse(m.body) as { machine: { temperature: number }; timeCreated: string };
      // .NET's 7 fractional digits, read to the millisecond.
      readings.push({ t: Date.parse(body.timeCreated.slice(0, 23) + 'Z'), temp: body.machine.temperature });
      engine.process(decodeMessage(Buffer.from(m.body), { input: 'temperature', deviceId: m.deviceId, arrival: CLOCK0 }).events);
    }
  }
  // The end of the input: what is still open goes out (as ASA's job would once time moves on).
  engine.flushWindows();
  return { out, readings };
}

/** The oracle: windows by their end, each with the average of its readings. */
function windowsOf(readings: readonly Reading[], endOf: (t: number) => number): { end: number; avg: number }[] {
  const byEnd = new Map<number, number[]>();
  for (const r of readings) {
    const e = endOf(r.t);
    byEnd.set(e, [...(byEnd.get(e) ?? []), r.temp]);
  }
  return [...byEnd.entries()].sort((a, b) => a[0] - b[0]).map(([end, temps]) => ({ end, avg: temps.reduce((x, y) => x + y, 0) / temps.length }));
}
const endInclusive = (t: number): number => Math.ceil(t / SIZE) * SIZE;
const startInclusive = (t: number): number => Math.floor(t / SIZE) * SIZE + SIZE;
const asaTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

describe("the IoT Edge tutorial's query, unchanged, gives ASA's rows", () => {
  it("is the query the README shows first, and docs/asa-migration.md's first worked migration", () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const firstScreen = readme.split('\n').slice(0, 40).join('\n');
    expect(firstScreen).toContain('```sql\n' + TUTORIAL_QUERY + '\n```');
    expect(firstScreen).toContain('desired property `query`');
    const migration = readFileSync(new URL('../../../docs/asa-migration.md', import.meta.url), 'utf8');
    expect(migration).toContain('```sql\n' + TUTORIAL_QUERY + '\n```');
  });

  it('compiles to an end-inclusive 30 s tumbling rule whose row is {command: "reset"} and whose HAVING average is hidden', () => {
    const r = compileQueryText(TUTORIAL_QUERY);
    expect(r).toEqual({
      ok: true,
      rules: {
        alert: {
          kind: 'aggregate', input: 'temperature', timestamp: 'timeCreated',
          window: { type: 'tumbling', size: 30_000, bounds: '(]' },
          select: { _having1: 'avg(machine.temperature)' },
          having: '(_having1 > 70)',
          row: { command: { const: 'reset' } },
          output: 'alert',
          // AVG skips nulls in ASA ("Except for the COUNT function, aggregate functions ignore null values").
          nulls: 'skip',
        },
      },
    });
  });

  it('one {"command":"reset"} row on output alert per window whose average passes 70, with deterministic ids', () => {
    const { out, readings } = run(rulesOf(TUTORIAL_QUERY));
    const expected = windowsOf(readings, endInclusive).filter((w) => w.avg > 70);
    expect(expected.length).toBeGreaterThan(5);
    expect(out.map((m) => ({ output: m.output, kind: m.kind, rule: m.rule, body: m.body }))).toEqual(expected.map(() => ({ output: 'alert', kind: 'summary', rule: 'alert', body: { command: 'reset' } })));
    // One id per window, the same in a second run.
    expect(new Set(out.map((m) => m.id)).size).toBe(out.length);
    expect(run(rulesOf(TUTORIAL_QUERY)).out.map((m) => m.id)).toEqual(out.map((m) => m.id));
  });

  it('with System.Timestamp() and the average in the row: each row is the window end in ASA format and its (start, end] average', () => {
    const query = TUTORIAL_QUERY.replace("'reset' AS command", "'reset' AS command, System.Timestamp() AS t, AVG(machine.temperature) AS avgTemp");
    const { out, readings } = run(rulesOf(query));
    const expected = windowsOf(readings, endInclusive).filter((w) => w.avg > 70);
    const rows = out.map((m) => m.body as { command: string; t: string; avgTemp: number });
    expect(rows.map((r) => Object.keys(r))).toEqual(expected.map(() => ['command', 't', 'avgTemp']));
    expect(rows.map((r) => r.t)).toEqual(expected.map((w) => asaTime(w.end)));
    expect(rows.map((r) => r.t)[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:[03]0\.0000000Z$/);
    rows.forEach((r, i) => expect(r.avgTemp).toBeCloseTo(expected[i]!.avg, 9));
    // A [start, end) window would have given other rows on this input.
    const halfOpen = windowsOf(readings, startInclusive).filter((w) => w.avg > 70);
    expect(halfOpen.map((w) => [asaTime(w.end), w.avg])).not.toEqual(expected.map((w) => [asaTime(w.end), w.avg]));
  });
});
