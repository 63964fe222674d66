import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../src/rules/compileRule.js';
import type { OutputMessage, SummaryBody } from '../../src/contracts/output.js';
import { runStage, windowEnds, type OracleRow, type OracleStage, type OracleWindow } from './chainOracle.js';

/*
 * Rule chaining (an aggregate over the rows of an aggregate, docs/rules.md "Rules over the rows of a rule") against an independent model of
 * two-stage aggregation written from ASA's documented window semantics (test/oracle/chainOracle.ts).
 * Seeded inputs with out-of-order events (up to 6 s, under the upstream's 4 s maxLateness the window
 * operator takes events up to 2 × maxLateness behind the newest: the watermark drops nothing), pauses
 * of the processing clock past the upstream's idle timeout, which close a silent device's upstream
 * windows for good (docs/rules.md "Rules over the rows of a rule": later events count only in windows
 * ending after the newest one the device had, and are `too-late` when they have none; `idleClosing`
 * below), a restart from a checkpoint, and a crash: the engine killed after the checkpoint, restored
 * from it, and the inputs since then replayed. The final row of every downstream window must be the
 * model's: an upstream window counted twice would change `total` and `rows`, one never handed on
 * (a device's last rows waiting for an event that never comes) would be missing.
 */
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const CLOCK0 = T0 + 3_600_000;
const DEVS = ['d1', 'd2', 'd3'];

interface In {
  dev: string;
  ts: number;
  t: number;
}

type Step = { kind: 'events'; events: In[] } | { kind: 'advance'; by: number };

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
}

/** Round-robin devices every 700 ms of event time, each time moved by up to ±3 s; now and then the processing clock jumps past the idle timeout. */
function scenario(seed: number, count: number): Step[] {
  const rnd = rng(seed);
  const steps: Step[] = [];
  let batch: In[] = [];
  for (let k = 0; k < count; k++) {
    const dev = DEVS[k % DEVS.length]!;
    const ts = T0 + Math.floor(k / DEVS.length) * 700 + Math.round((rnd() - 0.5) * 6_000);
    batch.push({ dev, ts, t: Math.round(rnd() * 1_000) / 10 });
    if (rnd() < 0.3) {
      steps.push({ kind: 'events', events: batch });
      batch = [];
    }
    if (rnd() < 0.04) steps.push({ kind: 'advance', by: 2_500 + Math.floor(rnd() * 2_000) });
  }
  if (batch.length > 0) steps.push({ kind: 'events', events: batch });
  return steps;
}

const UP_TUMBLING = {
  kind: 'aggregate',
  groupBy: ['dev'],
  timestamp: 'ts',
  window: { type: 'tumbling', size: '10s', bounds: '(]' },
  select: { a: 'avg(t)', hi: 'max(t)', n: 'count()' },
  row: { dev: { group: 'dev' }, a: { select: 'a' }, hi: { select: 'hi' }, n: { select: 'n' } },
  maxLateness: '4s',
  idleTimeout: '2s',
};

const UP_HOPPING = {
  kind: 'aggregate',
  groupBy: 'dev',
  timestamp: 'ts',
  window: { type: 'hopping', size: '10s', hop: '5s' },
  select: { a: 'avg(t)', n: 'count()' },
  maxLateness: '4s',
  idleTimeout: '2s',
};

const RULES: Record<string, unknown> = {
  perDev: { kind: 'aggregate', from: UP_TUMBLING, groupBy: 'dev', window: { type: 'tumbling', size: '1m', bounds: '(]' }, select: { m: 'max(a)', top: 'max(hi)', total: 'sum(n)', rows: 'count()' } },
  // One group over every device: rows of different devices become final at slightly different times.
  overall: { kind: 'aggregate', from: UP_HOPPING, window: { type: 'hopping', size: '1m', hop: '30s' }, select: { m: 'min(a)', total: 'sum(n)', rows: 'count()' }, maxLateness: '40s' },
};

/** The upstreams' idle timeout (UP_TUMBLING, UP_HOPPING and the random configurations). */
const IDLE_MS = 2_000;

