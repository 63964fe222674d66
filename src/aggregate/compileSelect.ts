/**
 * Compiles a rule's `select` and `having` (docs/contract.md section 5). A select expression is an
 * aggregate call, or arithmetic over aggregate calls and constants (`max(t) - min(t)`,
 * `avg(t) * 1.8 + 32`). At the top level of a select the aggregate names win (`min(t)` is the
 * aggregate); inside an aggregate argument, `where` and `having`, `min`/`max` are math functions.
 *
 * Per event the engine calls `evaluateArgs` (distinct argument expressions, deduplicated by their
 * canonical mathjs text) and hands the number tuple to the window operator, which calls the
 * aggregator's `add`. Argument values must be finite numbers (a boolean the argument computes, as in
 * `sum(x > 30)`, counts as 1/0; a boolean read from the event is `not-a-number`: docs/contract.md section 5);
 * anything else fails the event for this rule with an `EvalFailure`.
 *
 * A select value is `null` when one of its aggregates is null (empty, n < 2 for the sample
 * variance, overflow) or when its arithmetic gives NaN or +-Infinity (e.g. `max(t) / min(t)` with
 * min 0): summaries are JSON, which has neither.
 */
import type { EvalContext } from '../contracts/event.js';
import type { GroupValues, WindowAggregator } from '../contracts/window.js';
import { DEFAULT_MAX_VALUES_PER_WINDOW, type AggregateKind, type ArgNeeds } from './aggregateFunctions.js';
import {
  AGGREGATE_NAMES, buildNode, catchCompile, CompileError, conditionTruth, EvalFailure, parseLimited,
  type BuildEnv, type Built, type CompiledExpression, type CompileResult, type MNode,
} from './compileExpression.js';
import { compilePath } from '../util/readPath.js';
import { addKept, addPacked, packedInit, packedReset, packedLayout, packedOf, packedResult, type PackedState } from './packedSelectState.js';

/** A compiled select: argument evaluation per event plus the window aggregator. */
export interface CompiledSelect {
  readonly names: readonly string[];
  /** Distinct argument expressions; the engine evaluates them per event into a number tuple (item). */
  readonly args: readonly CompiledExpression[];
  /** Fills `out` with the arguments for one event; throws EvalFailure (missing-field / not-a-number). */
  evaluateArgs(ctx: EvalContext, out: number[]): void;
  readonly aggregator: WindowAggregator<readonly number[], unknown, Record<string, number | null>>;
  /** True when median/percentile/distinct keep values (the state holds value arrays and sets beside its doubles). */
  readonly keepsValues: boolean;
}

interface Slot {
  readonly kind: AggregateKind;
  /** Index into args, or -1 for `count()`. */
  readonly arg: number;
  readonly p: number;
}

interface AggCtx {
  readonly r: (number | null)[];
}

const ARITY: Readonly<Record<AggregateKind, readonly [number, number]>> = {
  count: [0, 1], sum: [1, 1], avg: [1, 1], min: [1, 1], max: [1, 1], stdev: [1, 1], stdevp: [1, 1],
  var: [1, 1], varp: [1, 1], median: [1, 1], percentile: [2, 2], first: [1, 1], last: [1, 1], distinct: [1, 1],
};

const NEEDS: Readonly<Record<AggregateKind, keyof ArgNeeds | null>> = {
  count: null, sum: 'sum', avg: 'sum', min: 'min', max: 'max', stdev: 'variance', stdevp: 'variance',
  var: 'variance', varp: 'variance', median: 'values', percentile: 'values', first: 'first', last: 'last', distinct: 'distinct',
};

function noNeeds(): ArgNeeds {
  return { sum: false, variance: false, min: false, max: false, first: false, last: false, values: false, distinct: false };
}

