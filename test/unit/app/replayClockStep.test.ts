import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EddyApp } from '../../../src/app/eddyApp.js';
import { silentLogger } from '../../../src/contracts/logger.js';
import type { SummaryBody } from '../../../src/contracts/output.js';
import type { RuleSet } from '../../../src/contracts/rule.js';
import type { TimerHandle, Timers } from '../../../src/contracts/timers.js';
import type { MqttConnection } from '../../../src/io/mqtt/mqttConnection.js';
import type { MqttSettings } from '../../../src/io/mqtt/mqttSettings.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { openStore, type Store } from '../../../src/store/store.js';

/**
 * The whole app (MQTT mode over a fake broker) on real SQLite stores, with the wall clock, the
 * monotonic clock and every timer virtual. The wall clock steps 10 minutes forward (NTP's first sync on
 * a device without a real-time clock) a few seconds after a checkpoint, and the process dies 2 s later:
 * the inputs logged after the checkpoint, the step between them, are replayed at the next start.
 *
 * Oracles: (1) docs/contract.md section 5: silence (idle flushes, `missing`) is counted in processing
 * time while the module is connected, and a wall-clock step is no silence: the quiet device below is
 * silent for 39 s, under every timeout, so nothing of it is flushed or raised; (2) section 8: a restart,
 * even `kill -9`, resumes from the saved state and the input log, so the outbox after the crash and the
 * replay holds what the run that never crashed holds, by messageId and body, with no conflict.
 */

/** The wall clock at boot, before NTP's step: an RTC-less device starts in the past. */
const WALL0 = Date.UTC(2025, 0, 1, 0, 0, 0);
/** Event time: the readings are stamped on the module's clock before the step (after it, they are behind arrival, never ahead: no `future-timestamp`). */
const START = WALL0;
const STEP_MS = 600_000;

const rules = {
  ten: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '10s' }, select: { n: 'count()' }, output: 'summaries' },
  fiveMin: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size: '5m' }, select: { n: 'count()' }, output: 'summaries' },
  sess: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'session', gap: '2m', maxSize: '10m' }, select: { n: 'count()' }, output: 'summaries' },
  cnt: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'count', size: 1000 }, select: { n: 'count()' }, output: 'summaries' },
  gone: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '60s' }, output: 'alerts' },
} as unknown as RuleSet;

interface Timer extends TimerHandle {
  due: number;
  readonly fn: () => void;
  readonly every: number | null;
}

/** Virtual time for one process at a time: its timers fire in due order as the world advances; a crash drops them. */
class World {
  /** ms since the test began. */
  now = 0;
  wall = WALL0;
  private timers = new Set<Timer>();
  private immediates: Array<() => void> = [];
  private bootedAt = 0;

  /** A new process: no timer of the one before survives, its monotonic clock starts again. */
  boot(): { timers: Timers; monotonic: { now(): number } } {
    this.timers = new Set();
    this.immediates = [];
    this.bootedAt = this.now;
    const own = this.timers;
    const imm = this.immediates;
    const add = (fn: () => void, ms: number, every: number | null): Timer => {
      const t: Timer = { due: this.now + Math.max(0, ms), fn, every, unref: () => undefined };
      own.add(t);
      return t;
    };
    return {
      timers: {
        setTimeout: (fn, ms) => add(fn, ms, null),
        clearTimeout: (h) => void own.delete(h as Timer),
        setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
        clearInterval: (h) => void own.delete(h as Timer),
        setImmediate: (fn) => void imm.push(fn),
      },
      monotonic: { now: () => 1_000 + this.now - this.bootedAt },
    };
  }

  advanceTo(target: number): void {
    for (;;) {
      while (this.immediates.length > 0) this.immediates.shift()!();
      let next: Timer | null = null;
      for (const t of this.timers) if (t.due <= target && (next === null || t.due < next.due)) next = t;
      if (next === null) break;
      this.move(next.due);
      if (next.every === null) this.timers.delete(next);
      else next.due += next.every;
      next.fn();
    }
    this.move(target);
    while (this.immediates.length > 0) this.immediates.shift()!();
  }

  private move(t: number): void {
    this.wall += t - this.now;
    this.now = t;
  }
}

/** A broker that delivers what the test hands it and never acknowledges an output: they stay in the outbox. */
function fakeBroker() {
  let input: (topic: string, body: Buffer) => boolean = () => false;
  let link: (up: boolean) => void = () => undefined;
  let session: () => void = () => undefined;
  const conn = {
    reachable: true,
    holdsAcks: false,
    onInput: (h: typeof input) => void (input = h),
    beforeAck: () => undefined,
    onLink: (h: typeof link) => void (link = h),
    onSession: (h: typeof session) => void (session = h),
    open: () => {
      link(true);
      session();
    },
    send: () => new Promise<void>(() => undefined),
    close: async () => undefined,
  };
  return { conn: conn as unknown as MqttConnection, deliver: (deviceId: string, body: Buffer) => expect(input(`dev/${deviceId}`, body)).toBe(true) };
}

