/**
 * An oracle for LAG written from Azure Stream Analytics' LAG reference alone
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics), as a plain loop over
 * every earlier event. It shares no code with src/ (the differential test, lagDifferential.test.ts, is
 * only worth something if the two cannot share a mistake) and keeps no state between events: for each
 * event it looks at the whole history again.
 *
 * What it implements, quoted from the reference:
 *  - "LAG isn't affected by predicates in the WHERE clause [...] because it's evaluated before those
 *    clauses": every event of the input is history, whatever the statement's WHERE says.
 *  - "The PARTITION BY <partition key> clause requests that only the events whose value of <partition
 *    key> is the same as that of the current event are considered."
 *  - offset: "The number of events back from the current event from which to obtain a value [...]
 *    Events are processed in temporal order. If there are several events with the same time stamp
 *    events are processed in the order of arrival" (the input here is in temporal order).
 *  - default: returned when there is no event at the offset: "1) if the number of corresponding events
 *    seen [is less] than the specified offset or 2) if the event at the specified offset is timed out
 *    according the specified limit_duration_clause 3) events exist but not match boolean condition
 *    specified in the when_clause"; "If the event at the specified offset exists and the value of
 *    scalar_expression is NULL, then NULL is returned"; "If a default value is not specified, NULL is
 *    returned".
 *  - The page does not say whether an event exactly LIMIT DURATION older is timed out. eddy reads it as
 *    ASA's sliding window does, (t - duration, t] (docs/rules.md "LAG"): timed out when
 *    `t - t_prev >= duration`. The random inputs hit that bound on purpose.
 */

export interface OracleEvent {
  readonly t: number;
  readonly body: Record<string, unknown>;
}

export interface OracleLag {
  /**
   * The value of scalar_expression on an event; null for SQL's NULL (a missing field). For `LAG(*)`,
   * "the entire event according to the specified offset" (the event's body).
   */
  readonly value: (e: OracleEvent) => unknown;
  readonly offset: number;
  /**
   * The default: a constant, or (ASA: "default can be a column, subquery, or other expression") the
   * value of an expression, which can only be of the current event since there is no event at the offset.
   */
  readonly dflt: unknown;
  readonly dfltOf?: (cur: OracleEvent) => unknown;
  readonly durationMs: number;
  /** WHEN on an event: true, false or null (NULL is not true). Absent: every event. */
  readonly when?: (e: OracleEvent) => boolean | null;
  readonly partition: (e: OracleEvent) => unknown;
}

/** LAG's value for each event of `events` (in temporal order). */
export function oracleLag(events: readonly OracleEvent[], lag: OracleLag): unknown[] {
  return events.map((cur, i) => {
    const key = JSON.stringify(lag.partition(cur) ?? null);
    const matching: OracleEvent[] = [];
    for (let j = 0; j < i; j++) {
      const prev = events[j]!;
      if (JSON.stringify(lag.partition(prev) ?? null) !== key) continue;
      if (lag.when !== undefined && lag.when(prev) !== true) continue;
      matching.push(prev);
    }
    const dflt = lag.dfltOf === undefined ? lag.dflt : (lag.dfltOf(cur) ?? null);
    if (matching.length < lag.offset) return dflt;
    const at = matching[matching.length - lag.offset]!;
    if (cur.t - at.t >= lag.durationMs) return dflt;
    const v = lag.value(at);
    return v === undefined ? null : v;
  });
}
