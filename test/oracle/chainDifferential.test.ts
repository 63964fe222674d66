import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { Engine, type RuleSnapshot } from '../../src/rules/engine.js';
import { compileRule, type CompiledRule } from '../../src/rules/compileRule.js';
import type { OutputMessage, SummaryBody } from '../../src/contracts/output.js';
import { runStage, type OracleRow, type OracleStage } from './chainOracle.js';

/*
 * Rule chaining (an aggregate over the rows of an aggregate, docs/rules.md "Rules over the rows of a rule") against an independent model of
 * two-stage aggregation written from ASA's documented window semantics (test/oracle/chainOracle.ts).
 * Seeded inputs with out-of-order events (up to 6 s, under the upstream's 4 s maxLateness the window
 * operator takes events up to 2 × maxLateness behind the newest: nothing is dropped), idle flushes
 * that emit upstream windows provisionally before late events revise them, a restart from a
 * checkpoint, and a crash: the engine killed after the checkpoint, restored from it, and the inputs
 * since then replayed. The final row of every downstream window must be the model's: a provisional
 * or revised upstream window counted twice would change `total` and `rows`.
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

/** The model's rows of each rule, by `rule|group|end`. */
function oracle(events: readonly In[]): Map<string, Record<string, number>> {
  const stage1Tumbling: OracleStage<In> = {
    window: { size: 10_000, bounds: '(]' },
    key: (e) => e.dev,
    time: (e) => e.ts,
    select: { a: { fn: 'avg', of: (e) => e.t }, hi: { fn: 'max', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } },
  };
  const perDev: OracleStage<OracleRow> = {
    window: { size: 60_000, bounds: '(]' },
    key: (r) => r.key,
    time: (r) => r.end,
    select: { m: { fn: 'max', of: (r) => r.values.a! }, top: { fn: 'max', of: (r) => r.values.hi! }, total: { fn: 'sum', of: (r) => r.values.n! }, rows: { fn: 'count', of: () => 1 } },
  };
  const stage1Hopping: OracleStage<In> = {
    window: { size: 10_000, hop: 5_000, bounds: '[)' },
    key: (e) => e.dev,
    time: (e) => e.ts,
    select: { a: { fn: 'avg', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } },
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

function expectModel(outputs: readonly OutputMessage[], events: readonly In[]): void {
  const got = finalRows(outputs);
  const want = oracle(events);
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
      expect(rejected).toEqual([]);
      expectModel(outputs, allEvents(steps));
      // Messages are unique: a window's revision goes out once.
      expect(new Set(outputs.map((m) => m.id)).size).toBe(outputs.length);
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
      expect(rejected).toEqual([]);
      expectModel(outputs, allEvents(steps));
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
      expect(rejected).toEqual([]);
      expect(outputs.length).toBeGreaterThan(beforeCrash);
      // What the replay sent again has the ids and bodies it had before the crash (the outbox keeps one).
      const byId = new Map<string, unknown>();
      for (const m of outputs) {
        if (byId.has(m.id)) expect(m.body).toEqual(byId.get(m.id));
        else byId.set(m.id, m.body);
      }
      expectModel(outputs, allEvents(steps));
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
      expect(rejected).toEqual([]);

      const events = allEvents(steps);
      const stage1: OracleStage<In> = { window: { size: upSize, hop: upHop, bounds: upBounds }, key: (e) => e.dev, time: (e) => e.ts, select: { a: { fn: 'avg', of: (e) => e.t }, n: { fn: 'count', of: () => 1 } } };
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
