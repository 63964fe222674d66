/**
 * SQL's NULL in expressions, for rules with `nulls: "skip"` (docs/rules.md "Nulls"): what Azure Stream
 * Analytics computes for a query's NULL, a null or missing field, a NULL LAG or a null aggregate.
 *
 * - `null` is a constant; a field that is JSON null or missing reads as null.
 * - Arithmetic, comparisons (`==` and `!=` too: `x == null` is NULL, not true) and functions over a
 *   null are null: "any arithmetic operations involving null values will result in null"
 *   (https://learn.microsoft.com/stream-analytics-query/data-types-azure-stream-analytics does not
 *   say otherwise; the rule is T-SQL's, which ASA's language follows).
 * - `and`, `or`, `xor`, `not` follow SQL's three-valued logic (`null or true` is true, `null and false`
 *   is false); `c ? a : b` (ASA's CASE) takes `b` when `c` is null, and its results may be strings or
 *   null ("CASE ... THEN NULL", "THEN 'hi' ELSE t"); `isNull(x)` is true when `x` is null.
 * - A caller turns a null `where` or `having` into false (the WHERE reference: the rows "for which the
 *   condition is TRUE"), a null aggregate argument into a value left out, a null column into `null`.
 *
 * The parts of an expression that need none of this (no `null`, logic, conditional or `isNull`
 * below them) are built by the sandbox (compileExpression.ts) unchanged, and run on its fast path; only
 * when one fails (a missing field, a non-number) is it checked whether a value it read is null, which
 * makes the part null. So non-null numbers cost what they cost in a rule without `nulls: "skip"`, and a
 * string or boolean where a number is needed still fails the event as `not-a-number`.
 */
import { parse } from './mathjsBundle.js';
import {
  AGGREGATE_NAMES, buildNode, catchCompile, CompileError, conditionTruth, EvalFailure, nearlyEqual, parseLimited,
  type BuildEnv, type Built, type CompileResult, type MNode,
} from './compileExpression.js';
import { compilePath, MISSING } from '../util/readPath.js';
import type { EvalContext } from '../contracts/event.js';

/** A compiled node: its closure (null is SQL's NULL) and whether it can give a string. */
export interface SqlBuilt<C> {
  readonly fn: (c: C) => unknown;
  readonly str: boolean;
}

interface Transformable {
  transform(cb: (n: MNode) => MNode): MNode;
  forEach(cb: (n: MNode) => void): void;
  clone(): MNode;
}

/** Nodes whose inside is the caller's (an aggregate call of a select expression: its argument is per event). */
export type Opaque = (node: MNode) => boolean;

/** The logic operators, evaluated with SQL's three-valued logic (sqlLogic). */
export const LOGIC: ReadonlySet<string> = new Set(['and', 'or', 'xor', 'not']);
const SLOT = '__eddysql';

function strip(node: MNode): MNode {
  let n = node;
  while (n.type === 'ParenthesisNode' && n.content) n = n.content;
  return n;
}

function isNullConstant(n: MNode): boolean {
  return n.type === 'ConstantNode' && n.value === null;
}

function isIsNull(n: MNode): boolean {
  return n.type === 'FunctionNode' && typeof n.fn === 'object' && n.fn.type === 'SymbolNode' && n.fn.name === 'isNull';
}

function isEquality(n: MNode): boolean {
  return n.type === 'OperatorNode' && (n.fn === 'equal' || n.fn === 'unequal') && (n.args ?? []).length === 2;
}

/** A node this module evaluates itself (the sandbox has no null for it). */
function isSpecial(n: MNode): boolean {
  return isNullConstant(n) || isIsNull(n) || isEquality(n) || n.type === 'ConditionalNode' || (n.type === 'OperatorNode' && LOGIC.has(n.fn as string));
}

function hasSpecial(node: MNode, opaque: Opaque | undefined): boolean {
  const s = strip(node);
  if (isSpecial(s)) return true;
  if (opaque?.(s) === true) return false;
  let found = false;
  (s as unknown as Transformable).forEach((c) => {
    if (!found && hasSpecial(c, opaque)) found = true;
  });
  return found;
}

/** Whether `node` needs this module: it has `null`, logic, a conditional, `isNull` or `==`/`!=` (outside `opaque` nodes). */
export function needsSqlNulls(node: MNode, opaque?: Opaque): boolean {
  return hasSpecial(node, opaque);
}

/** `and`/`or` truth of a non-null value, as the sandbox's logic operators. */
export function truth(v: unknown, fail: EvalFailure): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0 && v === v;
  throw fail;
}

/**
 * SQL's three-valued `not`, `and`, `or`, `xor` over closures giving a value or null (unknown): FALSE AND
 * NULL is FALSE, TRUE AND NULL is NULL, TRUE OR NULL is TRUE, FALSE OR NULL is NULL; `b` is unused by `not`.
 */
