import type { AlertEmission, AnomalyInput, AnomalyState, DetectorStep, DetectorType } from '../contracts/anomaly.js';
import type { GroupValues } from '../contracts/window.js';
import { LINK_KEY, LINK_NEXT, LINK_PREV, RecencyList, type RecencyLinks } from '../windows/recencyList.js';

/** One anomaly rule as the stage needs it: a validated detector and config, cooldown in ms. */
export interface AnomalyStageRule {
  readonly detector: DetectorType;
  readonly config: unknown;
  /** Least time between two raises for one group, on the clock of the raises' times (docs/rules.md "Cooldown and timeouts changed while they run"; default 0). */
  readonly cooldownMs: number;
  /** When set, the level is `score >= alertThreshold` instead of the detector's own `anomalous`. */
  readonly alertThreshold?: number;
  /** Detector name printed in alerts (`detector` field). */
  readonly detectorName: string;
  /** Bound on live groups; the least recently seen group is dropped beyond it (default unbounded). */
  readonly maxGroups?: number;
}

/** Per-group plain-JSON record kept in `AnomalyState.groups` (the recency links are symbol keys, not in the JSON). */
interface GroupEntry extends RecencyLinks {
  d: unknown;
  active: boolean;
  lastRaise: number | null;
  group: GroupValues;
  /** Value of the stage's touch counter when this entry was last moved to the recent end. */
  at?: number;
  /**
   * Value of the stage's touch counter when this entry was created (absent in entries checkpointed
   * before it existed): tells a group that was evicted and came back from its earlier self, whose
   * alert sequence started at 0 too. Part of the alert's messageId.
   */
  b?: number;
  /** Alerts (raised or cleared) this entry has emitted: the next one's sequence number, part of its messageId. */
  n?: number;
}

/** A group of an {@link AnomalyStage}, opaque to the caller (see `processIn`). */
export type AnomalyGroupRef = { readonly __anomalyGroup: true };

/** What `process` returns: the detector's step and the edge it caused, if any. */
export interface AnomalyStageResult {
  readonly step: DetectorStep;
  readonly alert: AlertEmission | null;
  /** Set when the event was not judged: a non-finite value, or the detector threw (counted by the caller). */
  readonly rejected?: 'not-a-number' | 'detector-error';
}

const IDLE: DetectorStep = { score: 0, anomalous: false };

const NO_ALERTS: AlertEmission[] = [];

const kind = (x: unknown): string => (x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x);

/**
 * Where restored detector state `d` is not of the kind of fresh state `f` (null: nowhere): each field
 * both have, recursively through objects, must be of the fresh one's JSON kind, and a number a finite
 * one. A field the restored state lacks is not judged (the states of earlier versions lack fields their
 * detectors fill in), nor one that is null in either (fields that start null, and `/s2`-era states that
 * kept null in number fields: src/rules/engine.ts `STATE_FORMAT`), nor array elements (their kinds are
 * the detector's to know). Cost: the size of a fresh state, once per restored group.
 */
function unlike(f: unknown, d: unknown): string | null {
  if (f === null || d === null) return null;
  if (kind(f) !== kind(d)) return ` is ${kind(d)}, not ${kind(f)}`;
  if (typeof d === 'number') return Number.isFinite(d) ? null : ` is ${String(d)}`;
  if (kind(f) !== 'object') return null;
  const fo = f as Record<string, unknown>;
  const dobj = d as Record<string, unknown>;
  // The path is built only on the way back from a mismatch: this runs for every restored group.
  for (const k in fo) {
    if (!Object.prototype.hasOwnProperty.call(dobj, k)) continue;
    const w = unlike(fo[k], dobj[k]);
    if (w !== null) return `.${k}${w}`;
  }
  return null;
}

/**
 * A step from a usable state: a finite score. No detector scores NaN or infinity on a state it built
 * itself (test/unit/anomaly/detectorSuite.test.ts keeps every score in [0, 1]); a state damaged with a
 * NaN or a null does, on every event.
 */
const validStep = (step: DetectorStep): boolean => Number.isFinite(step.score);

