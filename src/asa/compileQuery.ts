/**
 * Compiles a parsed ASA query (./parseQuery.ts) to eddy's JSON rule documents (docs/rules.md,
 * rules/schema.json): one rule per `SELECT ... INTO` statement. What eddy's rule format cannot
 * express with ASA's meaning is rejected with a "not supported yet" message naming the construct and
 * its line and column, never compiled to a rule that computes something else; the table of what
 * compiles is docs/asa-migration.md.
 *
 * ASA references (Microsoft Learn, "Stream Analytics Query Language Reference"):
 * windows https://learn.microsoft.com/stream-analytics-query/tumbling-window-azure-stream-analytics
 * (and hopping-, sliding-, snapshot-window-azure-stream-analytics), aggregates
 * https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics,
 * anomaly functions https://learn.microsoft.com/stream-analytics-query/anomalydetection-spikeanddip-azure-stream-analytics.
 */
import type { Expr, Over, Pos, Query, Select, SelectItem, WithStep } from './ast.js';
import { parseQuery, type QueryError } from './parseQuery.js';

export type RuleDoc = Record<string, unknown>;

export type CompileQueryResult = { ok: true; rules: Record<string, RuleDoc> } | { ok: false; errors: QueryError[] };

class Unsupported extends Error {
  /** `atEdge`: never at the edge; `'asa'`: ASA itself does not accept it (the reason cites ASA's reference). */
  constructor(
    readonly pos: Pos,
    readonly construct: string,
    readonly why: string,
    readonly atEdge: boolean | 'asa' = false,
  ) {
    super(`${construct} ${atEdge === 'asa' ? 'is not valid in ASA' : atEdge ? 'is not supported at the edge' : 'is not supported yet'}${why ? `: ${why}` : ''}`);
  }
}

/** Parses and compiles a whole query; every error carries line and column. */
export function compileQueryText(text: string): CompileQueryResult {
  const parsed = parseQuery(text);
  if (!parsed.ok) return parsed;
  return compileQuery(parsed.query);
}

