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
import { buildSql, needsSqlNulls, type Opaque } from './sqlNulls.js';
import {
  addKept, addPacked, packedAdder, packedRowAdder, packedInit, packedReset, packedLayout, packedOf, packedResult, type PackedState, type TopEntry,
} from './packedSelectState.js';

/** A compiled select: argument evaluation per event plus the window aggregator. */
export interface CompiledSelect {
  readonly names: readonly string[];
  /** Distinct argument expressions; the engine evaluates them per event into a number tuple (item). */
  readonly args: readonly CompiledExpression[];
  /** Fills `out` with the arguments for one event; throws EvalFailure (missing-field / not-a-number). */
  evaluateArgs(ctx: EvalContext, out: number[]): void;
  readonly aggregator: WindowAggregator<readonly number[], unknown, Record<string, number | null>>;
  /** True when median/percentile/percentileDisc/distinct keep values (the state holds value arrays and sets beside its doubles). */
  readonly keepsValues: boolean;
  /** The argument evaluators `evaluateArgs` calls, in order (for a caller that calls them itself: src/rules/hotWindowStep.ts). */
  readonly argFns: ReadonlyArray<(ctx: EvalContext) => number>;
  /**
   * Per argument, the body path it is when the argument is exactly one (`avg(machine.temperature)`),
   * else null: its `argFns` entry then returns the value at that path when it is a finite number (and
   * throws, returns NaN, or for an argument only distinct/count use returns a string or boolean
   * otherwise), so a caller holding that value when it is a finite number may use it instead
   * (src/rules/hotWindowStep.ts with the fused executor's value scratch).
   */
  readonly argPaths: ReadonlyArray<readonly string[] | null>;
  /**
   * The aggregator's `add` for a state in the packed layout (an array), specialized to this select's
   * layout (packedSelectState.ts `packedAdder`); null when the select keeps values or has topOne.
   */
  readonly packedAdd: ((d: number[], item: readonly number[], time: number) => void) | null;
  /**
   * `packedAdd` for a state held in a `Float64Array` row from index `b` on (packedSelectState.ts
   * `packedRowAdder`, src/windows/alignedRows.ts); null when `packedAdd` is. `packedLength`: the
   * state's number of slots.
   */
  readonly packedRowAdd: ((d: Float64Array, b: number, item: readonly number[], time: number) => void) | null;
  readonly packedLength: number;
}

interface Slot {
  readonly kind: AggregateKind;
  /** Index into args, or -1 for `count()`. */
  readonly arg: number;
  readonly p: number;
  /** `topOne`: its order keys (args) and directions, and its index among the select's topOne slots. */
  readonly keys?: readonly { readonly arg: number; readonly desc: boolean }[];
  readonly top?: number;
}

/**
 * One distinct argument; `segments` when it is exactly one body path read as a finite number. `scalar`:
 * its evaluation for an argument that only `distinct` and `count` use, which also passes a string or a
 * boolean read from the event through as it is (typed as a number in the item; packedSelectState.ts
 * `addKept` keys it apart from numbers).
 */
interface Arg {
  readonly key: string;
  readonly expr: CompiledExpression;
  num: (c: EvalContext) => number;
  readonly segments?: readonly string[];
  readonly scalar?: (c: EvalContext) => number;
}

interface AggCtx {
  readonly r: (number | null)[];
}

const ARITY: Readonly<Record<AggregateKind, readonly [number, number]>> = {
  count: [0, 1], sum: [1, 1], avg: [1, 1], min: [1, 1], max: [1, 1], stdev: [1, 1], stdevp: [1, 1],
  var: [1, 1], varp: [1, 1], median: [1, 1], percentile: [2, 2], percentileDisc: [2, 2], first: [1, 1], last: [1, 1], distinct: [1, 1],
  topOne: [1, 32],
};

