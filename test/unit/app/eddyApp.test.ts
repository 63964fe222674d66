import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EddyApp } from '../../../src/app/eddyApp.js';
import { silentLogger } from '../../../src/contracts/logger.js';
import type { OutputMessage, Sink, SummaryBody } from '../../../src/contracts/output.js';
import type { RuleSet } from '../../../src/contracts/rule.js';
import { systemTimers, type TimerHandle, type Timers } from '../../../src/contracts/timers.js';
import { SimulatedSensor } from '../../../src/io/local/simulatedSensor.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { openStore } from '../../../src/store/store.js';

/**
 * The whole app in local mode without a process: a real store in a temporary directory, the real
 * simulator, a recording sink. Intervals (the simulator's 100 ms tick, gauges, checkpoints) are run by
 * the test; everything else runs on Node's timers. The expectations come from the simulator's documented
 * cadence (docs/contract.md section 1: each device every 5 s of event time, so 12 readings per minute),
 * not from the app's code; the process-level twin of this test is test/integration/local/localRestart.test.ts.
 */

const START = Date.UTC(2026, 0, 1, 0, 0, 0);
const rules = { perMinute: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' }, output: 'summaries' } } as unknown as RuleSet;

function manualIntervals() {
  const intervals = new Map<TimerHandle, () => void>();
  const timers: Timers = {
    ...systemTimers,
    setInterval: (fn) => {
      const h: TimerHandle = { unref: () => undefined };
      intervals.set(h, fn);
      return h;
    },
    clearInterval: (h) => void intervals.delete(h),
  };
  return { timers, intervals };
}

describe('EddyApp (local mode, no process)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** One run of the app on the data dir: `ticks` simulator ticks, then a clean stop. */
  async function run(ticks: number, sent: OutputMessage[]) {
    const store = openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 });
    const { timers, intervals } = manualIntervals();
    const app = new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store, metrics: createMetrics({ processMetrics: false }), log: silentLogger,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers,
      sensor: (saved) => SimulatedSensor.restore(saved, { devices: ['sim-1', 'sim-2', 'sim-3'], start: START, stepMs: 5_000, seed: 7 }),
    });
    const sink: Sink = { send: async (m) => void sent.push(m) };
    // Gauges, the periodic checkpoint and the disk retry run from the start; runLocal adds the simulator's tick.
    expect(intervals.size).toBe(3);
    app.runLocal(sink);
    expect(intervals.size).toBe(4);
    expect(app.health()).toMatchObject({ ok: true, detail: { mode: 'local', rules: 1, upstream: 'stdout' } });
    const sensorTick = [...intervals.values()].at(-1)!;
    for (let i = 0; i < ticks; i++) sensorTick();
    await app.stop(2_000);
    expect(intervals.size).toBe(0);
    return app;
  }

  it('counts every simulated reading once, across a clean stop and a restart from the same data dir', async () => {
    const sent: OutputMessage[] = [];
    // 30 ticks = 150 s of event time per device: the windows [0, 1 min) and [1 min, 2 min) close.
    await run(30, sent);
    const first = sent.filter((m) => m.kind === 'summary').map((m) => m.body as SummaryBody);
    expect(first.filter((b) => b.window.start === new Date(START).toISOString()).map((b) => b.count)).toEqual([12, 12, 12]);

    // The restart resumes the simulator where it stopped and the open window [2 min, 3 min) where it was.
    await run(30, sent);
    // At least once upstream (docs/contract.md section 8): a re-send carries the same messageId.
    const summaries = [...new Map(sent.filter((m) => m.kind === 'summary').map((m) => [m.id, m.body as SummaryBody])).values()];
    const byWindow = new Map<string, number[]>();
    for (const b of summaries) byWindow.set(`${b.window.start} ${JSON.stringify(b.group)}`, [...(byWindow.get(`${b.window.start} ${JSON.stringify(b.group)}`) ?? []), b.count]);
    // 60 ticks = 300 s: four whole minutes closed per device, each with 12 readings, each emitted once.
    expect(byWindow.size).toBe(12);
    for (const [key, counts] of byWindow) expect(counts, key).toEqual([12]);
  });
});