const settings = { url: 'mqtt://fake', topic: 'dev/+', deviceFrom: { kind: 'topic', level: 1 }, outputTopic: 'out/{output}', clientId: 'eddy', username: undefined, password: undefined } as unknown as MqttSettings;

function start(world: World, dir: string): { app: EddyApp; store: Store; deliver: (deviceId: string, body: Buffer) => void } {
  const { timers, monotonic } = world.boot();
  const clock = { now: () => world.wall };
  const store = openStore(dir, { log: silentLogger, clock, ttlMs: 0, backgroundCheckpoint: false });
  const app = new EddyApp({
    version: 'test', mode: 'local', dataDir: dir, rulesFile: 'test.json', defaultRules: false, storeMaxMB: 64,
    fileRules: rules, fileErrors: [], configErrors: [],
    store, metrics: createMetrics({ processMetrics: false }), log: silentLogger,
    clock, monotonic, timers,
  });
  const broker = fakeBroker();
  app.runMqtt(broker.conn, settings);
  return { app, store, deliver: broker.deliver };
}

/**
 * Where the step falls: between two inputs logged after the checkpoint (the input log's `elapsed` tells
 * it), or between the checkpoint and the first input after it (the checkpoint's reading of the same
 * clock tells it). d2 goes quiet before it, d1 goes on.
 */
interface Case {
  readonly name: string;
  /** d2's last second before its pause (it sends again from the 100th). */
  readonly d2Quiet: number;
  /** When the wall clock steps (ms of the test); the last checkpoint before it is at 60 s (every 5 s from the start). */
  readonly stepAt: number;
  /** d2's first second after its pause; default 100 (silent for 39 s or 41 s, under every timeout). */
  readonly d2Back?: number;
  /** Inputs besides the whole seconds': (ms of the test, device). */
  readonly extra?: ReadonlyArray<readonly [number, string]>;
}
const CASES: readonly Case[] = [
  { name: 'between two inputs logged after the checkpoint', d2Quiet: 61, stepAt: 62_500 },
  { name: 'between the checkpoint and the first input logged after it', d2Quiet: 59, stepAt: 60_000 },
];
/** d2 silent from 61 s to 140 s: `gone` (60 s) raises at 121 s, after the step and after the restart. */
/**
 * d2 silent from 4.2 s: `gone`'s deadline, 64.2 s, falls after the step, between the last tick before the
 * crash (64 s) and the crash (64.5 s), before d1's last input logged (64.4 s): the run that never crashed
 * raises at its next tick, the crashed one at its first tick after the replay, which passed the deadline.
 */
const DUE_IN_TAIL: Case = { name: 'the deadline inside the replayed inputs', d2Quiet: 3, stepAt: 62_500, extra: [[4_200, 'd2'], [64_400, 'd1']] };
const MISSING: Case = { name: 'd2 silent past the missing timeout', d2Quiet: 61, stepAt: 62_500, d2Back: 140 };
/** Who sends at second `s`: d1 every second but the 65th (the restart's), d2 up to `d2Quiet` and again from `d2Back`. */
const senders = (c: Case, s: number): string[] => [...(s === 65 ? [] : ['d1']), ...(s <= c.d2Quiet || s >= (c.d2Back ?? 100) ? ['d2'] : [])];
const body = (s: number): Buffer => Buffer.from(JSON.stringify({ t: new Date(START + s * 1_000).toISOString(), v: s }));
const LAST = 150;
const CHECKPOINTED = 60_000;
const CRASH_AT = 64_500;

/** The outbox by messageId. */
function outbox(store: Store): Map<string, { rule: string; kind: string; body: string }> {
  return new Map(store.outbox.peek(1_000_000).map((r) => [r.message.id, { rule: r.message.rule, kind: r.message.kind, body: JSON.stringify(r.message.body) }]));
}

/** One run: the inputs of seconds 2..LAST; with `crash`, the process dies at CRASH_AT and the next one starts there. */
function run(c: Case, dir: string, crash: boolean): Store {
  const world = new World();
  let p = start(world, dir);
  let stepped = false;
  let crashed = false;
  const inputs: Array<readonly [number, string]> = [];
  for (let s = 2; s <= LAST; s++) for (const d of senders(c, s)) inputs.push([s * 1_000, d]);
  inputs.push(...(c.extra ?? []));
  inputs.sort((a, b) => a[0] - b[0]);
  for (const [ms, d] of inputs) {
    if (!stepped && ms >= c.stepAt) {
      // The checkpoint due at the step's instant is taken first.
      world.advanceTo(c.stepAt);
      world.wall += STEP_MS;
      stepped = true;
    }
    if (crash && !crashed && ms > CRASH_AT) {
      world.advanceTo(CRASH_AT);
      // SIGKILL: nothing more of this process runs (its timers are gone with the next boot).
      p = start(world, dir);
      crashed = true;
    }
    world.advanceTo(ms);
    p.deliver(d, body(ms / 1_000));
  }
  world.advanceTo((LAST + 0.5) * 1_000);
  return p.store;
}