/**
 * docs/rules.md "Rules over the rows of a rule", a silent upstream group: once a device has sent
 * nothing for the upstream's idle timeout of processing time, its upstream windows are final (their
 * rows go on); an event arriving later counts only in its windows ending after the newest window the
 * device had then, and one with no such window is rejected as `too-late`. Per event: the windows it
 * counts in; per step: how many events were `too-late`.
 */
function idleClosing(steps: readonly Step[], window: OracleWindow, idleMs: number): { counts: (e: In, end: number) => boolean; tooLate: number[] } {
  const counted = new Map<In, Set<number>>();
  const tooLate: number[] = [];
  const newest = new Map<string, number>();
  const bound = new Map<string, number>();
  /** The arrival (processing time) of each device's last event, while the device is not closed. */
  const heard = new Map<string, number>();
  let clock = CLOCK0;
  for (const s of steps) {
    if (s.kind === 'advance') {
      clock += s.by;
      for (const [dev, at] of [...heard]) {
        if (at + idleMs > clock) continue;
        bound.set(dev, Math.max(bound.get(dev) ?? -Infinity, newest.get(dev) ?? -Infinity));
        heard.delete(dev);
      }
      tooLate.push(0);
      continue;
    }
    let n = 0;
    for (const e of s.events) {
      const b = bound.get(e.dev) ?? -Infinity;
      const ends = windowEnds(window, e.ts).filter((end) => end > b);
      counted.set(e, new Set(ends));
      if (ends.length === 0) n++;
      else newest.set(e.dev, Math.max(newest.get(e.dev) ?? -Infinity, ...ends));
      heard.set(e.dev, clock);
    }
    tooLate.push(n);
  }
  return { counts: (e, end) => counted.get(e)?.has(end) === true, tooLate };
}

/** The `too-late` rejections the model gives for steps [from, to) of each rule's upstream. */
function expectedRejects(steps: readonly Step[], from = 0, to = steps.length): string[] {
  const out: string[] = [];
  for (const [rule, window] of [['perDev', TUMBLING_10S], ['overall', HOPPING_10S]] as const) {
    const { tooLate } = idleClosing(steps, window, IDLE_MS);
    for (let i = from; i < to; i++) for (let k = 0; k < tooLate[i]!; k++) out.push(`${rule}:too-late`);
  }
  return out.sort();
}

const TUMBLING_10S: OracleWindow = { size: 10_000, bounds: '(]' };
const HOPPING_10S: OracleWindow = { size: 10_000, hop: 5_000, bounds: '[)' };

/** The model's rows of each rule, by `rule|group|end`. */
function oracle(steps: readonly Step[]): Map<string, Record<string, number>> {
  const events = allEvents(steps);
  const stage1Tumbling: OracleStage<In> = {
    window: TUMBLING_10S,
    key: (e) => e.dev,
    time: (e) => e.ts,
    select: { a: { fn: 'avg', of: (e) => e.t }, hi: { fn: 'max', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } },
    counts: idleClosing(steps, TUMBLING_10S, IDLE_MS).counts,
  };
  const perDev: OracleStage<OracleRow> = {
    window: { size: 60_000, bounds: '(]' },
    key: (r) => r.key,
    time: (r) => r.end,
    select: { m: { fn: 'max', of: (r) => r.values.a! }, top: { fn: 'max', of: (r) => r.values.hi! }, total: { fn: 'sum', of: (r) => r.values.n! }, rows: { fn: 'count', of: () => 1 } },
  };
  const stage1Hopping: OracleStage<In> = {
    window: HOPPING_10S,
    key: (e) => e.dev,
    time: (e) => e.ts,
    select: { a: { fn: 'avg', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } },
    counts: idleClosing(steps, HOPPING_10S, IDLE_MS).counts,
  };
  const overall: OracleStage<OracleRow> = {
    window: { size: 60_000, hop: 30_000, bounds: '[)' },
    key: () => '',
    time: (r) => r.end,
    select: { m: { fn: 'min', of: (r) => r.values.a! }, total: { fn: 'sum', of: (r) => r.values.n! }, rows: { fn: 'count', of: () => 1 } },
  };
  const out = new Map<string, Record<string, number>>();
  for (const r of runStage(perDev, runStage(stage1Tumbling, events))) out.set(`perDev|${r.key}|${r.end}`, r.values);
  for (const r of runStage(overall, runStage(stage1Hopping, events))) out.set(`overall||${r.end}`, r.values);
  return out;
}

