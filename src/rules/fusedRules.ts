import type { IngestEvent, RejectReason } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { GroupValues } from '../contracts/window.js';
import { parseTimestamp } from '../ingest/parseTimestamp.js';
import { MISSING } from '../util/readPath.js';
import type { CompiledRule, GroupFn, GroupKeyFn } from './compileRule.js';

/** A rule's group as the rule's own stage knows it (a window group, an anomaly entry): opaque here. */
export type GroupRef = object;

/**
 * The group values (`groupBy` path → value, printed in outputs) of an event's key in one lane, built
 * once per event for all the rules of the lane that create a group on it (see {@link Lane.values}).
 */
export interface SharedGroup {
  /** The values of `ev`'s group: the same object for every rule asking about the same event. */
  values(ev: IngestEvent): GroupValues;
}

/** One running rule as the fused executor drives it (src/rules/engine.ts builds them). */
export interface FusedRule {
  readonly rule: CompiledRule;
  /**
   * The rule's work for one event that passed its `where`, with its event time and group key: `ref` is
   * the rule's group for `key` from the executor's index, or null (the rule looks it up or creates it).
   * Returns the group used, or null when none was (the event was rejected before reaching a group).
   * May throw (a failing expression): the executor counts it under the rule. `shared` gives the
   * group values of a new group (absent: the rule builds its own from the event).
   */
  step?(ref: GroupRef | null, ev: IngestEvent, out: OutputMessage[], now: number, time: number, key: string, shared?: SharedGroup, evaluated?: boolean): GroupRef | null;
  /**
   * The rule's own step for its common event on an existing group (src/rules/hotWindowStep.ts), called
   * by the executor before `step`: true when it took the event (the group stays `ref`); false when the
   * event needs `step`, which is then called with `evaluated` true (the arguments are evaluated
   * already). Called directly rather than from inside `step`: one call per rule and event fewer on the
   * path most events take (docs/performance.md, "The rule's step called directly").
   */
  hot?: ((ref: GroupRef, ev: IngestEvent, time: number, key: string, now: number, out: OutputMessage[]) => boolean) | null;
  /** A rule without `step` gets each event of its input whole, and does its own front half. */
  process?(ev: IngestEvent, out: OutputMessage[], now: number): void;
  /** Set by the executor for a rule with `step`: the rule deleted its group `key` (the index must forget it). */
  forgot?: ((key: string) => void) | null;
  /** The rule's state container: a {@link LaneGroups} moves into the rule's lane when the lane is indexed. */
  readonly groups?: Map<string, unknown>;
  /**
   * Body paths the rule reads as numbers per event (a select's `argPaths`, an anomaly rule's `value`
   * when it is one path; null: an entry that is not one). The executor reads each distinct path of an
   * input once per event into its {@link ValueScratch} and tells the rule where (`bindValues`: `at[i]`
   * is entry i's index in `scratch.vals`, -1 for a null entry), before reading `hot`.
   */
  valuePaths?: ReadonlyArray<readonly string[] | null>;
  bindValues?(scratch: ValueScratch, at: readonly number[]): void;
}

/**
 * The values of an input's number paths for the event being run (`ev`; null between batches): `vals[i]`
 * is the value at path i when it is a finite number, NaN when it is missing or anything else, in which
 * case a rule runs its own reader, which fails or answers exactly as it would without the scratch.
 *
 * Why (docs/performance.md, "One read per path and event"): every rule read its paths through the
 * shared reader (src/util/readPath.ts `compileRequiredRead`), one closure code for every rule, so V8's
 * loads in it saw every path and each read boxed a new double: 76 reads and 1.1 KB per event in the
 * 100-rule mix, for about 4 distinct paths. Here each path is read once per event and kept unboxed.
 */