/**
 * |value| from which a detector's state may overflow: a square above 1.8e308 is Infinity (1e155² is;
 * 1e154² is not, but a sum of a few of them is), and Infinity never decays out of an exponentially
 * weighted variance (src/anomaly/pointDeviation.ts), so one glitch reading left `auto` blind to every
 * later spike; and a checkpoint wrote it as JSON `null`, so a restart then scored otherwise than a run
 * without one. Below 1e100 a sum of squares stays finite over 1e100 events. At or above it (rare) the
 * state is copied before the update and put back if the update left in it a number that is not finite,
 * or larger than both STATE_BOUND and the value itself (a detector may keep the reading as it came, as
 * rateOfChange keeps its last value: test/unit/hostile/ingestFuzz.test.ts sends ±1e308): the event is
 * rejected as `detector-error` (docs/contract.md section 3), as if it had not been sent
 * (test/integration/blackbox/hugeReading.test.ts).
 */
const OVERFLOW_RISK = 1e100;

/** The largest magnitude a state may take from such a value: sums of up to 1e8 such numbers stay finite. */
const STATE_BOUND = 1e300;

/** True when every number in plain-JSON `x` is at most `bound` in magnitude (walks the whole state: rare path only). */
function bounded(x: unknown, bound: number): boolean {
  if (typeof x === 'number') return Math.abs(x) <= bound;
  if (x === null || typeof x !== 'object') return true;
  if (Array.isArray(x)) {
    for (const y of x) if (!bounded(y, bound)) return false;
    return true;
  }
  for (const k in x) if (!bounded((x as Record<string, unknown>)[k], bound)) return false;
  return true;
}

/**
 * The alert stage of one anomaly rule: runs the detector per group and turns its level into `raised` /
 * `cleared` edges. A raise is suppressed while the group's previous raise is less than `cooldownMs` of
 * event time ago; the group then stays un-alerted, so a level that lasts past the cooldown raises
 * later (a `tick` raise: at the last raise + cooldown, however the ticks fall). Detectors with `tick` (missing) are asked on every `tick(now)` (processing time; each event
 * passes its arrival on the same clock): a silent group raises there and its next event clears. Never throws on data: a bad value, or a detector that
 * throws on a fresh state too, is reported in `rejected` and leaves the group's alert as it was; a
 * detector state it cannot use (a damaged checkpoint) starts afresh (`retryFresh`).
 */
export class AnomalyStage {
  readonly state: AnomalyState;
  /**
   * Groups dropped because the rule reached `maxGroups` (least recently seen first). A dropped group's
   * detector history is lost, and an alert it had raised is not cleared: it starts afresh if it returns.
   */
  evictedGroups = 0;

  /**
   * Told when a group is deleted (evicted at `maxGroups`), for a caller that keeps its own index of the
   * groups (src/rules/fusedRules.ts).
   */
  forgot: ((key: string) => void) | null = null;

  constructor(
    private readonly rule: AnomalyStageRule,
    state?: AnomalyState,
    reset?: (key: string, why: string) => void,
  ) {
    this.state = state ?? { groups: new Map() };
    this.reset = reset ?? null;
    if (this.state.groups.size > 0) this.checkRestored();
    // Restored groups carry the recency marks of the instance that saved them: they enter the list in
    // that order, and the counter resumes above them (the marks of groups used later must stay above).
    const restored = [...this.state.groups] as Array<[string, GroupEntry]>;
    restored.sort((a, b) => (a[1].at ?? 0) - (b[1].at ?? 0));
    for (const [key, e] of restored) {
      this.recency.append(key, e);
      const mark = e.at ?? 0;
      if (mark > this.touches) this.touches = mark;
    }
  }