const NEEDS: Readonly<Record<AggregateKind, keyof ArgNeeds | null>> = {
  count: null, sum: 'sum', avg: 'sum', min: 'min', max: 'max', stdev: 'variance', stdevp: 'variance',
  var: 'variance', varp: 'variance', median: 'values', percentile: 'values', percentileDisc: 'values', first: 'first', last: 'last', distinct: 'distinct', topOne: null,
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

  const args: Arg[] = [];
  const slots: Slot[] = [];
  const outers: { name: string; fn: (c: AggCtx) => unknown; uses: number[]; readsNull: boolean; sql: boolean; record: boolean }[] = [];

  for (const name of names) {
    if (name === '__proto__') {
      errors[name] = 'select name "__proto__" is not allowed';
      continue;
    }
    const source = select[name];
    const r = catchCompile(() => compileOuter(source as string, args, slots, skipNulls, hook));
    // An expression that tests a null itself (`isNull(avg(t)) ? 0 : avg(t)`, ASA's CASE WHEN AVG(t) IS
    // NULL ...) is evaluated even when one of its aggregates is null; elsewhere a null aggregate makes it
    // null. One built with SQL's NULL (`nulls: "skip"`) computes its own nulls.
    if (r.ok) outers.push({ name, ...r.value, readsNull: r.value.sql || /\bisNull\s*\(/.test(source as string), record: isTopOne(source as string) });
    else errors[name] = r.error;
    // topOne gives a record: it is a whole select expression, not an operand.
    if (r.ok && !isTopOne(source as string) && r.value.uses.some((u) => slots[u]!.kind === 'topOne')) errors[name] = `topOne(...) must be the whole select expression (in "${String(source).slice(0, 60)}")`;
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };

  const nArgs = args.length;
  const recordArg = args.findIndex((a) => a.key === RECORD_ARG);
  const needs: ArgNeeds[] = args.map(() => ({ ...noNeeds(), count: skipNulls }));
  for (const s of slots) {
    const need = NEEDS[s.kind];
    if (need && s.arg >= 0) needs[s.arg]![need] = true;
  }
  // The event's body is no number: it has no running figures (not even a non-null count).
  if (recordArg >= 0) needs[recordArg]!.count = false;
  // An argument only distinct(x) and count(x) use takes any JSON scalar (ASA's COUNT(DISTINCT x) and
  // COUNT(x) take "an expression of any type": docs/asa-migration.md); one that a number aggregate or a
  // topOne key also uses keeps number semantics, so `avg(x)` beside `distinct(x)` still rejects a string x.
  const numberUse = args.map(() => false);
  for (const s of slots) {
    if (s.kind !== 'distinct' && s.kind !== 'count' && s.kind !== 'topOne' && s.arg >= 0) numberUse[s.arg] = true;
    for (const k of s.keys ?? []) numberUse[k.arg] = true;
  }
  args.forEach((a, i) => {
    if (numberUse[i] || a.scalar === undefined) return;
    // `segments` stays: a caller's number scratch holds NaN for a string or boolean, and then calls this
    // (src/rules/fusedRules.ts ValueScratch), so a number is still read once per event.
    a.num = a.scalar;
  });
  const tops = slots.filter((sl) => sl.kind === 'topOne');
  const keepsValues = needs.some((n) => n.values || n.distinct);
  const nTops = tops.length;
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
      if (o.record) {
        // A whole topOne(...) select: the event's body as it came (a record, not a number).
        (out as Record<string, unknown>)[o.name] = r[o.uses[0]!] ?? null;
        continue;
      }
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

  // One layout for every select (packedSelectState.ts); a select that keeps values adds their slots,
  // one with topOne a slot for its top events.
  const layout = packedLayout(needs, cap, nTops);
  const slotArgs = slots.map((s) => (s.arg >= 0 ? layout.args[s.arg] : undefined));
  const slotKinds = slots.map((s) => s.kind);
  const slotPs = slots.map((s) => s.p);
  const slotTops = slots.map((s) => s.top ?? -1);
  const topsAt = layout.tops;
  const addArgs = keepsValues ? addKept : (addPacked as (d: PackedState, l: typeof layout, item: readonly number[], time: number) => void);
  const add = nTops === 0
    ? addArgs
    : (d: PackedState, l: typeof layout, item: readonly number[], time: number): void => {
        addArgs(d, l, item, time);
        addTops(d[topsAt] as TopEntry[], tops, item);
      };
  const aggregator: WindowAggregator<readonly number[], unknown, Record<string, number | null>> = {
    init: packedInit(layout),
    reset: packedReset(layout),
    // A state restored from a block-format checkpoint is an object: `packedOf` converts it once.
    add: (state, item, time) => add(Array.isArray(state) ? (state as PackedState) : packedOf(state, layout), layout, item, time),
    result: (state) => {
      const d = Array.isArray(state) ? (state as PackedState) : packedOf(state, layout);
      for (let i = 0; i < nSlots; i++) {
        const top = slotTops[i]!;
        // A topOne's value is the top event's body (a record: finish() passes it through as it is).
        r[i] = top >= 0 ? (((d[topsAt] as TopEntry[])[top]?.r ?? null) as number | null) : packedResult(slotKinds[i]!, slotArgs[i], d, slotPs[i]);
      }
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
    argFns: Object.freeze([...argNums]),
    argPaths: Object.freeze(args.map((a) => a.segments ?? null)),
    packedAdd: packedAdder(layout),
    packedRowAdd: packedRowAdder(layout),
    packedLength: layout.length,
  };
  return { ok: true, value };
}

/**
 * Compiles one select expression: aggregate calls become slots (deduplicated), their arguments
 * become args (deduplicated by canonical text), the rest is arithmetic over slot results.
 */
function compileOuter(
  source: string,
  args: Arg[],
  slots: Slot[],
  skipNulls: boolean,
  hook: ArgumentHook | undefined,
): { fn: (c: AggCtx) => unknown; uses: number[]; sql: boolean } {
  if (typeof source !== 'string') throw new CompileError('select expression must be a string');
  const root = parseLimited(source);
  const isAggregateCall: Opaque = (node) => node.type === 'FunctionNode' && (node.fn as MNode).type === 'SymbolNode' && AGGREGATE_NAMES.has((node.fn as MNode).name!);
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
  if (skipNulls && needsSqlNulls(root, isAggregateCall)) {
    // `avg(t) + null`, `count() == 0 ? null : avg(t)`: SQL's NULL (sqlNulls.ts) over the aggregates' values.
    const sql = buildSql(root, env, isAggregateCall);
    if (uses.size === 0) throw new CompileError(`select expression must use an aggregate such as avg(x) or count() (in "${source.slice(0, 60)}")`);
    if (sql.str) throw new CompileError('select expression cannot be a string');
    return { fn: sql.fn, uses: [...uses], sql: true };
  }
  const built = buildNode(root, env);
  if (uses.size === 0) throw new CompileError(`select expression must use an aggregate such as avg(x) or count() (in "${source.slice(0, 60)}")`);
  if (built.kind === 'str') throw new CompileError('select expression cannot be a string');
  return { fn: built.fn, uses: [...uses], sql: false };
}

function compileAggregateCall(
  node: MNode,
  kind: AggregateKind,
  args: Arg[],
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
  if (kind === 'topOne') return compileTopOne(node, args, slots, skipNulls, hook);
  let arg = -1;
  if (callArgs.length > 0) arg = compileArg(callArgs[0]!, args, skipNulls, hook);
  let p = 0;
  if (kind === 'percentile' || kind === 'percentileDisc') {
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

/** The pseudo-argument that hands a topOne the event's body (never a number: add() skips it). */
const RECORD_ARG = '$record';

function isTopOne(source: string): boolean {
  return /^\s*topOne\s*\(/.test(source) && (() => {
    try {
      const n = parseLimited(source);
      return n.type === 'FunctionNode' && (n.fn as MNode).name === 'topOne';
    } catch {
      return false;
    }
  })();
}

/**
 * `topOne(k1 [, "asc"|"desc"], k2 ...)`: Azure Stream Analytics' `TopOne() OVER (ORDER BY k1 [ASC|DESC],
 * ...)` (https://learn.microsoft.com/stream-analytics-query/topone-azure-stream-analytics): "the top-rank
 * record", the body of the window's first event in that order ("The default sort order is ascending"
 * on ASA's ORDER BY). A null key ranks lowest, as CollectTop's "Null is treated as the minimal value"
 * (https://learn.microsoft.com/stream-analytics-query/collecttop-azure-stream-analytics); events that
 * tie on every key keep the earliest arrived (the pages do not say). One event per window is kept.
 */
function compileTopOne(
  node: MNode,
  args: Arg[],
  slots: Slot[],
  skipNulls: boolean,
  hook: ArgumentHook | undefined,
): number {
  const keys: { arg: number; desc: boolean }[] = [];
  for (const a of node.args ?? []) {
    const d = a.type === 'ConstantNode' && typeof a.value === 'string' ? a.value.toLowerCase() : undefined;
    if (d !== undefined) {
      const last = keys[keys.length - 1];
      if ((d !== 'asc' && d !== 'desc') || last === undefined) throw new CompileError(`topOne takes order keys, each optionally followed by "asc" or "desc" (in "${node.toString()}")`);
      keys[keys.length - 1] = { arg: last.arg, desc: d === 'desc' };
      continue;
    }
    keys.push({ arg: compileArg(a, args, skipNulls, hook), desc: false });
  }
  if (keys.length === 0) throw new CompileError(`topOne needs an order key (in "${node.toString()}")`);
  if (args.findIndex((a) => a.key === RECORD_ARG) < 0) {
    const expr: CompiledExpression = Object.freeze({ source: RECORD_ARG, paths: Object.freeze([]), evaluate: (c: EvalContext) => c.body });
    args.push({ key: RECORD_ARG, expr, num: (c) => c.body as unknown as number });
  }
  slots.push({ kind: 'topOne', arg: args.findIndex((a) => a.key === RECORD_ARG), p: 0, keys, top: slots.filter((s) => s.kind === 'topOne').length });
  return slots.length - 1;
}

/** Keeps, per topOne slot, the event that ranks first so far (see compileTopOne). */
function addTops(t: TopEntry[], tops: readonly Slot[], item: readonly number[]): void {
  for (let j = 0; j < tops.length; j++) {
    const s = tops[j]!;
    const keys = s.keys!;
    // NaN is the select's null marker (a null argument under nulls: "skip"); JSON keeps it as null.
    const k = keys.map((key) => {
      const v = item[key.arg]!;
      return v !== v || v === null ? null : v;
    });
    const best = t[j];
    if (best === null || best === undefined || ranksFirst(k, best.k, keys)) t[j] = { k, r: item[s.arg] };
  }
}

/** Whether keys `a` rank strictly before `b`; a null key is the lowest value. */
function ranksFirst(a: readonly (number | null)[], b: readonly (number | null)[], keys: readonly { desc: boolean }[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (x === y) continue;
    const lower = x === null ? true : y === null ? false : x < y;
    return keys[i]!.desc ? !lower : lower;
  }
  return false;
}

function compileArg(node: MNode, args: Arg[], skipNulls: boolean, hook: ArgumentHook | undefined): number {
  const key = node.toString();
  const existing = args.findIndex((a) => a.key === key);
  if (existing >= 0) return existing;
  const hooked = hook?.(key);
  if (hooked !== undefined) return hookedArg(key, hooked, args, skipNulls);
  const env: BuildEnv<EvalContext> = { allowPaths: true, paths: new Set(), aggregateNames: AGGREGATE_NAMES };
  if (skipNulls && needsSqlNulls(node)) {
    // `avg(t > 5 ? t : null)` (ASA's AVG(CASE WHEN t > 5 THEN t ELSE NULL END)): SQL's NULL (sqlNulls.ts),
    // a null argument left out of its aggregates as a null field is.
    const sql = buildSql(node, env);
    if (sql.str) throw new CompileError(`aggregate argument cannot be a string (in "${key}")`);
    return hookedArg(key, { fn: sql.fn, paths: [...env.paths] }, args, skipNulls);
  }
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
  // A string or boolean read from the event, as it is (a boolean the argument computes stays 1/0, as in `num`).
  const scalar = built.kind === 'bool'
    ? num
    : (c: EvalContext) => {
        const v = f(c);
        if (typeof v === 'number') {
          if (v - v === 0) return v;
          throw inf;
        }
        if (typeof v === 'string' || typeof v === 'boolean') return v as unknown as number;
        throw nan;
      };
  const expr: CompiledExpression = Object.freeze({ source: key, paths: Object.freeze([...env.paths]), evaluate: f });
  // A plain path (no arithmetic, not a boolean): `num` is the value read when it is a finite number.
  const segments = built.kind !== 'bool' && built.segments !== undefined ? Object.freeze([...built.segments]) : undefined;
  args.push({
    key, expr,
    num: skipNulls ? nullAsNaN(num, built, [...env.paths]) : num,
    scalar: skipNulls ? nullAsNaN(scalar, built, [...env.paths]) : scalar,
    ...(segments === undefined ? {} : { segments }),
  });
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
  args: Arg[],
  skipNulls: boolean,
): number {
  if ('error' in hooked) throw new CompileError(hooked.error);
  const f = hooked.fn;
  const nan = new EvalFailure('not-a-number', `${key} is not a number`);
  const inf = new EvalFailure('not-a-number', `${key} is not finite`);
  const nul = new EvalFailure('not-a-number', `${key} is null`);
  const eval0 = (c: EvalContext, strings: boolean): number => {
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
    // A string (`distinct(t > 5 ? s : null)`): only for an argument that only distinct/count use.
    if (strings && typeof v === 'string') return v as unknown as number;
    throw nan;
  };
  const num = (c: EvalContext): number => eval0(c, false);
  const scalar = (c: EvalContext): number => eval0(c, true);
  const expr: CompiledExpression = Object.freeze({ source: key, paths: Object.freeze([...hooked.paths]), evaluate: f });
  const any: Built<EvalContext> = { fn: f, kind: 'any' };
  args.push({ key, expr, num: skipNulls ? nullAsNaN(num, any, hooked.paths) : num, scalar: skipNulls ? nullAsNaN(scalar, any, hooked.paths) : scalar });
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
  options: { nulls?: 'reject' | 'skip' } = {},
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
    const sql = options.nulls === 'skip' && needsSqlNulls(root);
    const built = sql ? undefined : buildNode(root, env);
    if (built?.kind === 'str') throw new CompileError('a case condition cannot be a string');
    const f = built?.fn ?? buildSql(root, env).fn;
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
export function compileHaving(source: string, names: readonly string[], options: { nulls?: 'reject' | 'skip' } = {}): CompileResult<(values: Record<string, number | null>) => boolean> {
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
    // Under `nulls: "skip"`, SQL's NULL (sqlNulls.ts): `HAVING AVG(t) + NULL > 1` holds for no window.
    const f = options.nulls === 'skip' && needsSqlNulls(root) ? buildSql(root, env).fn : buildNode(root, env).fn;
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