export function sqlLogic<C>(op: string, a: (c: C) => unknown, b: (c: C) => unknown, fail: EvalFailure): (c: C) => unknown {
  switch (op) {
    case 'not':
      return (c) => { const v = a(c); return v === null ? null : !truth(v, fail); };
    case 'and':
      return (c) => {
        const l = a(c);
        if (l !== null && !truth(l, fail)) return false;
        const r = b(c);
        if (r !== null && !truth(r, fail)) return false;
        return l === null || r === null ? null : true;
      };
    case 'or':
      return (c) => {
        const l = a(c);
        if (l !== null && truth(l, fail)) return true;
        const r = b(c);
        if (r !== null && truth(r, fail)) return true;
        return l === null || r === null ? null : false;
      };
    default:
      return (c) => { const l = a(c); const r = b(c); return l === null || r === null ? null : truth(l, fail) !== truth(r, fail); };
  }
}

/**
 * `==` of two non-null values, as the sandbox's (strings as text, numbers with mathjs' tolerance). Values
 * of different types are not equal: ASA's simple CASE compares its input with each WHEN, and "The types
 * of the when_expressions do not necessarily have to match"
 * (https://learn.microsoft.com/stream-analytics-query/case-azure-stream-analytics), so `CASE c WHEN 'on'
 * THEN 1 WHEN 3 THEN 2 ELSE 0 END` is 2 for a `c` of 3 and 0 for a record (test/oracle/asaSemantics.test.ts).
 * A number and a boolean (ASA's bit is 1 or 0), and two records or arrays, still fail the event.
 */
function equal(a: unknown, b: unknown, fail: EvalFailure): boolean {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number' && tb === 'number') return nearlyEqual(a as number, b as number);
  if ((ta === 'string' || ta === 'boolean') && tb === ta) return a === b;
  if (ta === tb || (ta === 'number' && tb === 'boolean') || (ta === 'boolean' && tb === 'number')) throw fail;
  return false;
}

/**
 * Builds `node` with SQL's NULL. `env` is the sandbox's: its `leaf` resolves the caller's names
 * (aggregates, select names, `lag("x")`), whose values may be null. Throws CompileError.
 */
export function buildSql<C>(node: MNode, env: BuildEnv<C>, opaque?: Opaque): SqlBuilt<C> {
  const n = strip(node);
  const where = `in "${n.toString().slice(0, 60)}"`;
  if (isNullConstant(n)) return { fn: () => null, str: false };
  if (n.type === 'OperatorNode' && LOGIC.has(n.fn as string)) {
    const fail = new EvalFailure('not-a-number', `operand is not a number or boolean (${where})`);
    const parts = (n.args ?? []).map((a) => buildSql(a, env, opaque));
    if (parts.some((p) => p.str)) throw new CompileError(`a string can only be compared with == or != (${where})`);
    const [a, b] = parts.map((p) => p.fn) as [(c: C) => unknown, (c: C) => unknown];
    return { fn: sqlLogic(n.fn as string, a, b, fail), str: false };
  }
  if (n.type === 'ConditionalNode') {
    const fail = new EvalFailure('not-a-number', `condition is not a number or boolean (${where})`);
    const cond = buildSql(n.condition!, env, opaque);
    if (cond.str) throw new CompileError(`a condition cannot be a string (${where})`);
    const t = buildSql(n.trueExpr!, env, opaque);
    const f = buildSql(n.falseExpr!, env, opaque);
    const cf = cond.fn, tf = t.fn, ff = f.fn;
    // A NULL condition is not true: CASE goes on to the next WHEN or the ELSE (conditionTruth(null) is false).
    return { fn: (c) => (conditionTruth(cf(c), fail) ? tf(c) : ff(c)), str: t.str || f.str };
  }
  if (isIsNull(n)) {
    const args = n.args ?? [];
    if (args.length !== 1) throw new CompileError(`function "isNull" takes 1 argument, got ${args.length} (${where})`);
    const a = buildSql(args[0]!, env, opaque).fn;
    return { fn: (c) => a(c) === null, str: false };
  }
  if (isEquality(n)) {
    const [l, r] = (n.args ?? []).map((x) => buildSql(x, env, opaque)) as [SqlBuilt<C>, SqlBuilt<C>];
    const neg = n.fn === 'unequal';
    const fail = new EvalFailure('not-a-number', `operands cannot be compared with ${neg ? '!=' : '=='} (${where})`);
    const lf = l.fn, rf = r.fn;
    return { fn: (c) => { const a = lf(c); if (a === null) return null; const b = rf(c); return b === null ? null : equal(a, b, fail) !== neg; }, str: false };
  }
  return buildStrict(n, env, opaque);
}

/**
 * A node the sandbox builds: null when it fails and a value it reads is null (a field, a hooked leaf,
 * a part this module built, put in a slot). Strings it gives pass through (a field's value).
 */
