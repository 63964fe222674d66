import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type EngineObserver } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';
import type { AlertBody, OutputMessage } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';

/*
 * docs/asa-migration.md: a query and its hand-written JSON twin (docs/rules.md) give identical outputs
 * (rows for tumbling, hopping, sliding, session and snapshot windows, alerts for the two anomaly functions)
 * on the same seeded input through the Engine. The twins are written by hand in docs/rules.md's own
 * notation ("30s", unparenthesised expressions), so they are not the compiler's output; their
 * messageIds differ (the id hashes the definition's text, docs/contract.md section 4), the bodies not.
 * Each window case is also checked against a direct computation over the events from ASA's documented
 * bounds: a tumbling window holds (start, end] (the tumbling window reference:
 * https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics), a
 * sliding window (t - size, t], a snapshot the events of one timestamp, and System.Timestamp() of a
 * windowed row is its end (system-timestamp-stream-analytics); the sensor's events fall exactly on
 * window bounds every 30 s.
 */
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 7 * 86_400_000;

interface Seen { deviceId: string; t: number; temp: number }

/** Runs the seeded SimulatedTemperatureSensor traffic of two devices through an Engine holding `rules`. */
function run(rules: CompiledRule[], messages = 60, o: { start?: number; stepMs?: number; skip?: (k: number, device: number) => boolean } = {}): { out: OutputMessage[]; seen: Seen[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const observer: EngineObserver = { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined };
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer, tickIntervalMs: 0 });
  engine.setRules(rules);
  const sensor = new SimulatedSensor({ devices: ['a', 'b'], start: o.start ?? T0, stepMs: o.stepMs ?? 5_000, seed: 11 });
  const seen: Seen[] = [];
  for (let k = 0; k < messages; k++) {
    for (let i = 0; i < 2; i++) {
      const m = sensor.next(i);
      if (o.skip?.(k, i) === true) continue;
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

type Row = { dev: string; WindowEnd: string; t: string; avgT: number; maxT: number; n: number; hi: number };

const shape = (out: OutputMessage[]) => out.map((m) => ({ kind: m.kind, output: m.output, body: m.body }));

describe('ASA query vs hand-written JSON twin through the Engine', () => {
  it('tumbling: identical rows, and each equals the (start, end] aggregate of its events with System.Timestamp() its end', () => {
    const query = `SELECT IoTHub.ConnectionDeviceId AS dev, System.Timestamp() AS WindowEnd, AVG(machine.temperature) AS avgT, MAX(machine.temperature) AS maxT, COUNT(*) AS n
INTO summaries
FROM telemetry TIMESTAMP BY timeCreated
WHERE machine.temperature > 0
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 30)`;
    const twin = {
      summaries: {
        kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', where: 'machine.temperature > 0',
        window: { type: 'tumbling', size: '30s', bounds: '(]' },
        select: { avgT: 'avg(machine.temperature)', maxT: 'max(machine.temperature)', n: 'count()' },
        row: { dev: { group: '$deviceId' }, WindowEnd: { window: 'end' }, avgT: { select: 'avgT' }, maxT: { select: 'maxT' }, n: { select: 'n' } },
        output: 'summaries',
      },
    };
    const a = run(fromQuery(query));
    const b = run(compiled(twin));
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    for (const m of a.out) {
      const r = m.body as Row;
      const end = Date.parse(r.WindowEnd);
      expect(r.WindowEnd).toMatch(/\.0000000Z$/);
      // ASA: "inclusive in the end of the window and exclusive in the beginning".
      const inWin = a.seen.filter((e) => e.deviceId === r.dev && e.t > end - 30_000 && e.t <= end && e.temp > 0);
      expect(r.n).toBe(inWin.length);
      expect(r.maxT).toBe(Math.max(...inWin.map((e) => e.temp)));
      expect(r.avgT).toBeCloseTo(inWin.reduce((x, e) => x + e.temp, 0) / inWin.length, 9);
    }
    // The sensor sends on the 30 s bounds, so the event at a window's end is in it: full windows hold 6.
    expect(a.out.filter((m) => (m.body as Row).n === 6).length).toBeGreaterThan(5);
  });

  it('hopping: identical rows for HoppingWindow(Duration, Hop, Offset(millisecond, -1)) and {type: hopping, bounds: "(]", offset: -1}', () => {
    const query = `SELECT MIN(machine.temperature) AS lo, STDEV(machine.temperature) AS sd, COUNT(*) AS n, System.Timestamp() AS t
INTO hops FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, HoppingWindow(Duration(minute, 1), Hop(second, 20), Offset(millisecond, -1))
HAVING COUNT(*) > 3`;
    const twin = {
      hops: {
        kind: 'aggregate', input: 'telemetry', groupBy: '$deviceId', timestamp: 'timeCreated',
        window: { type: 'hopping', size: '1m', hop: '20s', bounds: '(]', offset: -1 },
        select: { lo: 'min(machine.temperature)', sd: 'stdev(machine.temperature)', n: 'count()' },
        having: 'n > 3',
        row: { lo: { select: 'lo' }, sd: { select: 'sd' }, n: { select: 'n' }, t: { window: 'end' } },
        output: 'hops',
      },
    };
    const a = run(fromQuery(query));
    const b = run(compiled(twin));
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    // Offset(millisecond, -1): every window ends 1 ms before a 20 s bound, and a closed one holds 12 events.
    expect(a.out.every((m) => /:[0-5][0-9]\.9990000Z$/.test((m.body as Row).t) && Date.parse((m.body as Row).t) % 20_000 === 19_999)).toBe(true);
    expect(a.out.filter((m) => (m.body as Row).n === 12).length).toBeGreaterThan(5);
  });

  it('sliding: identical rows, each over the events of (t - size, t]', () => {
    const query = `SELECT AVG(machine.temperature) AS avgT, COUNT(*) AS n, System.Timestamp() AS t INTO slides FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, SlidingWindow(second, 30)`;
    const twin = { slides: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'sliding', size: '30s' }, select: { avgT: 'avg(machine.temperature)', n: 'count()' }, row: { avgT: { select: 'avgT' }, n: { select: 'n' }, t: { window: 'end' } }, output: 'slides' } };
    const a = run(fromQuery(query), 20);
    const b = run(compiled(twin), 20);
    expect(a.out.length).toBeGreaterThan(10);
    expect(shape(a.out)).toEqual(shape(b.out));
    for (const m of a.out) {
      const r = m.body as Row;
      const end = Date.parse(r.t);
      expect([...new Set(a.seen.filter((e) => e.t > end - 30_000 && e.t <= end).map((e) => e.deviceId))].map((d) => a.seen.filter((e) => e.deviceId === d && e.t > end - 30_000 && e.t <= end).length)).toContain(r.n);
    }
  });

  it('snapshot: identical rows, one per group and timestamp, stamped with that timestamp', () => {
    const query = `SELECT System.Timestamp() AS t, COUNT(*) AS n, MAX(machine.temperature) AS hi INTO snaps FROM telemetry TIMESTAMP BY timeCreated
GROUP BY SnapshotWindow()`;
    const twin = { snaps: { kind: 'aggregate', timestamp: 'timeCreated', window: { type: 'snapshot' }, select: { n: 'count()', hi: 'max(machine.temperature)' }, row: { t: { window: 'end' }, n: { select: 'n' }, hi: { select: 'hi' } }, output: 'snaps' } };
    const a = run(fromQuery(query), 20);
    const b = run(compiled(twin), 20);
    expect(shape(a.out)).toEqual(shape(b.out));
    // Both devices send at the same instants: each snapshot holds the two events of one timestamp.
    const times = [...new Set(a.seen.map((e) => e.t))].sort((x, y) => x - y);
    expect(a.out.length).toBeGreaterThan(10);
    for (const m of a.out) {
      const r = m.body as Row;
      const at = a.seen.filter((e) => e.t === Date.parse(r.t));
      expect(times).toContain(Date.parse(r.t));
      expect(r.n).toBe(at.length);
      expect(r.hi).toBe(Math.max(...at.map((e) => e.temp)));
    }
  });

  it('CASE and CAST(x AS float): identical rows, each counting the (start, end] events above 40', () => {
    // CASE: "Evaluates a list of conditions and returns one of multiple possible result expressions"
    // (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics).
    const query = `SELECT SUM(CASE WHEN CAST(machine.temperature AS float) > 40 THEN 1 ELSE 0 END) AS hot, System.Timestamp() AS t,
  CASE WHEN MAX(machine.temperature) > 40 THEN 2 WHEN MAX(machine.temperature) > 30 THEN 1 ELSE 0 END AS level
INTO hot FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 30)`;
    const twin = {
      hot: {
        kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '30s', bounds: '(]' },
        select: { hot: 'sum(machine.temperature > 40 ? 1 : 0)', level: 'max(machine.temperature) > 40 ? 2 : (max(machine.temperature) > 30 ? 1 : 0)' },
        row: { hot: { select: 'hot' }, t: { window: 'end' }, level: { select: 'level' } },
        output: 'hot',
      },
    };
    const a = run(fromQuery(query));
    const b = run(compiled(twin));
    expect(shape(a.out)).toEqual(shape(b.out));
    const rows = a.out.map((m) => m.body as Row & { hot: number; level: number });
    expect(new Set(rows.map((r) => r.level))).toEqual(new Set([0, 1, 2]));
    for (const m of a.out) {
      const r = m.body as Row & { hot: number; level: number };
      const end = Date.parse(r.t);
      const inWin = a.seen.filter((e) => e.deviceId === m.groupKey && e.t > end - 30_000 && e.t <= end);
      expect(r.hot).toBe(inWin.filter((e) => e.temp > 40).length);
      const max = Math.max(...inWin.map((e) => e.temp));
      expect(r.level).toBe(max > 40 ? 2 : max > 30 ? 1 : 0);
    }
  });

  it('session: identical rows for SessionWindow(...) OVER (PARTITION BY device) and {type: session, maxSizeAt: "aligned"}, each matching ASA\'s documented sessions', () => {
    // https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics: a session
    // "begins when the first event occurs"; it extends while the next event is "within the specified
    // timeout from the last ingested event", else "the window is closed at the timeout"; the maximum
    // duration is checked "at t = 0, 10, 20, 30, etc." (multiples of it), where "the window is closed and a
    // new window is opened at the same point". System.Timestamp() is the window's end. Events every 10 s
    // from 3 s past a round minute never fall on a minute; a 40 s hole (k = 20..22) lets the timeout act.
    const query = `SELECT IoTHub.ConnectionDeviceId AS dev, System.Timestamp() AS t, COUNT(*) AS n, AVG(machine.temperature) AS avgT
INTO sessions FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, SessionWindow(second, 15, 60) OVER (PARTITION BY IoTHub.ConnectionDeviceId)`;
    const twin = {
      sessions: {
        kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated',
        window: { type: 'session', gap: '15s', maxSize: '1m', maxSizeAt: 'aligned' },
        select: { n: 'count()', avgT: 'avg(machine.temperature)' },
        row: { dev: { group: '$deviceId' }, t: { window: 'end' }, n: { select: 'n' }, avgT: { select: 'avgT' } },
        output: 'sessions',
      },
    };
    const opts = { start: T0 + 3_000, stepMs: 10_000, skip: (k: number) => k >= 20 && k <= 22 };
    const a = run(fromQuery(query), 60, opts);
    const b = run(compiled(twin), 60, opts);
    expect(shape(a.out)).toEqual(shape(b.out));
    // The documented sessions, per device, from the events in time order.
    const expected: { dev: string; end: number; temps: number[] }[] = [];
    for (const dev of ['a', 'b']) {
      const evs = a.seen.filter((e) => e.deviceId === dev).sort((x, y) => x.t - y.t);
      let cur: { start: number; last: number; temps: number[] } | null = null;
      const close = (end: number) => { expected.push({ dev, end, temps: cur!.temps }); };
      for (const e of evs) {
        if (cur !== null) {
          // the first check point at which the session is at least 60 s long
          let check: number = Math.ceil(cur.start / 60_000) * 60_000;
          while (check - cur.start < 60_000) check += 60_000;
          if (e.t >= cur.last + 15_000 && cur.last + 15_000 <= check) { close(cur.last + 15_000); cur = null; }
          else if (e.t >= check) { close(check); cur = e.t < cur.last + 15_000 ? { start: check, last: e.t, temps: [e.temp] } : { start: e.t, last: e.t, temps: [e.temp] }; continue; }
        }
        if (cur === null) cur = { start: e.t, last: e.t, temps: [e.temp] };
        else { cur.last = e.t; cur.temps.push(e.temp); }
      }
    }
    const last = Math.max(...a.seen.map((e) => e.t));
    // Closed by the default 5 s maxLateness watermark.
    const closed = expected.filter((s) => s.end <= last - 5_000);
    expect(closed.length).toBeGreaterThan(10);
    expect(closed.some((s) => s.end % 60_000 !== 0)).toBe(true); // a timeout end (the hole)
    const rows = a.out.map((m) => m.body as { dev: string; t: string; n: number; avgT: number });
    expect(rows.map((r) => [r.dev, Date.parse(r.t), r.n]).sort()).toEqual(closed.map((s) => [s.dev, s.end, s.temps.length]).sort());
    for (const r of rows) {
      const s = closed.find((x) => x.dev === r.dev && x.end === Date.parse(r.t))!;
      expect(r.avgT).toBeCloseTo(s.temps.reduce((x, y) => x + y, 0) / s.temps.length, 9);
      expect(r.t).toMatch(/\.0000000Z$/);
    }
  });

  it('session without OVER: one session sequence for the whole stream, a row per device in each (ASA), the same as its JSON twin with partitionBy: []', () => {
    // https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics: the partition
    // key is "an optional parameter that specifies the key that the session window operates over"; without
    // it the sessions are the whole stream's, and GROUP BY gives one row per device within each session.
    const query = `SELECT IoTHub.ConnectionDeviceId AS dev, System.Timestamp() AS t, COUNT(*) AS n
INTO sessions FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, SessionWindow(second, 15, 60)`;
    const twin = {
      sessions: {
        kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated',
        window: { type: 'session', gap: '15s', maxSize: '1m', maxSizeAt: 'aligned', partitionBy: [] },
        select: { n: 'count()' },
        row: { dev: { group: '$deviceId' }, t: { window: 'end' }, n: { select: 'n' } },
        output: 'sessions',
      },
    };
    // Both devices pause at k = 10..12 (the stream's session times out); only device a at k = 20..22 and only
    // b at k = 40..42 (b, resp. a, keeps the stream's session going, where per-device sessions would end).
    const quiet = (k: number, i: number): boolean => (k >= 10 && k <= 12) || (i === 0 && k >= 20 && k <= 22) || (i === 1 && k >= 40 && k <= 42);
    const opts = { start: T0 + 3_000, stepMs: 10_000, skip: quiet };
    const a = run(fromQuery(query), 60, opts);
    const b = run(compiled(twin), 60, opts);
    expect(shape(a.out)).toEqual(shape(b.out));
    // The reference as a plain loop over the whole stream in time order: sessions, then rows per device.
    const evs = [...a.seen].sort((x, y) => x.t - y.t);
    const sessions: { start: number; last: number; cut: number; devs: string[] }[] = [];
    for (const e of evs) {
      const cur = sessions[sessions.length - 1];
      if (cur !== undefined && e.t < cur.last + 15_000 && e.t < cur.cut) { cur.last = e.t; cur.devs.push(e.deviceId); continue; }
      // "closed and a new window is opened at the same point" when the events go on past the check
      const start = cur !== undefined && e.t >= cur.cut && e.t < cur.last + 15_000 ? cur.cut : e.t;
      sessions.push({ start, last: e.t, cut: Math.ceil((start + 60_000) / 60_000) * 60_000, devs: [e.deviceId] });
    }
    const last = Math.max(...evs.map((e) => e.t));
    const want: [string, number, number][] = [];
    for (const s of sessions) {
      const end = Math.min(s.last + 15_000, s.cut);
      if (end > last - 5_000) continue; // closed by the default 5 s maxLateness watermark
      for (const dev of new Set(s.devs)) want.push([dev, end, s.devs.filter((d) => d === dev).length]);
    }
    expect(new Set(want.map((w) => w[1])).size).toBeGreaterThan(5);
    expect(sessions.some((s) => new Set(s.devs).size > 1)).toBe(true);
    const rows = a.out.map((m) => m.body as { dev: string; t: string; n: number });
    expect(rows.map((r) => [r.dev, Date.parse(r.t), r.n]).sort()).toEqual(want.sort());
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
