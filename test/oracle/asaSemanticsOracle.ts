/**
 * An oracle for a small family of Azure Stream Analytics queries, written from Microsoft's ASA query
 * language reference alone (it imports nothing from src/). Each rule it encodes cites its page.
 *
 * The family: `SELECT [dev,] System.Timestamp() AS WindowEnd, <aggregates>, [CASE column]
 * INTO out FROM telemetry TIMESTAMP BY ts [WHERE w] GROUP BY [dev,] <Tumbling|Hopping>Window [HAVING h]`
 * over events whose fields are numbers, JSON null, missing, strings or booleans.
 *
 * Where eddy differs from ASA on purpose, docs/asa-migration.md says so; the oracle applies those
 * documented differences (and only those) as named switches, so a deviation that is not in the doc
 * shows up as a mismatch.
 */

/** One input event: `ts` (ms since the epoch) and the body fields; `undefined` is a field the body lacks. */
export interface AsaEvent {
  readonly ts: number;
  readonly dev?: string | null;
  readonly x?: unknown;
  readonly y?: unknown;
  readonly c?: unknown;
  readonly s?: unknown;
}

export type WindowSpec = { readonly kind: 'tumbling'; readonly size: number } | { readonly kind: 'hopping'; readonly size: number; readonly hop: number };

/** A condition over one event (WHERE), in SQL's three-valued logic. */
export type Cond =
  | { readonly op: 'cmp'; readonly field: 'y'; readonly rel: '>' | '<=' | '='; readonly value: number }
  | { readonly op: 'streq'; readonly field: 's'; readonly neg: boolean; readonly value: string }
  | { readonly op: 'isnull'; readonly field: 'y' | 'x'; readonly neg: boolean }
  | { readonly op: 'not'; readonly a: Cond }
  | { readonly op: 'and' | 'or'; readonly a: Cond; readonly b: Cond };

/** A HAVING condition over the group's aggregates. */
export type Having =
  | { readonly op: 'countAtLeast'; readonly k: number }
  | { readonly op: 'avgAbove'; readonly value: number }
  | { readonly op: 'rangeAtLeast'; readonly value: number };

export interface QuerySpec {
  readonly window: WindowSpec;
  readonly groupByDev: boolean;
  readonly where: Cond | null;
  readonly having: Having | null;
  /** `CASE WHEN AVG(x) IS NULL THEN 'none' WHEN AVG(x) > caseAt THEN 'hi' ELSE 'lo' END AS lvl`, or no such column. */
  readonly caseAt: number | null;
}

const sec = (ms: number): number => ms / 1000;

function condText(c: Cond): string {
  switch (c.op) {
    case 'cmp': return `${c.field} ${c.rel} ${c.value}`;
    case 'streq': return `${c.field} ${c.neg ? '<>' : '='} '${c.value}'`;
    case 'isnull': return `${c.field} IS ${c.neg ? 'NOT ' : ''}NULL`;
    case 'not': return `NOT (${condText(c.a)})`;
    default: return `(${condText(c.a)}) ${c.op.toUpperCase()} (${condText(c.b)})`;
  }
}

function havingText(h: Having): string {
  switch (h.op) {
    case 'countAtLeast': return `COUNT(*) >= ${h.k}`;
    case 'avgAbove': return `AVG(x) > ${h.value}`;
    default: return `MAX(x) - MIN(x) >= ${h.value}`;
  }
}

/** The query text of `q`, as a user writes it. */
export function queryText(q: QuerySpec): string {
  const w = q.window.kind === 'tumbling'
    ? `TumblingWindow(second, ${sec(q.window.size)})`
    : `HoppingWindow(second, ${sec(q.window.size)}, ${sec(q.window.hop)})`;
  const cols = [
    ...(q.groupByDev ? ['dev'] : []),
    'System.Timestamp() AS WindowEnd', 'COUNT(*) AS n', 'COUNT(c) AS nc', 'COUNT(x) AS nx', 'COUNT(DISTINCT x) AS dx',
    'AVG(x) AS a', 'SUM(x) AS total', 'MIN(x) AS lo', 'MAX(x) AS hi',
    'STDEV(x) AS sd', 'STDEVP(x) AS sdp', 'VAR(x) AS v', 'VARP(x) AS vp',
    ...(q.caseAt === null ? [] : [`CASE WHEN AVG(x) IS NULL THEN 'none' WHEN AVG(x) > ${q.caseAt} THEN 'hi' ELSE 'lo' END AS lvl`]),
  ];
  return [
    `SELECT ${cols.join(', ')}`,
    'INTO out FROM telemetry TIMESTAMP BY ts',
    ...(q.where === null ? [] : [`WHERE ${condText(q.where)}`]),
    `GROUP BY ${q.groupByDev ? 'dev, ' : ''}${w}`,
    ...(q.having === null ? [] : [`HAVING ${havingText(q.having)}`]),
  ].join('\n');
}