export function compileQuery(query: Query): CompileQueryResult {
  const errors: QueryError[] = [];
  const rules: Record<string, RuleDoc> = {};
  const steps = new Map<string, WithStep>();
  for (const step of query.steps) {
    // "This name must be different from the name of any other result_set_name defined within the
    // scope of the query" (https://learn.microsoft.com/stream-analytics-query/with-azure-stream-analytics).
    if (steps.has(step.name.toLowerCase())) errors.push(at(step.pos, step.name, `WITH step "${step.name}" is defined twice: the names of WITH steps must differ`));
    else steps.set(step.name.toLowerCase(), step);
  }
  const perOutput = new Map<string, number>();
  for (const [i, st] of query.statements.entries()) {
    try {
      // "If not specified, the default output stream is "output"" (INTO reference:
      // https://learn.microsoft.com/stream-analytics-query/into-azure-stream-analytics).
      const into = st.into ?? 'output';
      const n = (perOutput.get(into) ?? 0) + 1;
      perOutput.set(into, n);
      refuseLagOverStep(st, steps, []);
      rules[ruleId(into, n)] = overStepRows(st, steps, into) ?? compileStatement(inlineSteps(overAggregateStep(st, steps), steps, []), into);
    } catch (err) {
      if (!(err instanceof Unsupported)) throw err;
      // The statement is named here: an error inside a WITH step it reads lies before its text.
      errors.push({ ...at(err.pos, err.construct, err.message), statement: i + 1 });
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rules };
}

/**
 * A statement reading a WITH step, with the step inlined: the statement reads the step's input, its
 * WHERE is the step's ANDed with its own, its TIMESTAMP BY is the step's, and each step column it
 * names is replaced by the expression the step gives that column. This is what ASA computes when the
 * step is a per-event filter and projection (each event of the input gives at most one event of the
 * step, with the step's timestamp); a step that aggregates or windows is refused, because its rows
 * would be the input of another window (an aggregate of aggregates), which an eddy rule cannot say.
 * A step read by several statements is inlined into each; a step no statement reads has no output
 * and is ignored. Positions stay those of the text: an error in an inlined expression points inside WITH.
 */
function inlineSteps(st: Select, steps: ReadonlyMap<string, WithStep>, reading: readonly string[]): Select {
  const step = steps.get(st.from.name.toLowerCase());
  if (step === undefined) return st;
  if (reading.includes(step.name.toLowerCase())) throw new Unsupported(st.from.pos, `WITH step "${step.name}" reading itself`, 'a step reads an input or another step', true);
  const src = inlineSteps(step.select, steps, [...reading, step.name.toLowerCase()]);
  checkPerEventStep(step, src);
  if (st.timestampBy !== null) throw new Unsupported(st.timestampBy.pos, `TIMESTAMP BY on WITH step "${step.name}"`, 'the events of a step keep the time of its input (put TIMESTAMP BY in the step)');
  // The step's columns by name (ASA names are case-insensitive); SELECT * passes every field on.
  const columns = new Map<string, Expr>();
  for (const item of src.items) columns.set(stepColumnName(step, item).toLowerCase(), item.expr);
  const column = (p: Extract<Expr, { k: 'path' }>): Expr => {
    if (src.star) return p;
    const col = columns.get(p.parts[0]!.toLowerCase());
    if (col === undefined) throw new Unsupported(p.pos, `column ${p.parts.join('.')}`, `WITH step "${step.name}" has no column ${p.parts[0]} (its columns: ${src.items.map((i) => stepColumnName(step, i)).join(', ')})`);
    if (p.parts.length === 1) return col;
    if (col.k === 'path') return { ...col, parts: [...col.parts, ...p.parts.slice(1)] };
    // A field of a LAG(*) column is the LAG of that field (the same OVER): the earlier event's field.
    if (col.k === 'call' && isLagStar(col)) return { ...col, args: [{ k: 'path', parts: p.parts.slice(1), pos: p.pos }, ...col.args.slice(1)] };
    throw new Unsupported(p.pos, `column ${p.parts.join('.')}`, `${p.parts[0]} is computed in WITH step "${step.name}", it has no fields`);
  };
  const sub = (e: Expr): Expr => substitute(e, step, column, (call) => lagOverStep(call, step, src, (x) => substitute(x, step, column)));
  // HAVING reads aggregates and the aliases of this statement's columns (havingExpr): only the
  // arguments of its aggregates are step columns.
  const subHaving = (e: Expr): Expr => (e.k === 'call' ? sub(e) : mapChildren(e, subHaving));
  const items = st.items.map((item) => ({
    ...item,
    // An unnamed column keeps the name the statement gives it (`SELECT dev` is `dev`), not its step expression's.
    alias: item.alias ?? (item.expr.k === 'path' && !src.star ? item.expr.parts[item.expr.parts.length - 1]! : null),
    expr: sub(item.expr),
  }));
  const ownWhere = st.where === null ? null : sub(st.where);
  const where = src.where === null ? ownWhere : ownWhere === null ? src.where : ({ k: 'bin', op: 'AND', left: src.where, right: ownWhere, pos: ownWhere.pos } as Expr);
  // `SELECT *` over a step that projects has that step's columns (over `SELECT *` steps it stays a pass-through).
  const expand = st.star && !src.star;
  return {
    ...st,
    star: expand ? false : st.star,
    items: expand ? src.items.map((item) => ({ ...item, alias: stepColumnName(step, item) })) : items,
    from: src.from,
    timestampBy: src.timestampBy,
    where,
    groupBy: st.groupBy.map((g) => (g.k === 'call' && WINDOWS.has(g.name.toUpperCase()) ? g : sub(g))),
    having: st.having === null ? null : subHaving(st.having),
  };
}

/**
 * A statement that keeps and reshapes the rows of an aggregating WITH step (`WITH agg AS (SELECT dev,
 * AVG(t) AS a ... GROUP BY dev, TumblingWindow(...)) SELECT * INTO out FROM agg WHERE a > 5`), directly
 * or through per-event steps, as that step's own statement: each row of the step gives at most one row
 * of the statement, so ASA's output is the step's rows that pass the statement's WHERE, with its
 * columns. The WHERE's conditions on aggregate columns join the step's HAVING; those on GROUP BY
 * columns (the same for every event of a group) join its WHERE; SELECT names step columns (renamed
 * with AS), constants and System.Timestamp() (a window row's time is its window end: "The output event
 * has the time stamp of the end of the window",
 * https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions). Anything else
 * (a second GROUP BY over the step's rows: an aggregate of aggregates) is left to inlineSteps, which
 * refuses it where it is.
 */
function overAggregateStep(st: Select, steps: ReadonlyMap<string, WithStep>): Select {
  if (!isPerEventReader(st)) return st;
  const src = aggregatingSource(st.from.name, steps, []);
  return src === null ? st : readRows(st, src.step, src.select);
}

/**
 * A statement that aggregates or windows again the rows of an aggregating WITH step (directly or
 * through per-event steps): an aggregate of aggregates, compiled to a rule whose `from` is the step's
 * rule (docs/rules.md "Rules over the rows of a rule"). The statement's columns name the step's row
 * columns; a row's time is its window end, as in ASA ("The output event has the time stamp of the end
 * of the window", https://learn.microsoft.com/azure/stream-analytics/stream-analytics-window-functions),
 * so the statement has no TIMESTAMP BY. Null when the statement does not read such a step that way.
 */
function overStepRows(st: Select, steps: ReadonlyMap<string, WithStep>, into: string): RuleDoc | null {
  if (isPerEventReader(st)) return null;
  const src = aggregatingSource(st.from.name, steps, []);
  // A step without a window function (an aggregate without GROUP BY window, LAG) is refused where it is, by inlineSteps.
  if (src === null || !src.select.groupBy.some((g) => g.k === 'call' && WINDOWS.has(g.name.toUpperCase()))) return null;
  const name = src.step.name;
  if (st.timestampBy !== null) throw new Unsupported(st.timestampBy.pos, `TIMESTAMP BY on WITH step "${name}"`, 'the rows of a window have its end as their time');
  const up = compileStatement(inlineSteps(src.select, steps, [name.toLowerCase()]), 'output');
  const upWindow = up.window as { type?: string } | undefined;
  const stepPos = src.select.groupBy[0]?.pos ?? src.select.pos;
  if (up.kind !== 'aggregate') throw new Unsupported(stepPos, `WITH step "${name}" read by a statement that aggregates it again`, 'only a step that aggregates over a window can feed another window');
  if (up.lag !== undefined) throw new Unsupported(stepPos, `LAG in WITH step "${name}" read by a statement that aggregates it again`, '');
  if (upWindow?.type !== 'tumbling' && upWindow?.type !== 'hopping') {
    const w = src.select.groupBy.find((g) => g.k === 'call' && WINDOWS.has(g.name.toUpperCase())) ?? src.select.groupBy[0];
    throw new Unsupported(w?.pos ?? stepPos, `a ${upWindow?.type ?? ''} window in WITH step "${name}" whose rows another statement aggregates`, 'only TumblingWindow and HoppingWindow rows feed another window (their rows are final once the watermark passes the window end plus the lateness)');
  }
  delete up.output;
  // The statement names the step's columns as ASA does (case-insensitively, `step.col` or `alias.col` too): the row's own names.
  const columns = Object.keys(up.row as Record<string, unknown>);
  const qualifiers = [st.from.name.toLowerCase(), ...(st.from.alias === null ? [] : [st.from.alias.toLowerCase()])];
  const rename = (e: Expr): Expr => {
    if (e.k === 'call' && WINDOWS.has(e.name.toUpperCase())) return e;
    if (e.k !== 'path' || isSystemTimestamp(e)) return mapChildren(e, rename);
    const parts = e.parts.length === 2 && qualifiers.includes(e.parts[0]!.toLowerCase()) ? e.parts.slice(1) : e.parts;
    const col = columns.find((c) => c.toLowerCase() === parts[0]!.toLowerCase());
    if (col === undefined || parts.length > 1) throw new Unsupported(e.pos, `column ${e.parts.join('.')}`, `WITH step "${name}" has no column ${parts.join('.')} (its columns: ${columns.join(', ')})`);
    return { ...e, parts: [col] };
  };
  const reader: Select = {
    ...st,
    items: st.items.map((i) => ({ ...i, alias: i.alias ?? (i.expr.k === 'path' && !isSystemTimestamp(i.expr) ? i.expr.parts[i.expr.parts.length - 1]! : null), expr: rename(i.expr) })),
    where: st.where === null ? null : rename(st.where),
    groupBy: st.groupBy.map(rename),
    having: st.having === null ? null : rename(st.having),
    // A placeholder input name: the rule reads the step's rows (`from`), not an input.
    from: { ...st.from, name: 'rows' },
  };
  const down = compileStatement(reader, into);
  if (down.kind !== 'aggregate') throw new Unsupported(st.pos, `${down.kind === 'anomaly' ? 'an anomaly function' : 'a statement without a window'} over the rows of WITH step "${name}"`, 'a statement over the rows of an aggregating step aggregates them over a window');
  if (down.lag !== undefined) throw new Unsupported(st.pos, `LAG over the rows of WITH step "${name}"`, '');
  delete down.input;
  return { kind: down.kind, from: up, ...Object.fromEntries(Object.entries(down).filter(([k]) => k !== 'kind')) };
}

/** No GROUP BY, HAVING, aggregate or anomaly function: a filter and projection of single rows. */
function isPerEventReader(st: Select): boolean {
  return st.groupBy.length === 0 && st.having === null && !st.items.some((i) => hasAggregateOutsideLag(i.expr) || (i.expr.k === 'call' && ANOMALY[i.expr.name.toUpperCase()] !== undefined));
}

/** The aggregating statement a step's rows come from (its per-event readers merged in), or null when it does not aggregate. */
function aggregatingSource(name: string, steps: ReadonlyMap<string, WithStep>, reading: readonly string[]): { step: WithStep; select: Select } | null {
  const step = steps.get(name.toLowerCase());
  if (step === undefined || reading.includes(name.toLowerCase())) return null;
  const sel = step.select;
  if (sel.groupBy.length > 0 || sel.having !== null || sel.items.some((i) => hasAggregateOutsideLag(i.expr))) return { step, select: sel };
  if (!isPerEventReader(sel)) return null;
  const inner = aggregatingSource(sel.from.name, steps, [...reading, name.toLowerCase()]);
  return inner === null ? null : { step, select: readRows(sel, inner.step, inner.select) };
}

/** `reader` (per event) over the rows of the aggregating `agg` (the select of `step`), as one aggregating select. */
function readRows(reader: Select, step: WithStep, agg: Select): Select {
  if (reader.timestampBy !== null) throw new Unsupported(reader.timestampBy.pos, `TIMESTAMP BY on WITH step "${step.name}"`, "the rows of a window have its end as their time");
  const columns = new Map<string, SelectItem>();
  for (const item of agg.items) {
    const name = isSystemTimestamp(item.expr) && item.alias === null ? null : stepColumnName(step, item);
    if (name !== null) columns.set(name.toLowerCase(), item);
  }
  const known = (): string => [...agg.items].map((i) => i.alias ?? (i.expr.k === 'path' ? lastName(i.expr) : describe(i.expr))).join(', ');
  const column = (p: Extract<Expr, { k: 'path' }>): SelectItem => {
    const col = p.parts.length === 1 ? columns.get(p.parts[0]!.toLowerCase()) : undefined;
    if (col === undefined) throw new Unsupported(p.pos, `column ${p.parts.join('.')}`, `WITH step "${step.name}" has no column ${p.parts.join('.')} (its columns: ${known()})`);
    return col;
  };
  // A step column in a condition: its expression (an aggregate, a GROUP BY column or a constant).
  const sub = (e: Expr): Expr => (e.k === 'path' && !isSystemTimestamp(e) ? column(e).expr : mapChildren(e, sub));
  const items: SelectItem[] = reader.star
    ? [...agg.items]
    : reader.items.map((item) => {
        const e = item.expr;
        if (e.k === 'path' && !isSystemTimestamp(e)) return { ...column(e), alias: item.alias ?? e.parts[0]!, pos: item.pos };
        if (isSystemTimestamp(e) || constantValue(e) !== undefined) return item;
        throw new Unsupported(item.pos, `column ${describe(e)} over the rows of WITH step "${step.name}"`, 'a statement reading the rows of a window selects its columns (renamed with AS), constants and System.Timestamp()');
      });
  const having: Expr[] = agg.having === null ? [] : [agg.having];
  const where: Expr[] = agg.where === null ? [] : [agg.where];
  for (const c of conjuncts(reader.where)) {
    noTimestamp(c);
    const e = sub(c);
    (hasAggregate(e) ? having : where).push(e);
  }
  const and = (xs: Expr[]): Expr | null => (xs.length === 0 ? null : xs.reduce((l, r) => ({ k: 'bin', op: 'AND', left: l, right: r, pos: r.pos }) as Expr));
  return { ...agg, star: false, items, into: reader.into, where: and(where), having: and(having), text: reader.text, pos: reader.pos };
}

/** The ANDed parts of a condition. */
function conjuncts(e: Expr | null): Expr[] {
  if (e === null) return [];
  return e.k === 'bin' && e.op === 'AND' ? [...conjuncts(e.left), ...conjuncts(e.right)] : [e];
}

/** A WITH step eddy can inline: per event (no GROUP BY, aggregate, anomaly function or System.Timestamp()). */
function checkPerEventStep(step: WithStep, src: Select): void {
  const why = `WITH step "${step.name}" is read by another statement, and eddy's rules read edgeHub inputs, not the rows of another window (an aggregate of aggregates)`;
  for (const e of [...src.items.map((i) => i.expr), src.where].filter((x): x is Expr => x !== null)) {
    notYet(withLagsNamed(e, () => 'x'));
    noTimestamp(e);
  }
  if (src.groupBy.length > 0) throw new Unsupported(src.groupBy[0]!.pos, `GROUP BY in a WITH step`, why);
  if (src.having !== null) throw new Unsupported(src.having.pos, 'HAVING in a WITH step', why);
  for (const item of src.items) {
    if (hasAggregateOutsideLag(item.expr)) throw new Unsupported(item.pos, `aggregate column ${describe(item.expr)} in a WITH step`, why);
    if (item.expr.k === 'call' && ANOMALY[item.expr.name.toUpperCase()] !== undefined) throw new Unsupported(item.pos, `${item.expr.name} in a WITH step`, 'eddy raises alerts rather than scoring rows another statement could read');
    if (item.expr.k === 'star') throw new Unsupported(item.pos, '* beside other columns', '');
  }
}

/** A step column's name: its alias, or a field's last name as ASA names it; a computed column needs AS. */
function stepColumnName(step: WithStep, item: SelectItem): string {
  if (item.alias !== null) return item.alias;
  if (item.expr.k === 'path' || isMetadataCall(item.expr)) return lastName(item.expr);
  throw new Unsupported(item.pos, `column ${describe(item.expr)} without AS in WITH step "${step.name}"`, 'name it with AS, so that the statements reading the step can name it');
}

/** `e` with every column path replaced by `path(p)` (the paths inside a window function's arguments are units, not columns). */
function substitute(e: Expr, step: WithStep, path: (p: Extract<Expr, { k: 'path' }>) => Expr, lag?: (call: Call) => Expr): Expr {
  if (e.k === 'path') return isSystemTimestamp(e) ? e : path(e);
  if (e.k === 'call' && WINDOWS.has(e.name.toUpperCase())) return e;
  if (lag !== undefined && e.k === 'call' && e.name.toUpperCase() === 'LAG') return lag(e);
  // GetMetadataPropertyValue's first argument names an input; whether ASA keeps an event's metadata
  // through a step is not documented, so the step must select it as a column.
  if (isMetadataCall(e)) throw new Unsupported(e.pos, `GetMetadataPropertyValue over WITH step "${step.name}"`, 'select the metadata as a column of the step (GetMetadataPropertyValue(input, ...) AS dev) and read that column');
  return mapChildren(e, (x) => substitute(x, step, path, lag));
}

/** `e` with `f` applied to each direct sub-expression (OVER clauses included). */
function mapChildren(e: Expr, f: (x: Expr) => Expr): Expr {
  switch (e.k) {
    case 'call': {
      const o = e.over;
      const over: Over | null = o === null ? null : { ...o, partitionBy: o.partitionBy.map(f), when: o.when === null ? null : f(o.when), orderBy: o.orderBy.map((x) => ({ ...x, expr: f(x.expr) })) };
      return { ...e, args: e.args.map(f), over };
    }
    case 'bin':
      return { ...e, left: f(e.left), right: f(e.right) };
    case 'unary':
    case 'cast':
    case 'isNull':
      return { ...e, expr: f(e.expr) };
    case 'case':
      return { ...e, operand: e.operand === null ? null : f(e.operand), whens: e.whens.map((w) => ({ when: f(w.when), then: f(w.then) })), otherwise: e.otherwise === null ? null : f(e.otherwise) };
    default:
      return e;
  }
}

function at(pos: Pos, token: string, message: string): QueryError {
  return { line: pos.line, column: pos.column, token, message };
}

/**
 * The rule id of the n-th statement writing to `into`: `<into>` for the first, `<into>_<n>` after,
 * with characters outside the rule-id pattern (`^[A-Za-z][A-Za-z0-9_-]{0,63}$`) replaced by `_` and
 * `q_` in front when it does not start with a letter. Depends only on the statement order and
 * outputs, so reordering whitespace or comments keeps every rule's state.
 */
export function ruleId(into: string, n: number): string {
  let base = into.replace(/[^A-Za-z0-9_-]/g, '_');
  if (!/^[A-Za-z]/.test(base)) base = `q_${base}`;
  const suffix = n === 1 ? '' : `_${n}`;
  return base.slice(0, 64 - suffix.length) + suffix;
}

/** ASA's time units and their abbreviations (tumbling window reference above) in milliseconds. */
const UNIT_MS: Record<string, number> = {
  day: 86_400_000, dd: 86_400_000, d: 86_400_000,
  hour: 3_600_000, hh: 3_600_000,
  minute: 60_000, mi: 60_000, n: 60_000,
  second: 1_000, ss: 1_000, s: 1_000,
  millisecond: 1, ms: 1,
};

const AGGREGATES: Record<string, string> = { AVG: 'avg', MIN: 'min', MAX: 'max', SUM: 'sum', STDEV: 'stdev', STDEVP: 'stdevp', VAR: 'var', VARP: 'varp' };
const WINDOWS = new Set(['TUMBLINGWINDOW', 'TUMBLING', 'HOPPINGWINDOW', 'HOPPING', 'SLIDINGWINDOW', 'SLIDING', 'SESSIONWINDOW', 'SESSION', 'SNAPSHOTWINDOW', 'SNAPSHOT']);
/** The percentile aggregates, written `PERCENTILE_xxx(p) OVER (ORDER BY x)` (percentileExpr). */
const PERCENTILES = new Set(['PERCENTILE_CONT', 'PERCENTILE_DISC']);
const ANOMALY: Record<string, 'spikeAndDip' | 'changePoint'> = { ANOMALYDETECTION_SPIKEANDDIP: 'spikeAndDip', ANOMALYDETECTION_CHANGEPOINT: 'changePoint' };
/** Functions the parser reads and the compiler rejects as not yet expressible in a rule. */
const NOT_YET: Record<string, string> = {
  LAG: 'LAG compiles in a statement without GROUP BY (a select rule), an anomaly function, any WHERE, an aggregate\'s argument (AVG(t - LAG(t) OVER (...))) and per-event WITH steps',
};

function compileStatement(given: Select, into: string): RuleDoc {
  const input = given.from.name;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(input)) throw new Unsupported(given.from.pos, `FROM ${input}`, 'an eddy input name is 1-64 letters, digits, _ or -');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(into)) throw new Unsupported(given.pos, `INTO ${into}`, 'an eddy output name is 1-64 letters, digits, _ or -');
  if (isPerEventStatement(given)) return compileSelectStatement(given, input, into);
  if (given.star) throw new Unsupported(given.pos, 'SELECT * with GROUP BY', 'a windowed row holds GROUP BY columns, aggregates, constants and System.Timestamp()');
  // A LAG inside an aggregate's argument (`AVG(t - LAG(t) OVER (...))`) is computed per event before
  // grouping: it becomes an entry of the rule's `lag` and the argument reads `lag("lagN")`. Named here,
  // before the checks below, so that only a LAG outside an aggregate is refused.
  const lagc = lagCollector();
  const st: Select = given.items.some((i) => i.expr.k === 'call' && ANOMALY[i.expr.name.toUpperCase()] !== undefined)
    ? given
    : { ...given, items: given.items.map((i) => ({ ...i, expr: lagsInAggregates(i.expr, lagc.name) })), having: given.having === null ? null : lagsInAggregates(given.having, lagc.name) };
  const anomalyItems = st.items.filter((i) => i.expr.k === 'call' && ANOMALY[i.expr.name.toUpperCase()] !== undefined);
  if (anomalyItems.length === 0) refuseLagOutsideAggregate(st);
  // A function eddy cannot express yet is named first (LAG compiles in WHERE, and in an anomaly statement's column).
  for (const e of [...st.items.map((i) => i.expr), st.having].filter((x): x is Expr => x !== null)) notYet(anomalyItems.length > 0 ? withLagsNamed(e, () => 'x') : e);
  if (st.where !== null) notYet(withLagsNamed(st.where, () => 'x'));
  // System.Timestamp() is the window end, a column of the row; anywhere else it is not expressible.
  for (const e of [...st.items.filter((i) => !isSystemTimestamp(i.expr)).map((i) => i.expr), st.where, st.having].filter((x): x is Expr => x !== null)) noTimestamp(e);
  if (anomalyItems.length > 0) return compileAnomalyStatement(st, input, into);

  const windows = st.groupBy.filter((g) => g.k === 'call' && WINDOWS.has(g.name.toUpperCase()));
  if (windows.length === 0) {
    throw new Unsupported(st.groupBy[0]?.pos ?? st.pos, st.groupBy.length === 0 ? 'a statement without GROUP BY window' : 'GROUP BY without a window function', 'eddy rules aggregate over a window (TumblingWindow, HoppingWindow, SlidingWindow, SessionWindow, SnapshotWindow) or run an anomaly function');
  }
  if (windows.length > 1) throw new Unsupported(windows[1]!.pos, 'two window functions in one GROUP BY', '');
  const window = compileWindow(windows[0] as Extract<Expr, { k: 'call' }>);
  const groupBy = st.groupBy.filter((g) => g !== windows[0]).map(groupPath);
  if (window.type === 'session') {
    const partitionBy = sessionPartition(windows[0] as Extract<Expr, { k: 'call' }>, groupBy);
    if (partitionBy !== undefined) window.partitionBy = partitionBy;
  }

  // The output is ASA's row (docs/rules.md "Rows"): each SELECT column in order, aggregates computed
  // in `select`, GROUP BY columns, constants and System.Timestamp() (the window end) taken as they are.
  const select: Record<string, string> = {};
  const row: Record<string, Record<string, unknown>> = {};
  const groupCols = new Set(groupBy);
  const caseColumns: (() => void)[] = [];
  const column = (item: SelectItem, name: string, col: Record<string, unknown>): void => {
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(name)) throw new Unsupported(item.pos, `column name "${name}"`, 'an eddy row column is a letter or _ then letters, digits, _ or - (use AS)');
    if (Object.keys(row).some((k) => k.toLowerCase() === name.toLowerCase())) throw new Unsupported(item.pos, `column name "${name}" twice`, 'ASA column names are case-insensitive');
    row[name] = col;
  };
  for (const item of st.items) {
    if (item.expr.k === 'path' || isMetadataCall(item.expr)) {
      const p = eventPath(item.expr);
      if (!groupCols.has(p)) throw new Unsupported(item.pos, `column ${describe(item.expr)} in the SELECT list`, 'outside an aggregate, only GROUP BY columns can be selected');
      // ASA names an unaliased column after its last name: IoTHub.ConnectionDeviceId -> ConnectionDeviceId.
      column(item, item.alias ?? lastName(item.expr), { group: p });
      continue;
    }
    if (isSystemTimestamp(item.expr)) {
      column(item, item.alias ?? defaultAlias(item.expr), { window: 'end' });
      continue;
    }
    const constant = constantValue(item.expr);
    if (constant !== undefined) {
      column(item, item.alias ?? defaultAlias(item.expr), { const: constant });
      continue;
    }
    if (item.expr.k === 'case' && isCaseColumn(item.expr)) {
      // Compiled after the other columns (its place in the row kept), so that an aggregate it shares
      // with a later column (`COUNT(*) AS n`) is read by that column's name rather than hidden twice.
      const name = item.alias ?? defaultAlias(item.expr);
      const e = item.expr;
      column(item, name, {});
      caseColumns.push(() => (row[name] = caseColumn(e, select, row, groupCols)));
      continue;
    }
    if (!hasAggregate(item.expr)) {
      throw new Unsupported(item.pos, `column ${describe(item.expr)} without an aggregate`, 'a windowed row holds GROUP BY columns, aggregates, constants and System.Timestamp(), not per-event values');
    }
    const name = item.alias ?? defaultAlias(item.expr);
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new Unsupported(item.pos, `column name "${name}"`, 'an eddy select name is a letter or _ then letters, digits or _ (use AS)');
    column(item, name, { select: name });
    select[name] = expr(item.expr, 'select');
  }
  for (const compileCase of caseColumns) compileCase();

  const rule: RuleDoc = { kind: 'aggregate', input };
  // LAG in WHERE and in aggregate arguments: the rule's `lag`, looked up for every event before the
  // WHERE (docs/rules.md "LAG").
  const { lags, eddy, unmark } = lagc;
  if (st.where) rule.where = eddy(st.where);
  if (Object.keys(lags).length > 0) rule.lag = lags;
  if (groupBy.length > 0) rule.groupBy = groupBy;
  if (st.timestampBy) rule.timestamp = timestampPath(st.timestampBy);
  rule.window = window;
  rule.select = select;
  if (st.having) rule.having = havingExpr(st.having, select, row);
  // The aggregates' arguments (the SELECT list's, HAVING's and CASE's hidden ones) read their LAGs by name.
  for (const k of Object.keys(select)) select[k] = unmark(select[k]!);
  // A row without any aggregate (`SELECT 'reset' AS command ... GROUP BY TumblingWindow(...)` with no
  // HAVING): one row per window that holds events, as ASA; eddy computes a count nobody reads.
  if (Object.keys(select).length === 0) select[hiddenName(select, row)] = 'count()';
  rule.row = row;
  rule.output = into;
  // ASA's NULL: aggregates skip null values (readsArguments), a WHERE drops an event whose condition is
  // unknown, NULL in arithmetic is NULL, a GROUP BY field the event lacks is NULL, a group of its own
  // (docs/rules.md "Nulls").
  const groupsByBody = groupBy.some((p) => p !== '$deviceId' && p !== '$moduleId');
  if (readsArguments(select) || groupsByBody || rule.where !== undefined || /\bnull\b/.test(JSON.stringify([select, rule.having ?? '']))) rule.nulls = 'skip';
  return rule;
}

