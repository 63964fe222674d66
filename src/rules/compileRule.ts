import type { AggregateRule, AnomalyRule, LagDef, Rule, RowCaseResult, RowColumn, SelectRule } from '../contracts/rule.js';
import type { EvalContext } from '../contracts/event.js';
import type { GroupValues } from '../contracts/window.js';
import type { DetectorType } from '../contracts/anomaly.js';
import { parseDuration } from '../contracts/duration.js';
import { validateRuleDocument } from '../config/validateRuleDocument.js';
import { canonicalHash } from '../config/canonicalHash.js';
import { ruleSwitch } from '../config/ruleSwitch.js';
import { compileExpression, compilePredicate, conditionTruth, EvalFailure, type CompiledExpression, type CompileResult } from '../aggregate/compileExpression.js';
import { compileSelect, compileHaving, compileRowCondition, type ArgumentHook, type CompiledSelect } from '../aggregate/compileSelect.js';
import { DEFAULT_MAX_VALUES_PER_WINDOW } from '../aggregate/aggregateFunctions.js';
import { normalizeWindow, type NormalizedWindow } from '../windows/windowSpec.js';
import { windowKind } from '../windows/windowRegistry.js';
import { detectorTypes } from '../anomaly/detectorRegistry.js';
import { compilePath, MISSING } from '../util/readPath.js';
import type { RowColumnSource } from './outputMessage.js';
import { compileLagAware, type LagAwareFn } from './lagExpression.js';
import { sqlValue, sqlWhere } from './sqlRuleExpression.js';
import { compilePartition, type CompiledLag } from './lagState.js';

/** Default bounds (documented in docs/rules.md). */
export const DEFAULT_MAX_LATENESS_MS = 5_000;
/** Default `maxClockSkew` (docs/contract.md section 5): an event stamped further ahead of its arrival is `future-timestamp`. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;
export const DEFAULT_MAX_GROUPS = 100_000;
/**
 * Most windows one group of a tumbling, hopping or snapshot rule can hold at once, open or kept for
 * corrections: `ceil((size + maxLateness) / step)` with step = size, hop, or 1 ms for snapshots (a
 * window per distinct timestamp). Without it `size: 1` with `maxLateness: "7d"` kept a window per
 * millisecond for a week: 6e8 windows per group (test/unit/hostile/limits.test.ts).
 */
export const MAX_KEPT_WINDOWS = 100_000;
/** Most values one group may keep for median/percentile/distinct: kept windows × maxValuesPerWindow (about 80 MB). */
export const MAX_VALUES_PER_GROUP = 10_000_000;

/** Computes a rule's group: the canonical key and the values printed in outputs; null when a path is missing or not a scalar. */
export type GroupFn = (ctx: EvalContext) => { key: string; group: GroupValues } | null;

/** The canonical group key alone (null when a path is missing or not a scalar): the per-event hot path allocates nothing more. */
export type GroupKeyFn = (ctx: EvalContext) => string | null;

interface CompiledBase {
  readonly id: string;
  /** Hash of the whole definition: part of every messageId (docs/contract.md section 4). */
  readonly hash: string;
  /**
   * Hash of what the rule's state depends on: the definition without {@link STATELESS_FIELDS} and its
   * detector's `decisionParams`. A change that leaves it equal (a new description, output, having,
   * cooldown, alertThreshold or threshold) keeps the rule's open windows and detector state; its
   * outputs still get the new definition's ids.
   */
  readonly stateHash: string;
  /**
   * Set by the engine (src/rules/engine.ts), never by the compiler: how many times this rule id started
   * afresh under a changed definition (absent: never). Part of its window ids when set, so a definition
   * changed and changed back inside a window never gives that window's messageId a second body
   * (test/integration/blackbox/ruleRevert.test.ts).
   */
  readonly gen?: number;
  readonly doc: Rule;
  readonly input: string;
  readonly output: string;
  readonly where: ((ctx: EvalContext) => boolean) | null;
  readonly groupBy: readonly string[];
  readonly group: GroupFn;
  /** `group(ctx)?.key` without building the group's values (needed only when a group is new). */
  readonly groupKey: GroupKeyFn;
  /**
   * True for an aggregate rule with `nulls: "skip"` and a body path in `groupBy`: a path the event lacks
   * is a JSON null there (same key, same group value), where other rules reject the event
   * (docs/rules.md "Nulls"). Rules differing in it do not share a group index (src/rules/fusedRules.ts).
   */
  readonly missingGroupIsNull: boolean;
  /** Reads the raw timestamp value from the body; null when the rule uses arrival time. */
  readonly timestamp: ((body: Record<string, unknown>) => unknown) | null;
  readonly maxLateness: number;
  readonly idleTimeout: number;
  readonly maxGroups: number;
  /**
   * How far (ms) an event time may be ahead of the event's wall-clock arrival; past it the event is
   * `future-timestamp` for the rule, so one wrong device clock cannot push its group's watermark ahead
   * and turn every later event into `too-late` (docs/contract.md section 5).
   */
  readonly maxClockSkew: number;
}