/*
 * Values. ASA reads JSON without a schema: "it is records that have a type and not columns. Each record
 * of a column can have a different type" (https://learn.microsoft.com/stream-analytics-query/data-types-azure-stream-analytics).
 * A field missing from an event reads as NULL, as a JSON null does (the null handling of
 * https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics applies
 * to both; docs/asa-migration.md "a field the event lacks is NULL").
 */
const isNull = (v: unknown): boolean => v === undefined || v === null;

/** SQL's three-valued truth: true, false, or null (unknown). */
type Truth = boolean | null;

/*
 * WHERE (https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics): the events for
 * which the search condition is TRUE are kept; `expression IS [ NOT ] NULL`; a comparison with NULL is
 * unknown, and NOT/AND/OR follow SQL's three-valued logic (Kleene): unknown AND false is false,
 * unknown OR true is true, NOT unknown is unknown.
 */
function truth(c: Cond, e: AsaEvent): Truth {
  switch (c.op) {
    case 'cmp': {
      const v = e[c.field];
      if (isNull(v)) return null;
      const n = v as number;
      return c.rel === '>' ? n > c.value : c.rel === '<=' ? n <= c.value : n === c.value;
    }
    case 'streq': {
      const v = e[c.field];
      if (isNull(v)) return null;
      return (v === c.value) !== c.neg;
    }
    case 'isnull': return isNull(e[c.field]) !== c.neg;
    case 'not': {
      const a = truth(c.a, e);
      return a === null ? null : !a;
    }
    case 'and': {
      const a = truth(c.a, e), b = truth(c.b, e);
      if (a === false || b === false) return false;
      return a === null || b === null ? null : true;
    }
    default: {
      const a = truth(c.a, e), b = truth(c.b, e);
      if (a === true || b === true) return true;
      return a === null || b === null ? null : false;
    }
  }
}

/**
 * The windows `ts` falls in, by their end. Tumbling (https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics):
 * "inclusive in the end of the window and exclusive in the beginning", so `ts` is in `(end - size, end]`.
 * Hopping (https://learn.microsoft.com/stream-analytics-query/hopping-window-azure-stream-analytics):
 * windows of `size` every `hop`, with the same bounds, so an event is in every window whose end is a
 * multiple of the hop with `end - size < ts <= end`. Windows are on multiples of the size (hop) since the
 * Unix epoch (docs/asa-migration.md "window alignment": the same as ASA's round clock times for the sizes
 * here, which divide a day).
 */
export function windowEnds(w: WindowSpec, ts: number): number[] {
  const hop = w.kind === 'tumbling' ? w.size : w.hop;
  const first = Math.ceil(ts / hop) * hop;
  const ends: number[] = [];
  for (let end = first; end - w.size < ts; end += hop) ends.push(end);
  return ends;
}

/**
 * System.Timestamp() of a windowed row is the window's end ("The output event has the time stamp of the
 * end of the window", https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions;
 * https://learn.microsoft.com/stream-analytics-query/system-timestamp-stream-analytics), written as ASA
 * writes a datetime to JSON, seven fractional digits.
 */
export const iso7 = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

/** The documented differences of docs/asa-migration.md the oracle applies (each a switch, so a test can name it). */
export interface Documented {
  /**
   * "a string where a number is needed rejects the event as `not-a-number` (ASA would try to convert
   * it)" (row `AVG MIN MAX SUM ...`), and a boolean too: an event whose `x` (the argument of AVG, SUM,
   * MIN, MAX, STDEV*, VAR*, COUNT(DISTINCT)) is a string or boolean is in none of the rule's aggregates.
   */
  readonly rejectNonNumeric: boolean;
  /** A GROUP BY field the event lacks rejects the event (row `GROUP BY` a body field); a JSON null is a group. */
  readonly rejectMissingGroup: boolean;
}

export const EDDY_DOCUMENTED: Documented = { rejectNonNumeric: true, rejectMissingGroup: true };

export type Row = Record<string, unknown>;