describe('EddyApp input log and the sender\'s messageId', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-mid-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function open() {
    const store = openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 });
    const metrics = createMetrics({ processMetrics: false });
    const app = new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store, metrics, log: silentLogger,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualIntervals().timers,
    });
    return { app, metrics };
  }

  // The messageId is the sender's ($.mid), of any length edgeHub passes on; the input log keeps strings
  // behind a u16 length (src/store/fileInputLog.ts), so one past 64 KiB must neither throw into the SDK's
  // handler (the input would be acknowledged and lost, uncounted) nor stop its re-delivery after a restart
  // from being recognised (src/ingest/redeliveryFilter.ts).
  it('takes an input whose messageId is longer than 64 KiB, and recognises its re-delivery after a restart', async () => {
    const body = Buffer.from(JSON.stringify({ timeCreated: new Date(START).toISOString(), v: 1 }));
    const meta = { deviceId: 'd1', moduleId: 'm1', messageId: `id-${'é'.repeat(40_000)}` };
    const first = open();
    first.app.runLocal({ send: async () => undefined });
    expect(() => first.app.handleInput('telemetry', body, meta)).not.toThrow();
    expect(first.metrics.snapshot().received).toBe(1);
    await first.app.stop(2_000);

    const second = open();
    // What edgeHub re-delivers first after a restart (the arm() of runEdge).
    (second.app as unknown as { redelivery: { arm(): void } }).redelivery.arm();
    second.app.runLocal({ send: async () => undefined });
    second.app.handleInput('telemetry', body, meta);
    expect(second.metrics.snapshot().rejected.redelivered).toBe(1);
    await second.app.stop(2_000);
  });
});

describe('EddyApp: an input that arrives while the app stops', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-stop-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // edgeHub's SDK acknowledges an input once the handler returns, also while `stop` waits for the last
  // sends (the link closes last): docs/contract.md section 8 wants it reflected in the state after the
  // restart. test/integration/blackbox/evictionRestart.test.ts saw such inputs lost on a SIGTERM.
  it('is in the input log, and counts in its window after the restart', async () => {
    const open = () => new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store: openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 }), metrics: createMetrics({ processMetrics: false }), log: silentLogger,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualIntervals().timers,
    });
    const input = (app: EddyApp, s: number): void => app.handleInput('telemetry', Buffer.from(JSON.stringify({ timeCreated: new Date(START + s * 1_000).toISOString() })), { deviceId: 'd1', moduleId: 'm1', messageId: `m${s}` });
    const first = open();
    first.runLocal({ send: async () => undefined });
    input(first, 10);
    const stopped = first.stop(2_000);
    input(first, 20);
    await stopped;

    const sent: OutputMessage[] = [];
    const second = open();
    second.runLocal({ send: async (m) => void sent.push(m) });
    input(second, 130);
    await second.stop(2_000);
    expect(sent.map((m) => (m.body as SummaryBody).values)).toEqual([{ n: 2 }]);
  });
});