function compile(rules: Record<string, unknown>): CompiledRule[] {
  return Object.entries(rules).map(([id, doc]) => {
    const c = compileRule(id, doc);
    if (!c.ok) throw new Error(c.error);
    return c.rule;
  });
}

interface Driver {
  engine: Engine;
  scheduler: VirtualTimeScheduler;
}

function start(outputs: OutputMessage[], rejected: string[], frame: number, snap?: Array<[string, RuleSnapshot]>): Driver {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = frame;
  const engine = new Engine({
    scheduler,
    emit: (m) => outputs.push(...m),
    observer: { rejected: (reason, rule) => rejected.push(`${rule}:${reason}`), windowResult: () => undefined, alert: () => undefined },
    tickIntervalMs: 0,
  });
  if (snap !== undefined) engine.restore(new Map(snap));
  engine.setRules(compile(RULES));
  return { engine, scheduler };
}

function advance(d: Driver, to: number): void {
  d.scheduler.maxFrames = to;
  d.scheduler.flush();
  d.scheduler.frame = to;
}

/** Runs steps [from, to) on the driver; returns the processing time reached. */
function runSteps(d: Driver, steps: readonly Step[], from: number, to: number, clock: number): number {
  for (let i = from; i < to; i++) {
    const s = steps[i]!;
    if (s.kind === 'advance') {
      clock += s.by;
      advance(d, clock);
    } else d.engine.process(s.events.map((e) => ({ body: { ...e }, deviceId: e.dev, moduleId: 'm', input: 'telemetry', arrival: CLOCK0 })), clock);
  }
  return clock;
}

function clockAt(steps: readonly Step[], i: number): number {
  return steps.slice(0, i).reduce((c, s) => (s.kind === 'advance' ? c + s.by : c), CLOCK0);
}

const snapshotOf = (e: Engine): Array<[string, RuleSnapshot]> => JSON.parse(JSON.stringify([...e.snapshot()])) as Array<[string, RuleSnapshot]>;

/** The latest revision of each downstream window, by `rule|group|end`. */
function finalRows(outputs: readonly OutputMessage[]): Map<string, { revision: number; values: Record<string, number | null> }> {
  const rows = new Map<string, { revision: number; values: Record<string, number | null> }>();
  for (const m of outputs) {
    const b = m.body as SummaryBody;
    const key = `${m.rule}|${String(b.group.dev ?? '')}|${Date.parse(b.window.end)}`;
    const had = rows.get(key);
    if (had === undefined || had.revision < b.revision) rows.set(key, { revision: b.revision, values: b.values });
  }
  return rows;
}

function expectModel(outputs: readonly OutputMessage[], steps: readonly Step[]): void {
  const got = finalRows(outputs);
  const want = oracle(steps);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, values] of want) {
    const g = got.get(k)!.values;
    for (const [name, v] of Object.entries(values)) {
      if (Number.isInteger(v)) expect(g[name], `${k} ${name}`).toBe(v);
      else expect(g[name], `${k} ${name}`).toBeCloseTo(v, 9);
    }
  }
}

const allEvents = (steps: readonly Step[]): In[] => steps.flatMap((s) => (s.kind === 'events' ? s.events : []));