  /**
   * Restored groups a damaged or hand-edited checkpoint left unusable are mended before any event
   * (docs/contract.md section 3, "Detector state is data too"): an entry that is not an object, or
   * whose group values or alert numbering (`b`, `n`: the alert's messageId) are not what this stage
   * writes, is dropped (the group starts afresh on its next event, under a new `b`, so no messageId is
   * reused); a detector state unlike a fresh one (`unlike`: a field of another JSON kind, a number that
   * is not finite) starts afresh. A state that passes and that the detector still cannot use is found
   * on its first event (`retryFresh`). Missing fields are not judged: detectors read the states of
   * earlier versions that lack them (docs/anomaly-auto.md: a checkpoint without `t0`, `m`).
   */
  private checkRestored(): void {
    const groups = this.state.groups as Map<string, unknown>;
    const fresh = this.rule.detector.init(this.rule.config);
    const count = (x: unknown): boolean => x === undefined || (typeof x === 'number' && Number.isInteger(x) && x >= 0);
    for (const [key, e] of groups) {
      if (kind(e) !== 'object' || kind((e as GroupEntry).group) !== 'object' || !count((e as GroupEntry).b) || !count((e as GroupEntry).n)) {
        groups.delete(key);
        this.resetGroups++;
        this.reset?.(key, 'unreadable group entry: dropped');
        continue;
      }
      const g = e as GroupEntry;
      if (typeof g.active !== 'boolean') g.active = false;
      if (g.lastRaise !== null && !Number.isFinite(g.lastRaise)) g.lastRaise = null;
      if (g.at !== undefined && !Number.isFinite(g.at)) delete g.at;
      const mismatch = unlike(fresh, g.d) ?? (g.d === null ? ' is null' : null);
      const wrong = mismatch === null ? null : `state${mismatch}`;
      if (wrong !== null) {
        g.d = this.rule.detector.init(this.rule.config);
        this.resetGroups++;
        this.reset?.(key, wrong);
      }
    }
  }

  process(input: AnomalyInput): AnomalyStageResult {
    const step = this.processIn(null, input);
    const rejected = this.lastRejected;
    return rejected === null ? { step, alert: this.lastAlert } : { step, alert: null, rejected };
  }

  /**
   * `process` with the group found by the caller (an earlier `lastGroup` for `input.key`, valid
   * until `forgot` names the key), or null to look it up. Returns the detector's step; the edge it
   * caused is in `lastAlert` and a rejection in `lastRejected` afterwards, and the group used in
   * `lastGroup`: fields rather than a result object, which the engine's per-event path would allocate
   * per anomaly rule and event (docs/performance.md, "Scratch inputs in fast mode").
   */
  processIn(ref: AnomalyGroupRef | null, input: AnomalyInput): DetectorStep {
    this.lastGroup = null;
    this.lastAlert = null;
    this.lastRejected = null;
    if (!Number.isFinite(input.value) || !Number.isFinite(input.time)) {
      this.lastRejected = 'not-a-number';
      return IDLE;
    }
    const e = ref === null ? this.entry(input.key, input) : this.touch(input.key, ref as unknown as GroupEntry);
    this.lastGroup = e as unknown as AnomalyGroupRef;
    // A value this large can overflow a detector's sums of squares to Infinity, for good (see OVERFLOW_RISK).
    // Copied as a checkpoint copies it: htm keeps its live arrays beside the state and writes them in
    // its `toJSON` (src/anomaly/htmMemory.ts), which structuredClone would not call.
    const kept = Math.abs(input.value) >= OVERFLOW_RISK ? (JSON.parse(JSON.stringify(e.d)) as unknown) : undefined;
    let step: DetectorStep | null = null;
    let failure: unknown = null;
    try {
      step = this.rule.detector.update(this.rule.config, e.d, input.time, input.value, input.arrival);
    } catch (err) {
      failure = err;
    }
    if (kept !== undefined && !bounded(e.d, Math.max(STATE_BOUND, Math.abs(input.value)))) {
      e.d = kept;
      this.lastRejected = 'detector-error';
      return IDLE;
    }
    if (step === null || !validStep(step)) {
      step = this.retryFresh(input, e, step === null ? failure : new Error(`score ${String(step.score)}`));
      if (step === null) {
        this.lastRejected = 'detector-error';
        return IDLE;
      }
    }
    this.lastAlert = this.edge(input.key, e, step, input.time, input.value);
    return step;
  }