export interface ValueScratch {
  readonly vals: Float64Array;
  /**
   * `vals` again, each value boxed once per event (a tagged array, created holding null): for a rule
   * that passes the value on as a JS value (an anomaly rule's detector input), so its rules share one
   * HeapNumber per path and event instead of boxing one each (as `InputPlan.times` does for times).
   */
  readonly boxed: Array<number | null>;
  ev: IngestEvent | null;
}

/** Where the executor reports the events a rule did not take. */
export interface FusedObserver {
  rejected(reason: RejectReason, rule: string, deviceId?: string): void;
  /** An expression or path threw for the rule (counted by the caller under its reason). */
  failed(err: unknown, rule: string): void;
}

/**
 * The groups of every rule of one input that share a `groupBy`, indexed once: a key maps to one row
 * holding each rule's group (`slot` per rule). One Map lookup per event and lane instead of one per rule
 * and event: with 10 rules over 10k devices the per-rule lookups were the engine's largest cost
 * (docs/performance.md, "The fused executor", "Where the time went"). Rows exist only while some rule of the lane holds a
 * group for the key; a rule's stage tells when it deletes one (`FusedRule.forgot`).
 *
 * The rows are columnar: one flat array `cells` (row * width + slot) and the Map's values are row
 * numbers, instead of one small array per key, which cost an array object and its backing store per
 * key (bench/memory.ts: about 90 bytes per device with the default rules). A deleted row's number is
 * reused by the next new key.
 */
export class Lane implements SharedGroup {
  readonly index = new Map<string, number>();
  readonly cells: Array<GroupRef | null> = [];
  /** Rows no key holds, reused before `cells` grows. */
  readonly free: number[] = [];
  width = 0;
  /**
   * False for a lane of one rule: its own lookup is the one lookup per event already, and an index
   * would only add a Map entry and a row per group (bench/memory.ts: about 100 bytes per group).
   */
  indexed = false;

  /** The event whose group values `vals` holds (null: none); cleared after each batch so no event is retained. */
  private valsOf: IngestEvent | null = null;
  private vals: GroupValues | null = null;

  constructor(
    readonly signature: string,
    readonly groupKey: GroupKeyFn,
    private readonly group: GroupFn,
  ) {}

  /**
   * The group values of `ev` in this lane, built once per event: the rules of a lane share their
   * `groupBy` (the lane's signature), so each would build an equal object; one object referenced by
   * every group the event creates saves an object per rule and group (bench/memory.ts: a
   * `{deviceId}` object is 32 bytes, a fifth of the default rules' per-group cost besides windows).
   * Groups are plain JSON and never mutate their values, so sharing is invisible in outputs and
   * checkpoints (a restored group gets its own copy, as before).
   */
  values(ev: IngestEvent): GroupValues {
    if (this.valsOf !== ev || this.vals === null) {
      this.vals = this.group(ev)!.group;
      this.valsOf = ev;
    }
    return this.vals;
  }

  /** Lets go of the last event (called once per batch). */
  release(): void {
    this.valsOf = null;
    this.vals = null;
  }

  /** A new row for `key`, every rule's cell empty. */
  open(key: string): number {
    const w = this.width;
    let row = this.free.pop();
    if (row === undefined) {
      row = this.cells.length / w;
      for (let i = 0; i < w; i++) this.cells.push(null);
    }
    this.index.set(key, row);
    return row;
  }

  forget(key: string, slot: number): void {
    const row = this.index.get(key);
    if (row === undefined) return;
    const w = this.width;
    const cells = this.cells;
    const at = row * w;
    cells[at + slot] = null;
    for (let i = 0; i < w; i++) if (cells[at + i] !== null) return;
    this.index.delete(key);
    this.free.push(row);
  }
}

interface RuleStep {
  readonly rt: FusedRule;
  /** `rt.hot` when the rule has one, read when the plan is built (a rule's runtime sets it when it starts). */
  readonly hot: NonNullable<FusedRule['hot']> | null;
  /** Index of the rule's timestamp path in the input's `paths`; -1: arrival time. */
  readonly ts: number;
  readonly lane: number;
  readonly slot: number;
}

