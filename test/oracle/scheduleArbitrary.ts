/**
 * Random runs for the differential test: out-of-order events within and beyond `maxLateness`, gaps
 * longer than `idleTimeout`, link outages, duplicates (an input delivered again), batches, device
 * clock skew (some far enough ahead to be `future-timestamp`), strictly-typed bad values, twin rule
 * changes (state kept or rule restarted) and restarts from a checkpoint, with or without a rule change.
 *
 * Time grid: both clocks move in steps of 100 ms from an even start, and every event time is odd, so an
 * event time never equals a window bound, a bound plus an (even) `maxLateness`, or an arrival plus the
 * (even) `maxClockSkew`. The documents say "passes" and "more than" without fixing what happens at
 * equality; the differential test does not take a side. The exception is on purpose: end-inclusive
 * windows (`bounds: "(]"`) with an odd `offset` have odd bounds, so events fall exactly on a window's
 * end and on end + maxLateness, where docs/rules.md does fix the outcome (the end is in the window; the
 * window is final once the watermark is strictly past end + maxLateness).
 */
import fc from 'fast-check';
import type { Run, RunEvent, RunRules, RunStep } from './oracleRun.js';

/** 2026-11-26T03:00:00Z, the instant of the contract's examples. */
export const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

const DEVICES = ['d1', 'd2', 'd3'] as const;

export type Fault = 'none' | 'missingTs' | 'garbageTs' | 'vString' | 'vBool' | 'vMissing' | 'vNull';

interface RawEvent {
  readonly device: number;
  readonly offset: number;
  readonly fault: Fault;
  readonly isoTs: boolean;
  readonly v: number;
  readonly z: number;
  readonly on: boolean;
}

interface RuleShape {
  readonly size: number;
  readonly lateness: number;
  readonly idle: number | null;
  readonly where: number;
  readonly fullSelect: boolean;
  /**
   * null or absent: `[start, end)` windows. A number: `window.bounds: "(]"` with that `offset`; an odd
   * offset puts the bounds on the odd event times, so events land exactly on window ends.
   */
  readonly endInclusive?: number | null;
  /** True: `nulls: "skip"` (a missing or null `v` is left out of its aggregates, the event still counted); absent or false: the default, rejected. */
  readonly skipNulls?: boolean;
}

type RawStep =
  | { readonly kind: 'deliver'; readonly events: readonly RawEvent[] }
  | { readonly kind: 'redeliver' }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'outage'; readonly ms: number }
  | { readonly kind: 'change'; readonly rule: 0 | 1; readonly describeOnly: boolean; readonly shape: RuleShape }
  | { readonly kind: 'anomalyChange'; readonly rule: 'spike' | 'silent'; readonly fresh: boolean; readonly param: number; readonly atRestart: boolean }
  | { readonly kind: 'restart'; readonly change: { readonly rule: 0 | 1; readonly describeOnly: boolean; readonly shape: RuleShape } | null };

interface RawRun {
  /** False: every rule's idleTimeout is 7 days, so no idle flush happens within a run. */
  readonly idleFlush: boolean;
  readonly anomaly: boolean;
  readonly skews: readonly number[];
  readonly rules: readonly [RuleShape, RuleShape];
  readonly steps: readonly RawStep[];
}

const WHERES = [undefined, 'z >= 1', 'on == true'] as const;

const ruleShape = fc.record({
  size: fc.constantFrom(2_000, 4_000, 10_000),
  lateness: fc.constantFrom(0, 1_000, 2_000, 5_000),
  idle: fc.constantFrom(null, 1_000, 3_000),
  where: fc.constantFrom(0, 1, 2),
  fullSelect: fc.boolean(),
  endInclusive: fc.constantFrom<number | null>(null, null, 0, -1, 1, -101),
  skipNulls: fc.boolean(),
});

const rawEvent: fc.Arbitrary<RawEvent> = fc.record({
  device: fc.integer({ min: 0, max: DEVICES.length - 1 }),
  offset: fc.oneof(
    { arbitrary: fc.integer({ min: -3_000, max: 500 }), weight: 8 },
    { arbitrary: fc.integer({ min: -40_000, max: -3_000 }), weight: 2 },
    { arbitrary: fc.integer({ min: 300_001, max: 900_000 }), weight: 1 },
  ),
  fault: fc.oneof(
    { arbitrary: fc.constant<Fault>('none'), weight: 24 },
    { arbitrary: fc.constantFrom<Fault>('missingTs', 'garbageTs', 'vString', 'vBool', 'vMissing', 'vNull'), weight: 6 },
  ),
  isoTs: fc.boolean(),
  v: fc.integer({ min: -50, max: 100 }),
  z: fc.integer({ min: 0, max: 3 }),
  on: fc.boolean(),
});

const change = fc.record({ rule: fc.constantFrom<0 | 1>(0, 1), describeOnly: fc.boolean(), shape: ruleShape });