/**
 * Whether a select has an aggregate over an argument (anything but `count()`): then the rule needs
 * ASA's null handling, `nulls: "skip"` (docs/rules.md "Nulls"): "Except for the COUNT function,
 * aggregate functions ignore null values"
 * (https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics), and
 * `COUNT(x)` "returns the number of non-null values"
 * (https://learn.microsoft.com/stream-analytics-query/count-azure-stream-analytics). A select of
 * `count()` alone reads no argument: the option would change nothing, so its rule goes without it.
 */
function readsArguments(select: Record<string, string>): boolean {
  return Object.values(select).some((s) => /\b(?:count|sum|avg|min|max|stdev|stdevp|var|varp|percentile|percentileDisc|distinct|topOne)\((?!\))/.test(s));
}

/**
 * A statement without GROUP BY, HAVING, aggregates or an anomaly function: one output per input event
 * (ASA's "simple pass-through" and filter/projection statements, and LAG). It compiles to a select rule
 * (docs/rules.md "Select rules").
 */
function isPerEventStatement(st: Select): boolean {
  if (st.groupBy.length > 0 || st.having !== null) return false;
  return !st.items.some((i) => (i.expr.k === 'call' && ANOMALY[i.expr.name.toUpperCase()] !== undefined) || hasAggregate(withLagsNamed(i.expr, () => 'x')));
}