export interface CompiledAggregateRule extends CompiledBase {
  readonly kind: 'aggregate';
  readonly window: NormalizedWindow;
  readonly select: CompiledSelect;
  readonly having: ((values: Record<string, number | null>) => boolean) | null;
  /** The row-shaped output's columns in order (docs/rules.md "Rows"); null: the summary shape. */
  readonly row: readonly RowColumnSource[] | null;
  /**
   * A session window's own partition key (`window.partitionBy`, a subset of `groupBy`): the key the
   * engine indexes groups by and sessions are computed over, while rows stay per `groupBy` group
   * (src/windows/partitionedSessionWindow.ts). Absent: the partition is the group.
   */
  readonly partition?: { readonly by: readonly string[]; readonly key: GroupKeyFn; readonly group: GroupFn };
  /** The rule's LAGs (empty without `lag`): `where` reads `slots`, which src/rules/lagRuntime.ts fills. */
  readonly lags: readonly CompiledLag[];
  readonly slots: unknown[];
  /**
   * `from` compiled (rule chaining, src/rules/chainedRuntime.ts): the rule whose final rows this rule
   * reads; the rule's `input` is then the upstream's (the events it is driven by) and its own `where`,
   * `groupBy` and `select` read the rows. Absent: the rule reads its input.
   */
  readonly upstream?: CompiledAggregateRule;
}

export interface CompiledAnomalyRule extends CompiledBase {
  readonly kind: 'anomaly';
  /** The rule's LAGs (empty without `lag`): `where` and `value` read `slots`, which src/rules/lagRuntime.ts fills. */
  readonly lags: readonly CompiledLag[];
  readonly slots: unknown[];
  readonly value: CompiledExpression;
  readonly detectorName: string;
  readonly detector: DetectorType;
  readonly detectorConfig: unknown;
  readonly cooldownMs: number;
  readonly alertThreshold: number | undefined;
}

/** A column of a select rule's row (docs/rules.md "Select rules"). */
export type SelectColumnSource =
  | { readonly name: string; readonly from: 'expr'; readonly fn: LagAwareFn }
  | { readonly name: string; readonly from: 'const'; readonly value: string | number | boolean | null }
  | { readonly name: string; readonly from: 'eventTime' };

export interface CompiledSelectRule extends CompiledBase {
  readonly kind: 'select';
  readonly lags: readonly CompiledLag[];
  /**
   * The LAG values of the event being processed, one per entry of `lags`: filled by the rule's LagState
   * (src/rules/lagState.ts) before `filter` and `columns` run, and read by their `lag("name")`.
   */
  readonly slots: unknown[];
  /** `where` over the event and its LAGs (null is SQL's NULL, not true); the base `where` is null. */
  readonly filter: LagAwareFn | null;
  /** The row's columns in order; null: the event's body passes through. */
  readonly columns: readonly SelectColumnSource[] | null;
}

export type CompiledRule = CompiledAggregateRule | CompiledAnomalyRule | CompiledSelectRule;

/**
 * Fields read only when a window or alert is emitted, never kept in a group's state: `description`
 * (read by no one), `output` (where a message goes), `having` (applied to a closed window's values),
 * `row` (the shape a closed window is written in),
 * `cooldown` and `alertThreshold` (applied when a detector's step could raise); so are the detector
 * parameters its type lists in `decisionParams` (threshold: above, below, hysteresis; rateOfChange:
 * maxPerSecond; missing: timeout). Everything else (input, where, groups, timestamp, lateness,
 * window, select, value, the detector's type and other parameters, bounds) shapes the state or which
 * events reach it.
 */
export const STATELESS_FIELDS: readonly string[] = ['description', 'output', 'having', 'row', 'cooldown', 'alertThreshold', 'maxClockSkew'];