/** Features a run may use; switching one off isolates the defects of the others (test/oracle/explore.ts). */
export interface RunFeatures {
  readonly idleFlush: boolean;
  readonly faults: boolean;
  readonly future: boolean;
  readonly late: boolean;
  readonly changes: boolean;
  readonly restarts: boolean;
  /** A restart may come with a rule change (docs/rules.md "Changing a rule through the twin"). */
  readonly restartChanges: boolean;
  readonly outages: boolean;
  /** The same message (device and body) delivered again as a new input. */
  readonly duplicates: boolean;
  /** The run carries ANOMALY_RULES. */
  readonly anomaly: boolean;
  /** Fault kinds allowed when `faults` is on (default: all). */
  readonly faultKinds?: readonly Fault[];
}

export const ALL_FEATURES: RunFeatures = { idleFlush: true, faults: true, future: true, late: true, changes: true, restarts: true, restartChanges: true, outages: true, anomaly: true, duplicates: true };

/**
 * `base` with the features named in `off` (comma-separated, e.g. `EDDY_ORACLE_OFF=idleFlush,future`)
 * switched off; `booleans` removes the boolean-value fault alone. Lets a run look past a known defect.
 */
export function featuresWithout(base: RunFeatures, off: string | undefined): RunFeatures {
  const names = (off ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');
  const f: Record<string, unknown> = { ...base };
  for (const n of names) {
    if (n === 'booleans') f.faultKinds = (base.faultKinds ?? ['missingTs', 'garbageTs', 'vString', 'vBool', 'vMissing', 'vNull']).filter((k) => k !== 'vBool');
    else if (n in base && typeof f[n] === 'boolean') f[n] = false;
    else throw new Error(`EDDY_ORACLE_OFF: unknown feature ${n}`);
  }
  return f as unknown as RunFeatures;
}

const rawStepOf = (f: RunFeatures): fc.Arbitrary<RawStep> => {
  const ev = rawEvent.filter((e) => (e.fault === 'none' || (f.faults && (f.faultKinds ?? [e.fault]).includes(e.fault))) && (f.future || e.offset <= 300_000) && (f.late || e.offset >= -3_000));
  const arbs: Array<fc.WeightedArbitrary<RawStep>> = [
    { arbitrary: fc.record({ kind: fc.constant('deliver' as const), events: fc.array(ev, { minLength: 1, maxLength: 4 }) }), weight: 12 },
    { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 31, max: 300 })).map((k) => k * 100) }), weight: 5 },
  ];
  if (f.anomaly && f.changes) {
    const ac = fc.record({ kind: fc.constant('anomalyChange' as const), rule: fc.constantFrom<'spike' | 'silent'>('spike', 'silent'), fresh: fc.boolean(), param: fc.integer({ min: 0, max: 2 }), atRestart: f.restartChanges ? fc.boolean() : fc.constant(false) });
    arbs.push({ arbitrary: ac, weight: 1 });
  }
  if (f.duplicates) arbs.push({ arbitrary: fc.record({ kind: fc.constant('redeliver' as const) }), weight: 1 });
  if (f.outages) arbs.push({ arbitrary: fc.record({ kind: fc.constant('outage' as const), ms: fc.integer({ min: 1, max: 600 }).map((k) => k * 100) }), weight: 1 });
  if (f.changes) arbs.push({ arbitrary: fc.record({ kind: fc.constant('change' as const), rule: fc.constantFrom<0 | 1>(0, 1), describeOnly: fc.boolean(), shape: ruleShape }), weight: 1 });
  if (f.restarts) arbs.push({ arbitrary: fc.record({ kind: fc.constant('restart' as const), change: f.restartChanges ? fc.option(change, { nil: null, freq: 2 }) : fc.constant(null) }), weight: 1 });
  return fc.oneof(...arbs);
};


export const rawRunArbitrary = (f: RunFeatures = ALL_FEATURES): fc.Arbitrary<RawRun> =>
  fc.record({
    skews: fc.array(f.future ? fc.oneof({ arbitrary: fc.integer({ min: -5_000, max: 5_000 }), weight: 5 }, { arbitrary: fc.constant(400_000), weight: 1 }) : fc.integer({ min: -5_000, max: 5_000 }), { minLength: DEVICES.length, maxLength: DEVICES.length }),
    rules: fc.tuple(ruleShape, ruleShape),
    steps: fc.array(rawStepOf(f), { minLength: 1, maxLength: 60, size: 'medium' }),
    idleFlush: fc.constant(f.idleFlush),
    anomaly: fc.constant(f.anomaly),
  });

const RULE_IDS = ['tumble', 'hop'] as const;

/**
 * Anomaly rules every run carries, unchanged: a threshold on the strictly-typed `v` (its bad values are
 * `not-a-number` / `missing-field`) and a `missing` detector on connected time. No `timestamp` path:
 * event time is the arrival. The timeout is off the 100 ms grid so a silence never equals it.
 */
export const ANOMALY_RULES: RunRules = {
  spike: { kind: 'anomaly', groupBy: ['$deviceId'], value: 'v', detector: { type: 'threshold', above: 50, hysteresis: 10 } },
  silent: { kind: 'anomaly', groupBy: ['$deviceId'], value: 'z', detector: { type: 'missing', timeout: '2050ms' } },
};