/** A LAG stands in an expression as this column until its eddy text is written (`lag("lag1")`). */
const LAG_MARK = '__eddylag_';

/** `e` with each `LAG(...) OVER (...)` replaced by the column LAG_MARK + `name(call)`. */
function withLagsNamed(e: Expr, name: (call: Call) => string): Expr {
  if (e.k === 'call' && e.name.toUpperCase() === 'LAG') return { k: 'path', parts: [LAG_MARK + name(e)], pos: e.pos };
  return mapChildren(e, (x) => withLagsNamed(x, name));
}

function hasLag(e: Expr): boolean {
  let found = false;
  withLagsNamed(e, () => {
    found = true;
    return 'x';
  });
  return found;
}

/**
 * A LAG over the rows of a step that aggregates (directly or through per-event steps) would look up
 * earlier window rows, and eddy's LAG runs on events: refused. Over per-event steps a LAG compiles
 * (lagOverStep).
 */
function refuseLagOverStep(st: Select, steps: ReadonlyMap<string, WithStep>, reading: readonly string[]): void {
  const lagIn = (sel: Select): Expr | undefined => [...sel.items.map((i) => i.expr), sel.where, sel.having].find((e): e is Expr => e !== null && hasLag(e));
  // The first LAG above the step being looked at: every step below it must be per event.
  let lagAt = lagIn(st);
  let sel = st;
  while (true) {
    const step = steps.get(sel.from.name.toLowerCase());
    if (step === undefined || reading.includes(step.name.toLowerCase())) return;
    if (lagAt !== undefined && !isPerEventReader(step.select)) {
      throw new Unsupported(lagAt.pos, `LAG over the rows of WITH step "${step.name}"`, 'eddy computes LAG over events; a LAG over the rows of a window is not supported yet');
    }
    lagAt ??= lagIn(step.select);
    reading = [...reading, step.name.toLowerCase()];
    sel = step.select;
  }
}

/**
 * `LAG(...) OVER (...)` of a statement reading per-event WITH step `step` (its select inlined as `src`)
 * as a LAG over the step's input: its arguments, PARTITION BY and WHEN read the step's columns
 * (`column` substitutes them), and its WHEN also requires the step's WHERE, because the LAG's history
 * is the step's events and the step holds only the input events its WHERE keeps (ASA evaluates a LAG
 * "before" the WHERE of its own statement, https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics,
 * not before a step it reads). A step event has its input event's time, so LIMIT DURATION is unchanged.
 */
function lagOverStep(call: Call, step: WithStep, src: Select, column: (e: Expr) => Expr): Expr {
  const first = call.args[0];
  if (first?.k === 'star' && !src.star) throw new Unsupported(first.pos, `LAG(*) over WITH step "${step.name}", which selects columns`, 'the whole earlier event is known for a step that selects * only');
  const args = call.args.map((a) => (a.k === 'star' ? a : column(a)));
  const over = call.over;
  if (over === null) return { ...call, args };
  const own = over.when === null ? null : column(over.when);
  const partitionBy = over.partitionBy.map(column);
  if ([...args.slice(1), ...partitionBy].some(hasLag)) throw new Unsupported(call.pos, `LAG whose default or PARTITION BY is a column that WITH step "${step.name}" computes with LAG`, '');
  const when = src.where === null ? own : own === null ? src.where : ({ k: 'bin', op: 'AND', left: src.where, right: own, pos: own.pos } as Expr);
  if (args.length === 0) return { ...call, args };
  // A step column computed by LAG (or a LAG in the step's WHERE), read in this LAG's value or WHEN, is
  // that LAG's value for each earlier event: marked STEP_LAG, it becomes an entry the value or WHEN
  // reads as lag("lagN") (lagDef), which the rule looks up per event before remembering any.
  const value = args[0]!.k === 'star' ? args[0]! : asStepLags(args[0]!);
  return { ...call, args: [value, ...args.slice(1)], over: { ...over, partitionBy, when: when === null ? null : asStepLags(when) } };
}

/** The name a LAG from a WITH step takes inside another LAG's value or WHEN (not a name the parser reads). */
const STEP_LAG = 'LAG#step';

function asStepLags(e: Expr): Expr {
  if (e.k === 'call' && e.name.toUpperCase() === 'LAG') return { ...e, name: STEP_LAG };
  return mapChildren(e, asStepLags);
}

/** `e` with each STEP_LAG call replaced by the LAG_MARK column of its entry (`name` adds the entry). */
function stepLagsNamed(e: Expr, name: (call: Call) => string): Expr {
  if (e.k === 'call' && e.name === STEP_LAG) return { k: 'path', parts: [LAG_MARK + name({ ...e, name: 'LAG' })], pos: e.pos };
  return mapChildren(e, (x) => stepLagsNamed(x, name));
}

/**
 * A LAG left outside an aggregate in a windowed statement's columns or HAVING (those inside were named
 * by lagsInAggregates). ASA's GROUP BY "groups a selected set of rows into a set of summary rows [...]
 * One row is returned for each group. Aggregate functions in the SELECT clause's <select> list provide
 * information about each group instead of individual rows"
 * (https://learn.microsoft.com/stream-analytics-query/group-by-azure-stream-analytics), and LAG is a
 * value of one event, "evaluated before" GROUP BY
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics): a row of many events
 * has no single LAG, so, as any per-event column that is not a GROUP BY column, it must be inside an
 * aggregate. ASA's SQL rejects such a column; eddy gives no meaning of its own to it.
 */
function refuseLagOutsideAggregate(st: Select): void {
  for (const [e, place] of [...st.items.map((i) => [i.expr, 'SELECT list'] as const), [st.having, 'HAVING'] as const]) {
    if (e === null) continue;
    let found: Call | null = null;
    withLagsNamed(e, (call) => {
      found ??= call;
      return 'x';
    });
    const lag = found as Call | null;
    if (lag !== null) {
      throw new Unsupported(lag.pos, `LAG outside an aggregate in the ${place} of a statement with GROUP BY`, 'a windowed row summarizes its group, and LAG is a value of one event (computed before GROUP BY): put it inside an aggregate, e.g. AVG(t) - AVG(LAG(t) OVER (...)) or AVG(t - LAG(t) OVER (...))', 'asa');
    }
  }
}

/** `LAG(*) OVER (...)`: the whole earlier event. */
function isLagStar(e: Expr): boolean {
  return e.k === 'call' && e.name.toUpperCase() === 'LAG' && e.args[0]?.k === 'star';
}

/** An aggregate in `e` other than a LAG (which hasAggregate counts, being in NOT_YET). */
function hasAggregateOutsideLag(e: Expr): boolean {
  return hasAggregate(withLagsNamed(e, () => 'x'));
}

/**
 * A per-event statement as a select rule: WHERE as `where`, the SELECT list as `row` (`SELECT *`: no
 * row, the event's body passes through), each LAG as an entry of `lag` read as `lag("lagN")`.
 * System.Timestamp() of a statement without a window is the event's time
 * (https://learn.microsoft.com/stream-analytics-query/system-timestamp-stream-analytics), `{eventTime: true}`.
 */
function compileSelectStatement(st: Select, input: string, into: string): RuleDoc {
  for (const e of [...st.items.filter((i) => !isSystemTimestamp(i.expr)).map((i) => i.expr), st.where].filter((x): x is Expr => x !== null)) noTimestamp(e);
  const { lags, eddy } = lagCollector();
  const rule: RuleDoc = { kind: 'select', input };
  if (st.timestampBy) rule.timestamp = timestampPath(st.timestampBy);
  if (st.where) rule.where = eddy(st.where);
  if (!st.star) {
    const row: Record<string, Record<string, unknown>> = {};
    for (const item of st.items) {
      if (item.expr.k === 'star') throw new Unsupported(item.pos, '* beside other columns', '');
      const name = item.alias ?? (item.expr.k === 'path' || isMetadataCall(item.expr) ? lastName(item.expr) : defaultAlias(item.expr));
      if (!/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/.test(name)) throw new Unsupported(item.pos, `column name "${name}"`, 'an eddy row column is a letter or _ then letters, digits, _ or - (use AS)');
      if (Object.keys(row).some((k) => k.toLowerCase() === name.toLowerCase())) throw new Unsupported(item.pos, `column name "${name}" twice`, 'ASA column names are case-insensitive');
      const constant = constantValue(item.expr);
      const e = item.expr;
      // A CASE column may give strings, NULL and per-event values row by row ("THEN 'hi' ELSE t").
      const text = (): string => (e.k === 'case' ? caseExpr(e, eddy, true) : eddy(e));
      row[name] = isSystemTimestamp(e) ? { eventTime: true } : constant !== undefined ? { const: constant } : { expr: text() };
    }
    rule.row = row;
  }
  if (Object.keys(lags).length > 0) rule.lag = lags;
  rule.output = into;
  // ASA's NULL (docs/rules.md "Nulls"): a missing field reads as NULL, a comparison with it is unknown
  // (the WHERE drops the event), a column over it is written null.
  if (rule.where !== undefined || Object.values(rule.row ?? {}).some((c) => (c as Record<string, unknown>).expr !== undefined)) rule.nulls = 'skip';
  return rule;
}