describe('replay after a crash, the wall clock stepped forward after the last checkpoint', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'eddy-replay-step-'));
    dirs.push(d);
    return d;
  };

  it.each(CASES)('outputs what the run that never crashed outputs, the step $name: no early idle flush, no false `missing`', (c) => {
    expect(CHECKPOINTED).toBeLessThanOrEqual(c.stepAt);
    expect(CRASH_AT - CHECKPOINTED).toBeLessThan(5_000);
    const live = outbox(run(c, tmp(), false));
    const crashedStore = run(c, tmp(), true);
    const replayed = outbox(crashedStore);

    // The run that never crashed, against the documented semantics: d2 is silent for 39 or 41 s of processing
    // time, under `missing` (60 s) and the idle timeouts of fiveMin (5 min), sess (2 min) and cnt (1 min).
    expect([...live.values()].filter((o) => o.rule !== 'ten')).toEqual([]);
    // `ten`: every 10 s window the watermark (last event 150 s - maxLateness 5 s) passed, with its count.
    const expected = new Map<string, number>();
    for (let s = 2; s <= LAST; s++) {
      for (const d of senders(c, s)) {
        const w = Math.floor(s / 10) * 10;
        if (w + 10 <= LAST - 5) expected.set(`${d} ${w}`, (expected.get(`${d} ${w}`) ?? 0) + 1);
      }
    }
    const tens = [...live.values()].map((o) => JSON.parse(o.body) as SummaryBody);
    expect(new Map(tens.map((b) => [`${b.group.deviceId as string} ${(Date.parse(b.window.start) - START) / 1_000}`, b.count]))).toEqual(expected);
    expect(tens.every((b) => b.revision === 0)).toBe(true);

    // The crash and the replay change nothing.
    expect(crashedStore.outbox.conflicts().total).toBe(0);
    expect([...replayed.entries()].filter(([id]) => !live.has(id)).map(([, o]) => `${o.rule} ${o.body}`)).toEqual([]);
    expect(replayed).toEqual(live);
  });

  it('a `missing` raised after the restart is read on the stepped wall clock, as in the run that never crashed, later by the connected time the restart lost', () => {
    const live = outbox(run(MISSING, tmp(), false));
    const crashedStore = run(MISSING, tmp(), true);
    const replayed = outbox(crashedStore);
    const gone = (o: Map<string, { rule: string; body: string }>) =>
      [...o.values()].filter((x) => x.rule === 'gone').map((x) => JSON.parse(x.body) as { group: { deviceId: string }; state: string; time: string }).map((b) => ({ deviceId: b.group.deviceId, state: b.state, time: b.time }));
    // docs/contract.md section 5: d2's last input arrived at 61 s, connected the whole time, so its silence
    // reaches 60 s at 121 s of the test; a live run shows the wall clock of that moment, 10 minutes on by then.
    // `cleared` carries the time of the event that cleared it: `gone` has no `timestamp`, so its arrival.
    const expected = (late: number) => [
      { deviceId: 'd2', state: 'raised', time: new Date(WALL0 + 121_000 + STEP_MS + late).toISOString() },
      { deviceId: 'd2', state: 'cleared', time: new Date(WALL0 + MISSING.d2Back! * 1_000 + STEP_MS).toISOString() },
    ];
    expect(gone(live)).toEqual(expected(0));
    // The restart counts no silence it cannot vouch for (section 8: downtime does not count), with or
    // without a step: the 0.5 s from the last input logged (64 s) to the SIGKILL, and the 1 s without input
    // that ends the drain after the link comes up (src/time/connectedTime.ts `quietMs`).
    expect(gone(replayed)).toEqual(expected(1_500));
    expect(crashedStore.outbox.conflicts().total).toBe(0);
    const others = (o: Map<string, { rule: string; body: string }>) => new Map([...o].filter(([, x]) => x.rule !== 'gone'));
    expect(others(replayed)).toEqual(others(live));
  });

  it('a `missing` whose deadline passed inside the replayed inputs carries the stepped wall clock of the deadline, as in the run that never crashed', () => {
    const live = outbox(run(DUE_IN_TAIL, tmp(), false));
    const crashedStore = run(DUE_IN_TAIL, tmp(), true);
    const replayed = outbox(crashedStore);
    const gone = (o: Map<string, { rule: string; body: string }>) =>
      [...o.values()].filter((x) => x.rule === 'gone').map((x) => JSON.parse(x.body) as { group: { deviceId: string }; state: string; time: string }).map((b) => ({ deviceId: b.group.deviceId, state: b.state, time: b.time }));
    // d2's silence reached 60 s at 64.2 s of the test, 1.7 s after the 10-minute step; it sends again at 100 s.
    const expected = [
      { deviceId: 'd2', state: 'raised', time: new Date(WALL0 + 64_200 + STEP_MS).toISOString() },
      { deviceId: 'd2', state: 'cleared', time: new Date(WALL0 + 100_000 + STEP_MS).toISOString() },
    ];
    expect(gone(live)).toEqual(expected);
    expect(gone(replayed)).toEqual(expected);
    expect(crashedStore.outbox.conflicts().total).toBe(0);
    expect(replayed).toEqual(live);
  });
});