/** Compiles `select`; errors are reported per select name. Never throws. */
export function compileSelect(
  select: Record<string, string>,
  options: { maxValuesPerWindow?: number; nulls?: 'reject' | 'skip'; argument?: ArgumentHook } = {},
): { ok: true; value: CompiledSelect } | { ok: false; errors: Record<string, string> } {
  const cap = options.maxValuesPerWindow ?? DEFAULT_MAX_VALUES_PER_WINDOW;
  const hook = options.argument;
  const skipNulls = options.nulls === 'skip';
  // Null prototype: on a plain `{}`, `errors['__proto__'] = msg` below would set the prototype (a
  // string is ignored) instead of recording the error, and the rule compiled without that select
  // name (test/unit/hostile/hostileRules.test.ts).
  const errors: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!Number.isInteger(cap) || cap < 1) errors['maxValuesPerWindow'] = 'maxValuesPerWindow must be a positive integer';
  const names = Object.keys(select);
  if (names.length === 0) errors['select'] = 'select must name at least one aggregate';

  const args: { key: string; expr: CompiledExpression; num: (c: EvalContext) => number }[] = [];
  const slots: Slot[] = [];
  const outers: { name: string; fn: (c: AggCtx) => unknown; uses: number[]; readsNull: boolean }[] = [];

  for (const name of names) {
    if (name === '__proto__') {
      errors[name] = 'select name "__proto__" is not allowed';
      continue;
    }
    const source = select[name];
    const r = catchCompile(() => compileOuter(source as string, args, slots, skipNulls, hook));
    // An expression that tests a null itself (`isNull(avg(t)) ? 0 : avg(t)`, ASA's CASE WHEN AVG(t) IS
    // NULL ...) is evaluated even when one of its aggregates is null; elsewhere a null aggregate makes it null.
    if (r.ok) outers.push({ name, ...r.value, readsNull: /\bisNull\s*\(/.test(source as string) });
    else errors[name] = r.error;
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };

  const nArgs = args.length;
  const needs: ArgNeeds[] = args.map(() => ({ ...noNeeds(), count: skipNulls }));
  for (const s of slots) {
    const need = NEEDS[s.kind];
    if (need && s.arg >= 0) needs[s.arg]![need] = true;
  }
  const keepsValues = needs.some((n) => n.values || n.distinct);
  const argNums = args.map((a) => a.num);
  const nSlots = slots.length;
  const scratch: AggCtx = { r: new Array<number | null>(nSlots).fill(null) };

  // One scratch array and context serve every `result` call: result is synchronous and keeps neither
  // (about 200 ns less per output than a fresh array, context and closure per call).
  const r = scratch.r;
  const finish = (): Record<string, number | null> => {
    const out: Record<string, number | null> = {};
    for (let k = 0; k < outers.length; k++) {
      const o = outers[k]!;
      let v: number | null = null;
      let present = true;
      if (!o.readsNull) for (let j = 0; j < o.uses.length; j++) if (r[o.uses[j]!] === null) present = false;
      if (present) {
        let x: unknown = null;
        try {
          x = o.fn(scratch);
        } catch (e) {
          // Only a null-testing expression gets here with a null aggregate: arithmetic over it is null.
          if (!(e instanceof EvalFailure)) throw e;
        }
        const num = typeof x === 'boolean' ? (x ? 1 : 0) : typeof x === 'number' ? x : NaN;
        v = Number.isFinite(num) ? num : null;
      }
      out[o.name] = v;
    }
    return out;
  };

  // One layout for every select (packedSelectState.ts); a select that keeps values adds their slots.
  const layout = packedLayout(needs, cap);
  const slotArgs = slots.map((s) => (s.arg >= 0 ? layout.args[s.arg] : undefined));
  const slotKinds = slots.map((s) => s.kind);
  const slotPs = slots.map((s) => s.p);
  const add = keepsValues ? addKept : (addPacked as (d: PackedState, l: typeof layout, item: readonly number[], time: number) => void);
  const aggregator: WindowAggregator<readonly number[], unknown, Record<string, number | null>> = {
    init: packedInit(layout),
    reset: packedReset(layout),
    // A state restored from a block-format checkpoint is an object: `packedOf` converts it once.
    add: (state, item, time) => add(Array.isArray(state) ? (state as PackedState) : packedOf(state, layout), layout, item, time),
    result: (state) => {
      const d = Array.isArray(state) ? (state as PackedState) : packedOf(state, layout);
      for (let i = 0; i < nSlots; i++) r[i] = packedResult(slotKinds[i]!, slotArgs[i], d, slotPs[i]);
      return finish();
    },
  };

  const value: CompiledSelect = {
    names: Object.freeze([...names]),
    args: Object.freeze(args.map((a) => a.expr)),
    evaluateArgs: (ctx, out) => {
      for (let i = 0; i < nArgs; i++) out[i] = argNums[i]!(ctx);
    },
    aggregator,
    keepsValues,
  };
  return { ok: true, value };
}

