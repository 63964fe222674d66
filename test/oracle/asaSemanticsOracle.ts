/**
 * An oracle for a small family of Azure Stream Analytics queries, written from Microsoft's ASA query
 * language reference alone (it imports nothing from src/). Each rule it encodes cites its page.
 *
 * The family: `SELECT [key,] System.Timestamp() AS WindowEnd, <aggregates>, [CASE column]
 * INTO out FROM telemetry TIMESTAMP BY ts [WHERE w] GROUP BY [key,] <Tumbling|Hopping>Window(... [Offset])
 * [HAVING h]`, the key a body field `dev` or `IoTHub.ConnectionDeviceId`, over events whose fields are
 * numbers, JSON null, missing, strings, booleans or records.
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
  /** Only COUNT(DISTINCT tag) reads it: strings, numbers, booleans, null or missing. */
  readonly tag?: unknown;
  /** The sending device (edgeHub's connection device id), what `IoTHub.ConnectionDeviceId` reads. */
  readonly conn: string;
}

/** Sizes, hops and offsets in ms; `offset` 0 is a window without Offset. */
export type WindowSpec =
  | { readonly kind: 'tumbling'; readonly size: number; readonly offset: number }
  | { readonly kind: 'hopping'; readonly size: number; readonly hop: number; readonly offset: number }
  | { readonly kind: 'sliding'; readonly size: number };

/** A condition over one event (WHERE), in SQL's three-valued logic. */
export type Cond =
  | { readonly op: 'cmp'; readonly field: 'y'; readonly rel: '>' | '<=' | '='; readonly value: number }
  | { readonly op: 'streq'; readonly field: 's'; readonly neg: boolean; readonly value: string }
  | { readonly op: 'isnull'; readonly field: 'y' | 'x'; readonly neg: boolean }
  /** `y * 2 - 1 > value` */
  | { readonly op: 'arith'; readonly value: number }
  /** `CASE WHEN s = 'on' THEN y ELSE 0 END > value` */
  | { readonly op: 'caseOn'; readonly value: number }
  | { readonly op: 'not'; readonly a: Cond }
  | { readonly op: 'and' | 'or'; readonly a: Cond; readonly b: Cond };

/** A HAVING condition over the group's aggregates. */
export type Having =
  | { readonly op: 'countAtLeast'; readonly k: number }
  | { readonly op: 'avgAbove'; readonly value: number }
  | { readonly op: 'rangeAtLeast'; readonly value: number }
  /** `AVG(x) IS NULL OR COUNT(*) > k` */
  | { readonly op: 'noAvgOrCount'; readonly k: number }
  /** `NOT (AVG(x) > value)` */
  | { readonly op: 'notAvgAbove'; readonly value: number };

export interface QuerySpec {
  readonly window: WindowSpec;
  /** GROUP BY the body field `dev`, the sending device (`IoTHub.ConnectionDeviceId`), or the window alone. */
  readonly group: 'dev' | 'conn' | null;
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
    case 'arith': return `y * 2 - 1 > ${c.value}`;
    case 'caseOn': return `CASE WHEN s = 'on' THEN y ELSE 0 END > ${c.value}`;
    case 'not': return `NOT (${condText(c.a)})`;
    default: return `(${condText(c.a)}) ${c.op.toUpperCase()} (${condText(c.b)})`;
  }
}

function havingText(h: Having): string {
  switch (h.op) {
    case 'countAtLeast': return `COUNT(*) >= ${h.k}`;
    case 'avgAbove': return `AVG(x) > ${h.value}`;
    case 'noAvgOrCount': return `AVG(x) IS NULL OR COUNT(*) > ${h.k}`;
    case 'notAvgAbove': return `NOT (AVG(x) > ${h.value})`;
    default: return `MAX(x) - MIN(x) >= ${h.value}`;
  }
}