/**
 * The `lag` entries of one rule and `eddy(e)`, the event expression `e` in eddy's language with each of
 * its LAGs added to `lags` (identical ones once) and read as `lag("lagN")`.
 */
function lagCollector(): { lags: Record<string, Record<string, unknown>>; eddy: (e: Expr) => string; name: (call: Call) => string; unmark: (text: string) => string } {
  const lags: Record<string, Record<string, unknown>> = {};
  const lagName = (call: Call): string => {
    const def = lagDef(call, lagName, unmark);
    const text = JSON.stringify(def);
    const known = Object.keys(lags).find((k) => JSON.stringify(lags[k]) === text);
    if (known !== undefined) return known;
    const name = `lag${Object.keys(lags).length + 1}`;
    lags[name] = def;
    return name;
  };
  const unmark = (text: string): string => text.replace(new RegExp(`${LAG_MARK}(\\w+)`, 'g'), 'lag("$1")');
  const eddy = (e: Expr): string => {
    if (JSON.stringify(e).includes(LAG_MARK)) throw new Unsupported(e.pos, `a name starting with ${LAG_MARK}`, 'eddy uses such names for LAG');
    return unmark(expr(withLagsNamed(e, lagName), 'event'));
  };
  return { lags, eddy, name: lagName, unmark };
}

/**
 * `e` with each LAG inside an aggregate's argument (PERCENTILE_CONT's and PERCENTILE_DISC's ORDER BY too) named as
 * withLagsNamed does; a LAG elsewhere stays, to be refused.
 */
function lagsInAggregates(e: Expr, name: (call: Call) => string): Expr {
  if (e.k === 'call') {
    const u = e.name.toUpperCase();
    if (AGGREGATES[u] !== undefined || u === 'COUNT' || PERCENTILES.has(u) || u === 'TOPONE') {
      if (JSON.stringify(e).includes(LAG_MARK)) throw new Unsupported(e.pos, `a name starting with ${LAG_MARK}`, 'eddy uses such names for LAG');
      return mapChildren(e, (x) => withLagsNamed(x, name));
    }
  }
  return mapChildren(e, (x) => lagsInAggregates(x, name));
}

/**
 * `LAG(x [, offset [, default]]) OVER ([PARTITION BY ...] LIMIT DURATION(unit, n) [WHEN cond])`
 * (https://learn.microsoft.com/stream-analytics-query/lag-azure-stream-analytics) as an entry of a
 * rule's `lag`. "scalar_expression cannot contain other analytic functions", nor can the default.
 */
function lagDef(call: Call, name: (call: Call) => string, unmark: (text: string) => string): Record<string, unknown> {
  const event = (e: Expr): string => unmark(expr(stepLagsNamed(e, name), 'event'));
  const [value, offset, dflt] = call.args;
  if (value === undefined || call.args.length > 3 || call.distinct) throw new Unsupported(call.pos, 'LAG arguments', 'LAG(expression [, offset [, default]])', true);
  const over = call.over;
  if (over === null || over.limitDuration === null) throw new Unsupported(call.pos, 'LAG without OVER (LIMIT DURATION(...))', 'ASA bounds LAG by LIMIT DURATION', true);
  if (over.orderBy.length > 0) throw new Unsupported(over.pos, 'ORDER BY in LAG OVER', '', true);
  for (const e of [value, dflt, over.when].filter((x): x is Expr => x !== null && x !== undefined)) {
    if (hasLag(e)) throw new Unsupported(e.pos, 'LAG inside LAG', 'its arguments cannot contain other analytic functions', true);
  }
  // LAG(*): "the entire event according to the specified offset will be returned and will be contained
  // in the result event (nested record)": eddy's whole-event value, "*".
  const def: Record<string, unknown> = { value: value.k === 'star' ? '*' : event(value) };
  if (offset !== undefined) {
    if (offset.k !== 'num' || !Number.isInteger(offset.value) || offset.value < 1) throw new Unsupported(offset.pos, `LAG offset ${describe(offset)}`, 'the offset is an integer >= 1', true);
    // A compiled rule has the default maxGroups (100,000 partitions): 100 values each keeps LAG's memory within 10 million (docs/rules.md "LAG").
    if (offset.value > 100) throw new Unsupported(offset.pos, `LAG offset ${offset.value}`, 'eddy keeps at most 100 events per partition for a query');
    if (offset.value !== 1) def.offset = offset.value;
  }
  if (dflt !== undefined) {
    const c = constantValue(dflt);
    // "default can be a column, subquery, or other expression": evaluated on the current event.
    if (value.k === 'star' && c !== null) throw new Unsupported(dflt.pos, `LAG(*) default ${describe(dflt)}`, "the default's type must be the value's, and a record default is not supported yet");
    if (c === undefined) def.default = { expr: expr(dflt, 'event') };
    else if (c !== null) def.default = c;
  }
  if (over.partitionBy.length > 0) def.partitionBy = over.partitionBy.map(groupPath);
  const ms = limitDurationMs(over);
  if (!(ms > 0) || ms > 7 * 86_400_000 || !Number.isInteger(ms)) throw new Unsupported(over.limitDuration.pos, `LIMIT DURATION of ${ms} ms`, 'eddy takes whole milliseconds, more than 0 and at most 7 days');
  def.duration = ms;
  if (over.when !== null) def.when = event(over.when);
  return def;
}

function compileAnomalyStatement(st: Select, input: string, into: string): RuleDoc {
  if (st.groupBy.length > 0) throw new Unsupported(st.groupBy[0]!.pos, 'GROUP BY with an anomaly function', 'an anomaly function runs per event, partitioned by OVER (PARTITION BY ...)');
  if (st.having) throw new Unsupported(st.having.pos, 'HAVING', 'HAVING needs GROUP BY');
  if (st.items.length !== 1) {
    const other = st.items.find((i) => !(i.expr.k === 'call' && ANOMALY[i.expr.name.toUpperCase()] !== undefined)) ?? st.items[1]!;
    throw new Unsupported(other.pos, `column ${describe(other.expr)} beside an anomaly function`, "eddy's alert has its own shape (value, score, group); the row of ASA's SELECT list is not supported yet");
  }
  const call = st.items[0]!.expr as Extract<Expr, { k: 'call' }>;
  const type = ANOMALY[call.name.toUpperCase()]!;
  // AnomalyDetection_SpikeAndDip(scalar_expression, confidence, historySize, mode) and
  // AnomalyDetection_ChangePoint(scalar_expression, confidence, historySize).
  const want = type === 'spikeAndDip' ? 4 : 3;
  if (call.args.length !== want) throw new Unsupported(call.pos, `${call.name} with ${call.args.length} arguments`, `it takes ${want}`, true);
  // LAG in the value or the WHERE: the rule's `lag` (docs/rules.md "LAG"), looked up before the WHERE.
  const { lags, eddy } = lagCollector();
  const value = eddy(stripFloatCast(call.args[0]!));
  const confidence = numberArg(call.args[1]!, `${call.name} confidence`);
  const history = numberArg(call.args[2]!, `${call.name} historySize`);
  const detector: Record<string, unknown> = { type, confidence, history };
  if (type === 'spikeAndDip') {
    const m = call.args[3]!;
    const modes: Record<string, string> = { spikes: 'spikes', dips: 'dips', spikesanddips: 'both' };
    const mode = m.k === 'str' ? modes[m.value.toLowerCase()] : undefined;
    if (mode === undefined) throw new Unsupported(m.pos, `${call.name} mode ${describe(m)}`, "the mode is 'spikes', 'dips' or 'spikesanddips'", true);
    detector.mode = mode;
  }
  const over = call.over;
  if (over === null) throw new Unsupported(call.pos, `${call.name} without OVER`, 'it needs OVER (LIMIT DURATION(...))', true);
  if (over.orderBy.length > 0) throw new Unsupported(over.pos, 'ORDER BY in an anomaly function OVER', '', true);
  if (over.limitDuration === null) throw new Unsupported(over.pos, `${call.name} OVER without LIMIT DURATION`, '', true);
  const rule: RuleDoc = { kind: 'anomaly', input };
  const where = [st.where, over.when].filter((w): w is Expr => w !== null).map((w) => eddy(w));
  if (where.length === 1) rule.where = where[0];
  if (where.length === 2) rule.where = `(${where[0]}) and (${where[1]})`;
  if (over.partitionBy.length > 0) rule.groupBy = over.partitionBy.map(groupPath);
  if (st.timestampBy) rule.timestamp = timestampPath(st.timestampBy);
  rule.value = value;
  rule.detector = detector;
  if (Object.keys(lags).length > 0) rule.lag = lags;
  rule.output = into;
  // ASA bounds the history by both historySize events and LIMIT DURATION; eddy's detector keeps the
  // last `history` events only. Said in the rule itself, so the difference is never silent.
  rule.description = `from ASA ${call.name}: LIMIT DURATION(${over.limitDuration.unit}, ${over.limitDuration.amount}) = ${limitDurationMs(over)} ms is not applied (eddy keeps the last ${history} events); eddy raises and clears alerts instead of scoring every row`;
  return rule;
}

function notYet(e: Expr): void {
  if (e.k === 'call') {
    const u = e.name.toUpperCase();
    if (NOT_YET[u] !== undefined) throw new Unsupported(e.pos, `${e.name}()`, NOT_YET[u]!);
    e.args.forEach(notYet);
  } else if (e.k === 'bin') {
    notYet(e.left);
    notYet(e.right);
  } else if (e.k === 'unary' || e.k === 'cast' || e.k === 'isNull') notYet(e.expr);
}

/** `System.Timestamp()` (or the older `System.Timestamp` without parentheses). */
function isSystemTimestamp(e: Expr): boolean {
  if (e.k === 'call') return e.name.toUpperCase() === 'SYSTEM.TIMESTAMP' && e.args.length === 0 && e.over === null;
  return e.k === 'path' && e.parts.length === 2 && e.parts.join('.').toUpperCase() === 'SYSTEM.TIMESTAMP';
}

function noTimestamp(e: Expr): void {
  if (isSystemTimestamp(e)) throw new Unsupported(e.pos, 'System.Timestamp() here', 'only as a column of the SELECT list (the window end)');
  if (e.k === 'call') e.args.forEach(noTimestamp);
  else if (e.k === 'bin') {
    noTimestamp(e.left);
    noTimestamp(e.right);
  } else if (e.k === 'unary' || e.k === 'cast' || e.k === 'isNull') noTimestamp(e.expr);
}