/**
 * Compiles one select expression: aggregate calls become slots (deduplicated), their arguments
 * become args (deduplicated by canonical text), the rest is arithmetic over slot results.
 */
function compileOuter(
  source: string,
  args: { key: string; expr: CompiledExpression; num: (c: EvalContext) => number }[],
  slots: Slot[],
  skipNulls: boolean,
  hook: ArgumentHook | undefined,
): { fn: (c: AggCtx) => unknown; uses: number[] } {
  if (typeof source !== 'string') throw new CompileError('select expression must be a string');
  const root = parseLimited(source);
  const uses = new Set<number>();
  const env: BuildEnv<AggCtx> = {
    allowPaths: false,
    noPathMessage: 'event fields may only appear inside an aggregate call such as avg(...)',
    paths: new Set(),
    leaf: (node) => {
      if (node.type !== 'FunctionNode') return undefined;
      const fnNode = node.fn as MNode;
      if (fnNode.type !== 'SymbolNode' || !AGGREGATE_NAMES.has(fnNode.name!)) return undefined;
      const slot = compileAggregateCall(node, fnNode.name as AggregateKind, args, slots, skipNulls, hook);
      uses.add(slot);
      return { fn: (c: AggCtx) => c.r[slot], kind: 'any' } satisfies Built<AggCtx>;
    },
  };
  const built = buildNode(root, env);
  if (uses.size === 0) throw new CompileError(`select expression must use an aggregate such as avg(x) or count() (in "${source.slice(0, 60)}")`);
  if (built.kind === 'str') throw new CompileError('select expression cannot be a string');
  return { fn: built.fn, uses: [...uses] };
}

function compileAggregateCall(
  node: MNode,
  kind: AggregateKind,
  args: { key: string; expr: CompiledExpression; num: (c: EvalContext) => number }[],
  slots: Slot[],
  skipNulls: boolean,
  hook: ArgumentHook | undefined,
): number {
  const callArgs = node.args ?? [];
  const [lo, hi] = ARITY[kind];
  if (callArgs.length < lo || callArgs.length > hi) {
    const want = lo === hi ? `${lo}` : `${lo} or ${hi}`;
    throw new CompileError(`aggregate "${kind}" takes ${want} argument${lo === 1 && hi === 1 ? '' : 's'}, got ${callArgs.length} (in "${node.toString()}")`);
  }
  let arg = -1;
  if (callArgs.length > 0) arg = compileArg(callArgs[0]!, args, skipNulls, hook);
  let p = 0;
  if (kind === 'percentile') {
    const env: BuildEnv<EvalContext> = { allowPaths: false, noPathMessage: 'the percentile must be a constant', paths: new Set(), aggregateNames: AGGREGATE_NAMES };
    const pb = buildNode(callArgs[1]!, env);
    const v = pb.constant?.value;
    if (typeof v !== 'number' || !(v >= 0 && v <= 100)) throw new CompileError(`percentile must be a constant from 0 to 100 (in "${node.toString()}")`);
    p = v;
  }
  const found = slots.findIndex((s) => s.kind === kind && s.arg === arg && s.p === p);
  if (found >= 0) return found;
  slots.push({ kind, arg, p });
  return slots.length - 1;
}