interface InputPlan {
  readonly steps: RuleStep[];
  /** The input's number paths (see {@link ValueScratch}), read in order at the start of each event. */
  readonly valuePaths: ReadonlyArray<readonly string[]>;
  readonly values: ValueScratch;
  readonly paths: Array<(body: Record<string, unknown>) => unknown>;
  readonly lanes: Lane[];
  /**
   * Per-event scratch: event time per path (NaN: not a timestamp), key and record per lane. An entry
   * is this event's when its stamp (`parsed`, `keyed`) equals the plan's `stamp`, counted up per event,
   * so that nothing is cleared between events.
   *
   * `times` is a plain array of tagged values (created holding null), not a Float64Array: an epoch-ms
   * time is no small integer, so passing a raw double to each rule's `step` boxed it into a new
   * HeapNumber per rule and event (`bench/profileEngine.ts ... --alloc`: 16 bytes per
   * rule per input); kept boxed, one number per event and path serves every rule.
   */
  readonly times: Array<number | null>;
  readonly parsed: Float64Array;
  readonly keys: Array<string | null>;
  readonly keyed: Float64Array;
  /** Per lane: the key's row in the lane's cells, -1 when it has none. */
  readonly rows: Int32Array;
  stamp: number;
}

/**
 * The fused executor: runs every rule of an input per event, in the rules' order, sharing the work of
 * rules that read the same thing. Per event, each distinct timestamp path is read and parsed once, each
 * distinct `groupBy` computes its key once and finds one record holding the groups of all its rules
 * (see {@link Lane}); each rule then applies its `where`, its bounds on the event time and its own
 * step. What a rule counts and emits, and in which order, is what running the rules one after another
 * gives (test/oracle/differential.test.ts compares with an independent model).
 */
export class FusedRules {
  private readonly byInput = new Map<string, InputPlan>();

