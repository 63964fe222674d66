import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../../src/rules/engine.js';
import type { CompiledRule } from '../../../src/rules/compileRule.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';
import { compiled, fromQuery } from '../../helpers/asaQueries.js';

/*
 * Select rules (docs/rules.md "Select rules") and LAG (docs/rules.md "LAG"): an ASA query with LAG and
 * its hand-written JSON twin, a restart through the Engine's snapshot/restore, SQL's NULL logic over a
 * LAG without value, the bounds on LAG's memory and the messageIds of a replay.
 */
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 86_400_000;

function engineWith(rules: CompiledRule[], rejected: string[] = []): { engine: Engine; out: OutputMessage[] } {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r) => rejected.push(r), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
  engine.setRules(rules);
  return { engine, out };
}

interface Seen { deviceId: string; t: number; temp: number }

/** The seeded SimulatedTemperatureSensor traffic of two devices, 5 s apart, as engine events. */
function sensorEvents(messages: number): { events: IngestEvent[]; seen: Seen[] } {
  const sensor = new SimulatedSensor({ devices: ['a', 'b'], start: T0, stepMs: 5_000, seed: 5 });
  const events: IngestEvent[] = [];
  const seen: Seen[] = [];
  for (let k = 0; k < messages; k++) {
    for (let i = 0; i < 2; i++) {
      const m = sensor.next(i);
      const body = JSON.parse(m.body) as { machine: { temperature: number }; timeCreated: string };
      seen.push({ deviceId: m.deviceId, t: Date.parse(body.timeCreated.slice(0, 23) + 'Z'), temp: body.machine.temperature });
      events.push(...decodeMessage(Buffer.from(m.body), { input: 'telemetry', deviceId: m.deviceId, arrival: CLOCK0 }).events);
    }
  }
  return { events, seen };
}

const RISES_QUERY = `SELECT IoTHub.ConnectionDeviceId AS dev, System.Timestamp() AS t, machine.temperature AS temp,
  machine.temperature - LAG(machine.temperature) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(second, 20)) AS rise,
  LAG(machine.temperature, 2, -1) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 1) WHEN machine.temperature > 21.5) AS warm2
INTO rises
FROM telemetry TIMESTAMP BY timeCreated
WHERE machine.temperature > LAG(machine.temperature) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(second, 20))`;

/** RISES_QUERY written by hand in docs/rules.md's notation (not the compiler's output: other names, "20s"). */
const RISES_TWIN = {
  rises: {
    kind: 'select',
    input: 'telemetry',
    timestamp: 'timeCreated',
    lag: {
      prev: { value: 'machine.temperature', partitionBy: ['$deviceId'], duration: '20s' },
      warm2: { value: 'machine.temperature', offset: 2, default: -1, partitionBy: '$deviceId', duration: '1m', when: 'machine.temperature > 21.5' },
    },
    where: 'machine.temperature > lag("prev")',
    row: { dev: { expr: '$deviceId' }, t: { eventTime: true }, temp: { expr: 'machine.temperature' }, rise: { expr: 'machine.temperature - lag("prev")' }, warm2: { expr: 'lag("warm2")' } },
    output: 'rises',
  },
};

const asa = (ms: number): string => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;

describe('select rules with LAG: an ASA query and its JSON twin', () => {
  it('give identical rows, each the rise over the device\'s previous reading (computed here from the readings)', () => {
    const { events, seen } = sensorEvents(40);
    const q = engineWith(fromQuery(RISES_QUERY));
    q.engine.process(events);
    const j = engineWith(compiled(RISES_TWIN));
    j.engine.process(events);
    const bodies = (out: OutputMessage[]) => out.map((m) => ({ output: m.output, kind: m.kind, body: m.body }));
    expect(bodies(q.out)).toEqual(bodies(j.out));
    // Independently: a row for each reading above its device's previous one (5 s earlier, within 20 s).
    const expected: unknown[] = [];
    seen.forEach((s, k) => {
      const before = seen.slice(0, k).filter((p) => p.deviceId === s.deviceId);
      const prev = before[before.length - 1];
      if (prev === undefined || !(s.temp > prev.temp)) return;
      const warm = before.filter((p) => p.temp > 21.5 && s.t - p.t < 60_000);
      const all = before.filter((p) => p.temp > 21.5);
      // The second warm reading back, if it is less than a minute old (the sensor's readings are in time order).
      const second = all[all.length - 2];
      expected.push({ dev: s.deviceId, t: asa(s.t), temp: s.temp, rise: s.temp - prev.temp, warm2: second !== undefined && warm.includes(second) ? second.temp : -1 });
    });
    expect(q.out.map((m) => m.body)).toEqual(expected);
    expect(expected.length).toBeGreaterThan(10);
    expect((expected as Array<{ warm2: number }>).some((r) => r.warm2 === -1)).toBe(true);
    expect((expected as Array<{ warm2: number }>).some((r) => r.warm2 > 21.5)).toBe(true);
  });
});