/** A constant SELECT column's value (`'reset'`, `1`, `-2.5`, `true`, `NULL`), or undefined. */
function constantValue(e: Expr): string | number | boolean | null | undefined {
  if (e.k === 'str' || e.k === 'num' || e.k === 'bool') return e.value;
  if (e.k === 'null') return null;
  if (e.k === 'unary' && e.op === '-' && e.expr.k === 'num') return -e.expr.value;
  return undefined;
}

function lastName(e: Expr): string {
  const p = eventPath(e);
  if (p === '$deviceId') return 'ConnectionDeviceId';
  if (p === '$moduleId') return 'ConnectionModuleId';
  return p.split('.').pop()!;
}

/** A select name for an aggregate that HAVING reads and the row does not show. */
function hiddenName(select: Record<string, string>, row: Record<string, unknown>): string {
  let i = 1;
  while (select[`_having${i}`] !== undefined || row[`_having${i}`] !== undefined) i++;
  return `_having${i}`;
}

function limitDurationMs(over: Over): number {
  const l = over.limitDuration!;
  const unit = UNIT_MS[l.unit.toLowerCase()];
  if (unit === undefined) throw new Unsupported(l.pos, `time unit "${l.unit}"`, 'use day, hour, minute, second or millisecond', true);
  return unit * l.amount;
}

/** `CAST(x AS float)` of the anomaly functions' first argument: eddy's values are numbers already (a string is rejected as not-a-number). */
function stripFloatCast(e: Expr): Expr {
  return e.k === 'cast' && (e.type === 'float' || e.type === 'bigint') ? e.expr : e;
}

function numberArg(e: Expr, what: string): number {
  if (e.k !== 'num') throw new Unsupported(e.pos, `${what} ${describe(e)}`, 'must be a number constant', true);
  return e.value;
}

type Call = Extract<Expr, { k: 'call' }>;

/** A window function as an eddy `window`: tumbling and hopping windows end-inclusive, as ASA's (see below). */
function compileWindow(w: Call): Record<string, unknown> {
  const name = w.name.toUpperCase().replace(/WINDOW$/, '');
  const args = w.args;
  const dur = (unitE: Expr, nE: Expr): number => {
    const unit = unitE.k === 'path' && unitE.parts.length === 1 ? UNIT_MS[unitE.parts[0]!.toLowerCase()] : undefined;
    if (unit === undefined) throw new Unsupported(unitE.pos, `time unit ${describe(unitE)}`, 'use day, hour, minute, second or millisecond (microsecond is finer than eddy\'s milliseconds)', true);
    if (nE.k !== 'num' || !(nE.value > 0)) throw new Unsupported(nE.pos, `window size ${describe(nE)}`, 'must be a positive number', true);
    return unit * nE.value;
  };
  /** `Fn(unit, n)` inside the window call (Duration, Hop, Offset). */
  const named = (e: Expr | undefined, fn: string): number | null => {
    if (e && e.k === 'call' && e.name.toUpperCase() === fn && e.args.length === 2) return dur(e.args[0]!, e.args[1]!);
    return null;
  };
  // ASA: "tumbling windows are inclusive in the end of the window and exclusive in the beginning"
  // (tumbling window reference above; hopping the same): eddy's `bounds: "(]"`. An Offset moves every
  // window's bounds (Offset(millisecond, -1) gives (k*size - 1, (k+1)*size - 1]): eddy's `offset`.
  const offsetMs = (e: Expr | undefined, step: number, stepName: string): number => {
    if (e === undefined) return 0;
    let ms: number | null = null;
    if (e.k === 'call' && e.name.toUpperCase() === 'OFFSET' && e.args.length === 2) ms = signedDur(e.args[0]!, e.args[1]!);
    if (ms === null) throw new Unsupported(e.pos, `${w.name} offset ${describe(e)}`, 'write Offset(unit, n)', true);
    if (!Number.isInteger(ms)) throw new Unsupported(e.pos, `${w.name} offset of ${ms} ms`, "finer than eddy's milliseconds", true);
    if (Math.abs(ms) >= step) throw new Unsupported(e.pos, `${w.name} offset of ${ms} ms`, `eddy needs |offset| < the window's ${stepName} (${step} ms)`);
    return ms;
  };
  const bounded = (win: Record<string, unknown>, offset: number): Record<string, unknown> => (offset === 0 ? { ...win, bounds: '(]' } : { ...win, bounds: '(]', offset });
  const signedDur = (unitE: Expr, nE: Expr): number | null => {
    const unit = unitE.k === 'path' && unitE.parts.length === 1 ? UNIT_MS[unitE.parts[0]!.toLowerCase()] : undefined;
    const n = nE.k === 'num' ? nE.value : nE.k === 'unary' && nE.op === '-' && nE.expr.k === 'num' ? -nE.expr.value : null;
    if (unit === undefined) throw new Unsupported(unitE.pos, `time unit ${describe(unitE)}`, 'use day, hour, minute, second or millisecond (microsecond is finer than eddy\'s milliseconds)', true);
    return n === null ? null : unit * n;
  };
  /** The bare-number offset of `TumblingWindow(unit, size, offset)`: in the window's unit. */
  const bareOffset = (unitE: Expr, nE: Expr): Expr => ({ k: 'call', name: 'Offset', args: [unitE, nE], distinct: false, over: null, pos: nE.pos });
  switch (name) {
    case 'TUMBLING': {
      if (args[0]?.k === 'call') {
        const size = named(args[0], 'DURATION');
        if (size === null || args.length > 2) throw new Unsupported(w.pos, `${w.name} arguments`, 'TumblingWindow(Duration(unit, n) [, Offset(unit, n)])', true);
        return bounded({ type: 'tumbling', size }, offsetMs(args[1], size, 'size'));
      }
      if (args.length < 2 || args.length > 3) throw new Unsupported(w.pos, `${w.name} arguments`, 'TumblingWindow(unit, n [, offset])', true);
      const size = dur(args[0]!, args[1]!);
      return bounded({ type: 'tumbling', size }, offsetMs(args.length === 3 ? bareOffset(args[0]!, args[2]!) : undefined, size, 'size'));
    }
    case 'HOPPING': {
      if (args[0]?.k === 'call') {
        const size = named(args[0], 'DURATION');
        const hop = named(args[1], 'HOP');
        if (size === null || hop === null || args.length > 3) throw new Unsupported(w.pos, `${w.name} arguments`, 'HoppingWindow(Duration(unit, n), Hop(unit, n) [, Offset(unit, n)])', true);
        return bounded({ type: 'hopping', size, hop }, offsetMs(args[2], hop, 'hop'));
      }
      if (args.length < 3 || args.length > 4) throw new Unsupported(w.pos, `${w.name} arguments`, 'HoppingWindow(unit, size, hop [, offset])', true);
      const size = dur(args[0]!, args[1]!);
      const hop = dur(args[0]!, args[2]!);
      return bounded({ type: 'hopping', size, hop }, offsetMs(args.length === 4 ? bareOffset(args[0]!, args[3]!) : undefined, hop, 'hop'));
    }
    case 'SLIDING': {
      // ASA's sliding window holds the events of (t - size, t], eddy's the same (docs/rules.md "Windows").
      const size = args[0]?.k === 'call' && args.length === 1 ? named(args[0], 'DURATION') : args.length === 2 ? dur(args[0]!, args[1]!) : null;
      if (size === null) throw new Unsupported(w.pos, `${w.name} arguments`, 'SlidingWindow(unit, n) or SlidingWindow(Duration(unit, n))', true);
      return { type: 'sliding', size };
    }
    case 'SNAPSHOT':
      if (args.length > 0) throw new Unsupported(w.pos, `${w.name} arguments`, 'SnapshotWindow() takes none', true);
      return { type: 'snapshot' };
    case 'SESSION': {
      // SessionWindow(unit, timeout, maxDuration) or SessionWindow(Timeout(unit, n), MaxDuration(unit, n))
      // (session window reference above): ASA checks the maximum duration "at t = 0, 10, 20, 30, etc.",
      // eddy's `maxSizeAt: "aligned"` (src/windows/sessionWindow.ts). OVER (PARTITION BY ...) is checked
      // against GROUP BY by the caller (sessionPartition).
      let gap: number | null;
      let maxSize: number | null;
      if (args[0]?.k === 'call') {
        gap = named(args[0], 'TIMEOUT');
        maxSize = named(args[1], 'MAXDURATION');
        if (args.length !== 2) gap = null;
      } else {
        gap = args.length === 3 ? dur(args[0]!, args[1]!) : null;
        maxSize = args.length === 3 ? dur(args[0]!, args[2]!) : null;
      }
      if (gap === null || maxSize === null) throw new Unsupported(w.pos, `${w.name} arguments`, 'SessionWindow(unit, timeout, maxDuration) or SessionWindow(Timeout(unit, n), MaxDuration(unit, n))', true);
      if (gap > maxSize) throw new Unsupported(w.pos, `${w.name} timeout longer than its maximum duration`, '', true);
      return { type: 'session', gap, maxSize, maxSizeAt: 'aligned' };
    }
    default:
      throw new Unsupported(w.pos, w.name, '', true);
  }
}

/**
 * ASA's session window (https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics):
 * the partition key is "an optional parameter that specifies the key that the session window operates
 * over"; "when a partition key is provided, the events are grouped together by the key and session window
 * is applied to each group independently", and without one the sessions are those of the whole stream,
 * each GROUP BY group in a session giving its own row. Returns the rule's `window.partitionBy`: omitted
 * when the key is the GROUP BY columns (eddy's default, one session sequence per group), `[]` without
 * OVER, the key otherwise (src/windows/partitionedSessionWindow.ts). A key outside GROUP BY is refused:
 * its rows would not name the session they come from.
 */
function sessionPartition(w: Call, groupBy: readonly string[]): string[] | undefined {
  const over = w.over;
  if (over !== null && (over.orderBy.length > 0 || over.limitDuration !== null || over.when !== null)) {
    throw new Unsupported(over.pos, `${w.name} OVER`, 'only OVER (PARTITION BY ...) is defined for a session window', true);
  }
  const keys = [...new Set((over?.partitionBy ?? []).map(groupPath))];
  const cols = new Set(groupBy);
  const stray = keys.filter((k) => !cols.has(k));
  if (stray.length > 0) {
    throw new Unsupported(over?.pos ?? w.pos, `${w.name} partitioned by [${stray.join(', ')}], not in GROUP BY [${groupBy.join(', ')}]`, 'partition a session window by GROUP BY columns');
  }
  return keys.length === cols.size ? undefined : keys;
}

