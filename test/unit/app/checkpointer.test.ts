import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualTimeScheduler } from 'rxjs';
import { Checkpointer, readCheckpoint, replayTail, STATE_KEYS, type CheckpointedEngine } from '../../../src/app/checkpointer.js';
import type { Logger } from '../../../src/contracts/logger.js';
import type { TimerHandle, Timers } from '../../../src/contracts/timers.js';
import type { OutputMessage, SummaryBody } from '../../../src/contracts/output.js';
import { decodeMessage } from '../../../src/ingest/decodeMessage.js';
import { Engine } from '../../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { openStore, type Store } from '../../../src/store/store.js';
import { RedeliveryFilter } from '../../../src/ingest/redeliveryFilter.js';
import { ConnectedTime, steadyClock } from '../../../src/time/connectedTime.js';

/**
 * The checkpointer on a real SQLite store in a temporary directory and a real engine; only the timers
 * and the logger are fakes. The oracle is a run that never stopped: a run cut by a crash after a
 * checkpoint, then restarted from the store, must emit the same outputs (by messageId, as the outbox
 * keeps them: docs/contract.md section 8), none of them different.
 */

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const CLOCK0 = T0 + 86_400_000;

function rule(id: string, size: string): CompiledRule {
  const r = compileRule(id, { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 't', window: { type: 'tumbling', size }, select: { n: 'count()', last: 'max(v)' }, output: 'summaries' });
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

const lines: Array<{ level: string; obj: unknown; msg: string | undefined }> = [];
const at = (level: string) => (objOrMsg: unknown, msg?: string) => void lines.push({ level, obj: objOrMsg, msg: typeof objOrMsg === 'string' ? objOrMsg : msg });
const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), isLevelEnabled: () => true };

/** Timers run by the test: the interval's callback and each deferred step are called by hand. */
function fakeTimers() {
  const intervals = new Map<TimerHandle, { fn: () => void; ms: number }>();
  const immediates: Array<() => void> = [];
  const handle = (): TimerHandle => ({ unref: () => undefined });
  const timers: Timers = {
    setTimeout: () => handle(),
    clearTimeout: () => undefined,
    setInterval: (fn, ms) => {
      const h = handle();
      intervals.set(h, { fn, ms });
      return h;
    },
    clearInterval: (h) => void intervals.delete(h),
    setImmediate: (fn) => void immediates.push(fn),
  };
  return {
    timers,
    intervals,
    tick: () => [...intervals.values()].forEach((i) => i.fn()),
    drain: () => {
      while (immediates.length > 0) immediates.shift()!();
    },
  };
}

function body(i: number, device = 'd1'): Buffer {
  return Buffer.from(JSON.stringify({ t: new Date(T0 + i * 1_000).toISOString(), v: i, device }));
}

/** One module run over a store: inputs are logged, then processed, as src/main.ts does. */
function run(store: Store, rules: readonly CompiledRule[]) {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = CLOCK0;
  const out: OutputMessage[] = [];
  const engine = new Engine({ scheduler, emit: (m) => out.push(...m), observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined } });
  const saved = readCheckpoint(store.loadCheckpoint(), log);
  const replay = replayTail({ saved, inputs: store, engine, startRules: rules, time: { now: () => scheduler.now(), advanceTo: () => undefined }, wall: { now: () => CLOCK0 }, handOver: (r) => engine.setRules(r), log });
  const ft = fakeTimers();
  const small = new Map([['$note', JSON.stringify('small state')]]);
  const checkpointer = new Checkpointer({
    store,
    engine,
    ruleIds: () => rules.map((r) => r.id),
    otherStates: () => new Map(small),
    commitOutputs: () => undefined,
    position: replay.lastSeq,
    timers: ft.timers,
    log,
  });
  if (replay.mustSave) checkpointer.saveNow();
  const input = (i: number, device = 'd1'): void => {
    const rec = { input: 'telemetry', deviceId: device, moduleId: 'sensor', arrival: scheduler.now(), body: body(i, device) };
    checkpointer.position = store.appendInput(rec);
    engine.process(decodeMessage(rec.body, rec).events, scheduler.now());
  };
  return { engine, out, replay, checkpointer, ft, input, saved };
}