  constructor(
    rules: readonly FusedRule[],
    private readonly observer: FusedObserver,
  ) {
    const pathIds = new Map<string, Map<string, number>>();
    const laneIds = new Map<string, Map<string, number>>();
    const valueIds = new Map<string, Map<string, number>>();
    /** Per rule with `bindValues`: the index of each of its value paths in its input's scratch. */
    const valueAt = new Map<FusedRule, number[]>();
    for (const rt of rules) {
      const rule = rt.rule;
      let plan = this.byInput.get(rule.input);
      if (plan === undefined) {
        plan = { steps: [], valuePaths: [], values: { vals: new Float64Array(0), boxed: [], ev: null }, paths: [], lanes: [], times: [], parsed: new Float64Array(0), keys: [], keyed: new Float64Array(0), rows: new Int32Array(0), stamp: 0 };
        this.byInput.set(rule.input, plan);
        pathIds.set(rule.input, new Map());
        laneIds.set(rule.input, new Map());
        valueIds.set(rule.input, new Map());
      }
      if (rt.step === undefined) {
        plan.steps.push({ rt, hot: null, ts: -1, lane: -1, slot: -1 });
        continue;
      }
      const paths = pathIds.get(rule.input)!;
      let ts = -1;
      if (rule.timestamp !== null) {
        const path = rule.doc.timestamp ?? '';
        ts = paths.get(path) ?? -1;
        if (ts < 0) {
          ts = plan.paths.length;
          plan.paths.push(rule.timestamp);
          paths.set(path, ts);
        }
      }
      const lanes = laneIds.get(rule.input)!;
      // JSON of the path list: paths may hold commas, which would make a joined signature ambiguous.
      // A session window with its own partition key keeps its groups per partition (compileRule `partition`).
      const part = rule.kind === 'aggregate' ? rule.partition : undefined;
      // A rule that reads a missing `groupBy` path as null (`missingGroupIsNull`, an ASA rule) keys such an
      // event where a rule beside it rejects it: one lane key per event cannot serve both, so it gets a lane
      // of its own (test/unit/rules/missingGroupNull.test.ts runs the two side by side).
      const signature = JSON.stringify(part?.by ?? rule.groupBy) + (rule.missingGroupIsNull ? '\u0000null' : '');
      let lane = lanes.get(signature) ?? -1;
      if (lane < 0) {
        lane = plan.lanes.length;
        plan.lanes.push(new Lane(signature, part?.key ?? rule.groupKey, part?.group ?? rule.group));
        lanes.set(signature, lane);
      }
      const l = plan.lanes[lane]!;
      const slot = l.width++;
      rt.forgot = (key) => l.forget(key, slot);
      if (rt.bindValues !== undefined && rt.valuePaths !== undefined) {
        const ids = valueIds.get(rule.input)!;
        const list = plan.valuePaths as Array<readonly string[]>;
        valueAt.set(rt, rt.valuePaths.map((segments) => {
          if (segments === null) return -1;
          // JSON of the segments: a segment may hold a dot (`machine["a.b"]`).
          const id = JSON.stringify(segments);
          let at = ids.get(id);
          if (at === undefined) {
            at = list.length;
            list.push(segments);
            ids.set(id, at);
          }
          return at;
        }));
      }
      plan.steps.push({ rt, hot: null, ts, lane, slot });
    }
    for (const [input, p] of this.byInput) {
      for (const lane of p.lanes) lane.indexed = lane.width > 1;
      for (const s of p.steps) {
        const groups = s.rt.groups;
        if (s.lane >= 0 && groups instanceof LaneGroups) {
          const lane = p.lanes[s.lane]!;
          groups.attach(lane.indexed ? lane : null, s.slot);
        }
      }
      const values: ValueScratch = { vals: new Float64Array(p.valuePaths.length), boxed: p.valuePaths.map(() => null), ev: null };
      for (const s of p.steps) {
        const at = valueAt.get(s.rt);
        if (at !== undefined) s.rt.bindValues!(values, at);
      }
      this.byInput.set(input, {
        ...p,
        // `hot` read once the rule knows where its values are.
        steps: p.steps.map((s) => ({ ...s, hot: s.rt.step === undefined ? null : (s.rt.hot ?? null) })),
        values,
        times: p.paths.map(() => null),
        parsed: new Float64Array(p.paths.length),
        keys: p.lanes.map(() => null),
        keyed: new Float64Array(p.lanes.length),
        rows: new Int32Array(p.lanes.length).fill(-1),
      });
    }
  }

  /** The inputs the rules read. */
  inputs(): string[] {
    return [...this.byInput.keys()];
  }

  /** Runs every rule of each event's input; outputs go to `out` in creation order. Never throws for bad data. */
  process(events: readonly IngestEvent[], out: OutputMessage[], now: number): void {
    for (let e = 0; e < events.length; e++) {
      const ev = events[e]!;
      const plan = this.byInput.get(ev.input);
      if (plan !== undefined) this.run(plan, ev, out, now);
    }
    for (const plan of this.byInput.values()) {
      for (const lane of plan.lanes) lane.release();
      plan.values.ev = null;
    }
  }