  /**
   * The detector threw, or gave a score that is not a finite number (see `validStep`), on group `e`'s state. A state restored from a damaged,
   * hand-edited or older checkpoint does that on every event, and the group then never judged again
   * (docs/contract.md section 3: bad data is counted, never a stuck stream). So the same event is
   * scored once more by a fresh state: if that works the old state was the fault, and the group
   * starts learning again from this event (counted in `resetGroups`, told to `reset`); if it fails
   * too the event is the fault, the old state is kept and null returned (the event is rejected).
   * test/unit/anomaly/damagedState.test.ts.
   */
  private retryFresh(input: AnomalyInput, e: GroupEntry, cause: unknown): DetectorStep | null {
    const old = e.d;
    e.d = this.rule.detector.init(this.rule.config);
    let step: DetectorStep;
    try {
      step = this.rule.detector.update(this.rule.config, e.d, input.time, input.value, input.arrival);
    } catch {
      e.d = old;
      return null;
    }
    if (!validStep(step)) {
      e.d = old;
      return null;
    }
    this.resetGroups++;
    this.reset?.(input.key, cause instanceof Error ? cause.message : String(cause));
    return step;
  }

  /**
   * Groups whose detector state was found unusable and started afresh (see `retryFresh`; cumulative
   * since the stage was made). The group keeps its alert state (`active`, cooldown, sequence).
   */
  resetGroups = 0;

  /** Told when a group's detector state is reset (its key and what the old state did), for the log. */
  reset: ((key: string, why: string) => void) | null = null;

  /** The edge the last `processIn` caused (null: none). */
  lastAlert: AlertEmission | null = null;

  /** Why the last `processIn` did not judge its event (null: it did). */
  lastRejected: 'not-a-number' | 'detector-error' | null = null;

  /**
   * Processing-time check of every group (only detectors with `tick`, i.e. `missing`). A raise found
   * here has no event behind it: its value is null and its `time` is when the anomaly began on the
   * processing clock (`tickAnomalySince`: the last arrival + timeout), not when this tick ran, so the
   * alert's deterministic messageId is the same however the ticks fall, also for a raise repeated after
   * a crash. The event that clears it gives the clear its own time and value (docs/contract.md section 5).
   */
  tick(now: number): AlertEmission[] {
    const tick = this.rule.detector.tick;
    if (!tick) return [];
    const out: AlertEmission[] = [];
    // Least recently seen first.
    for (const { key, g: e } of this.recency.entries()) {
      let step: DetectorStep | null;
      try {
        step = tick.call(this.rule.detector, this.rule.config, e.d, now);
      } catch (err) {
        // An unusable state (see `retryFresh`) starts afresh: a fresh state has nothing to time out
        // until its next event, so this tick says nothing of it.
        e.d = this.rule.detector.init(this.rule.config);
        this.resetGroups++;
        this.reset?.(key, err instanceof Error ? err.message : String(err));
        continue;
      }
      if (step !== null && !validStep(step)) step = { ...step, score: 0 };
      if (!step) continue;
      let since = step.anomalous && !e.active ? this.rule.detector.tickAnomalySince?.(this.rule.config, e.d) : undefined;
      // A raise the cooldown holds back begins when the cooldown ends, if the anomaly still holds then
      // (docs/rules.md "Cooldown and timeouts changed while they run"). Timed from `since` alone, a group
      // that fell silent again within the cooldown of its last raise never raised, however long it stayed
      // silent (test/unit/anomaly/anomalyStage.test.ts "held back by the cooldown").
      const cd = this.rule.cooldownMs;
      if (since !== undefined && e.lastRaise !== null && cd > 0) since = Math.max(since, e.lastRaise + cd);
      const a = this.edge(key, e, step, since !== undefined && Number.isFinite(since) && since <= now ? since : now, null);
      if (a) out.push(a);
    }
    return out;
  }

  private touches = 0;

  /**
   * Groups in order of last use, least recent first: eviction takes the head. An intrusive list (a
   * few pointer writes per event) rather than re-inserting the entry into the Map: a delete+set per
   * event rehashes a Map full of tombstones, and the "second chance" that only moved entries in the
   * older half still moved every one when groups take turns (1,000 devices sending in rotation:
   * 7 % of the engine's time in bench/profileEngine.ts).
   */
  private readonly recency = new RecencyList<GroupEntry>();