/** The outputs by messageId; a messageId emitted twice must carry the same body (the outbox would keep the first). */
function byId(out: readonly OutputMessage[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const o of out) {
    const b = JSON.stringify(o.body);
    const prev = m.get(o.id);
    expect(prev === undefined || prev === b, `messageId ${o.id} emitted with two bodies`).toBe(true);
    m.set(o.id, b);
  }
  return m;
}

describe('Checkpointer and replayTail', () => {
  let dir: string;
  const open = (): Store => openStore(dir, { log, clock: { now: () => CLOCK0 }, ttlMs: 0, backgroundCheckpoint: false });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'eddy-app-checkpointer-'));
    lines.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a crash after a checkpoint, then a restart, emits what a run that never stopped emits', () => {
    const rules = [rule('r10', '10s')];
    const oracleDir = mkdtempSync(join(tmpdir(), 'eddy-app-oracle-'));
    const oracleStore = openStore(oracleDir, { log, clock: { now: () => CLOCK0 }, ttlMs: 0, backgroundCheckpoint: false });
    const oracle = run(oracleStore, rules);
    for (let i = 0; i < 45; i++) oracle.input(i, i % 2 === 0 ? 'd1' : 'd2');
    oracleStore.close();
    rmSync(oracleDir, { recursive: true, force: true });
    const expected = byId(oracle.out);
    expect(expected.size).toBeGreaterThanOrEqual(6); // closed windows x 2 devices: not a vacuous comparison

    let store = open();
    const first = run(store, rules);
    expect(first.replay.mustSave).toBe(true); // a first start saves at once
    for (let i = 0; i < 23; i++) first.input(i, i % 2 === 0 ? 'd1' : 'd2');
    first.checkpointer.saveNow();
    for (let i = 23; i < 31; i++) first.input(i, i % 2 === 0 ? 'd1' : 'd2');
    store.close(); // SIGKILL: nothing more saved; inputs 23..30 are only in the input log

    store = open();
    const second = run(store, rules);
    expect(second.replay.replayed).toBe(8);
    expect(second.replay.mustSave).toBe(false);
    for (let i = 31; i < 45; i++) second.input(i, i % 2 === 0 ? 'd1' : 'd2');
    store.close();

    const got = byId([...first.out, ...second.out]);
    expect([...got.entries()].sort()).toEqual([...expected.entries()].sort());
    expect(lines.filter((l) => l.level === 'info' && l.msg === 'replayed inputs logged after the last checkpoint')).toHaveLength(1);
  });

  it('the tail is replayed into the rule that logged it, then this start\'s changed rule takes over (its old windows emitted)', () => {
    let store = open();
    const first = run(store, [rule('r', '10s')]);
    for (let i = 0; i < 12; i++) first.input(i);
    first.checkpointer.saveNow();
    for (let i = 12; i < 16; i++) first.input(i);
    store.close();

    store = open();
    const second = run(store, [rule('r', '1m')]);
    store.close();
    expect(second.replay.tailRules.map((r) => r.hash)).toEqual([rule('r', '10s').hash]);
    expect(second.replay.mustSave).toBe(true);
    // The open window [10 s, 20 s) of the old definition holds inputs 10..15: two from before the
    // checkpoint, four from the replayed tail. It is emitted under the old definition at the handover.
    const last = second.out.map((m) => m.body as SummaryBody).find((b) => b.window.start === new Date(T0 + 10_000).toISOString());
    expect(last?.count).toBe(6);
    expect(lines.some((l) => l.level === 'warn' && (l.obj as { reason?: string }).reason === 'rule-changed')).toBe(true);
  });

  it('the periodic checkpoint is stepped one rule per turn on the injected timers, and stop() ends it', () => {
    const store = open();
    const rules = [rule('a', '10s'), rule('b', '1m')];
    const r = run(store, rules);
    for (let i = 0; i < 5; i++) r.input(i);
    r.checkpointer.start();
    expect([...r.ft.intervals.values()].map((i) => i.ms)).toEqual([5_000]);
    r.ft.tick();
    expect(r.checkpointer.stepping).toBe(true);
    r.ft.drain();
    expect(r.checkpointer.stepping).toBe(false);
    const cp = store.loadCheckpoint();
    expect(cp.uptoInputSeq).toBe(r.checkpointer.position);
    expect([...cp.states.keys()].sort()).toEqual(['$note', 'a', 'b']);
    r.checkpointer.stop();
    expect(r.ft.intervals.size).toBe(0);
    store.close();
  });

  // A damaged or hand-edited checkpoint (docs/contract.md section 3: bad data is counted and logged,
  // never a crash): the engine made Maps of a rule state's `groups` at once, and a start threw on it
  // (TypeError: Iterator value 5 is not an entry object), at every restart.
  it('a damaged rule state: unreadable rule entries and group pairs are logged and skipped, the start goes on', () => {
    const rule = compileRule('z', { kind: 'anomaly', input: 'telemetry', groupBy: ['device'], timestamp: 't', value: 'v', detector: { type: 'zscore', window: 20, threshold: 4 } });
    if (!rule.ok) throw new Error(rule.error);
    let store = open();
    const first = run(store, [rule.rule]);
    for (let i = 0; i < 30; i++) {
      first.input(i, 'd1');
      first.input(i, 'd2');
    }
    first.checkpointer.saveNow();
    store.close();

    store = open();
    const cp = store.loadCheckpoint();
    const snap = JSON.parse(cp.states.get('z')!) as { groups: unknown[]; gen?: unknown };
    const good = snap.groups.length;
    expect(good).toBe(2);
    snap.groups.push(5, null, ['x'], [7, {}]);
    snap.gen = 'x';
    const states = new Map(cp.states);
    states.set('z', JSON.stringify(snap));
    states.set('y', 'null');
    states.set('w', JSON.stringify({ hash: 3, groups: [] }));
    expect(store.saveCheckpoint(states, cp.uptoInputSeq)).toBe(true);
    store.close();

    store = open();
    lines.length = 0;
    const second = run(store, [rule.rule]);
    for (let i = 30; i < 40; i++) second.input(i, 'd1');
    store.close();
    expect(second.saved.rules.get('z')!.groups).toHaveLength(good);
    expect([...second.saved.rules.keys()]).toEqual(['z']);
    const errors = lines.filter((l) => l.level === 'error').map((l) => l.obj as { key: string; dropped?: number });
    expect(errors.map((e) => e.key).sort()).toEqual(['w', 'y', 'z']);
    expect(errors.find((e) => e.key === 'z')!.dropped).toBe(4);
  });

  it('readCheckpoint decodes the module\'s own keys, and logs and skips an unreadable entry', () => {
    const store = open();
    const states = new Map<string, string>([
      [STATE_KEYS.desired, JSON.stringify({ rules: { x: null } })],
      [STATE_KEYS.lastGoodQuery, JSON.stringify('SELECT 1')],
      [STATE_KEYS.clock, JSON.stringify({ now: 5, wall: 6, running: true, segments: [] })],
      [STATE_KEYS.recent, '{not json'],
      [STATE_KEYS.removedGens, JSON.stringify([['r', { gen: 2, until: 7 }]])],
    ]);
    expect(store.saveCheckpoint(states, 0)).toBe(true);
    const saved = readCheckpoint(store.loadCheckpoint(), log);
    store.close();
    expect(saved.desired).toEqual({ rules: { x: null } });
    expect(saved.lastGoodQuery).toBe('SELECT 1');
    expect(saved.clock).toEqual({ now: 5, wall: 6, running: true, segments: [] });
    expect(saved.recent).toBeNull();
    expect(saved.removedGens).toEqual([['r', { gen: 2, until: 7 }]]);
    expect(saved.rules.size).toBe(0);
    expect(lines.filter((l) => l.level === 'error').map((l) => (l.obj as { key: string }).key)).toEqual([STATE_KEYS.recent]);
  });

  /**
   * The processing time replayTail gives each logged input, against the live one: a ConnectedTime on
   * `steadyClock` (the module's, src/app/eddyApp.ts) read as each input is logged, the wall clock stepped
   * between the checkpoint and the first input, forward between two inputs and back between two others.
   */
  function clockScript(steps: ReadonlyMap<number, number>, opts: { elapsed: boolean }) {
    let wall = CLOCK0;
    let mono = 1_000.25;
    const wallClock = { now: () => wall };
    const filter = new RedeliveryFilter({ now: () => mono });
    const live = new ConnectedTime({ elapsed: steadyClock(wallClock, { now: () => mono }), wall: wallClock, ...(opts.elapsed ? { inputClock: filter } : {}), timers: { setTimeout: () => ({ unref: () => undefined }), clearTimeout: () => undefined } });
    live.resume();
    mono += 3_000.4;
    wall += 3_000;
    const store = open();
    store.saveCheckpoint(new Map([[STATE_KEYS.clock, JSON.stringify(live.state())]]), 0);
    const liveTimes: number[] = [];
    for (let i = 0; i < 12; i++) {
      wall += steps.get(i) ?? 0;
      mono += 250.6;
      wall += 250;
      const arrival = wall;
      const elapsed = filter.record(i);
      store.appendInput({ input: 'telemetry', deviceId: 'd1', moduleId: 'sensor', arrival, ...(opts.elapsed ? { elapsed } : {}), body: body(i) });
      liveTimes.push(live.now());
    }
    const ats: number[] = [];
    const engine = { restore: () => undefined, setRules: () => undefined, process: (_e: unknown, at: number) => void ats.push(at), snapshot: () => new Map(), snapshotRule: () => undefined } as unknown as CheckpointedEngine;
    const saved = readCheckpoint(store.loadCheckpoint(), log);
    // The next process's connected time, as src/app/eddyApp.ts builds it from the checkpoint, before it resumes.
    const restored = new ConnectedTime({ elapsed: { now: () => mono }, wall: wallClock, saved: saved.clock, timers: { setTimeout: () => ({ unref: () => undefined }), clearTimeout: () => undefined } });
    replayTail({ saved, inputs: store, engine, startRules: [], time: { now: () => Number.NaN, advanceTo: (t) => restored.advanceTo(t), reanchor: (at, w) => restored.reanchor(at, w) }, wall: wallClock, handOver: () => undefined, log });
    store.close();
    return { ats, liveTimes, end: wall, live, restored };
  }

  const STEPS = new Map([[0, 600_000], [4, 3_600_000], [8, -120_000]]);

  it('replays the connected time the live run had, across wall-clock steps after the checkpoint, from the input log\'s elapsed', () => {
    const { ats, liveTimes } = clockScript(STEPS, { elapsed: true });
    expect(ats).toHaveLength(12);
    // Whole milliseconds on both sides; the monotonic clock's fractions round differently at a step.
    for (let i = 0; i < 12; i++) expect(Math.abs(ats[i]! - liveTimes[i]!), `input ${i}: replayed ${ats[i]}, live ${liveTimes[i]}`).toBeLessThanOrEqual(1);
  });

  it('maps the replayed connected times to the wall-clock instants the live run gives them at the crash: the clock of the last step (alert times, docs/contract.md section 5)', () => {
    const { liveTimes, live, restored } = clockScript(STEPS, { elapsed: true });
    // Live, ConnectedTime.wallAt reads the running stretch on the present clock: a time before a step
    // asked after it gets the stepped clock. Whole milliseconds against the monotonic clock's fractions.
    for (const t of liveTimes) expect(Math.abs(restored.wallAt(t) - live.wallAt(t)), `connected ${t}: restored ${restored.wallAt(t)}, live ${live.wallAt(t)}`).toBeLessThanOrEqual(2);
  });

  it('a checkpoint and an input log of earlier versions (no elapsed) still replay: the wall clock since the checkpoint, step included', () => {
    const { ats, end } = clockScript(STEPS, { elapsed: false });
    expect(ats).toHaveLength(12);
    // The live run's connected time at the checkpoint was the wall clock then (a first start begins on
    // it, and steadyClock is wall-paced), 3 s after it resumed; arrivals after the present (the clock
    // set back since) count as the present.
    const checkpoint = CLOCK0 + 3_000;
    let wall = checkpoint;
    const expected: number[] = [];
    for (let i = 0; i < 12; i++) {
      wall += (STEPS.get(i) ?? 0) + 250;
      expected.push(checkpoint + Math.max(0, Math.min(wall, end) - checkpoint));
    }
    expect(ats).toEqual(expected);
  });
});