describe('rule chaining against the two-stage model', () => {
  for (const seed of [1, 7, 42, 2026]) {
    it(`seed ${seed}: the final row of every downstream window is the model's`, () => {
      const steps = scenario(seed, 900);
      const outputs: OutputMessage[] = [];
      const rejected: string[] = [];
      const d = start(outputs, rejected, CLOCK0);
      runSteps(d, steps, 0, steps.length, CLOCK0);
      // Removing the rules takes the upstream's open windows as they stand and finishes the downstream.
      d.engine.setRules([]);
      expect([...rejected].sort()).toEqual(expectedRejects(steps));
      expectModel(outputs, steps);
      // Messages are unique: a window's revision goes out once.
      expect(new Set(outputs.map((m) => m.id)).size).toBe(outputs.length);
    });

    it(`seed ${seed}: devices that stop sending: the idle timeouts alone bring every row into the rule's windows`, () => {
      const steps = scenario(seed, 900);
      const outputs: OutputMessage[] = [];
      const rejected: string[] = [];
      const d = start(outputs, rejected, CLOCK0);
      let clock = runSteps(d, steps, 0, steps.length, CLOCK0);
      // Every device silent: past the upstreams' idle timeout (their last rows go on), then past the
      // rule's own (its default, the window size: 1 min), which emits its open windows provisionally.
      clock += IDLE_MS + 500;
      advance(d, clock);
      clock += 60_000 + 500;
      advance(d, clock);
      // No rule change, no shutdown: what went out is what upstream would hold.
      expect([...rejected].sort()).toEqual(expectedRejects(steps));
      expectModel(outputs, steps);
      d.engine.close();
    });

    it(`seed ${seed}: a restart from a checkpoint mid-run gives the same rows`, () => {
      const steps = scenario(seed, 900);
      const cut = Math.floor(steps.length * (0.3 + (seed % 5) / 10));
      const outputs: OutputMessage[] = [];
      const rejected: string[] = [];
      let d = start(outputs, rejected, CLOCK0);
      const clock = runSteps(d, steps, 0, cut, CLOCK0);
      const snap = snapshotOf(d.engine);
      d.engine.close();
      d = start(outputs, rejected, clock, snap);
      runSteps(d, steps, cut, steps.length, clock);
      d.engine.setRules([]);
      expect([...rejected].sort()).toEqual(expectedRejects(steps));
      expectModel(outputs, steps);
    });

    it(`seed ${seed}: a crash after a checkpoint, replayed from it, counts nothing twice`, () => {
      const steps = scenario(seed, 900);
      const saveAt = Math.floor(steps.length * 0.4);
      const crashAt = Math.floor(steps.length * 0.7);
      const outputs: OutputMessage[] = [];
      const rejected: string[] = [];
      let d = start(outputs, rejected, CLOCK0);
      const saved = runSteps(d, steps, 0, saveAt, CLOCK0);
      const snap = snapshotOf(d.engine);
      runSteps(d, steps, saveAt, crashAt, saved);
      // Killed: no close, no flush; the replay starts from the checkpoint with the inputs logged since.
      const beforeCrash = outputs.length;
      d = start(outputs, rejected, clockAt(steps, saveAt), snap);
      runSteps(d, steps, saveAt, steps.length, clockAt(steps, saveAt));
      d.engine.setRules([]);
      // The steps between the checkpoint and the crash ran twice: their rejections were counted twice.
      expect([...rejected].sort()).toEqual([...expectedRejects(steps), ...expectedRejects(steps, saveAt, crashAt)].sort());
      expect(outputs.length).toBeGreaterThan(beforeCrash);
      // What the replay sent again has the ids and bodies it had before the crash (the outbox keeps one).
      const byId = new Map<string, unknown>();
      for (const m of outputs) {
        if (byId.has(m.id)) expect(m.body).toEqual(byId.get(m.id));
        else byId.set(m.id, m.body);
      }
      expectModel(outputs, steps);
    });
  }
});

/*
 * Random configurations: window sizes, hops, bounds and lateness drawn per seed (tumbling or hopping
 * in both stages), the disorder kept under twice the upstream lateness (nothing is too late), a
 * restart from a checkpoint at a random step.
 */
