import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type EngineObserver } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';

/*
 * Issue 21, "Semantics": a query and its hand-written JSON twin (docs/rules.md) give identical outputs
 * (summaries for tumbling, hopping and sliding windows, alerts for the two anomaly functions)
 * on the same seeded input through the Engine. The twins are written by hand in docs/rules.md's own
 * notation ("30s", unparenthesised expressions), so they are not the compiler's output; their
 * messageIds differ (the id hashes the definition's text, docs/contract.md section 4), the bodies not.
 * The tumbling case is also checked against a direct computation over the events: ASA's
 * TumblingWindow(..., Offset(millisecond, -1)) holds [start, end) (the tumbling window reference:
 * https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics), and
 * the sensor's events fall exactly on window bounds every 30 s.
 */
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 7 * 86_400_000;

function compiled(rules: Record<string, unknown>): CompiledRule[] {
  return Object.entries(rules).map(([id, doc]) => {
    const r = compileRule(id, doc);
    if (!r.ok) throw new Error(r.error);
    return r.rule;
  });
}

function fromQuery(q: string): CompiledRule[] {
  const r = compileQueryText(q);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return compiled(r.rules);
}

interface Seen { deviceId: string; t: number; temp: number }

/** Runs the seeded SimulatedTemperatureSensor traffic of two devices through an Engine holding `rules`. */
function run(rules: CompiledRule[], messages = 60): { out: OutputMessage[]; seen: Seen[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const observer: EngineObserver = { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined };
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer, tickIntervalMs: 0 });
  engine.setRules(rules);
  const sensor = new SimulatedSensor({ devices: ['a', 'b'], start: T0, stepMs: 5_000, seed: 11 });
  const seen: Seen[] = [];
  for (let k = 0; k < messages; k++) {
    for (let i = 0; i < 2; i++) {
      const m = sensor.next(i);
      const body = JSON.parse(m.body) as { machine: { temperature: number }; timeCreated: string };
      seen.push({ deviceId: m.deviceId, t: Date.parse(body.timeCreated.slice(0, 23) + 'Z'), temp: body.machine.temperature });
      const { events } = decodeMessage(Buffer.from(m.body), { input: 'telemetry', deviceId: m.deviceId, arrival: CLOCK0 });
      engine.process(events);
    }
  }
  return { out, seen };
}

/** A seeded wobble around 20 (an LCG, so the series is fixed) with `at(k)` overriding some points, through an Engine. */
function runAlerts(rules: CompiledRule[], at: (k: number) => number | undefined): OutputMessage[] {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  let x = 7;
  for (let k = 0; k < 120; k++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const v = at(k) ?? 20 + (x / 2147483648 - 0.5);
    const ev: IngestEvent = { body: { t: T0 + k * 1_000, v }, deviceId: 'dev1', moduleId: 'sensor', input: 'telemetry', arrival: CLOCK0 };
    engine.process([ev]);
  }
  return out;
}

const shape = (out: OutputMessage[]) => out.map((m) => ({ kind: m.kind, output: m.output, body: m.body }));