/**
 * Aggregates (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics):
 * "Except for the COUNT function, aggregate functions ignore null values". COUNT
 * (https://learn.microsoft.com/stream-analytics-query/count-azure-stream-analytics): COUNT(*) counts every
 * event "including NULL values"; COUNT(expression) "returns the number of non-null values", for "an
 * expression of any type" (a string or boolean `c` counts); COUNT(DISTINCT expression) "the number of
 * unique non-null values". AVG/SUM/MIN/MAX over no non-null value is NULL (SQL's empty aggregate).
 * STDEV (https://learn.microsoft.com/stream-analytics-query/stdev-azure-stream-analytics) and VAR are the
 * sample statistics (n - 1), NULL for fewer than two values as in T-SQL, which the reference mirrors;
 * STDEVP (https://learn.microsoft.com/stream-analytics-query/stdevp-azure-stream-analytics) and VARP the
 * population ones (n), NULL over no value. "Null values are ignored" on each of those pages.
 */
function aggregates(es: readonly AsaEvent[]): Row {
  const xs = es.map((e) => e.x).filter((v): v is number => typeof v === 'number');
  const n = xs.length;
  const sum = xs.reduce((p, q) => p + q, 0);
  const mean = n === 0 ? null : sum / n;
  const ss = mean === null ? 0 : xs.reduce((p, q) => p + (q - mean) * (q - mean), 0);
  return {
    n: es.length,
    nc: es.filter((e) => !isNull(e.c)).length,
    nx: n,
    dx: new Set(xs).size,
    a: mean,
    total: n === 0 ? null : sum,
    lo: n === 0 ? null : Math.min(...xs),
    hi: n === 0 ? null : Math.max(...xs),
    sd: n < 2 ? null : Math.sqrt(ss / (n - 1)),
    sdp: n === 0 ? null : Math.sqrt(ss / n),
    v: n < 2 ? null : ss / (n - 1),
    vp: n === 0 ? null : ss / n,
  };
}

/*
 * HAVING (https://learn.microsoft.com/stream-analytics-query/having-azure-stream-analytics): a group is
 * returned when the condition is TRUE; a comparison with a NULL aggregate is unknown, so the group is not.
 */
function havingHolds(h: Having, r: Row): boolean {
  switch (h.op) {
    case 'countAtLeast': return (r.n as number) >= h.k;
    case 'avgAbove': return r.a !== null && (r.a as number) > h.value;
    default: return r.hi !== null && r.lo !== null && (r.hi as number) - (r.lo as number) >= h.value;
  }
}

/*
 * CASE (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics): the result of the
 * first WHEN that "evaluates to TRUE", else the ELSE's; `AVG(x) > k` with a NULL average is not TRUE.
 */
function caseValue(at: number, r: Row): string {
  if (r.a === null) return 'none';
  return (r.a as number) > at ? 'hi' : 'lo';
}

/**
 * The rows ASA sends for `q` over `events`, keyed by `dev|WindowEnd` (dev `*` without GROUP BY dev).
 * GROUP BY (https://learn.microsoft.com/stream-analytics-query/group-by-azure-stream-analytics): one row per
 * group of the window's events that passed WHERE; a window without such events has no row. NULL group
 * values form one group (SQL's GROUP BY). WHERE is applied to each event before grouping.
 */
export function asaRows(q: QuerySpec, events: readonly AsaEvent[], doc: Documented = EDDY_DOCUMENTED): Map<string, Row> {
  const groups = new Map<string, AsaEvent[]>();
  for (const e of events) {
    if (doc.rejectMissingGroup && q.groupByDev && e.dev === undefined) continue;
    if (doc.rejectNonNumeric && !isNull(e.x) && typeof e.x !== 'number') continue;
    if (q.where !== null && truth(q.where, e) !== true) continue;
    const dev = q.groupByDev ? (e.dev ?? null) : '*';
    for (const end of windowEnds(q.window, e.ts)) {
      const k = `${String(dev)}|${iso7(end)}`;
      const g = groups.get(k);
      if (g === undefined) groups.set(k, [e]);
      else g.push(e);
    }
  }
  const rows = new Map<string, Row>();
  for (const [k, es] of groups) {
    const [dev, end] = k.split('|') as [string, string];
    const agg = aggregates(es);
    if (q.having !== null && !havingHolds(q.having, agg)) continue;
    const row: Row = {
      ...(q.groupByDev ? { dev: es[0]!.dev ?? null } : {}),
      WindowEnd: end,
      ...agg,
      ...(q.caseAt === null ? {} : { lvl: caseValue(q.caseAt, agg) }),
    };
    rows.set(`${dev}|${end}`, row);
  }
  return rows;
}