  private run(plan: InputPlan, ev: IngestEvent, out: OutputMessage[], now: number): void {
    const { steps, paths, lanes, times, parsed, keys, keyed, rows } = plan;
    const stamp = ++plan.stamp;
    const valuePaths = plan.valuePaths;
    if (valuePaths.length > 0) {
      const { vals, boxed } = plan.values;
      for (let k = 0; k < valuePaths.length; k++) {
        const x = readNumber(ev.body, valuePaths[k]!);
        vals[k] = x;
        boxed[k] = x;
      }
      plan.values.ev = ev;
    }
    const observer = this.observer;
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const rt = s.rt;
      if (rt.step === undefined) {
        rt.process!(ev, out, now);
        continue;
      }
      const rule = rt.rule;
      try {
        if (rule.where !== null && !rule.where(ev)) continue;
        let time: number;
        const p = s.ts;
        if (p < 0) time = ev.arrival;
        else {
          if (parsed[p] !== stamp) {
            const raw = paths[p]!(ev.body);
            const t = raw === MISSING ? null : parseTimestamp(raw);
            times[p] = t === null ? Number.NaN : t;
            parsed[p] = stamp;
          }
          time = times[p] as number;
          if (time !== time) {
            observer.rejected('bad-timestamp', rule.id);
            continue;
          }
          // An event time more than `maxClockSkew` ahead of the event's arrival is `future-timestamp`
          // (docs/contract.md section 5): a device clock a day ahead would otherwise move its group's
          // watermark there and make every later event of the device `too-late`. Compared with
          // `ev.arrival`, the wall clock stamped at ingest, not with the processing time `now`, which
          // may stand still while edgeHub is unreachable.
          if (time - ev.arrival > rule.maxClockSkew) {
            observer.rejected('future-timestamp', rule.id, ev.deviceId);
            continue;
          }
        }
        const l = s.lane;
        const lane = lanes[l]!;
        if (keyed[l] !== stamp) {
          const k = lane.groupKey(ev);
          keys[l] = k;
          rows[l] = k === null || !lane.indexed ? -1 : (lane.index.get(k) ?? -1);
          keyed[l] = stamp;
        }
        const key = keys[l] as string | null;
        if (key === null) {
          observer.rejected('missing-field', rule.id);
          continue;
        }
        let row = rows[l]!;
        const ref = row < 0 ? null : lane.cells[row * lane.width + s.slot]!;
        let evaluated = false;
        if (ref !== null && s.hot !== null) {
          if (s.hot(ref, ev, time, key, now, out)) continue;
          evaluated = true;
        }
        const got = rt.step(ref, ev, out, now, time, key, lane, evaluated);
        if (got !== ref && got !== null && lane.indexed) {
          // A rule of this event may have deleted the key's last group, freeing its row (`forget`), and
          // a rule whose groups live in the lane (LaneGroups) has opened the key's row itself: the row
          // is the one the index gives the key now.
          if (row < 0 || lane.index.get(key) !== row) {
            row = lane.index.get(key) ?? lane.open(key);
            rows[l] = row;
          }
          lane.cells[row * lane.width + s.slot] = got;
        }
      } catch (err) {
        observer.failed(err, rule.id);
      }
    }
  }
}

/**
 * The value at `segments` in `body` when it is a finite number, else NaN (missing, null, a string, an
 * object, a non-finite number). Own properties only, as every reader of src/util/readPath.ts: a name
 * an inherited property could answer to is checked with `hasOwnProperty` (`inheritable`); the others
 * can only be own properties of decoded JSON.
 */
function readNumber(body: Record<string, unknown>, segments: readonly string[]): number {
  let o: unknown = body;
  for (let i = 0; i < segments.length; i++) {
    if (o === null || typeof o !== 'object') return Number.NaN;
    const k = segments[i]!;
    if (!hasOwn.call(o, k)) return Number.NaN;
    o = (o as Record<string, unknown>)[k];
  }
  return typeof o === 'number' && o - o === 0 ? o : Number.NaN;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * A rule's groups (its stage's state container, checkpointed as `[...groups]`) that, once the fused
 * executor indexes the rule in a lane shared with other rules ({@link FusedRules} calls `attach`),
 * live in the lane's cells instead of in a hash table of their own: the lane already maps each key to
 * a row holding every rule's group, so a Map per rule repeated that index (bench/memory.ts, default
 * rules over 10k devices: each rule's Map table is about 46 bytes per group, the five of them more
 * than the lane's index and cells together). Attached, it keeps only what a Map gives its callers
 * beyond the lookup: the insertion order (`order`, `keys`: an entry is live while the lane's cell for
 * its key still holds it, and dead entries are compacted away once they outnumber the live ones) and
 * the size. Detached (a rule alone in its lane, a rule being finished outside the executor) it is the
 * Map it extends. Callers see Map semantics either way: get, has, set, delete, size, clear and
 * iteration in insertion order (test/unit/rules/laneGroups.test.ts). One assumption beyond a Map: a
 * group object once deleted is never set again (the stages create a new object for a new group), as
 * a dead entry is told from a live one by the lane's cell holding that very object.
 */