/** The rule document of a shape: rule 0 tumbling, rule 1 hopping (hop = size / 2). */
export function ruleDoc(rule: 0 | 1, s: RuleShape, description: string, idleFlush = true): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    kind: 'aggregate',
    description,
    groupBy: ['$deviceId'],
    timestamp: 'ts',
    window: rule === 0 ? { type: 'tumbling', size: `${s.size}ms` } : { type: 'hopping', size: `${s.size}ms`, hop: `${s.size / 2}ms` },
    maxLateness: `${s.lateness}ms`,
    select: s.fullSelect ? { n: 'count()', nv: 'count(v)', sum: 'sum(v)', min: 'min(v)', max: 'max(v)', avg: 'avg(v)' } : { n: 'count()' },
  };
  if (s.skipNulls === true) doc.nulls = 'skip';
  if (s.endInclusive !== undefined && s.endInclusive !== null) {
    const w = doc.window as Record<string, unknown>;
    w.bounds = '(]';
    if (s.endInclusive !== 0) w.offset = s.endInclusive;
  }
  const where = WHERES[s.where];
  if (where !== undefined) doc.where = where;
  if (!idleFlush) doc.idleTimeout = '7d';
  else if (s.idle !== null) doc.idleTimeout = `${s.idle}ms`;
  return doc;
}

function eventOf(e: RawEvent, wall: number, skews: readonly number[]): RunEvent {
  let t = wall + (skews[e.device] ?? 0) + e.offset;
  if (t % 2 === 0) t += 1;
  const body: Record<string, unknown> = { ts: e.isoTs ? new Date(t).toISOString() : t, v: e.v, z: e.z, on: e.on };
  if (e.fault === 'missingTs') delete body.ts;
  if (e.fault === 'garbageTs') body.ts = 'not a time';
  if (e.fault === 'vString') body.v = String(e.v);
  if (e.fault === 'vBool') body.v = e.v > 0;
  if (e.fault === 'vMissing') delete body.v;
  if (e.fault === 'vNull') body.v = null;
  return { deviceId: DEVICES[e.device]!, body };
}

/** Turns a raw run into concrete steps with both clocks and every body written out. */
export function materialise(raw: RawRun): Run {
  let wall = T0;
  let connected = T0;
  let described = 0;
  const shapes: [RuleShape, RuleShape] = [raw.rules[0], raw.rules[1]];
  const docs: Record<string, Record<string, unknown>> = {
    ...(raw.anomaly ? ANOMALY_RULES : {}),
    [RULE_IDS[0]]: ruleDoc(0, shapes[0], `r${described++}`, raw.idleFlush),
    [RULE_IDS[1]]: ruleDoc(1, shapes[1], `r${described++}`, raw.idleFlush),
  };
  const rules = { ...docs };
  const applyChange = (c: { rule: 0 | 1; describeOnly: boolean; shape: RuleShape }): RunRules => {
    if (!c.describeOnly) shapes[c.rule] = c.shape;
    // Every definition gets a description of its own: a rule that returns to an earlier definition
    // would otherwise reuse that definition's messageIds for different content.
    docs[RULE_IDS[c.rule]] = ruleDoc(c.rule, shapes[c.rule], `r${described++}`, raw.idleFlush);
    return { ...docs };
  };
  const steps: RunStep[] = [];
  let lastEvents: RunEvent[] | null = null;
  for (const s of raw.steps) {
    switch (s.kind) {
      case 'deliver':
        lastEvents = s.events.map((e) => eventOf(e, wall, raw.skews));
        steps.push({ kind: 'deliver', wall, connected, events: lastEvents });
        break;
      case 'redeliver':
        if (lastEvents !== null) steps.push({ kind: 'deliver', wall, connected, events: lastEvents });
        break;
      case 'advance':
        wall += s.ms;
        connected += s.ms;
        steps.push({ kind: 'advance', wall, connected });
        break;
      case 'outage':
        wall += s.ms;
        steps.push({ kind: 'outage', wall, connected });
        break;
      case 'change':
        steps.push({ kind: 'setRules', rules: applyChange(s) });
        break;
      case 'restart':
        steps.push({ kind: 'restart', rules: s.change === null ? { ...docs } : applyChange(s.change) });
        break;
      case 'anomalyChange': {
        // A new limit or timeout keeps the detector state; a new `where` (`fresh`) starts the rule afresh.
        const base = ANOMALY_RULES[s.rule]!;
        const det = base.detector as Record<string, unknown>;
        const detector = s.rule === 'spike' ? { ...det, above: [40, 50, 60][s.param] } : { ...det, timeout: ['2050ms', '1050ms', '4050ms'][s.param] };
        const doc: Record<string, unknown> = { ...base, detector, description: `a${described++}` };
        if (s.fresh && docs[s.rule]?.where === undefined) doc.where = 'z >= 0';
        docs[s.rule] = doc;
        steps.push({ kind: s.atRestart ? 'restart' : 'setRules', rules: { ...docs } });
        break;
      }
    }
  }
  return { startWall: T0, startConnected: T0, rules, steps };
}

export const runArbitrary = (f: RunFeatures = ALL_FEATURES): fc.Arbitrary<Run> => rawRunArbitrary(f).map(materialise);