  /** `input.group` is read only for a new group (the engine builds it lazily). */
  /** The group the last `processIn` judged (for the caller's index); null before any. */
  lastGroup: AnomalyGroupRef | null = null;

  private touch(key: string, e: GroupEntry): GroupEntry {
    // The mark is checkpointed with the entry: a restored stage orders its groups by it.
    e.at = ++this.touches;
    this.recency.touch(key, e);
    return e;
  }

  private entry(key: string, input: AnomalyInput): GroupEntry {
    const groups = this.state.groups;
    let e = groups.get(key) as GroupEntry | undefined;
    if (e) return this.touch(key, e);
    const touch = ++this.touches;
    e = { d: this.rule.detector.init(this.rule.config), active: false, lastRaise: null, group: input.group, at: touch, b: touch, n: 0, [LINK_PREV]: null, [LINK_NEXT]: null, [LINK_KEY]: key };
    groups.set(key, e);
    this.recency.touch(key, e);
    const max = this.rule.maxGroups;
    if (max !== undefined && groups.size > max) {
      const { key: oldest, g: gone } = this.recency.oldest()!;
      groups.delete(oldest);
      this.recency.remove(gone);
      this.forgot?.(oldest);
      this.evictedGroups++;
      // A raised alert must not stay open forever upstream: the group's state is gone, so say so.
      if (gone.active) this.evictedClears.push(this.emit(oldest, gone, 'cleared', input.time, null, { score: 0, anomalous: false, kind: 'evicted' }));
    }
    return e;
  }

  /**
   * `cleared` alerts (kind `evicted`, value null, time of the event that caused the eviction) for
   * groups that were raised when the group limit (`maxGroups`) evicted them. Call after `process`.
   */
  takeEvictedClears(): AlertEmission[] {
    if (this.evictedClears.length === 0) return NO_ALERTS;
    const out = this.evictedClears;
    this.evictedClears = [];
    return out;
  }

  private evictedClears: AlertEmission[] = [];

  /**
   * Ends every active alert with a `cleared` of the given kind (value null, score 0, at `time`): the
   * rule is removed, or changed so that its state cannot carry on. Without it the cloud would hold a
   * `raised` that no `cleared` ever follows.
   */
  clearActive(time: number, kind: string): AlertEmission[] {
    const out: AlertEmission[] = [];
    for (const [key, e] of this.state.groups as Map<string, GroupEntry>) {
      if (!e.active) continue;
      e.active = false;
      out.push(this.emit(key, e, 'cleared', time, null, { score: 0, anomalous: false, kind }));
    }
    return out;
  }

  private edge(key: string, e: GroupEntry, step: DetectorStep, time: number, value: number | null): AlertEmission | null {
    const t = this.rule.alertThreshold;
    const level = t === undefined ? step.anomalous : step.score >= t;
    if (level && !e.active) {
      const cd = this.rule.cooldownMs;
      if (e.lastRaise !== null && cd > 0 && !(time - e.lastRaise >= cd)) return null;
      e.active = true;
      e.lastRaise = e.lastRaise === null ? time : Math.max(e.lastRaise, time);
      return this.emit(key, e, 'raised', time, value, step);
    }
    if (!level && e.active) {
      e.active = false;
      return this.emit(key, e, 'cleared', time, value, step);
    }
    return null;
  }

  private emit(
    key: string,
    e: GroupEntry,
    state: 'raised' | 'cleared',
    time: number,
    value: number | null,
    step: DetectorStep,
  ): AlertEmission {
    // The sequence lives in the checkpointed group state, so a replay from the checkpoint numbers the
    // same alerts the same way (the messageId stays deterministic) while two alerts of one group at
    // one time (raised, cleared, raised within a batch) still get two ids (test/oracle/regressions.test.ts).
    const seq = e.n ?? 0;
    e.n = seq + 1;
    return {
      kind: 'alert',
      key,
      seq,
      ...(e.b !== undefined ? { born: e.b } : {}),
      group: e.group,
      state,
      time,
      value,
      score: step.score,
      detector: this.rule.detectorName,
      alertKind: step.kind ?? this.rule.detectorName,
    };
  }
}
