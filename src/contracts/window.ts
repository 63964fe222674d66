import type { SchedulerLike } from 'rxjs';
import type { WindowType } from './rule.js';

/** Group values as printed in outputs: `{"deviceId":"dev1","machine.type":"A"}`. */
export type GroupValues = Readonly<Record<string, string | number | boolean | null>>;

/** One element entering a window operator: already filtered by `where`, grouped and time-stamped. */
export interface WindowInput<T> {
  /** Event time, ms since epoch. */
  readonly time: number;
  /** Canonical group key (a string; equal groups give equal keys). */
  readonly key: string;
  readonly group: GroupValues;
  /** What the aggregator adds: for aggregate rules, the tuple of evaluated aggregate arguments. */
  readonly item: T;
  /**
   * Processing time of arrival, when the caller already read its clock (the engine reads it once per
   * message, not once per rule and event). Absent: the operator reads `scheduler.now()`.
   */
  readonly seen?: number;
}

/**
 * Incremental aggregation of one window. `S` must be plain JSON (numbers, strings, booleans, null,
 * arrays, plain objects; no NaN/Infinity, Map or Set) so window state can be checkpointed to SQLite
 * and restored after a crash (docs/contract.md section 8).
 */
export interface WindowAggregator<T, S, R> {
  init(): S;
  /** Mutates `state`. `time` is the event time (for first/last). Must not throw for items it was built for. */
  add(state: S, item: T, time: number): void;
  result(state: S): R;
  /**
   * Optional: empties `state` in place, to what `init()` returns, so a window kind can reuse a purged
   * window's state; false when this state cannot be (e.g. restored in an older shape: the kind then
   * calls `init`). Aggregators that have it must not let `result` values share objects with `state`.
   */
  reset?(state: S): boolean;
}

/** Bounds as they appear in a summary: time windows `start <= t < end`; count windows first/last event time and `size`. */
export interface WindowBounds {
  readonly type: WindowType;
  readonly start: number;
  readonly end: number;
  readonly size?: number;
  /**
   * Count windows: how many windows of the group right before this one had the same bounds (absent:
   * none). Part of the messageId only, not of the summary body.
   */
  readonly repeat?: number;
}

/** A closed (or corrected) window. */
export interface WindowResult<R> {
  readonly kind: 'window';
  readonly key: string;
  readonly group: GroupValues;
  readonly window: WindowBounds;
  readonly count: number;
  readonly value: R;
  /** 0 for the first emission, +1 for each correction by late events within maxLateness. */
  readonly revision: number;
}

/** An input the operator could not place, as data (counted by the caller). */
export interface WindowDrop {
  readonly kind: 'drop';
  /**
   * `too-late`: past maxLateness after its window was emitted. `aggregate-error`: the aggregator threw
   * (counted, the stream goes on). `evicted`: it falls into a window of a group that was evicted at
   * `maxGroups` after that window went out (provisionally): its state is gone, and reopening the window
   * at revision 0 would reuse a messageId for a different body (docs/contract.md section 5).
   */
  readonly reason: 'too-late' | 'aggregate-error' | 'evicted';
  readonly key: string;
  readonly time: number;
}

/** A deleted group's watermark, and the event time below which its emitted windows lie (`NO_TIME`: none). */
export interface Tombstone {
  readonly wm: number;
  readonly floor: number;
}

export type WindowEmission<R> = WindowResult<R> | WindowDrop;

/**
 * The state of one window operator, owned by the caller so that it can be checkpointed and so that a
 * rule whose definition did not change keeps its open windows across a hot reload (the new operator
 * instance is given the old container). Values in `groups` are plain JSON.
 */
export interface WindowState {
  readonly groups: Map<string, unknown>;
  /** Counters the operator keeps up to date (created by the operator when absent). */
  stats?: { evictedGroups: number };
  /**
   * What is left of groups the operator deleted (evicted at `maxGroups`, or idle with nothing that can
   * still change), by group key: enough to keep an event from reopening an emitted window at revision 0
   * (created by the operator; bounded: see groupedWindowOperator.ts).
   */
  tombstones?: Map<string, Tombstone>;
}

export interface WindowOperatorOptions {
  /** Watermark per group = max event time - maxLateness (ms). */
  readonly maxLateness: number;
  /** Processing time (ms) after a group's last arrival when its open windows are emitted anyway. */
  readonly idleTimeout: number;
  /** Drives processing time (`now()`) and idle timers. Tests pass a TestScheduler. */
  readonly scheduler: SchedulerLike;
  /** State container; a fresh one is used when absent. */
  readonly state?: WindowState;
  /** Bound on live groups (rule `maxGroups`, default 100,000): past it the least recently seen group is closed and removed. */
  readonly maxGroups?: number;
}