/** The query text of `q`, as a user writes it. */
export function queryText(q: QuerySpec): string {
  const w = q.window;
  const off = w.kind === 'sliding' || w.offset === 0 ? '' : `, Offset(millisecond, ${w.offset})`;
  const win = w.kind === 'sliding' ? `SlidingWindow(second, ${sec(w.size)})` : w.kind === 'tumbling'
    ? (off === '' ? `TumblingWindow(second, ${sec(w.size)})` : `TumblingWindow(Duration(second, ${sec(w.size)})${off})`)
    : (off === '' ? `HoppingWindow(second, ${sec(w.size)}, ${sec(w.hop)})` : `HoppingWindow(Duration(second, ${sec(w.size)}), Hop(second, ${sec(w.hop)})${off})`);
  const key = q.group === 'dev' ? 'dev' : q.group === 'conn' ? 'IoTHub.ConnectionDeviceId' : null;
  const cols = [
    ...(key === null ? [] : [key]),
    'System.Timestamp() AS WindowEnd', 'COUNT(*) AS n', 'COUNT(c) AS nc', 'COUNT(x) AS nx', 'COUNT(DISTINCT x) AS dx', 'COUNT(DISTINCT tag) AS dt',
    'AVG(x) AS a', 'SUM(x) AS total', 'MIN(x) AS lo', 'MAX(x) AS hi',
    'STDEV(x) AS sd', 'STDEVP(x) AS sdp', 'VAR(x) AS v', 'VARP(x) AS vp',
    'MAX(x) - MIN(x) AS spread', 'AVG(x) * 2 + 1 AS a2',
    ...(q.caseAt === null ? [] : [`CASE WHEN AVG(x) IS NULL THEN 'none' WHEN AVG(x) > ${q.caseAt} THEN 'hi' ELSE 'lo' END AS lvl`]),
  ];
  return [
    `SELECT ${cols.join(', ')}`,
    'INTO out FROM telemetry TIMESTAMP BY ts',
    ...(q.where === null ? [] : [`WHERE ${condText(q.where)}`]),
    `GROUP BY ${key === null ? '' : `${key}, `}${win}`,
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
    case 'arith': {
      // Arithmetic over NULL is NULL, and so is the comparison.
      const v = e.y;
      return isNull(v) ? null : (v as number) * 2 - 1 > c.value;
    }
    case 'caseOn': {
      // CASE (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics): `s = 'on'`
      // with a NULL s is not TRUE, so the ELSE's 0; a NULL y in the THEN makes the comparison unknown.
      const v = truth({ op: 'streq', field: 's', neg: false, value: 'on' }, e) === true ? e.y : 0;
      return isNull(v) ? null : (v as number) > c.value;
    }
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
 * windows of `size`, each moving forward by the hop "relative to the previous one", with the same bounds.
 * The pages do not name the windows' origin: docs/asa-migration.md "window alignment" does (windows start
 * on multiples of the hop since the Unix epoch, so for a hop that divides the size their ends are on
 * multiples of it too, ASA's round clock times; with `HoppingWindow(second, 10, 3)` they end at :01, :04,
 * ...). An Offset moves every window's bounds by it: "The Offset parameter can be used to change this
 * behavior and include the events in the beginning of the window and exclude the ones that happened in
 * the end", the tumbling page's example being `Offset(millisecond, -1)`.
 */
export function windowEnds(w: Exclude<WindowSpec, { kind: 'sliding' }>, ts: number): number[] {
  const hop = w.kind === 'tumbling' ? w.size : w.hop;
  const ends: number[] = [];
  // Window k holds (k·hop + offset, k·hop + offset + size].
  for (let k = Math.ceil((ts - w.size - w.offset) / hop); k * hop + w.offset < ts; k++) ends.push(k * hop + w.offset + w.size);
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
   * MIN, MAX, STDEV*, VAR*) is a string or boolean is in none of the rule's aggregates, COUNT(DISTINCT x)
   * included: it shares `x` with AVG (row `COUNT(DISTINCT x)`: only an argument no number aggregate
   * uses takes strings and booleans, as `tag` here).
   */
  readonly rejectNonNumeric: boolean;
  /**
   * An event without the GROUP BY field is rejected for the rule, as an eddy rule without `nulls: "skip"`
   * does (docs/rules.md "Nulls"). Off for eddy's compiled queries: ASA reads the field as NULL and puts the
   * event in the NULL group (docs/asa-migration.md row `GROUP BY` a body field); on, it shows that the
   * seeds' events without `dev` decide some rows.
   */
  readonly rejectMissingGroup: boolean;
  /** "a boolean `x` compared with a number rejects the event as `not-a-number`" (row `CASE`). */
  readonly rejectBoolVsNumber: boolean;
}