function isMetadataCall(e: Expr): boolean {
  return e.k === 'call' && e.name.toUpperCase() === 'GETMETADATAPROPERTYVALUE';
}

/** An event path in eddy's notation: `$deviceId`, `$moduleId` or a dotted body path. */
function eventPath(e: Expr): string {
  if (e.k === 'call' && isMetadataCall(e)) {
    // GetMetadataPropertyValue(input, '[IoTHub].[ConnectionDeviceId]'): edgeHub's $.cdid (docs/rules.md "Fields", `groupBy`).
    const prop = e.args[1];
    const p = prop?.k === 'str' ? prop.value.replace(/[[\]]/g, '').toLowerCase() : '';
    if (e.args.length === 2 && p === 'iothub.connectiondeviceid') return '$deviceId';
    if (e.args.length === 2 && p === 'iothub.connectionmoduleid') return '$moduleId';
    throw new Unsupported(e.pos, `GetMetadataPropertyValue(${prop ? describe(prop) : ''})`, 'only [IoTHub].[ConnectionDeviceId] and [IoTHub].[ConnectionModuleId] are known at the edge', true);
  }
  if (e.k !== 'path') throw new Unsupported(e.pos, describe(e), 'expected a column');
  const joined = e.parts.join('.');
  if (joined.toLowerCase() === 'iothub.connectiondeviceid') return '$deviceId';
  if (joined.toLowerCase() === 'iothub.connectionmoduleid') return '$moduleId';
  if (e.parts[0]!.toLowerCase() === 'iothub') throw new Unsupported(e.pos, joined, 'edgeHub gives a module only the connection device and module ids', true);
  if (!e.parts.every((p) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) || e.parts.length > 16) throw new Unsupported(e.pos, `column ${joined}`, 'eddy paths are up to 16 dotted names of letters, digits and _');
  return joined;
}

function groupPath(e: Expr): string {
  return eventPath(e);
}

function timestampPath(e: Expr): string {
  if (e.k !== 'path') throw new Unsupported(e.pos, `TIMESTAMP BY ${describe(e)}`, 'eddy reads the event time from one body field (ISO 8601 or epoch ms)');
  const p = eventPath(e);
  if (p.startsWith('$')) throw new Unsupported(e.pos, `TIMESTAMP BY ${p}`, 'the event time is a body field');
  return p;
}

/** The operators a string literal may stand beside (the rest need numbers in eddy's rules). */
const STRING_OPS = new Set(['=', '<>', 'AND', 'OR']);

const BIN: Record<string, string> = { '+': '+', '-': '-', '*': '*', '/': '/', '%': '%', '=': '==', '<>': '!=', '<': '<', '>': '>', '<=': '<=', '>=': '>=', AND: 'and', OR: 'or' };

/**
 * An ASA scalar expression in eddy's expression language (docs/rules.md "Expressions"): over the
 * event (`where`, anomaly `value`) or, in `select`, with aggregates over the window's events.
 */