describe('rule chaining against the two-stage model, random configurations', () => {
  for (const seed of [3, 11, 19, 23, 31, 57]) {
    it(`configuration ${seed}`, () => {
      const rnd = rng(seed * 7919);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      const upSize = pick([5_000, 10_000, 15_000]);
      const upHop = pick([upSize, upSize / 5]);
      const upBounds = pick(['[)', '(]'] as const);
      const lateness = pick([2_000, 3_000, 4_000]);
      const downSize = pick([30_000, 60_000]);
      const downHop = pick([downSize, downSize / 2]);
      const downBounds = pick(['[)', '(]'] as const);
      const up = { kind: 'aggregate', groupBy: ['dev'], timestamp: 'ts', window: upHop === upSize ? { type: 'tumbling', size: upSize, bounds: upBounds } : { type: 'hopping', size: upSize, hop: upHop, bounds: upBounds }, select: { a: 'avg(t)', n: 'count()' }, maxLateness: lateness, idleTimeout: '2s' };
      const perDev = { kind: 'aggregate', from: up, groupBy: 'dev', window: downHop === downSize ? { type: 'tumbling', size: downSize, bounds: downBounds } : { type: 'hopping', size: downSize, hop: downHop, bounds: downBounds }, select: { m: 'max(a)', total: 'sum(n)', rows: 'count()' } };
      // Events: round robin over the devices, moved by less than 2 × lateness in all.
      const steps: Step[] = [];
      for (let k = 0; k < 600; k++) {
        const ts = T0 + Math.floor(k / 3) * 500 + Math.round((rnd() - 0.5) * (2 * lateness - 200));
        steps.push({ kind: 'events', events: [{ dev: DEVS[k % 3]!, ts, t: Math.round(rnd() * 1000) / 10 }] });
        if (rnd() < 0.03) steps.push({ kind: 'advance', by: 3_000 });
      }
      const outputs: OutputMessage[] = [];
      const rejected: string[] = [];
      const startWith = (frame: number, snap?: Array<[string, RuleSnapshot]>): Driver => {
        const scheduler = new VirtualTimeScheduler();
        scheduler.frame = frame;
        const engine = new Engine({ scheduler, emit: (m) => outputs.push(...m), observer: { rejected: (reason, rule) => rejected.push(`${rule}:${reason}`), windowResult: () => undefined, alert: () => undefined }, tickIntervalMs: 0 });
        if (snap !== undefined) engine.restore(new Map(snap));
        engine.setRules(compile({ perDev }));
        return { engine, scheduler };
      };
      const cut = Math.floor(rnd() * steps.length);
      let d = startWith(CLOCK0);
      const clock = runSteps(d, steps, 0, cut, CLOCK0);
      const snap = snapshotOf(d.engine);
      d.engine.close();
      d = startWith(clock, snap);
      runSteps(d, steps, cut, steps.length, clock);
      d.engine.setRules([]);
      const upWindow: OracleWindow = { size: upSize, hop: upHop, bounds: upBounds };
      const closing = idleClosing(steps, upWindow, IDLE_MS);
      expect(rejected).toEqual(closing.tooLate.flatMap((n) => Array<string>(n).fill('perDev:too-late')));

      const events = allEvents(steps);
      const stage1: OracleStage<In> = { window: upWindow, key: (e) => e.dev, time: (e) => e.ts, select: { a: { fn: 'avg', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } }, counts: closing.counts };
      const stage2: OracleStage<OracleRow> = {
        window: { size: downSize, hop: downHop, bounds: downBounds },
        key: (r) => r.key,
        time: (r) => r.end,
        select: { m: { fn: 'max', of: (r) => r.values.a! }, total: { fn: 'sum', of: (r) => r.values.n! }, rows: { fn: 'count', of: () => 1 } },
      };
      const want = new Map(runStage(stage2, runStage(stage1, events)).map((r) => [`perDev|${r.key}|${r.end}`, r.values]));
      const got = finalRows(outputs);
      expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
      for (const [k, values] of want) {
        const g = got.get(k)!.values;
        expect(g.total, k).toBe(values.total);
        expect(g.rows, k).toBe(values.rows);
        expect(g.m, k).toBeCloseTo(values.m!, 9);
      }
    });
  }
});
