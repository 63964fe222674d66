import type { AlertEmission, AnomalyInput, AnomalyState, DetectorStep, DetectorType } from '../contracts/anomaly.js';
import type { GroupValues } from '../contracts/window.js';

/** One anomaly rule as the stage needs it: a validated detector and config, cooldown in ms. */
export interface AnomalyStageRule {
  readonly detector: DetectorType;
  readonly config: unknown;
  /** Least event time between two raises for one group (CONTRACT.md §5; default 0). */
  readonly cooldownMs: number;
  /** When set, the level is `score >= alertThreshold` instead of the detector's own `anomalous`. */
  readonly alertThreshold?: number;
  /** Detector name printed in alerts (`detector` field). */
  readonly detectorName: string;
  /** Bound on live groups; the least recently seen group is dropped beyond it (default unbounded). */
  readonly maxGroups?: number;
}

/** Per-group plain-JSON record kept in `AnomalyState.groups`. */
interface GroupEntry {
  d: unknown;
  active: boolean;
  lastRaise: number | null;
  group: GroupValues;
  /** Value of the stage's touch counter when this entry was last moved to the recent end. */
  at?: number;
}

/** What `process` returns: the detector's step and the edge it caused, if any. */
export interface AnomalyStageResult {
  readonly step: DetectorStep;
  readonly alert: AlertEmission | null;
  /** Set when the event was not judged: a non-finite value, or the detector threw (counted by the caller). */
  readonly rejected?: 'not-a-number' | 'detector-error';
}

const IDLE: DetectorStep = { score: 0, anomalous: false };

const NO_ALERTS: AlertEmission[] = [];

/**
 * The alert stage of one anomaly rule: runs the detector per group and turns its level into `raised` /
 * `cleared` edges. A raise is suppressed while the group's previous raise is less than `cooldownMs` of
 * event time ago; the group then stays un-alerted, so a level that lasts past the cooldown raises
 * later. Detectors with `tick` (missing) are asked on every `tick(now)`: a silent group raises there and
 * its next event clears. Never throws on data: a bad value or a throwing detector is reported in
 * `rejected` and leaves the group's alert as it was.
 */
export class AnomalyStage {
  readonly state: AnomalyState;
  /**
   * Groups dropped because the rule reached `maxGroups` (least recently seen first). A dropped group's
   * detector history is lost, and an alert it had raised is not cleared: it starts afresh if it returns.
   */
  evictedGroups = 0;

  constructor(
    private readonly rule: AnomalyStageRule,
    state?: AnomalyState,
  ) {
    this.state = state ?? { groups: new Map() };
    // Restored groups carry the recency marks of the instance that saved them: the counter resumes
    // above them, or a group used after a restore would look older than idle ones and be evicted first.
    for (const raw of this.state.groups.values()) {
      const mark = (raw as GroupEntry).at ?? 0;
      if (mark > this.touches) this.touches = mark;
    }
  }

  process(input: AnomalyInput): AnomalyStageResult {
    if (!Number.isFinite(input.value) || !Number.isFinite(input.time)) {
      return { step: IDLE, alert: null, rejected: 'not-a-number' };
    }
    const e = this.entry(input.key, input);
    let step: DetectorStep;
    try {
      step = this.rule.detector.update(this.rule.config, e.d, input.time, input.value);
    } catch {
      return { step: IDLE, alert: null, rejected: 'detector-error' };
    }
    if (!Number.isFinite(step.score)) step = { ...step, score: 0 };
    return { step, alert: this.edge(input.key, e, step, input.time, input.value) };
  }

  /** Processing-time check of every group (only detectors with `tick`, i.e. `missing`). */
  tick(now: number): AlertEmission[] {
    const tick = this.rule.detector.tick;
    if (!tick) return [];
    const out: AlertEmission[] = [];
    for (const [key, raw] of this.state.groups) {
      const e = raw as GroupEntry;
      let step: DetectorStep | null;
      try {
        step = tick.call(this.rule.detector, this.rule.config, e.d, now);
      } catch {
        continue;
      }
      if (!step) continue;
      const a = this.edge(key, e, step, now, null);
      if (a) out.push(a);
    }
    return out;
  }

  private touches = 0;

  /** `input.group` is read only for a new group (the engine builds it lazily). */
  private entry(key: string, input: AnomalyInput): GroupEntry {
    const groups = this.state.groups;
    let e = groups.get(key) as GroupEntry | undefined;
    const max = this.rule.maxGroups;
    const touch = ++this.touches;
    if (e) {
      // Map keeps insertion order: re-inserting makes it the most recently used. Doing it on every
      // event cost more than the detector (a delete leaves a tombstone, the Map rehashes): move an
      // entry only once it is in the older half ("second chance"), which keeps eviction close to LRU
      // at an amortised O(1) without the per-event delete.
      if (max !== undefined && touch - (e.at ?? 0) > groups.size >> 1) {
        groups.delete(key);
        groups.set(key, e);
        e.at = touch;
      }
      return e;
    }
    e = { d: this.rule.detector.init(this.rule.config), active: false, lastRaise: null, group: input.group, at: touch };
    groups.set(key, e);
    if (max !== undefined && groups.size > max) {
      const oldest = groups.keys().next().value as string;
      const gone = groups.get(oldest) as GroupEntry;
      groups.delete(oldest);
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
    return {
      kind: 'alert',
      key,
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