function expr(e: Expr, ctx: 'event' | 'select'): string {
  switch (e.k) {
    case 'num':
      return e.text;
    case 'str':
      if (/["\\]/.test(e.value)) throw new Unsupported(e.pos, `string ${describe(e)}`, 'a string with " or \\ in it');
      return JSON.stringify(e.value);
    case 'bool':
      return String(e.value);
    case 'null':
      // SQL's NULL, in a rule with `nulls: "skip"` (src/aggregate/sqlNulls.ts), which every rule with an
      // expression gets (nullsFor).
      return 'null';
    case 'star':
      throw new Unsupported(e.pos, '*', 'here');
    case 'path':
      return eventPath(e);
    case 'bin': {
      const op = BIN[e.op];
      if (op === undefined) throw new Unsupported(e.pos, `operator ${e.op}`, '', true);
      // eddy's rules compare strings with == and != only (docs/rules.md "Expressions"): a string literal
      // beside < > <= >= or arithmetic is refused here, at its position, rather than printed as a rule
      // the module refuses (test/oracle/asaSemantics.test.ts).
      const str = [e.left, e.right].find((x) => x.k === 'str');
      if (str !== undefined && !STRING_OPS.has(e.op)) throw new Unsupported(str.pos, `a string with ${e.op}`, 'eddy compares strings with = and <> only');
      return `(${expr(e.left, ctx)} ${op} ${expr(e.right, ctx)})`;
    }
    case 'unary':
      return e.op === 'NOT' ? `(not ${expr(e.expr, ctx)})` : `(${e.op}${expr(e.expr, ctx)})`;
    case 'isNull':
      // `x IS [NOT] NULL` (WHERE reference: https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics):
      // eddy's isNull(x) is true for a JSON null or a missing field (docs/rules.md "Expressions").
      return e.not ? `(not isNull(${expr(e.expr, ctx)}))` : `isNull(${expr(e.expr, ctx)})`;
    case 'cast':
      return expr(floatCast(e), ctx);
    case 'case':
      return caseExpr(e, (x) => expr(x, ctx));
    case 'call':
      return callExpr(e, ctx);
  }
}

/**
 * `CAST(x AS float)`: x itself. eddy's values are numbers already; a string ASA would convert is
 * rejected as `not-a-number` (docs/asa-migration.md). Other target types are refused.
 */
function floatCast(e: Extract<Expr, { k: 'cast' }>): Expr {
  if (e.type.toLowerCase() !== 'float') throw new Unsupported(e.pos, `CAST(... AS ${e.type})`, "eddy's values are numbers; only CAST(x AS float) compiles (a string where a number is needed rejects the event as not-a-number)");
  return e.expr;
}

/**
 * A `CASE` as eddy's conditional `c ? a : b`, WHENs in order (the first that holds wins,
 * https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics: "Both formats require
 * an ELSE argument"). A NULL condition is not true (the next WHEN is tried) and a NULL result is NULL
 * (src/aggregate/sqlNulls.ts). A string result only where `strings` allows it (a column of a statement
 * without GROUP BY, whose rule writes what the CASE gives); a CASE with string results in a windowed
 * SELECT list is a row `case` column (caseColumn); anywhere else (arithmetic, an aggregate's argument,
 * HAVING) it is refused.
 */
function caseExpr(e: Extract<Expr, { k: 'case' }>, sub: (x: Expr) => string, strings = false): string {
  if (e.otherwise === null) throw new Unsupported(e.pos, 'CASE without ELSE', "ASA's CASE requires ELSE", true);
  for (const r of [...e.whens.map((w) => w.then), e.otherwise]) {
    if (r.k === 'str' && !strings) throw new Unsupported(r.pos, `CASE giving ${describe(r)} here`, 'a CASE with string results compiles as a whole SELECT column (eddy computes numbers elsewhere)');
  }
  let out = sub(e.otherwise);
  for (let i = e.whens.length - 1; i >= 0; i--) {
    const w = e.whens[i]!;
    const cond = e.operand === null ? sub(w.when) : `(${sub(e.operand)} == ${sub(w.when)})`;
    out = `(${cond} ? ${sub(w.then)} : ${out})`;
  }
  return out;
}

function callExpr(e: Call, ctx: 'event' | 'select'): string {
  const upper = e.name.toUpperCase();
  if (NOT_YET[upper] !== undefined) throw new Unsupported(e.pos, `${e.name}()`, NOT_YET[upper]!);
  if (isMetadataCall(e)) return eventPath(e);
  if (WINDOWS.has(upper)) throw new Unsupported(e.pos, e.name, 'a window function belongs in GROUP BY', true);
  if (ANOMALY[upper] !== undefined) throw new Unsupported(e.pos, e.name, 'an anomaly function is the only column of its SELECT (eddy raises alerts rather than scoring rows)');
  const isAggregate = AGGREGATES[upper] !== undefined || upper === 'COUNT' || PERCENTILES.has(upper) || upper === 'TOPONE';
  if (isAggregate && ctx !== 'select') throw new Unsupported(e.pos, `${e.name}()`, 'an aggregate belongs in the SELECT list or HAVING', true);
  if (isAggregate && e.over !== null && !PERCENTILES.has(upper) && upper !== 'TOPONE') throw new Unsupported(e.over.pos, `${e.name}() OVER`, 'analytic aggregates are not supported yet');
  if (upper === 'COUNT') {
    if (e.distinct && e.args.length === 1) return `distinct(${expr(e.args[0]!, 'event')})`;
    if (e.args.length === 1 && e.args[0]!.k === 'star') return 'count()';
    if (e.args.length === 0) return 'count()';
    // COUNT(x) "returns the number of non-null values" of "an expression of any type" (COUNT reference):
    // a field holding a string, boolean or record counts. eddy's count(x) takes JSON scalars only where
    // no number aggregate shares x (a record always rejects the event, docs/rules.md "Nulls"), so a
    // field's argument is 1 for each non-null value and null otherwise, left out under the rule's
    // `nulls: "skip"` (readsArguments); test/oracle/asaSemantics.test.ts checks it against the page. A
    // computed argument is count(x) itself: a number, string or boolean (a string in it rejects the
    // event where AVG takes the same expression).
    const arg = e.args[0];
    if (arg?.k === 'path' && e.args.length === 1) return `count((isNull(${expr(arg, 'event')}) ? null : 1))`;
    if (arg !== undefined && e.args.length === 1) return `count(${expr(arg, 'event')})`;
    throw new Unsupported(e.pos, 'COUNT with several arguments', '', true);
  }
  if (e.distinct) throw new Unsupported(e.pos, `${e.name}(DISTINCT ...)`, 'only COUNT(DISTINCT ...)');
  if (PERCENTILES.has(upper)) return percentileExpr(e, upper === 'PERCENTILE_DISC');
  if (upper === 'TOPONE') return topOneExpr(e);
  const agg = AGGREGATES[upper];
  if (agg !== undefined) {
    if (e.args.length !== 1) throw new Unsupported(e.pos, `${e.name} with ${e.args.length} arguments`, 'it takes one', true);
    return `${agg}(${expr(e.args[0]!, 'event')})`;
  }
  const math: Record<string, string> = { ABS: 'abs', SQRT: 'sqrt', EXP: 'exp', FLOOR: 'floor', CEILING: 'ceil', SIGN: 'sign', POWER: 'pow', ROUND: 'round' };
  if (math[upper] !== undefined && upper !== 'ROUND' && e.over === null) return `${math[upper]}(${e.args.map((a) => expr(a, ctx)).join(', ')})`;
  throw new Unsupported(e.pos, `function ${e.name}`, '', true);
}

/**
 * `PERCENTILE_CONT(p) OVER (ORDER BY x [ASC|DESC])` and `PERCENTILE_DISC(...)` ("The value must range
 * between 0 and 1"; "The default sort order is ascending"). CONT is the interpolated percentile, eddy's
 * `percentile(x, 100p)` (linear interpolation between order statistics, src/aggregate/aggregateFunctions.ts);
 * over a descending order it is the ascending one at 1 - p (the rank p(n-1) from the top is (1-p)(n-1)
 * from the bottom). DISC "returns the value within the smallest cumulative distance that is greater than
 * or equal to P" (https://learn.microsoft.com/stream-analytics-query/percentile-disc-azure-stream-analytics),
 * eddy's `percentileDisc(x, 100p)`; over a descending order the values are negated, which turns the
 * descending order into an ascending one, and the result back.
 */
function percentileExpr(e: Call, discrete: boolean): string {
  const p = e.args[0];
  const order = e.over?.orderBy ?? [];
  if (e.args.length !== 1 || p?.k !== 'num' || p.value < 0 || p.value > 1 || order.length !== 1 || e.over!.partitionBy.length > 0 || e.over!.limitDuration !== null || e.over!.when !== null) {
    throw new Unsupported(e.pos, `${e.name} form`, `${e.name.toUpperCase()}(p) OVER (ORDER BY x [ASC|DESC]) with 0 <= p <= 1`, true);
  }
  // 0.07 * 100 is 7.000000000000001 in doubles: 12 significant digits give back the percentage the query wrote.
  const pct = (x: number): number => Number(x.toPrecision(12));
  const x = expr(order[0]!.expr, 'event');
  const desc = order[0]!.desc;
  if (!discrete) return `percentile(${x}, ${pct(desc ? 100 - p.value * 100 : p.value * 100)})`;
  return desc ? `(-percentileDisc((-${x}), ${pct(p.value * 100)}))` : `percentileDisc(${x}, ${pct(p.value * 100)})`;
}

/**
 * `TopOne() OVER (ORDER BY x [ASC|DESC], ...)`, the aggregate form of
 * https://learn.microsoft.com/stream-analytics-query/topone-azure-stream-analytics: "Returns the top-rank
 * record"; "Without the parameter, full event record is returned". eddy's `topOne(x, "desc", ...)`, whose
 * value is the top event's body (docs/rules.md). The projection `TopOne(expr)` and the analytic form
 * (PARTITION BY, LIMIT DURATION) are not supported yet.
 */
function topOneExpr(e: Call): string {
  const over = e.over;
  if (e.args.length > 0) throw new Unsupported(e.args[0]!.pos, 'TopOne with a projection', 'TopOne() returns the whole event; select the projected value from it downstream');
  if (over === null || over.orderBy.length === 0) throw new Unsupported(e.pos, 'TopOne without OVER (ORDER BY ...)', '', true);
  if (over.partitionBy.length > 0 || over.limitDuration !== null || over.when !== null) throw new Unsupported(over.pos, 'TopOne as an analytic function (PARTITION BY, LIMIT DURATION, WHEN)', 'its aggregate form, TopOne() OVER (ORDER BY ...) with GROUP BY a window, compiles');
  return `topOne(${over.orderBy.map((o) => `${expr(o.expr, 'event')}${o.desc ? ', "desc"' : ''}`).join(', ')})`;
}

/**
 * Whether a CASE column becomes a row `case` column (docs/rules.md "Rows"): its results are constants and
 * one is a string or NULL (eddy's select values are numbers), or its conditions read no aggregate (only
 * GROUP BY columns, which a select cannot read). A CASE with numeric results over aggregates stays a
 * select expression (caseExpr), which HAVING can read by its alias.
 */
function isCaseColumn(e: Extract<Expr, { k: 'case' }>): boolean {
  const results = [...e.whens.map((w) => w.then), ...(e.otherwise === null ? [] : [e.otherwise])];
  return results.some((r) => r.k === 'str' || r.k === 'null') || !hasAggregate(e);
}

/**
 * A CASE of the SELECT list as a row `case` column: each WHEN a condition over select names and GROUP
 * BY paths (an aggregate it reads goes into `select` under a hidden name, as HAVING's), each result a
 * constant (a string, a number, NULL) or an expression over aggregates (`AVG(t)`, `MAX(t) - MIN(t)`),
 * read as `{select: name}`: the SELECT column computing it, else a hidden select name. The simple form
 * `CASE x WHEN v ...` tests `x == v`. ASA: "Both formats require an ELSE argument", and THEN is the
 * "expression returned when ... boolean_expression evaluates to true"
 * (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics).
 */
function caseColumn(e: Extract<Expr, { k: 'case' }>, select: Record<string, string>, row: Record<string, Record<string, unknown>>, groupCols: ReadonlySet<string>): Record<string, unknown> {
  if (e.otherwise === null) throw new Unsupported(e.pos, 'CASE without ELSE', "ASA's CASE requires ELSE", true);
  const value = (r: Expr): string | number | boolean | null | { select: string } | { group: string } => {
    const v = constantValue(r);
    if (v !== undefined) return v;
    // A GROUP BY column is the group's value in every row of the group: `{group: path}`.
    if ((r.k === 'path' || isMetadataCall(r)) && groupCols.has(eventPath(r))) return { group: eventPath(r) };
    if (!hasAggregate(r) || hasLag(r)) {
      throw new Unsupported(r.pos, `CASE giving ${describe(r)} beside a string or NULL`, 'such a CASE in a windowed row gives constants, GROUP BY columns and expressions over aggregates (a per-event value is not a column of a windowed row)');
    }
    const text = expr(r, 'select');
    const known = Object.keys(select).find((n) => select[n] === text);
    if (known !== undefined) return { select: known };
    const name = hiddenName(select, row);
    select[name] = text;
    return { select: name };
  };
  const branches = e.whens.map((w) => ({
    when: havingExpr(e.operand === null ? w.when : ({ k: 'bin', op: '=', left: e.operand, right: w.when, pos: w.when.pos } as Expr), select, row, groupCols),
    then: value(w.then),
  }));
  return { case: branches, else: value(e.otherwise) };
}

/**
 * HAVING over eddy's select names: an aggregate of the SELECT list is read by its name, a column alias
 * (`HAVING [Count] >= 3`) by its aggregate's name, and an aggregate only HAVING uses is added to
 * `select` under a hidden name (`_having1`, ...) that the row does not show.
 */
function havingExpr(h: Expr, select: Record<string, string>, row: Record<string, Record<string, unknown>>, groupCols?: ReadonlySet<string>): string {
  const byText = (text: string): string | undefined => Object.keys(select).find((n) => select[n] === text);
  const walk = (e: Expr): string => {
    // A whole SELECT expression (`MAX(t) * 1.8 + 32`) is read by its name, before its parts.
    if (e.k !== 'call' && hasAggregate(e)) {
      const name = byText(expr(e, 'select'));
      if (name !== undefined) return name;
    }
    if (e.k === 'call' && groupCols !== undefined && isMetadataCall(e) && groupCols.has(eventPath(e))) return eventPath(e);
    if (e.k === 'call') {
      const text = expr(e, 'select');
      const known = byText(text);
      if (known !== undefined) return known;
      const name = hiddenName(select, row);
      select[name] = text;
      return name;
    }
    if (e.k === 'bin') return `(${walk(e.left)} ${BIN[e.op] ?? e.op} ${walk(e.right)})`;
    if (e.k === 'unary') return e.op === 'NOT' ? `(not ${walk(e.expr)})` : `(${e.op}${walk(e.expr)})`;
    if (e.k === 'isNull') return e.not ? `(not isNull(${walk(e.expr)}))` : `isNull(${walk(e.expr)})`;
    if (e.k === 'case') return caseExpr(e, walk);
    if (e.k === 'cast') return walk(floatCast(e));
    if (e.k === 'path') {
      const alias = e.parts.length === 1 ? Object.keys(row).find((k) => k.toLowerCase() === e.parts[0]!.toLowerCase()) : undefined;
      const col = alias === undefined ? undefined : row[alias];
      if (col !== undefined && typeof col.select === 'string') return col.select;
      // A row `case` column's condition may read the GROUP BY columns too (their values are the group's).
      if (groupCols !== undefined && groupCols.has(eventPath(e))) return eventPath(e);
      throw new Unsupported(e.pos, `column ${e.parts.join('.')} in ${groupCols === undefined ? 'HAVING' : 'CASE'}`, groupCols === undefined ? 'HAVING reads aggregates and the aliases of aggregate columns' : 'a CASE of a windowed row reads aggregates, aggregate column aliases and GROUP BY columns');
    }
    return expr(e, 'select');
  };
  return walk(h);
}

/** Only `AS` names a column: ASA's generated names are not eddy's to guess. */
function defaultAlias(e: Expr): string {
  throw new Unsupported(e.pos, `column ${describe(e)} without AS`, 'name it with AS');
}

function hasAggregate(e: Expr): boolean {
  switch (e.k) {
    case 'call': {
      const u = e.name.toUpperCase();
      return AGGREGATES[u] !== undefined || u === 'COUNT' || PERCENTILES.has(u) || u === 'TOPONE' || NOT_YET[u] !== undefined || e.args.some(hasAggregate);
    }
    case 'bin':
      return hasAggregate(e.left) || hasAggregate(e.right);
    case 'unary':
    case 'cast':
    case 'isNull':
      return hasAggregate(e.expr);
    case 'case':
      return [e.operand, ...e.whens.flatMap((w) => [w.when, w.then]), e.otherwise].some((x) => x !== null && hasAggregate(x));
    default:
      return false;
  }
}

function describe(e: Expr): string {
  switch (e.k) {
    case 'num':
      return e.text;
    case 'str':
      return `'${e.value}'`;
    case 'path':
      return e.parts.join('.');
    case 'call':
      return `${e.name}(...)`;
    case 'star':
      return '*';
    case 'bin':
      return `${describe(e.left)} ${e.op} ${describe(e.right)}`;
    default:
      return e.k.toUpperCase();
  }
}