function buildStrict<C>(n: MNode, env: BuildEnv<C>, opaque: Opaque | undefined): SqlBuilt<C> {
  // Each special part below the node is built here and read by the sandbox through a slot.
  const slotFns: ((c: C) => unknown)[] = [];
  const slots: unknown[] = [];
  const replaced = hasSpecial(n, opaque)
    ? (n as unknown as Transformable).transform((x) => {
        const s = strip(x);
        // A copy is a replacement, which transform does not enter.
        if (x !== n && opaque?.(s) === true) return (x as unknown as Transformable).clone();
        if (!isSpecial(s)) return x;
        const part = buildSql(s, env, opaque);
        if (part.str) throw new CompileError(`a CASE giving a string can only be a column or compared with == or != (in "${n.toString().slice(0, 60)}")`);
        slotFns.push(part.fn);
        slots.push(null);
        return parse(`${SLOT}${slotFns.length - 1}`) as unknown as MNode;
      })
    : n;
  const hooked: ((c: C) => unknown)[] = [];
  const paths = new Set<string>();
  const local: BuildEnv<C> = {
    ...env,
    paths,
    leaf: (x, e) => {
      if (x.type === 'SymbolNode' && x.name!.startsWith(SLOT)) {
        const i = Number(x.name!.slice(SLOT.length));
        return { fn: () => slots[i], kind: 'any' } satisfies Built<C>;
      }
      const b = env.leaf?.(x, e);
      if (b !== undefined && b.constant === undefined) hooked.push(b.fn);
      return b;
    },
  };
  const b = buildNode(replaced, local);
  for (const p of paths) env.paths.add(p);
  if (b.constant !== undefined) return { fn: b.fn, str: b.kind === 'str' };
  const f = b.fn;
  const reads = [...paths].filter((p) => !p.startsWith('$')).map((p) => compilePath(p));
  const readsNull = (c: C): boolean => {
    for (const s of slots) if (s === null) return true;
    for (const h of hooked) if (h(c) === null) return true;
    const body = (c as unknown as EvalContext).body;
    for (const r of reads) {
      const v = r(body);
      if (v === null || v === MISSING) return true;
    }
    return false;
  };
  const direct = (c: C): unknown => {
    try {
      return f(c);
    } catch (e) {
      if (!(e instanceof EvalFailure)) throw e;
      if (e.reason === 'missing-field' || readsNull(c)) return null;
      throw e;
    }
  };
  if (slotFns.length === 0) return { fn: direct, str: false };
  const k = slotFns.length;
  return {
    fn: (c) => {
      for (let i = 0; i < k; i++) slots[i] = slotFns[i]!(c);
      return direct(c);
    },
    str: false,
  };
}

/**
 * Compiles an event expression with SQL's NULL (a `where`, a select rule's column, an anomaly value);
 * `leaf` resolves the caller's names (`lag("x")`). `str` when it can give a string (a CASE's result).
 * Never throws.
 */
export function compileSqlExpression(
  source: string,
  leaf?: BuildEnv<EvalContext>['leaf'],
  paths: Set<string> = new Set(),
): CompileResult<SqlBuilt<EvalContext>> {
  return catchCompile(() => {
    const env: BuildEnv<EvalContext> = { allowPaths: true, paths, aggregateNames: AGGREGATE_NAMES, ...(leaf === undefined ? {} : { leaf }) };
    return buildSql(parseLimited(source), env);
  });
}

/**
 * Compiles a `where` with SQL's NULL: true only when the condition is TRUE. Over `and`/`or` a condition
 * is TRUE in three-valued logic exactly when it is true with each unknown part read as false (both are
 * monotone), so those are combined as plain booleans, which costs what the sandbox's `and`/`or` cost;
 * anything else (`not`, `xor`, a conditional) is built with NULL by buildSql. Never throws.
 */
export function compileSqlPredicate(source: string, leaf?: BuildEnv<EvalContext>['leaf']): CompileResult<(ctx: EvalContext) => boolean> {
  return catchCompile(() => {
    const env: BuildEnv<EvalContext> = { allowPaths: true, paths: new Set(), aggregateNames: AGGREGATE_NAMES, ...(leaf === undefined ? {} : { leaf }) };
    const fail = new EvalFailure('not-a-number', `where is not a number or boolean (in "${source.slice(0, 60)}")`);
    const build = (node: MNode): ((c: EvalContext) => boolean) => {
      const n = strip(node);
      if (n.type === 'OperatorNode' && (n.fn === 'and' || n.fn === 'or') && (n.args ?? []).length === 2) {
        const l = build(n.args![0]!);
        const r = build(n.args![1]!);
        return n.fn === 'and' ? (c) => l(c) && r(c) : (c) => l(c) || r(c);
      }
      const b = buildSql(n, env);
      if (b.str) throw new CompileError(`a string can only be compared with == or != (in "${n.toString().slice(0, 60)}")`);
      const f = b.fn;
      // A comparison gives a boolean (or null): tested first, as the sandbox's where does.
      return (c) => {
        const v = f(c);
        return v === true || (v !== false && conditionTruth(v, fail));
      };
    };
    return build(parseLimited(source));
  });
}