export const EDDY_DOCUMENTED: Documented = { rejectNonNumeric: true, rejectMissingGroup: false, rejectBoolVsNumber: true };

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
  // Arithmetic over aggregates (`MAX(x) - MIN(x)`, `AVG(x) * 2 + 1`) is NULL when one of them is.
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
    // "unique non-null values" of "an expression of any type": 3 and '3' differ; a Set's SameValueZero makes -0 equal 0, as SQL's =.
    dt: new Set(es.map((e) => e.tag).filter((v) => !isNull(v))).size,
    a: mean,
    total: n === 0 ? null : sum,
    lo: n === 0 ? null : Math.min(...xs),
    hi: n === 0 ? null : Math.max(...xs),
    sd: n < 2 ? null : Math.sqrt(ss / (n - 1)),
    sdp: n === 0 ? null : Math.sqrt(ss / n),
    v: n < 2 ? null : ss / (n - 1),
    vp: n === 0 ? null : ss / n,
    spread: n === 0 ? null : Math.max(...xs) - Math.min(...xs),
    a2: mean === null ? null : mean * 2 + 1,
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
    case 'noAvgOrCount': return r.a === null || (r.n as number) > h.k;
    // NOT of an unknown comparison is unknown: the group is not returned.
    case 'notAvgAbove': return r.a !== null && !((r.a as number) > h.value);
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
 * The rows ASA sends for `q` over `events`, keyed by `group|WindowEnd` (group `*` without a GROUP BY key).
 * GROUP BY (https://learn.microsoft.com/stream-analytics-query/group-by-azure-stream-analytics): one row per
 * group of the window's events that passed WHERE; a window without such events has no row. NULL group
 * values form one group (SQL's GROUP BY). WHERE is applied to each event before grouping.
 */
export function asaRows(q: QuerySpec, events: readonly AsaEvent[], doc: Documented = EDDY_DOCUMENTED): Map<string, Row> {
  const groups = new Map<string, AsaEvent[]>();
  const add = (k: string, e: AsaEvent): void => {
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [e]);
    else g.push(e);
  };
  const kept = new Map<string, AsaEvent[]>();
  for (const e of events) {
    if (doc.rejectMissingGroup && q.group === 'dev' && e.dev === undefined) continue;
    if (doc.rejectNonNumeric && !isNull(e.x) && typeof e.x !== 'number') continue;
    if (q.where !== null && truth(q.where, e) !== true) continue;
    const dev = q.group === 'dev' ? (e.dev ?? null) : q.group === 'conn' ? e.conn : '*';
    if (q.window.kind === 'sliding') {
      const g = kept.get(String(dev));
      if (g === undefined) kept.set(String(dev), [e]);
      else g.push(e);
    } else {
      for (const end of windowEnds(q.window, e.ts)) add(`${String(dev)}|${iso7(end)}`, e);
    }
  }
  /*
   * Sliding (https://learn.microsoft.com/stream-analytics-query/sliding-window-azure-stream-analytics): ASA
   * "outputs events only for those points in time when the content of the window actually changes, in
   * other words when an event entered or exits the window": at each event's time `t` (it enters) and at
   * `t + size` (it has left, the window `(T - size, T]` being end-inclusive and start-exclusive as the
   * other windows), for each group, when the window then holds events (GROUP BY gives no row for none).
   */
  if (q.window.kind === 'sliding') {
    const size = q.window.size;
    for (const [dev, es] of kept) {
      const times = [...new Set(es.flatMap((e) => [e.ts, e.ts + size]))];
      for (const t of times) for (const e of es) if (t - size < e.ts && e.ts <= t) add(`${dev}|${iso7(t)}`, e);
    }
  }
  const rows = new Map<string, Row>();
  for (const [k, es] of groups) {
    const [dev, end] = k.split('|') as [string, string];
    const agg = aggregates(es);
    if (q.having !== null && !havingHolds(q.having, agg)) continue;
    const row: Row = {
      ...(q.group === 'dev' ? { dev: es[0]!.dev ?? null } : q.group === 'conn' ? { ConnectionDeviceId: es[0]!.conn } : {}),
      WindowEnd: end,
      ...agg,
      ...(q.caseAt === null ? {} : { lvl: caseValue(q.caseAt, agg) }),
    };
    rows.set(`${dev}|${end}`, row);
  }
  return rows;
}

/**
 * A statement without GROUP BY: `SELECT dev, x, c AS cc, y * 2 AS y2, CASE WHEN y > caseAt THEN 'hi' WHEN
 * y IS NULL THEN NULL ELSE y END AS lvl, CASE c WHEN 'on' THEN 1 WHEN 3 THEN 2 ELSE 0 END AS kc,
 * System.Timestamp() AS t INTO out FROM telemetry TIMESTAMP BY ts [WHERE w]`.
 */
export interface PassSpec {
  readonly where: Cond | null;
  readonly caseAt: number;
}

export function passText(q: PassSpec): string {
  return [
    `SELECT dev, x, c AS cc, y * 2 AS y2, CASE WHEN y > ${q.caseAt} THEN 'hi' WHEN y IS NULL THEN NULL ELSE y END AS lvl,`,
    "  CASE c WHEN 'on' THEN 1 WHEN 3 THEN 2 ELSE 0 END AS kc, System.Timestamp() AS t",
    'INTO out FROM telemetry TIMESTAMP BY ts',
    ...(q.where === null ? [] : [`WHERE ${condText(q.where)}`]),
  ].join('\n');
}

/**
 * The rows of a `PassSpec` statement, in event order: one per event whose WHERE is TRUE (WHERE reference
 * above). A selected field is the event's value of whatever type, NULL when the event lacks it ("it is
 * records that have a type and not columns", data types page); arithmetic over NULL is NULL; CASE gives the
 * first WHEN that is TRUE (`y > k` with a NULL y is not) or the ELSE; System.Timestamp() of a statement
 * without a window is the event's time (https://learn.microsoft.com/stream-analytics-query/system-timestamp-stream-analytics).
 * The simple CASE compares `c` with each WHEN in turn, and "The types of the when_expressions do not
 * necessarily have to match" (CASE page): a `c` of another type is unequal, a NULL `c` is no WHEN's.
 */
export function passRows(q: PassSpec, events: readonly AsaEvent[], doc: Documented = EDDY_DOCUMENTED): Row[] {
  const rows: Row[] = [];
  for (const e of events) {
    if (q.where !== null && truth(q.where, e) !== true) continue;
    // docs/asa-migration.md, CASE row: "a boolean `x` compared with a number rejects the event".
    if (doc.rejectBoolVsNumber && typeof e.c === 'boolean') continue;
    const y = isNull(e.y) ? null : (e.y as number);
    rows.push({
      dev: e.dev ?? null,
      x: e.x ?? null,
      cc: e.c ?? null,
      y2: y === null ? null : y * 2,
      lvl: y !== null && y > q.caseAt ? 'hi' : y === null ? null : y,
      kc: e.c === 'on' ? 1 : e.c === 3 ? 2 : 0,
      t: iso7(e.ts),
    });
  }
  return rows;
}