function compileArg(node: MNode, args: { key: string; expr: CompiledExpression; num: (c: EvalContext) => number }[], skipNulls: boolean, hook: ArgumentHook | undefined): number {
  const key = node.toString();
  const existing = args.findIndex((a) => a.key === key);
  if (existing >= 0) return existing;
  const hooked = hook?.(key);
  if (hooked !== undefined) return hookedArg(key, hooked, args, skipNulls);
  const env: BuildEnv<EvalContext> = { allowPaths: true, paths: new Set(), aggregateNames: AGGREGATE_NAMES };
  const built = buildNode(node, env);
  if (built.kind === 'str') throw new CompileError(`aggregate argument cannot be a string (in "${key}")`);
  const f = built.fn;
  const label = built.path ?? key;
  const nan = new EvalFailure('not-a-number', `${label} is not a number`);
  const inf = new EvalFailure('not-a-number', `${label} is not finite`);
  // Finite numbers only: window state must stay plain JSON (no NaN/Infinity), and sums must not be poisoned.
  const num = built.kind === 'bool'
    ? (c: EvalContext) => (f(c) ? 1 : 0)
    : (c: EvalContext) => {
        const v = f(c);
        if (typeof v === 'number') {
          if (v - v === 0) return v;
          throw inf;
        }
        // A boolean from the event is not a number (docs/contract.md section 3): `"temperature": true` must not count as 1.
        throw nan;
      };
  const expr: CompiledExpression = Object.freeze({ source: key, paths: Object.freeze([...env.paths]), evaluate: f });
  args.push({ key, expr, num: skipNulls ? nullAsNaN(num, built, [...env.paths]) : num });
  return args.length - 1;
}

/**
 * Compiles an argument the sandbox cannot: the rule's own (src/rules/compileRule.ts gives one for an
 * argument reading `lag("name")`, docs/rules.md "LAG"). `undefined`: an ordinary argument. The function
 * returns a number, a boolean (counted as 1/0, as `sum(x > 30)`) or null, SQL's NULL.
 */
export type ArgumentHook = (source: string) => { fn: (ctx: EvalContext) => unknown; paths: readonly string[] } | { error: string } | undefined;

/**
 * A hooked argument: a null result is a null argument, left out of its aggregates under `nulls: "skip"`
 * (ASA: "aggregate functions ignore null values"; `t - LAG(t)` is NULL for a partition's first event),
 * and rejects the event as `not-a-number` under `"reject"`, as a null field does.
 */
function hookedArg(
  key: string,
  hooked: { fn: (ctx: EvalContext) => unknown; paths: readonly string[] } | { error: string },
  args: { key: string; expr: CompiledExpression; num: (c: EvalContext) => number }[],
  skipNulls: boolean,
): number {
  if ('error' in hooked) throw new CompileError(hooked.error);
  const f = hooked.fn;
  const nan = new EvalFailure('not-a-number', `${key} is not a number`);
  const inf = new EvalFailure('not-a-number', `${key} is not finite`);
  const nul = new EvalFailure('not-a-number', `${key} is null`);
  const num = (c: EvalContext): number => {
    const v = f(c);
    if (typeof v === 'number') {
      if (v - v === 0) return v;
      throw inf;
    }
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v === null) {
      if (skipNulls) return NaN;
      throw nul;
    }
    throw nan;
  };
  const expr: CompiledExpression = Object.freeze({ source: key, paths: Object.freeze([...hooked.paths]), evaluate: f });
  args.push({ key, expr, num: skipNulls ? nullAsNaN(num, { fn: f, kind: 'any' }, hooked.paths) : num });
  return args.length - 1;
}

/**
 * An argument's evaluation under `nulls: "skip"` (Azure Stream Analytics: "Except for the COUNT
 * function, aggregate functions ignore null values", and a missing field reads as null:
 * https://learn.microsoft.com/stream-analytics-query/aggregate-functions-azure-stream-analytics):
 * NaN, the select's null marker, when the argument is JSON null, or when its evaluation failed on a
 * field that is missing (`missing-field`) or null (arithmetic over a null is null). Other failures (a
 * string or boolean where a number is needed) still reject the event as `not-a-number`.
 */
function nullAsNaN(num: (c: EvalContext) => number, built: Built<EvalContext>, paths: readonly string[]): (c: EvalContext) => number {
  const reads = paths.filter((p) => !p.startsWith('$')).map((p) => compilePath(p.split('.')));
  const readsNull = (c: EvalContext): boolean => reads.some((read) => read(c.body) === null);
  const f = built.fn;
  const direct = built.segments !== undefined;
  return (c) => {
    try {
      return num(c);
    } catch (e) {
      if (!(e instanceof EvalFailure)) throw e;
      if (e.reason === 'missing-field') return NaN;
      if (e.reason === 'not-a-number' && (direct ? f(c) === null : readsNull(c))) return NaN;
      throw e;
    }
  };
}