describe('LAG state survives a restart through Engine.snapshot / restore', () => {
  const run = (rules: CompiledRule[], events: IngestEvent[], snap?: ReadonlyMap<string, RuleSnapshot>): { out: OutputMessage[]; snap: Map<string, RuleSnapshot> } => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const out: OutputMessage[] = [];
    const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    if (snap !== undefined) engine.restore(snap);
    engine.setRules(rules);
    engine.process(events);
    return { out, snap: engine.snapshot() };
  };
  /** Through JSON, as the checkpoint store keeps it. */
  const stored = (snap: Map<string, RuleSnapshot>): Map<string, RuleSnapshot> => new Map(JSON.parse(JSON.stringify([...snap])) as Array<[string, RuleSnapshot]>);

  it('the rows of a run cut in two by a restart are those of an uninterrupted run, ids included', () => {
    const { events } = sensorEvents(40);
    const whole = run(fromQuery(RISES_QUERY), events).out;
    const cut = 37;
    const first = run(fromQuery(RISES_QUERY), events.slice(0, cut));
    const second = run(fromQuery(RISES_QUERY), events.slice(cut), stored(first.snap));
    const msgs = (out: OutputMessage[]) => out.map((m) => ({ id: m.id, body: m.body }));
    expect(msgs([...first.out, ...second.out])).toEqual(msgs(whole));
    // Not vacuous: started without the state, the first readings after the cut have no previous one.
    const fresh = run(fromQuery(RISES_QUERY), events.slice(cut));
    expect(msgs(fresh.out)).not.toEqual(msgs(second.out));
    // A replay of the same inputs from the same checkpoint (a crash before the outbox was drained) re-creates the same ids.
    expect(msgs(run(fromQuery(RISES_QUERY), events.slice(cut), stored(first.snap)).out)).toEqual(msgs(second.out));
  });
});