export class LaneGroups extends Map<string, unknown> {
  private lane: Lane | null = null;
  private slot = 0;
  private order: unknown[] = [];
  private keyOf: string[] = [];
  private live = 0;

  /** The groups of `from` (a plain Map, or another LaneGroups), detached, in their order. */
  static from(from: Map<string, unknown>): LaneGroups {
    const g = new LaneGroups();
    for (const [k, v] of from) g.set(k, v);
    return g;
  }

  /** Moves the groups into `lane` as the rule at `slot`, or back into the Map itself (`lane` null). */
  attach(lane: Lane | null, slot: number): void {
    const entries = [...this];
    super.clear();
    this.order = [];
    this.keyOf = [];
    this.live = 0;
    this.lane = lane;
    this.slot = slot;
    for (const [k, v] of entries) this.set(k, v);
  }

  override get size(): number {
    return this.lane === null ? super.size : this.live;
  }

  override get(key: string): unknown {
    const lane = this.lane;
    if (lane === null) return super.get(key);
    const row = lane.index.get(key);
    return row === undefined ? undefined : (lane.cells[row * lane.width + this.slot] ?? undefined);
  }

  override has(key: string): boolean {
    return this.lane === null ? super.has(key) : this.get(key) !== undefined;
  }

  override set(key: string, value: unknown): this {
    const lane = this.lane;
    if (lane === null) return super.set(key, value);
    const old = this.get(key);
    if (old !== undefined) {
      // Map semantics: a key already present keeps its place.
      for (let i = 0; i < this.order.length; i++) if (this.order[i] === old && this.keyOf[i] === key) this.order[i] = value;
    } else {
      this.order.push(value);
      this.keyOf.push(key);
      this.live++;
    }
    const row = lane.index.get(key) ?? lane.open(key);
    lane.cells[row * lane.width + this.slot] = value as GroupRef;
    return this;
  }

  override delete(key: string): boolean {
    const lane = this.lane;
    if (lane === null) return super.delete(key);
    if (this.get(key) === undefined) return false;
    lane.forget(key, this.slot);
    this.live--;
    if (this.order.length > 32 && this.order.length > 2 * this.live) this.compact();
    return true;
  }

  override clear(): void {
    if (this.lane === null) {
      super.clear();
      return;
    }
    for (const [k] of this) this.lane.forget(k, this.slot);
    this.order = [];
    this.keyOf = [];
    this.live = 0;
  }

  override *entries(): MapIterator<[string, unknown]> {
    if (this.lane === null) {
      yield* super.entries();
      return;
    }
    const { order, keyOf } = this;
    for (let i = 0; i < order.length; i++) {
      const v = order[i];
      const k = keyOf[i]!;
      if (v !== undefined && this.get(k) === v) yield [k, v];
    }
  }

  override [Symbol.iterator](): MapIterator<[string, unknown]> {
    return this.entries();
  }

  override *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  override *values(): MapIterator<unknown> {
    for (const [, v] of this.entries()) yield v;
  }

  override forEach(fn: (value: unknown, key: string, map: Map<string, unknown>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  /** Drops the entries of deleted groups (the live ones keep their order). */
  private compact(): void {
    const order: unknown[] = [];
    const keyOf: string[] = [];
    for (const [k, v] of this.entries()) {
      order.push(v);
      keyOf.push(k);
    }
    this.order = order;
    this.keyOf = keyOf;
  }
}
