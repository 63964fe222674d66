/**
 * Rule documents as users write them (docs/contract.md section 5). Validation lives in src/config;
 * these are the shapes after JSON Schema validation succeeded.
 */

/** `"250ms" "30s" "5m" "1h" "1d"` or a number of milliseconds. */
export type Duration = string | number;

/**
 * A rule's `window`: `type` names a window type of src/windows/windowRegistry.ts, whose descriptor
 * (src/windows/windowKind.ts: its schema fragment in rules/schema.json and its `normalize`) defines and
 * checks the other fields, e.g. `{ type: 'hopping', size: '1m', hop: '10s' }` (docs/rules.md "Windows").
 * Open here so that a new window type is its own file and a registry line, not an edit of this contract.
 */
export interface WindowDef {
  type: WindowType;
  [field: string]: unknown;
}

/** A window type's name (`tumbling`, `hopping`, `sliding`, `session`, `count`, `snapshot`: src/windows/windowRegistry.ts). */
export type WindowType = string;

/**
 * Which events a tumbling or hopping window holds: `"[)"` (default) `start <= t < end`, `"(]"`
 * `start < t <= end` (Azure Stream Analytics' default). `offset` (ms, |offset| < size or hop) moves the
 * bounds of every window (docs/rules.md "Windows").
 */
export type WindowBoundsDef = '[)' | '(]';

interface RuleBase {
  input?: string;
  where?: string;
  /** Paths, or one comma-separated string of them (twin documents may not hold arrays). */
  groupBy?: string[] | string;
  timestamp?: string;
  maxLateness?: Duration;
  idleTimeout?: Duration;
  /** How far an event's timestamp may be ahead of its arrival (default "5m"); later: `future-timestamp`. */
  maxClockSkew?: Duration;
  output?: string;
  /** Per-rule bound on live groups (test/unit/hostile/cardinality.test.ts); default 100k. */
  maxGroups?: number;
  description?: string;
}

/**
 * One column of a row-shaped output (docs/rules.md "Rows"): a `select` value by name, a `groupBy`
 * path's value, a constant, or a window bound as ASA writes a datetime (`System.Timestamp()` of a
 * windowed row is `{ "window": "end" }`).
 */
export type RowColumn =
  | { select: string }
  | { group: string }
  | { const: string | number | boolean | null }
  | { window: 'end' | 'start' }
  /**
   * The result of the first branch whose `when` holds, else `else` (Azure Stream Analytics' CASE with
   * string or NULL results): `when` is an expression over the `select` names and the `groupBy` paths, as
   * `having`; a result is a constant or a `select` value by name.
   */
  | { case: { when: string; then: RowCaseResult }[]; else: RowCaseResult };

/** A constant value of a row column. */
export type RowConstant = string | number | boolean | null;

/**
 * A result of a row `case` column: a constant, the value of a `select` name (null when it is null), or
 * the window's value of a `groupBy` path.
 */
export type RowCaseResult = RowConstant | { select: string } | { group: string };

export interface AggregateRule extends RuleBase {
  kind: 'aggregate';
  window: WindowDef;
  select: Record<string, string>;
  having?: string;
  /**
   * When present, each output body is this flat object, column by column, instead of the summary
   * (Azure Stream Analytics' row shape: docs/asa-migration.md); `select` names not in it are computed
   * for `having` only.
   */
  row?: Record<string, RowColumn>;
  /** Bound on values kept per window for median/percentile/distinct. */
  maxValuesPerWindow?: number;
  /**
   * What an aggregate argument that is missing or JSON null does (docs/rules.md "Nulls"): `"reject"`
   * (default) rejects the event for the rule (`missing-field` / `not-a-number`); `"skip"` (Azure Stream
   * Analytics' semantics, set by the query compiler) leaves that argument out of its aggregates while
   * the event still counts in `count()`.
   */
  nulls?: 'reject' | 'skip';
  /** The rule's LAGs by name, read in `where` as `lag("name")` (docs/rules.md "LAG"). */
  lag?: Record<string, LagDef>;
  /**
   * Rule chaining (docs/rules.md "Rules over the rows of a rule"): the rule reads the final rows of
   * this aggregate rule instead of an input (src/rules/chainedRuntime.ts); absent: it reads `input`.
   */
  from?: AggregateRule;
}

export interface DetectorDef {
  type: string;
  [param: string]: unknown;
}

export interface AnomalyRule extends RuleBase {
  kind: 'anomaly';
  value: string;
  detector: DetectorDef;
  cooldown?: Duration;
  /** Alert when the detector score is at least this (detectors that score; default per detector). */
  alertThreshold?: number;
  /** The rule's LAGs by name, read in `where` and `value` as `lag("name")` (docs/rules.md "LAG"). */
  lag?: Record<string, LagDef>;
}

/**
 * A column of a select rule's row (docs/rules.md "Select rules"): an expression over the event (it may
 * read `lag("name")`), a constant, or the event time as ASA writes a datetime (`System.Timestamp()` of a
 * statement without a window).
 */
export type SelectColumn = { expr: string } | { const: string | number | boolean | null } | { eventTime: true };

/**
 * One LAG of a rule (docs/rules.md "LAG"), ASA's `LAG(value, offset, default) OVER (PARTITION BY ...
 * LIMIT DURATION(...) WHEN ...)`: the `value` of the `offset`-th previous event of the event's partition
 * that met `when`, if it is less than `duration` older than the event; `default` (null when absent) otherwise.
 */
export interface LagDef {
  /** An expression over the earlier event, or `"*"`: the whole earlier event body (ASA's `LAG(*)`). */
  value: string;
  offset?: number;
  /** A constant, or `{expr}`: an expression over the current event (ASA's non-constant default). */
  default?: string | number | boolean | null | { expr: string };
  partitionBy?: string[] | string;
  duration: Duration;
  when?: string;
}

/** A per-event rule: each event of the input that passes `where` gives one output, its `row` or its body unchanged. */
export interface SelectRule extends RuleBase {
  kind: 'select';
  /** Absent: the event's body passes through unchanged (ASA's `SELECT *`). */
  row?: Record<string, SelectColumn>;
  /** The rule's LAGs by name, read in `where` and `row` as `lag("name")`. */
  lag?: Record<string, LagDef>;
  /**
   * `"skip"`: `where` and `row` follow SQL's NULL (docs/rules.md "Nulls"; set by the query compiler): a
   * missing field reads as null, null in arithmetic is null, a null `where` drops the event, a column
   * may be a string (a CASE's result). Default `"reject"`.
   */
  nulls?: 'reject' | 'skip';
}

export type Rule = AggregateRule | AnomalyRule | SelectRule;
export type RuleSet = Record<string, Rule>;