/** A select rule with one LAG `p` of `v` over 1 minute, `where` as given, each event's `i` in the row. */
function kept(where: string): number[] {
  const { engine, out } = engineWith(compiled({ r: { kind: 'select', input: 'in', timestamp: 't', lag: { p: { value: 'v', duration: '1m' } }, where, row: { i: { expr: 'i' } } } }));
  // Event 0 has no previous event (lag NULL); event 1's lag is 1 (event 0's v); event 2's is 2.
  engine.process([0, 1, 2].map((i) => ({ body: { i, t: T0 + i * 1000, v: i + 1 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 })));
  return out.map((m) => (m.body as { i: number }).i);
}

describe("SQL's three-valued logic over a LAG without value (NULL)", () => {
  // Expected values from SQL's truth tables (NULL = unknown; WHERE keeps only TRUE), not from the code.
  it.each([
    ['lag("p") == 1', [1]],
    ['lag("p") != 1', [2]],
    ['not (lag("p") == 1)', [2]],
    ['lag("p") == 1 or i == 0', [0, 1]],
    ['i == 0 or lag("p") == 1', [0, 1]],
    ['lag("p") == 1 and i == 0', []],
    ['not (lag("p") == 1 and i == 1)', [0, 2]],
    ['not (lag("p") > 5 and i == 1)', [0, 1, 2]],
    ['not (lag("p") > 5 or i == 1)', [2]],
    ['lag("p") > 1 ? i == 5 : i < 2', [0, 1]],
    ['lag("p") + 1 > 0', [1, 2]],
    ['i - lag("p") * 0 >= 0', [1, 2]],
  ] as Array<[string, number[]]>)('where %s keeps %j', (where, expected) => {
    expect(kept(where)).toEqual(expected);
  });

  it('logic or a condition over a LAG inside arithmetic or a comparison is refused with the rule and field named', () => {
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', duration: '1m' } }, where: '(lag("p") > 1 ? 0 : 1) == 1' } })).toThrow(/^r\.where: and\/or\/not or a condition over lag\(\) inside/);
    expect(() => compiled({ r: { kind: 'select', where: 'lag("p") > 1' } })).toThrow(/^r\.where: lag\("p"\): the rule has no "lag" entries/);
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', duration: '1m' } }, row: { x: { expr: 'lag(v)' } } } })).toThrow(/^r\.row\.x: lag\(\) takes the name/);
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', duration: '8d' } } } })).toThrow(/^r\.lag\.p\.duration: must be a duration > 0 and at most 7 days/);
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', duration: 'soon' } } } })).toThrow(/^r\.lag\.p\.duration: must be a duration like/);
    // Memory: maxGroups partitions × the largest offset values at most (10 million).
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', offset: 101, duration: '1m' } } } })).toThrow(/^r\.lag: up to 100000 partitions \(maxGroups\) × 101 values .* is over 10000000/);
    expect(compiled({ r: { kind: 'select', maxGroups: 10_000, lag: { p: { value: 'v', offset: 1000, duration: '1m' } } } })).toHaveLength(1);
    expect(() => compiled({ r: { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' }, where: 'lag("p") > 1' } })).toThrow(/unknown function "lag"/);
    // A default expression is over the current event; it cannot read a LAG, and an object default must be {expr}.
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', default: { expr: 'v +' }, duration: '1m' } } } })).toThrow(/^r\.lag\.p\.default\.expr: /);
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', default: { expr: 'lag("p")' }, duration: '1m' } } } })).toThrow(/^r\.lag\.p\.default\.expr: .*lag/);
    expect(() => compiled({ r: { kind: 'select', lag: { p: { value: 'v', default: { value: 1 }, duration: '1m' } } } })).toThrow(/^r\.lag\.p\.default: /);
  });

  it('a default expression is evaluated on the current event (NULL where it fails); value "*" is the whole earlier body', () => {
    const { engine, out } = engineWith(compiled({ r: { kind: 'select', input: 'in', lag: { p: { value: 'v', default: { expr: 'w * 10' }, duration: '1m' }, all: { value: '*', duration: '1m' } }, row: { p: { expr: 'lag("p")' }, all: { expr: 'lag("all")' } } } }));
    engine.process([{ v: 5, w: 1 }, { v: 7 }].map((body) => ({ body, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 })));
    engine.process([{ v: 9, w: 3 }].map((body) => ({ body, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 + 61_000 })));
    // The third event comes when the others are past LIMIT DURATION (no timestamp: its arrival is its time).
    expect(out.map((m) => m.body)).toEqual([{ p: 10, all: null }, { p: 5, all: { v: 5, w: 1 } }, { p: 30, all: null }]);
  });

  it('a row column over a NULL LAG is null; a default replaces NULL', () => {
    const { engine, out } = engineWith(compiled({ r: { kind: 'select', input: 'in', lag: { p: { value: 'v', duration: '1m' }, q: { value: 'v', default: 0, duration: '1m' } }, row: { d: { expr: 'v - lag("p")' }, e: { expr: 'v - lag("q")' } } } }));
    engine.process([5, 7].map((v) => ({ body: { v }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 })));
    expect(out.map((m) => m.body)).toEqual([{ d: null, e: 5 }, { d: 2, e: 2 }]);
  });
});

describe('select rules: bounds and bad input', () => {
  it('a partition whose last event is LIMIT DURATION old is dropped; past maxGroups the oldest is (and counted)', () => {
    const rule = (maxGroups?: number) => compiled({ r: { kind: 'select', input: 'in', timestamp: 't', lag: { p: { value: 'v', partitionBy: ['k'], duration: '10s' } }, ...(maxGroups ? { maxGroups } : {}) } });
    const a = engineWith(rule());
    a.engine.process(Array.from({ length: 1000 }, (_, k) => ({ body: { k, t: T0, v: k }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 })));
    expect(a.engine.ruleStats().r!.groups).toBe(1000 + 1);
    a.engine.process([{ body: { k: 'late', t: T0 + 10_000, v: 1 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 }]);
    // The 1000 partitions are 10 s old: dropped; left: the new partition and the messageId counter.
    expect(a.engine.ruleStats().r!.groups).toBe(2);
    const b = engineWith(rule(10));
    b.engine.process(Array.from({ length: 50 }, (_, k) => ({ body: { k, t: T0 + k, v: k }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 })));
    expect(b.engine.ruleStats().r).toMatchObject({ groups: 11, evicted: 40 });
  });

  it('a bad timestamp or a missing field is counted and the stream goes on; LAG reads a missing value as NULL', () => {
    const rejected: string[] = [];
    const { engine, out } = engineWith(compiled({ r: { kind: 'select', input: 'in', timestamp: 't', lag: { p: { value: 'v', duration: '1m' } }, row: { x: { expr: 'x' }, p: { expr: 'lag("p")' } } } }), rejected);
    engine.process([
      { body: { t: 'soon', x: 1, v: 1 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 },
      { body: { t: T0, v: 2 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 },
      { body: { t: T0 + 1, x: 3 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 },
      { body: { t: T0 + 2, x: 4 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 },
    ]);
    expect(rejected).toEqual(['bad-timestamp', 'missing-field']);
    // The event without x is still LAG history (v = 2); the one without v gives NULL.
    expect(out.map((m) => m.body)).toEqual([{ x: 3, p: 2 }, { x: 4, p: null }]);
  });

  it('two identical events of one batch are two rows with two messageIds', () => {
    const { engine, out } = engineWith(compiled({ r: { kind: 'select', input: 'in' } }));
    const ev: IngestEvent = { body: { v: 1 }, deviceId: 'd', moduleId: 'm', input: 'in', arrival: CLOCK0 };
    engine.process([ev, ev, { ...ev, body: { v: 2 } }, ev]);
    expect(out.map((m) => m.body)).toEqual([{ v: 1 }, { v: 1 }, { v: 2 }, { v: 1 }]);
    expect(new Set(out.map((m) => m.id)).size).toBe(4);
  });
});

describe('LAG in an anomaly rule: the detector scores the change since the previous reading', () => {
  const QUERY = `SELECT AnomalyDetection_SpikeAndDip(CAST(v - LAG(v) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 1)) AS float), 95, 60, 'spikes')
  OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 10)) AS s
INTO alerts FROM telemetry TIMESTAMP BY t`;
  const TWIN = {
    alerts: {
      kind: 'anomaly', input: 'telemetry', timestamp: 't', groupBy: ['$deviceId'],
      lag: { prev: { value: 'v', partitionBy: ['$deviceId'], duration: '1m' } },
      value: 'v - lag("prev")',
      detector: { type: 'spikeAndDip', confidence: 95, history: 60, mode: 'spikes' },
      output: 'alerts',
    },
  };
  /** A seeded wobble around 20 per device (an LCG), a step of +10 at k = 80 for device a: its change spikes once. */
  const series = (): Array<{ dev: string; t: number; v: number }> => {
    let x = 3;
    const out: Array<{ dev: string; t: number; v: number }> = [];
    for (let k = 0; k < 120; k++) {
      for (const dev of ['a', 'b']) {
        x = (x * 1103515245 + 12345) % 2147483648;
        out.push({ dev, t: T0 + k * 1_000, v: 20 + (x / 2147483648 - 0.5) + (dev === 'a' && k >= 80 ? 10 : 0) });
      }
    }
    return out;
  };
  const events = (withDiff: boolean): IngestEvent[] => {
    const last = new Map<string, number>();
    return series().map((s) => {
      const body: Record<string, unknown> = { t: s.t, v: s.v };
      const p = last.get(s.dev);
      if (withDiff && p !== undefined) body.d = s.v - p;
      last.set(s.dev, s.v);
      return { body, deviceId: s.dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 };
    });
  };
  const alerts = (out: OutputMessage[]) => out.map((m) => {
    const { rule: _r, ...b } = m.body as unknown as Record<string, unknown>;
    return b;
  });

  it('the query, its JSON twin and the same detector over differences computed here raise the same alerts', () => {
    const q = engineWith(fromQuery(QUERY));
    q.engine.process(events(false));
    const j = engineWith(compiled(TWIN));
    j.engine.process(events(false));
    const rejected: string[] = [];
    const d = engineWith(compiled({ alerts: { ...TWIN.alerts, lag: undefined, value: 'd' } }), rejected);
    d.engine.process(events(true));
    expect(alerts(q.out)).toEqual(alerts(j.out));
    expect(alerts(q.out)).toEqual(alerts(d.out));
    expect((alerts(q.out) as Array<{ state: string; group: { deviceId: string }; time: string }>).filter((a) => a.state === 'raised').map((a) => [a.group.deviceId, a.time])).toContainEqual(['a', new Date(T0 + 80_000).toISOString()]);
    // Each device's first event has no previous one: no value to score (not-a-number / missing-field), and the stream goes on.
    expect(rejected).toEqual(['missing-field', 'missing-field']);
  });

  it('a restart through snapshot / restore resumes the LAG and the detector', () => {
    const all = events(false);
    const stored = (snap: Map<string, RuleSnapshot>): Map<string, RuleSnapshot> => new Map(JSON.parse(JSON.stringify([...snap])) as Array<[string, RuleSnapshot]>);
    const whole = engineWith(fromQuery(QUERY));
    whole.engine.process(all);
    const first = engineWith(fromQuery(QUERY));
    first.engine.process(all.slice(0, 150));
    const snap = stored(first.engine.snapshot());
    expect(JSON.stringify([...snap])).toContain('\\u0000lag1\\u0001');
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = CLOCK0;
    const out: OutputMessage[] = [];
    const rejected: string[] = [];
    const second = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: (r) => rejected.push(r), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
    second.restore(snap);
    second.setRules(fromQuery(QUERY));
    second.process(all.slice(150));
    expect([...first.out, ...out].map((m) => ({ id: m.id, body: m.body }))).toEqual(whole.out.map((m) => ({ id: m.id, body: m.body })));
    // With the LAG state kept, no event after the restart lacks a previous reading.
    expect(rejected).toEqual([]);
  });
});

describe('LAG in an aggregate rule\'s WHERE: changes counted per window', () => {
  const QUERY = `SELECT IoTHub.ConnectionDeviceId AS dev, System.Timestamp() AS t, COUNT(*) AS changes
INTO changes FROM telemetry TIMESTAMP BY t
WHERE LAG(v) OVER (PARTITION BY IoTHub.ConnectionDeviceId LIMIT DURATION(minute, 1)) <> v
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(second, 10)`;
  const TWIN = {
    changes: {
      kind: 'aggregate', input: 'telemetry', timestamp: 't', groupBy: ['$deviceId'],
      lag: { prev: { value: 'v', partitionBy: '$deviceId', duration: '1m' } },
      where: 'lag("prev") != v',
      window: { type: 'tumbling', size: '10s', bounds: '(]' },
      select: { changes: 'count()' },
      row: { dev: { group: '$deviceId' }, t: { window: 'end' }, changes: { select: 'changes' } },
      output: 'changes',
    },
  };

  it('the query and its JSON twin give the counts computed here from the readings ((start, end] windows)', () => {
    let x = 9;
    const readings: Array<{ dev: string; t: number; v: number }> = [];
    for (let k = 1; k <= 60; k++) {
      for (const dev of ['a', 'b']) {
        x = (x * 1103515245 + 12345) % 2147483648;
        readings.push({ dev, t: T0 + k * 1_000, v: x % 3 === 0 ? 1 : 0 });
      }
    }
    const events = readings.map((r) => ({ body: { t: r.t, v: r.v }, deviceId: r.dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 }));
    const q = engineWith(fromQuery(QUERY));
    q.engine.process(events);
    q.engine.flushWindows();
    const j = engineWith(compiled(TWIN));
    j.engine.process(events);
    j.engine.flushWindows();
    // By hand: a reading differing from its device's previous one (1 s earlier) counts in the window ending at ceil(t / 10 s).
    const expected = new Map<string, number>();
    const last = new Map<string, number>();
    for (const r of readings) {
      const p = last.get(r.dev);
      last.set(r.dev, r.v);
      if (p === undefined || p === r.v) continue;
      const key = `${r.dev} ${asa(Math.ceil(r.t / 10_000) * 10_000)}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const got = (out: OutputMessage[]) => new Map(out.map((m) => { const b = m.body as { dev: string; t: string; changes: number }; return [`${b.dev} ${b.t}`, b.changes]; }));
    expect(got(q.out)).toEqual(expected);
    expect(got(j.out)).toEqual(expected);
    expect(expected.size).toBeGreaterThan(6);
  });
});