describe('ASA query vs hand-written JSON twin through the Engine', () => {
  it('tumbling: identical summaries, and each equals the [start, end) aggregate of its events', () => {
    const query = `SELECT IoTHub.ConnectionDeviceId, AVG(machine.temperature) AS avgT, MAX(machine.temperature) AS maxT, COUNT(*) AS n
INTO summaries
FROM telemetry TIMESTAMP BY timeCreated
WHERE machine.temperature > 0
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(Duration(second, 30), Offset(millisecond, -1))`;
    const twin = {
      summaries: {
        kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', where: 'machine.temperature > 0',
        window: { type: 'tumbling', size: '30s' },
        select: { avgT: 'avg(machine.temperature)', maxT: 'max(machine.temperature)', n: 'count()' },
        output: 'summaries',
      },
    };
    const a = run(fromQuery(query));
    const b = run(compiled(twin));
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    for (const m of a.out) {
      const s = m.body as SummaryBody;
      const start = Date.parse(s.window.start);
      const inWin = a.seen.filter((e) => e.deviceId === s.group.deviceId && e.t >= start && e.t < start + 30_000 && e.temp > 0);
      expect(s.count).toBe(inWin.length);
      expect(s.values.maxT).toBe(Math.max(...inWin.map((e) => e.temp)));
      expect(s.values.avgT).toBeCloseTo(inWin.reduce((x, e) => x + e.temp, 0) / inWin.length, 9);
    }
  });

  it('hopping: identical summaries for HoppingWindow(Duration, Hop, Offset(millisecond, -1)) and {type: hopping}', () => {
    const query = `SELECT MIN(machine.temperature) AS lo, STDEV(machine.temperature) AS sd, COUNT(*) AS n
INTO hops FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, HoppingWindow(Duration(minute, 1), Hop(second, 20), Offset(millisecond, -1))
HAVING COUNT(*) > 3`;
    const twin = {
      hops: {
        kind: 'aggregate', input: 'telemetry', groupBy: '$deviceId', timestamp: 'timeCreated',
        window: { type: 'hopping', size: '1m', hop: '20s' },
        select: { lo: 'min(machine.temperature)', sd: 'stdev(machine.temperature)', n: 'count()' },
        having: 'n > 3', output: 'hops',
      },
    };
    const a = run(fromQuery(query));
    const b = run(compiled(twin));
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    // Overlap: every closed minute-long window holds 12 events of a device, windows start 20 s apart.
    const full = a.out.map((m) => m.body as SummaryBody).filter((s) => s.count === 12);
    expect(full.length).toBeGreaterThan(5);
  });

  it('sliding: identical summaries, each over the events of its [start, end) bounds', () => {
    const query = `SELECT AVG(machine.temperature) AS avgT, COUNT(*) AS n INTO slides FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, SlidingWindow(second, 30)`;
    const twin = { slides: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'sliding', size: '30s' }, select: { avgT: 'avg(machine.temperature)', n: 'count()' }, output: 'slides' } };
    const a = run(fromQuery(query), 20);
    const b = run(compiled(twin), 20);
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    for (const m of a.out) {
      const s = m.body as SummaryBody;
      const [start, end] = [Date.parse(s.window.start), Date.parse(s.window.end)];
      expect(s.count).toBe(a.seen.filter((e) => e.deviceId === s.group.deviceId && e.t >= start && e.t < end).length);
    }
  });

  it('AnomalyDetection_SpikeAndDip: identical alerts to a spikeAndDip rule on a series with a spike', () => {
    const query = `SELECT AnomalyDetection_SpikeAndDip(CAST(v AS float), 99, 60, 'spikes')
  OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 10)) AS scores
INTO alerts FROM telemetry TIMESTAMP BY t`;
    const twin = { alerts: { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 't', value: 'v', detector: { type: 'spikeAndDip', confidence: 99, history: 60, mode: 'spikes' }, output: 'alerts' } };
    const spike = (k: number) => (k === 80 ? 60 : undefined);
    const a = runAlerts(fromQuery(query), spike);
    const b = runAlerts(compiled(twin), spike);
    const raised = a.filter((m) => m.kind === 'alert' && (m.body as AlertBody).state === 'raised').map((m) => m.body as AlertBody);
    // The spike is the first raise (a 99 % detector may also flag a wobble at its own 1 % rate).
    expect(raised[0]).toMatchObject({ time: new Date(T0 + 80_000).toISOString(), value: 60 });
    expect(shape(a)).toEqual(shape(b));
  });

  it('AnomalyDetection_ChangePoint: identical alerts to a changePoint rule on a level shift', () => {
    const query = `SELECT AnomalyDetection_ChangePoint(v, 95, 40) OVER (LIMIT DURATION(minute, 5)) AS cp INTO shifts FROM telemetry TIMESTAMP BY t`;
    const twin = { shifts: { kind: 'anomaly', timestamp: 't', value: 'v', detector: { type: 'changePoint', confidence: 95, history: 40 }, output: 'shifts' } };
    const shift = (k: number) => (k >= 70 ? 30 + (k % 3) * 0.1 : undefined);
    const a = runAlerts(fromQuery(query), shift);
    const b = runAlerts(compiled(twin), shift);
    expect(a.some((m) => m.kind === 'alert' && (m.body as AlertBody).state === 'raised')).toBe(true);
    expect(shape(a)).toEqual(shape(b));
  });
});