describe('EddyApp: an input log of the build before messageIds', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-old-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // An upgrade: the previous build logged an input without its messageId (the three-string frame,
  // test/unit/store/fileInputLog.test.ts) and was stopped before its PUBACK left; edgeHub re-delivers it,
  // with the sender's messageId, to the new build. It is the same message: counted once, as the build
  // that logged it would have (src/ingest/redeliveryFilter.ts).
  it('recognises the re-delivery, with its messageId, of an input logged without one', async () => {
    const body = Buffer.from(JSON.stringify({ timeCreated: new Date(START).toISOString(), v: 1 }));
    const first = new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store: openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 }), metrics: createMetrics({ processMetrics: false }), log: silentLogger,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualIntervals().timers,
    });
    first.runLocal({ send: async () => undefined });
    first.handleInput('telemetry', body, { deviceId: 'd1', moduleId: 'm1' });
    await first.stop(2_000);
    // An input without a messageId is logged, and its fingerprint checkpointed, as the previous build did
    // (the three-string frame, test/unit/store/fileInputLog.test.ts; the fingerprint of before, src/ingest/redeliveryFilter.ts).

    const metrics = createMetrics({ processMetrics: false });
    const second = new EddyApp({
      version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
      fileRules: rules, fileErrors: [], configErrors: [],
      store: openStore(dir, { log: silentLogger, clock: { now: () => Date.now() }, ttlMs: 0 }), metrics, log: silentLogger,
      clock: { now: () => Date.now() }, monotonic: { now: () => performance.now() }, timers: manualIntervals().timers,
    });
    (second as unknown as { redelivery: { arm(): void } }).redelivery.arm();
    second.runLocal({ send: async () => undefined });
    second.handleInput('telemetry', body, { deviceId: 'd1', moduleId: 'm1', messageId: 'mid-1' });
    expect(metrics.snapshot().rejected.redelivered).toBe(1);
    // The phase goes on while re-deliveries match, and a new message ends it.
    second.handleInput('telemetry', body, { deviceId: 'd1', moduleId: 'm1', messageId: 'mid-2' });
    expect(metrics.snapshot().rejected.redelivered).toBe(1);
    expect(metrics.snapshot().received).toBe(2);
    await second.stop(2_000);
  });
});

describe('EddyApp: the wall clock stepped forward while a backlog drains', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-step-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // An RTC-less device (a Raspberry Pi) boots with its wall clock in the past and NTP steps it forward
  // while edgeHub drains its backlog; a crash a few seconds later loses the PUBACKs still queued, and
  // edgeHub re-delivers those inputs to the next process. docs/contract.md section 8: they are already
  // in the input log, so they count once; the step must not push the ones logged before it out of the
  // redelivery tail (src/ingest/redeliveryFilter.ts).
  for (const how of ['SIGKILL (the tail replayed from the input log)', 'a clean stop (the tail from the checkpoint)'] as const) {
    it(`recognises every re-delivery after ${how}`, async () => {
      let wall = Date.UTC(1970, 0, 1, 0, 1, 0);
      let mono = 0;
      const open = () => {
        const metrics = createMetrics({ processMetrics: false });
        const store = openStore(dir, { log: silentLogger, clock: { now: () => wall }, ttlMs: 0 });
        const app = new EddyApp({
          version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
          fileRules: rules, fileErrors: [], configErrors: [],
          store, metrics, log: silentLogger,
          clock: { now: () => wall }, monotonic: { now: () => mono }, timers: manualIntervals().timers,
        });
        return { app, metrics };
      };
      const body = (i: number): Buffer => Buffer.from(JSON.stringify({ timeCreated: new Date(START + i * 100).toISOString(), i }));
      const meta = { deviceId: 'd1', moduleId: 'm1' };

      const first = open();
      // 1,500 inputs, 2 ms apart; after the first 500 the wall clock steps 10 minutes forward.
      for (let i = 0; i < 1_500; i++) {
        if (i === 500) wall += 600_000;
        first.app.handleInput('telemetry', body(i), meta);
        wall += 2;
        mono += 2;
      }
      expect(first.metrics.snapshot().received).toBe(1_500);
      if (how.startsWith('a clean stop')) await first.app.stop(2_000);
      // Else the process is gone as it was: no checkpoint since the first, the input log holds the inputs.

      // The next process: its monotonic clock starts again, its wall clock stays stepped.
      mono = 0;
      const second = open();
      (second.app as unknown as { redelivery: { arm(): void } }).redelivery.arm();
      // edgeHub re-delivers the inputs it has no PUBACK for: all but the first 200.
      for (let i = 200; i < 1_500; i++) second.app.handleInput('telemetry', body(i), meta);
      second.app.handleInput('telemetry', body(1_500), meta);
      const snap = second.metrics.snapshot();
      expect(snap.rejected.redelivered ?? 0).toBe(1_300);
      expect(snap.received).toBe(1_301);
      await second.app.stop(2_000);
    });
  }
});