function stateHashOf(rule: Rule): string {
  const rest: Record<string, unknown> = { ...(rule as unknown as Record<string, unknown>) };
  for (const f of STATELESS_FIELDS) delete rest[f];
  // A detector's decision parameters (a threshold, a rate) are not in its state either.
  const det = rest.detector as Record<string, unknown> | undefined;
  const decision = det !== null && typeof det === 'object' && typeof det.type === 'string' && Object.prototype.hasOwnProperty.call(detectorTypes, det.type) ? detectorTypes[det.type]!.decisionParams : undefined;
  if (det !== undefined && decision !== undefined) {
    const kept: Record<string, unknown> = { ...det };
    for (const f of decision) delete kept[f];
    rest.detector = kept;
  }
  // An upstream's (`from`) description is read by no one; its output is refused, and its having and
  // row shape the rows the rule aggregates, so they stay.
  const from = rest.from;
  if (from !== null && typeof from === 'object' && !Array.isArray(from) && 'description' in from) {
    const { description: _d, ...kept } = from as Record<string, unknown>;
    rest.from = kept;
  }
  return canonicalHash(rest);
}

export type CompileRuleResult = { ok: true; rule: CompiledRule } | { ok: false; error: string };

/**
 * Validates and compiles one rule: JSON Schema first (rules/schema.json), then every expression,
 * the window and the detector. Errors name the rule and the field, in plain words.
 */
export function compileRule(id: string, given: unknown): CompileRuleResult {
  // `"enabled": true` is the rule without it (same hash, windows kept); a rule switched off is not
  // compiled (the module reports it `disabled` before it gets here: src/config/resolveConfig.ts).
  const sw = ruleSwitch(id, given);
  if (sw.state === 'bad') return { ok: false, error: sw.error };
  if (sw.state === 'off') return { ok: false, error: `${id}: switched off ("enabled": false); not compiled` };
  const doc = sw.doc;
  // Before the schema, which would recurse once per nested `from`: a document nesting thousands
  // overflowed the stack (test/unit/rules/chainedRules.test.ts).
  if (isChainOfThree(doc)) return { ok: false, error: `${id}.from.from: a chain of more than two rules is not supported yet` };
  const schemaError = validateRuleDocument(id, doc);
  if (schemaError) return { ok: false, error: schemaError };
  const rule = doc as Rule;
  const hash = canonicalHash(rule);

  let where: ((ctx: EvalContext) => boolean) | null = null;
  // A `where` that may read the rule's LAGs is compiled with them (compileSelectRule, compileAnomaly).
  if (rule.where !== undefined && rule.kind !== 'select' && rule.lag === undefined) {
    const w = compilePredicate(rule.where);
    if (!w.ok) return { ok: false, error: `${id}.where: ${w.error}` };
    where = w.value;
  }
  const groupBy = typeof rule.groupBy === 'string' ? rule.groupBy.split(',').map((p) => p.trim()) : (rule.groupBy ?? []);
  if (new Set(groupBy).size !== groupBy.length) return { ok: false, error: `${id}.groupBy: a path is listed twice` };
  const maxLateness = rule.maxLateness === undefined ? DEFAULT_MAX_LATENESS_MS : parseDuration(rule.maxLateness);
  if (maxLateness === null || maxLateness > 7 * 86_400_000) return { ok: false, error: `${id}.maxLateness: must be a duration of at most 7 days` };
  const maxClockSkew = rule.maxClockSkew === undefined ? DEFAULT_MAX_CLOCK_SKEW_MS : parseDuration(rule.maxClockSkew);
  if (maxClockSkew === null || maxClockSkew < 0 || maxClockSkew > 7 * 86_400_000) return { ok: false, error: `${id}.maxClockSkew: must be a duration of at most 7 days` };
  // ASA's GROUP BY reads a field the event lacks as NULL, and GROUP BY puts NULLs in one group
  // (test/oracle/asaSemanticsOracle.ts `asaRows`); `nulls: "skip"` is ASA's reading (docs/rules.md "Nulls").
  const missingAsNull = rule.kind === 'aggregate' && rule.nulls === 'skip';
  const base = {
    id,
    hash,
    stateHash: stateHashOf(rule),
    doc: rule,
    input: rule.input ?? 'telemetry',
    where,
    groupBy,
    group: compileGroup(groupBy, missingAsNull),
    groupKey: compileGroupKey(groupBy, missingAsNull),
    missingGroupIsNull: missingAsNull && groupBy.some((p) => p !== '$deviceId' && p !== '$moduleId'),
    timestamp: rule.timestamp === undefined ? null : compilePath(rule.timestamp),
    maxLateness,
    maxClockSkew,
    maxGroups: rule.maxGroups ?? DEFAULT_MAX_GROUPS,
  };

  if (rule.kind === 'aggregate') return compileAggregate(id, rule, base);
  if (rule.kind === 'select') return compileSelectRule(id, rule, base);
  return compileAnomaly(id, rule, base);
}

