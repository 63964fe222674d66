import type { AlignedRows } from './alignedRows.js';
import type { WindowAggregator, WindowOperatorOptions } from '../contracts/window.js';
import type { WindowOperator } from './groupedWindowOperator.js';

/** A validation result: errors are returned, never thrown, and name the offending field (`window.hop ...`). */
export type WindowResultOf<V> = { ok: true; value: V } | { ok: false; error: string };

/** A window type's normalized spec: its `type` and its fields with every duration in milliseconds. */
export interface WindowSpecBase<K extends string = string> {
  readonly type: K;
}

/**
 * Everything eddy knows about one window type, in one place (the split of Apache Flink's WindowAssigner /
 * Trigger / WindowFunction: the assigner and the trigger are the kind's operator, the function is the
 * rule's aggregator). The registry (windowRegistry.ts) holds one per type; the rule schema, the rule
 * compiler, the engine and the output ids read a type's facts from here, never from a switch on its name,
 * so a new type is its file (operator and descriptor), its marble test and one registry line
 * (test/unit/windows/windowKindRecipe.test.ts walks through one).
 */
export interface WindowKindDescriptor<Spec extends WindowSpecBase = WindowSpecBase> {
  /** The rule's `window.type`. */
  readonly type: Spec['type'];
  /**
   * JSON Schema of the rule's `window` object for this type: the `then` of its entry in rules/schema.json's
   * `window` definition (written from the registry by scripts/generateRuleValidator.ts). It may use the
   * schema's shared definitions (`#/definitions/duration`, `bounds`, `offset`, `path`).
   */
  readonly schema: Readonly<Record<string, unknown>>;
  /** The rule's `window` (schema-valid, or not: a twin document may skip the schema) to its spec, or an error naming the field. */
  normalize(def: Readonly<Record<string, unknown>>): WindowResultOf<Spec>;
  /** Assigner and trigger: the operator that places events in windows and emits them (one file per type). */
  operator<T, S, R>(spec: Spec, aggregator: WindowAggregator<T, S, R>, options: WindowOperatorOptions): WindowOperator<T, R>;
  /** The rule's `idleTimeout` when it sets none (docs/contract.md section 5: "default: the window size"). */
  defaultIdleTimeout(spec: Spec): number;
  /**
   * Most windows one group can hold at once, open or kept for corrections, and what the rule compiler's
   * error divides by (`(size + maxLateness) / hop`); absent: 1 (the kind bounds its own state).
   * src/rules/compileRule.ts checks it against MAX_KEPT_WINDOWS.
   */
  keptWindows?(spec: Spec, maxLateness: number): { readonly windows: number; readonly per: string };
  /**
   * What identifies a window of a group besides its revision in the messageId (docs/contract.md section
   * 4, src/rules/outputMessage.ts summaryMessageId): its `start`, or also its `end` and `size` for kinds
   * whose windows can share a start (sliding, count).
   */
  readonly id: 'start' | 'start-end-size';
  /**
   * True when the operator keeps the aggregator's items beyond `add` (sliding buffers events, count
   * windows hand one item to several windows): the engine then builds a fresh item per event instead of
   * reusing one (src/rules/engine.ts aggregateRuntime).
   */
  readonly retainsItems: boolean;
  /**
   * Which bound a row's `{window: "end"}` column (ASA's System.Timestamp()) reads: the window's `end`
   * (default), its `start` for a kind whose windows are one instant held as `[t, t + 1)` (snapshot), or
   * `end - 1` (`last`) for a kind whose window at `p` is held as `[p - size + 1, p + 1)` (sliding).
   */
  readonly timestampAt?: 'start' | 'last';
  /**
   * The key sessions of this spec are computed over, apart from groupBy (docs/asa-migration.md,
   * "Design: sessions over a partition key"); undefined: the groupBy key. The rule compiler checks it
   * against groupBy and the engine keys the operator's groups by it.
   */
  partitionBy?(spec: Spec): readonly string[] | undefined;
  /**
   * Present when this kind's rows can feed another rule (`from`, docs/rules.md "Rules over the rows of a
   * rule"): its windows have a point after which no event changes them (the watermark past `end +
   * maxLateness`), and the returned `shift` is what its half-open bounds exceed the reported ones by
   * (windowBounds.ts). Absent: a window's end moves with its events (session, sliding) and rows never
   * become final at a known point, so src/rules/compileRule.ts refuses it as an upstream.
   */
  feedsRules?(spec: Spec): { readonly shift: number };
  /**
   * Present when the kind's common event has a placement a rule's own step can do (src/rules/hotWindowStep.ts):
   * the source of that placement (alignedWindows.ts `alignedHotPlace` says what it may use and must do).
   * Absent: every event takes the operator's general path.
   */
  hotPlace?(spec: Spec): string;
  /**
   * Present when the kind can keep its groups' newest windows in rows for a rule's own step
   * (alignedRows.ts): the rows of one rule whose packed state has `slots` slots, and the source of the
   * step's placement on them (alignedRows.ts `alignedRowPlace` says what it may use and must do); null
   * for a spec it does not cover.
   */
  hotRows?(spec: Spec, maxLateness: number, slots: number): { readonly rows: AlignedRows; readonly place: string } | null;
}

/** Identity with the descriptor's spec type inferred from `normalize` (keeps each kind's file free of casts). */
export function defineWindowKind<Spec extends WindowSpecBase>(d: WindowKindDescriptor<Spec>): WindowKindDescriptor<Spec> {
  return d;
}