/**
 * Compiles the `when` of a row `case` column (docs/rules.md "Rows"): an expression over the select names
 * (as `having`) and the rule's `groupBy` paths, which read the window's group values (`$deviceId`,
 * `machine.type`). A select name wins over a group path of the same name. A test that meets a null or a
 * non-number (`avg > 30` with no avg) is false, so the next branch is tried, as a having.
 */
export function compileRowCondition(
  source: string,
  names: readonly string[],
  groupBy: readonly string[],
  groupKey: (path: string) => string,
): CompileResult<(values: Record<string, number | null>, group: GroupValues) => boolean> {
  type Ctx = { v: Record<string, number | null>; g: GroupValues };
  return catchCompile(() => {
    const root = parseLimited(source);
    const known = new Set(names);
    const groups = new Set(groupBy);
    const env: BuildEnv<Ctx> = {
      allowPaths: false,
      paths: new Set(),
      aggregateNames: AGGREGATE_NAMES,
      leaf: (node) => {
        if (node.type === 'SymbolNode' && known.has(node.name!)) {
          const name = node.name!;
          return { fn: (c: Ctx) => (Object.prototype.hasOwnProperty.call(c.v, name) ? c.v[name] : null), kind: 'any' };
        }
        if (node.type === 'SymbolNode' || node.type === 'AccessorNode') {
          const path = node.toString();
          if (groups.has(path)) {
            const key = groupKey(path);
            return { fn: (c: Ctx) => (Object.prototype.hasOwnProperty.call(c.g, key) ? c.g[key] : null), kind: 'any' };
          }
          if (node.type === 'SymbolNode' && /^(pi|PI|e|E|tau|phi|LN2|LN10|LOG2E|LOG10E|SQRT1_2|SQRT2)$/.test(node.name!)) return undefined;
          throw new CompileError(`a case column can only use select names (${names.join(', ')}) and groupBy paths (${groupBy.join(', ')}); unknown "${path}"`);
        }
        return undefined;
      },
    };
    const built = buildNode(root, env);
    if (built.kind === 'str') throw new CompileError('a case condition cannot be a string');
    const f = built.fn;
    const fail = new EvalFailure('not-a-number', 'case condition is not a number or boolean');
    const ctx: Ctx = { v: {}, g: {} };
    return (values: Record<string, number | null>, group: GroupValues) => {
      // Once per emitted row, not per event.
      ctx.v = values;
      ctx.g = group;
      try {
        return conditionTruth(f(ctx), fail);
      } catch (e) {
        if (e instanceof EvalFailure) return false;
        throw e;
      }
    };
  });
}

/**
 * Compiles `having` over the select names (a name not in the select is a compile error). A having
 * that meets a null value (`avg > 30` with no avg) or a non-number is false: the window is not emitted.
 */
export function compileHaving(source: string, names: readonly string[]): CompileResult<(values: Record<string, number | null>) => boolean> {
  return catchCompile(() => {
    const root = parseLimited(source);
    const known = new Set(names);
    const env: BuildEnv<Record<string, number | null>> = {
      allowPaths: false,
      paths: new Set(),
      aggregateNames: AGGREGATE_NAMES,
      leaf: (node) => {
        if (node.type === 'SymbolNode' && known.has(node.name!)) {
          const name = node.name!;
          return { fn: (v: Record<string, number | null>) => (Object.prototype.hasOwnProperty.call(v, name) ? v[name] : null), kind: 'any' };
        }
        if (node.type === 'SymbolNode' || node.type === 'AccessorNode') {
          if (node.type === 'SymbolNode' && /^(pi|PI|e|E|tau|phi|LN2|LN10|LOG2E|LOG10E|SQRT1_2|SQRT2)$/.test(node.name!)) return undefined;
          throw new CompileError(`having can only use select names (${names.join(', ')}); unknown "${node.toString()}"`);
        }
        return undefined;
      },
    };
    const built = buildNode(root, env);
    const f = built.fn;
    const fail = new EvalFailure('not-a-number', 'having result is not a number or boolean');
    return (values: Record<string, number | null>) => {
      // Once per emitted window, not per event: a try/catch here costs nothing that matters.
      try {
        return conditionTruth(f(values), fail);
      } catch (e) {
        if (e instanceof EvalFailure) return false;
        throw e;
      }
    };
  });
}