function compileAggregate(id: string, rule: AggregateRule, base: Omit<CompiledBase, 'output' | 'idleTimeout'>): CompileRuleResult {
  let upstream: CompiledAggregateRule | undefined;
  if (rule.from !== undefined) {
    const u = compileUpstream(id, rule);
    if (typeof u === 'string') return { ok: false, error: u };
    upstream = u;
  }
  let lags: CompiledLag[] = [];
  let slots: unknown[] = [];
  let where = base.where;
  if (rule.lag !== undefined) {
    const l = compileLags(id, rule.lag, base.maxGroups);
    if (typeof l === 'string') return { ok: false, error: l };
    ({ lags, slots } = l);
    if (rule.where !== undefined) {
      const w = lagAwareWhere(rule.where, lags, slots);
      if (typeof w === 'string') return { ok: false, error: `${id}.where: ${w}` };
      where = w;
    }
  }
  const win = normalizeWindow(rule.window);
  if (!win.ok) return { ok: false, error: `${id}.window: ${win.error}` };
  let partition: CompiledAggregateRule['partition'];
  const kind = windowKind(win.value.type)!;
  const by = kind.partitionBy?.(win.value);
  if (by !== undefined) {
    const stray = by.find((p) => !base.groupBy.includes(p));
    // A session key outside groupBy would give rows whose group does not name their session.
    if (stray !== undefined) return { ok: false, error: `${id}.window.partitionBy: "${stray}" is not a groupBy path` };
    const missingAsNull = rule.nulls === 'skip';
    partition = { by, key: compileGroupKey(by, missingAsNull), group: compileGroup(by, missingAsNull) };
  }
  // Windows one group can hold at once (open or kept for corrections); 1 for kinds with their own bounds.
  const held = kind.keptWindows?.(win.value, base.maxLateness);
  const kept = held?.windows ?? 1;
  if (kept > MAX_KEPT_WINDOWS) {
    return { ok: false, error: `${id}.maxLateness: a group would keep up to ${kept} windows open for corrections ((size + maxLateness) / ${held?.per ?? 'size'}); at most ${MAX_KEPT_WINDOWS}: use a larger window or a smaller maxLateness` };
  }
  const nulls = rule.nulls ?? 'reject';
  if (nulls === 'skip' && rule.where !== undefined) {
    // SQL's NULL (docs/rules.md "Nulls"): a comparison with a null is unknown and the event is not for the rule.
    const w = sqlWhere(rule.where, lags.map((x) => x.name), slots);
    if (typeof w === 'string') return { ok: false, error: `${id}.where: ${w}` };
    where = w;
  }
  // An aggregate argument may read the rule's LAGs (`avg(t - lag("prev"))`): the LAG runtime fills the
  // slots for each event before `where` and the arguments run (src/rules/lagRuntime.ts), as ASA computes
  // LAG per event before grouping. Only an argument that calls lag() is compiled lag-aware; the others
  // keep the sandbox's semantics exactly.
  const lagNames = lags.map((x) => x.name);
  const argument: ArgumentHook | undefined = lags.length === 0 ? undefined : (source) => {
    if (!/\blag\s*\(/.test(source)) return undefined;
    const paths = new Set<string>();
    const f = compileLagAware(source, lagNames, slots, paths);
    return f.ok ? { fn: f.value, paths: [...paths] } : { error: f.error };
  };
  const options = (o: { maxValuesPerWindow?: number }): Parameters<typeof compileSelect>[1] => ({ ...o, nulls, ...(argument === undefined ? {} : { argument }) });
  let select = compileSelect(rule.select, options(rule.maxValuesPerWindow === undefined ? {} : { maxValuesPerWindow: rule.maxValuesPerWindow }));
  if (!select.ok) {
    const [name, msg] = Object.entries(select.errors)[0] ?? ['?', 'invalid'];
    return { ok: false, error: `${id}.select.${name}: ${msg}` };
  }
  if (select.value.keepsValues) {
    const budget = Math.floor(MAX_VALUES_PER_GROUP / kept);
    if (rule.maxValuesPerWindow !== undefined && rule.maxValuesPerWindow > budget) {
      return { ok: false, error: `${id}.maxValuesPerWindow: ${kept} windows per group × ${rule.maxValuesPerWindow} values is over ${MAX_VALUES_PER_GROUP}; at most ${budget} for this window` };
    }
    // The default (10,000) shrinks for rules that keep many windows; an explicit value is never changed.
    if (rule.maxValuesPerWindow === undefined && budget < DEFAULT_MAX_VALUES_PER_WINDOW) {
      select = compileSelect(rule.select, options({ maxValuesPerWindow: budget }));
      if (!select.ok) return { ok: false, error: `${id}.select: invalid` };
    }
  }
  let having: CompiledAggregateRule['having'] = null;
  if (rule.having !== undefined) {
    const h = compileHaving(rule.having, select.value.names, { nulls });
    if (!h.ok) return { ok: false, error: `${id}.having: ${h.error}` };
    having = h.value;
  }
  let row: RowColumnSource[] | null = null;
  if (rule.row !== undefined) {
    const r = compileRow(rule.row, select.value.names, base.groupBy, nulls);
    if (typeof r === 'string') return { ok: false, error: `${id}.row.${r}` };
    row = r;
  }
  const idle = rule.idleTimeout === undefined ? kind.defaultIdleTimeout(win.value) : parseDuration(rule.idleTimeout);
  if (idle === null || idle <= 0 || idle > 7 * 86_400_000) return { ok: false, error: `${id}.idleTimeout: must be a duration > 0 and at most 7 days` };
  return {
    ok: true,
    rule: {
      ...base,
      where,
      lags,
      slots,
      kind: 'aggregate',
      output: rule.output ?? 'summaries',
      idleTimeout: idle,
      window: win.value,
      select: select.value,
      having,
      row,
      ...(partition === undefined ? {} : { partition }),
      // A chained rule is driven by its upstream's input (src/rules/chainedRuntime.ts).
      ...(upstream === undefined ? {} : { upstream, input: upstream.input }),
    },
  };
}

/** Whether a document's `from` has a `from` of its own (rule chaining goes two rules deep). */
function isChainOfThree(doc: unknown): boolean {
  const from = doc !== null && typeof doc === 'object' ? (doc as { from?: unknown }).from : undefined;
  return from !== null && typeof from === 'object' && (from as { from?: unknown }).from !== undefined;
}

/**
 * A rule's `from` compiled: an aggregate rule over an input with a tumbling or hopping window, whose
 * rows are final once its group's watermark passes `end + maxLateness` (src/windows/alignedWindows.ts
 * purges the window then: no event can change it). The other kinds have no such point yet (a session
 * or sliding window's end moves with its events), and a chain of three is not supported yet.
 */
function compileUpstream(id: string, rule: AggregateRule): CompiledAggregateRule | string {
  const from = rule.from!;
  if (rule.input !== undefined) return `${id}.input: a rule with "from" reads the rows of that rule, not an input`;
  if (rule.timestamp !== undefined) return `${id}.timestamp: the rows of "from" have their window end as their time`;
  if (rule.lag !== undefined) return `${id}.lag: not supported in a rule with "from" yet`;
  if (from.output !== undefined) return `${id}.from.output: the rows of "from" go to this rule only`;
  if (from.lag !== undefined) return `${id}.from.lag: not supported in "from" yet`;
  const up = compileRule(id, from);
  if (!up.ok) return up.error.startsWith(id) ? `${id}.from${up.error.slice(id.length)}` : `${id}.from: ${up.error}`;
  if (up.rule.kind !== 'aggregate') return `${id}.from.kind: must be "aggregate"`;
  const type = up.rule.window.type;
  if (windowKind(type)?.feedsRules === undefined) return `${id}.from.window.type: only tumbling and hopping windows can feed another rule (their rows become final when the watermark passes end + maxLateness); "${type}" is not supported yet`;
  return up.rule;
}

/** Checks a rule's `row` against its select names and groupBy paths; an error starts with the column name. */
function compileRow(row: Record<string, RowColumn>, selectNames: readonly string[], groupBy: readonly string[], nulls: 'reject' | 'skip'): RowColumnSource[] | string {
  const out: RowColumnSource[] = [];
  for (const [name, col] of Object.entries(row)) {
    if ('select' in col) {
      if (!selectNames.includes(col.select)) return `${name}: select "${col.select}" is not a name in select`;
      out.push({ name, from: 'select', key: col.select });
    } else if ('group' in col) {
      if (!groupBy.includes(col.group)) return `${name}: group "${col.group}" is not a groupBy path`;
      out.push({ name, from: 'group', key: groupName(col.group) });
    } else if ('const' in col) out.push({ name, from: 'const', value: col.const });
    else if ('case' in col) {
      const branches: Extract<RowColumnSource, { from: 'case' }>['branches'][number][] = [];
      // A result that reads a select name must name one (as a `select` column), one that reads a group a
      // groupBy path (as a `group` column, kept by its output key); else the rule is refused.
      const result = (r: RowCaseResult): { ok: RowCaseResult } | { error: string } => {
        if (r === null || typeof r !== 'object') return { ok: r };
        if ('select' in r) return selectNames.includes(r.select) ? { ok: r } : { error: `select "${r.select}" is not a name in select` };
        return groupBy.includes(r.group) ? { ok: { group: groupName(r.group) } } : { error: `group "${r.group}" is not a groupBy path` };
      };
      for (const [i, b] of col.case.entries()) {
        const test = compileRowCondition(b.when, selectNames, groupBy, groupName, { nulls });
        if (!test.ok) return `${name}.case[${i}].when: ${test.error}`;
        const then = result(b.then);
        if ('error' in then) return `${name}.case[${i}].then: ${then.error}`;
        branches.push({ test: test.value, value: then.ok });
      }
      const otherwise = result(col.else);
      if ('error' in otherwise) return `${name}.else: ${otherwise.error}`;
      out.push({ name, from: 'case', branches, otherwise: otherwise.ok });
    } else out.push({ name, from: 'window', bound: col.window });
  }
  return out;
}

function compileAnomaly(id: string, rule: AnomalyRule, base: Omit<CompiledBase, 'output' | 'idleTimeout'>): CompileRuleResult {
  let value = compileExpression(rule.value);
  let lags: CompiledLag[] = [];
  let slots: unknown[] = [];
  let where = base.where;
  if (rule.lag !== undefined) {
    const l = compileLags(id, rule.lag, base.maxGroups);
    if (typeof l === 'string') return { ok: false, error: l };
    ({ lags, slots } = l);
    const names = lags.map((x) => x.name);
    const v = compileLagAware(rule.value, names, slots);
    if (!v.ok) return { ok: false, error: `${id}.value: ${v.error}` };
    value = { ok: true, value: { source: rule.value, paths: [], evaluate: v.value } };
    if (rule.where !== undefined) {
      const w = lagAwareWhere(rule.where, lags, slots);
      if (typeof w === 'string') return { ok: false, error: `${id}.where: ${w}` };
      where = w;
    }
  }
  if (!value.ok) return { ok: false, error: `${id}.value: ${value.error}` };
  const type = detectorTypes[rule.detector.type];
  if (!type) return { ok: false, error: `${id}.detector.type: unknown detector "${rule.detector.type}"` };
  const { type: _t, ...params } = rule.detector;
  const cfg = type.validate(params);
  if (!cfg.ok) return { ok: false, error: `${id}.detector: ${cfg.error}` };
  const cooldownMs = rule.cooldown === undefined ? 0 : parseDuration(rule.cooldown);
  if (cooldownMs === null) return { ok: false, error: `${id}.cooldown: must be a duration` };
  const idle = rule.idleTimeout === undefined ? 60_000 : parseDuration(rule.idleTimeout);
  // Same bound as aggregate rules: every duration a rule holds state for is at most 7 days (test/unit/hostile/limits.test.ts).
  if (idle === null || idle <= 0 || idle > 7 * 86_400_000) return { ok: false, error: `${id}.idleTimeout: must be a duration > 0 and at most 7 days` };
  return {
    ok: true,
    rule: {
      ...base,
      where,
      lags,
      slots,
      kind: 'anomaly',
      output: rule.output ?? 'alerts',
      idleTimeout: idle,
      value: value.value,
      detectorName: rule.detector.type,
      detector: type,
      detectorConfig: cfg.config,
      cooldownMs,
      alertThreshold: rule.alertThreshold,
    },
  };
}

/** A `where` that may read the rule's LAGs; a NULL result (a LAG without value) is not true: the event is not for the rule. */
function lagAwareWhere(source: string, lags: readonly CompiledLag[] | readonly string[], slots: readonly unknown[]): ((ctx: EvalContext) => boolean) | string {
  const w = compileLagAware(source, lags.map((l) => (typeof l === 'string' ? l : l.name)), slots);
  if (!w.ok) return w.error;
  const f = w.value;
  const fail = new EvalFailure('not-a-number', `where is not a number or boolean (in "${source.slice(0, 60)}")`);
  return (ctx) => conditionTruth(f(ctx), fail);
}

/**
 * Most values a rule's LAGs may keep: `maxGroups` partitions of up to the largest `offset` values each
 * (src/rules/lagState.ts), the budget of an aggregate group's kept values (MAX_VALUES_PER_GROUP).
 */
export const MAX_LAG_VALUES = MAX_VALUES_PER_GROUP;

/** A LAG value of `"*"`: the event's body, as it is. */
const WHOLE_EVENT: CompiledLag['value'] = { evaluate: (ctx) => ctx.body };

/** A rule's `lag` entries compiled, with the slots their values go in; an error names the rule and the field. */
function compileLags(id: string, defs: Record<string, LagDef>, maxGroups: number): { lags: CompiledLag[]; slots: unknown[] } | string {
  const lags: CompiledLag[] = [];
  const names = Object.keys(defs);
  const slots: unknown[] = names.map(() => null);
  // A `value` or `when` may read another entry's `lag("name")`: that entry's value for the event being
  // remembered (src/rules/lagState.ts looks every LAG up before remembering any). This is how a LAG over
  // a WITH step column that is itself a LAG compiles (docs/asa-migration.md "WITH"). An expression that
  // reads no lag() keeps the sandbox's semantics exactly.
  const readsLag = (source: string): boolean => /\blag\s*\(/.test(source);
  for (const [name, def] of Object.entries(defs)) {
    const at = `${id}.lag.${name}`;
    // `"*"`: the whole event (ASA's LAG(*): "the entire event ... will be contained in the result event (nested record)").
    let value: CompileResult<CompiledLag['value']>;
    if (def.value === '*') value = { ok: true, value: WHOLE_EVENT };
    else if (readsLag(def.value)) {
      const f = compileLagAware(def.value, names, slots);
      value = f.ok ? { ok: true, value: { evaluate: f.value } } : f;
    } else value = compileExpression(def.value);
    if (!value.ok) return `${at}.value: ${value.error}`;
    for (const [field, src] of [['value', def.value], ['when', def.when ?? '']] as const) {
      if (src.replace(/\s+/g, '').includes(`lag("${name}")`)) return `${at}.${field}: an entry cannot read its own lag("${name}")`;
    }
    let dfltExpr: CompiledLag['dfltExpr'] = null;
    const d = def.default;
    if (d !== null && typeof d === 'object') {
      const e = compileExpression(d.expr);
      if (!e.ok) return `${at}.default.expr: ${e.error}`;
      dfltExpr = e.value;
    }
    let when: CompiledLag['when'] = null;
    if (def.when !== undefined && readsLag(def.when)) {
      // A NULL (a LAG without value) is not true: the event is not remembered for this entry.
      const w = lagAwareWhere(def.when, names, slots);
      if (typeof w === 'string') return `${at}.when: ${w}`;
      when = w;
    } else if (def.when !== undefined) {
      const w = compilePredicate(def.when);
      if (!w.ok) return `${at}.when: ${w.error}`;
      when = w.value;
    }
    const durationMs = parseDuration(def.duration);
    if (durationMs === null || durationMs <= 0 || durationMs > 7 * 86_400_000) return `${at}.duration: must be a duration > 0 and at most 7 days`;
    const paths = typeof def.partitionBy === 'string' ? def.partitionBy.split(',').map((p) => p.trim()) : (def.partitionBy ?? []);
    if (new Set(paths).size !== paths.length) return `${at}.partitionBy: a path is listed twice`;
    lags.push({ name, value: value.value, offset: def.offset ?? 1, dflt: dfltExpr === null ? ((d ?? null) as CompiledLag['dflt']) : null, dfltExpr, durationMs, when, partition: compilePartition(paths) });
  }
  const widest = Math.max(0, ...lags.map((l) => l.offset));
  if (widest * maxGroups > MAX_LAG_VALUES) return `${id}.lag: up to ${maxGroups} partitions (maxGroups) × ${widest} values (the largest offset) is over ${MAX_LAG_VALUES}: lower the offset or maxGroups`;
  return { lags, slots };
}

/** A select rule: its LAGs, then `where` and `row` over the event and the LAG values. */
function compileSelectRule(id: string, rule: SelectRule, base: Omit<CompiledBase, 'output' | 'idleTimeout'>): CompileRuleResult {
  const compiledLags = compileLags(id, rule.lag ?? {}, base.maxGroups);
  if (typeof compiledLags === 'string') return { ok: false, error: compiledLags };
  const { lags, slots } = compiledLags;
  const names = lags.map((l) => l.name);
  let filter: LagAwareFn | null = null;
  const sql = rule.nulls === 'skip';
  if (rule.where !== undefined && sql) {
    // SQL's NULL (docs/rules.md "Nulls"): a null condition drops the event, as false does.
    const w = sqlWhere(rule.where, names, slots);
    if (typeof w === 'string') return { ok: false, error: `${id}.where: ${w}` };
    filter = w;
  } else if (rule.where !== undefined) {
    const w = compileLagAware(rule.where, names, slots);
    if (!w.ok) return { ok: false, error: `${id}.where: ${w.error}` };
    filter = w.value;
  }
  let columns: SelectColumnSource[] | null = null;
  if (rule.row !== undefined) {
    columns = [];
    for (const [name, col] of Object.entries(rule.row)) {
      if ('expr' in col && sql) {
        // A missing field is null, a CASE may give a string (docs/rules.md "Select rules").
        const f = sqlValue(col.expr, names, slots, true);
        if (typeof f === 'string') return { ok: false, error: `${id}.row.${name}: ${f}` };
        columns.push({ name, from: 'expr', fn: f });
      } else if ('expr' in col) {
        const f = compileLagAware(col.expr, names, slots);
        if (!f.ok) return { ok: false, error: `${id}.row.${name}: ${f.error}` };
        columns.push({ name, from: 'expr', fn: f.value });
      } else if ('const' in col) columns.push({ name, from: 'const', value: col.const });
      else columns.push({ name, from: 'eventTime' });
    }
  }
  return { ok: true, rule: { ...base, kind: 'select', output: rule.output ?? 'rows', idleTimeout: 0, lags, slots, filter, columns } };
}

/** Output key for a groupBy entry: `$deviceId` → deviceId, `$moduleId` → moduleId, a body path → itself. */
export function groupName(path: string): string {
  return path === '$deviceId' ? 'deviceId' : path === '$moduleId' ? 'moduleId' : path;
}

const EMPTY_GROUP: GroupValues = Object.freeze({});

/**
 * The group key of an event (null: the event has no group for the rule). `missingAsNull`: a body path
 * the event lacks reads as JSON null, so the event joins the null group with the same key and values an
 * explicit null gives; else it has no group (`missing-field`).
 */
function compileGroupKey(groupBy: readonly string[], missingAsNull: boolean): GroupKeyFn {
  if (groupBy.length === 0) return () => '';
  if (groupBy.length === 1 && groupBy[0] === '$deviceId') return (ctx) => ctx.deviceId;
  const full = compileGroup(groupBy, missingAsNull);
  return (ctx) => full(ctx)?.key ?? null;
}

function compileGroup(groupBy: readonly string[], missingAsNull: boolean): GroupFn {
  if (groupBy.length === 0) return () => ({ key: '', group: EMPTY_GROUP });
  if (groupBy.length === 1 && groupBy[0] === '$deviceId') return (ctx) => ({ key: ctx.deviceId, group: { deviceId: ctx.deviceId } });
  const readers = groupBy.map((p) => {
    if (p === '$deviceId') return (ctx: EvalContext): unknown => ctx.deviceId;
    if (p === '$moduleId') return (ctx: EvalContext): unknown => ctx.moduleId;
    const read = compilePath(p);
    if (missingAsNull) {
      return (ctx: EvalContext): unknown => {
        const v = read(ctx.body);
        return v === MISSING ? null : v;
      };
    }
    return (ctx: EvalContext): unknown => read(ctx.body);
  });
  const names = groupBy.map(groupName);
  return (ctx) => {
    const group: Record<string, string | number | boolean | null> = {};
    let key = '';
    for (let i = 0; i < readers.length; i++) {
      const v = readers[i]!(ctx);
      if (v === MISSING || (v !== null && typeof v === 'object')) return null;
      group[names[i]!] = v as string | number | boolean | null;
      // Type-tagged so that the string "1" and the number 1 are different groups.
      key += (i === 0 ? '' : '\u0001') + (typeof v === 'string' ? 's' : typeof v === 'number' ? 'n' : 'o') + String(v);
    }
    return { key, group };
  };
}
