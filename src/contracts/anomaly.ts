import type { GroupValues } from './window.js';

/** What a detector says about one event. */
export interface DetectorStep {
  /** Anomaly score in [0, 1]. */
  readonly score: number;
  /**
   * Level, not edge: true while the detector considers the series anomalous (after its own hysteresis).
   * The shared alert stage turns levels into raised/cleared alerts and applies the rule's cooldown.
   */
  readonly anomalous: boolean;
  /** What kind of anomaly, e.g. "spike", "dip", "change", "above", "below", "flatline", "missing". */
  readonly kind?: string;
}

/**
 * One detector type: a pure function of a plain-JSON state, so state can be checkpointed and kept
 * across hot reloads. O(1) or O(log history) per event, state bounded by its parameters.
 */
export interface DetectorType<C = unknown, S = unknown> {
  readonly type: string;
  /** Validates and normalises the rule's `detector` object; an error names the parameter. */
  validate(params: Readonly<Record<string, unknown>>): { ok: true; config: C } | { ok: false; error: string };
  init(config: C): S;
  /**
   * `time` is event time in ms; it may repeat or go backwards (NAB has both): never throw on that.
   * `arrival` is the processing time the event arrived, on the clock `tick` is called with (only
   * clock-driven detectors need it: comparing event time with that clock mixes two clocks).
   */
  update(config: C, state: S, time: number, value: number, arrival: number): DetectorStep;
  /** Processing-time check for detectors driven by the clock (`missing`). Called with the injected clock's now. */
  tick?(config: C, state: S, now: number): DetectorStep | null;
  /**
   * When the anomaly `tick` reports began, on the same clock (`missing`: the last arrival + timeout).
   * A raise found by a tick carries this time rather than the tick's own `now`, so its deterministic
   * messageId does not depend on when the tick happened to run: a raise repeated after a crash (the
   * checkpoint before it did not record it) gets the same id and the cloud can drop the duplicate.
   */
  tickAnomalySince?(config: C, state: S): number;
  /**
   * Parameters read only when a value is scored, never kept in the state (a threshold, a rate): a rule
   * changed only in these keeps its detectors' state and active alerts across a twin patch. Absent:
   * any parameter change starts the rule's detectors afresh.
   */
  readonly decisionParams?: readonly string[];
}

/** One value entering the anomaly stage. */
export interface AnomalyInput {
  /** Event time. */
  readonly time: number;
  /** Processing time of the event's arrival (the engine's clock; the same clock as `tick(now)`). */
  readonly arrival: number;
  readonly key: string;
  readonly group: GroupValues;
  readonly value: number;
}

/** A raised or cleared alert, before it becomes an output message. */
export interface AlertEmission {
  readonly kind: 'alert';
  readonly key: string;
  readonly group: GroupValues;
  readonly state: 'raised' | 'cleared';
  /** Event time of the event that raised or cleared it (for `missing`: the processing time it was noticed). */
  readonly time: number;
  readonly value: number | null;
  readonly score: number;
  readonly detector: string;
  readonly alertKind: string;
  /** The group's alert sequence number (0, 1, ...; checkpointed with the group): part of the messageId only. */
  readonly seq: number;
  /** When the group's state was created, on the stage's use counter (absent for older checkpoints): part of the messageId only. */
  readonly born?: number;
}

/**
 * The state of one anomaly rule's alert stage, owned by the caller (like `WindowState`) so that it is
 * checkpointed and survives a hot reload of an unchanged rule. Values in `groups` are plain JSON
 * (detector state, whether an alert is active, time of the last raise, the group values).
 */
export interface AnomalyState {
  readonly groups: Map<string, unknown>;
}
