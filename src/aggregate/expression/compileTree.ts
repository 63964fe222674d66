/**
 * Tree → closure: walks a parsed mathjs tree and builds one plain JS closure per node, folding
 * constant subtrees and specialising the common shapes (`path op constant`, comparisons joined by
 * `and`) so that nothing of mathjs runs per event (bench/expressions.bench.ts). Everything the walk
 * does not know is a CompileError: assignments, function definitions, matrices, objects, ranges,
 * several statements, implicit multiplication (`2 inch` would silently read a field named `inch`)
 * and non-finite number literals (`1e400`, `Infinity`, `NaN`).
 * Callers change how leaves resolve through `BuildEnv.leaf` (compileSelect.ts: aggregate calls and
 * having names; sqlNulls.ts; src/rules/lagExpression.ts).
 */
import { buildField, buildPath } from './fieldPaths.js';
import { DANGEROUS_FUNCTIONS, findFunction, MATH_FUNCTIONS, namedConstant } from './functions.js';
import { CompileError, EvalFailure, text, type BuildEnv, type Built, type MNode } from './nodes.js';
import {
  ARITH, conditionTruth, logicTruth, looseEqual, nearlyEqual, ORDER, strictNumber, toNumber,
} from './numberSemantics.js';
import { EXPRESSION_LIMITS } from './parse.js';

type NumFn<C> = (c: C) => number;

/** `b` as a number-valued closure, converting the way arithmetic does; a string constant is a CompileError. */
function numeric<C>(b: Built<C>, fail: EvalFailure, where: string): NumFn<C> {
  if (b.kind === 'str') throw new CompileError(`a string cannot be used as a number; a string can only be compared with == or != (${where})`);
  if (b.constant) {
    const k = toNumber(b.constant.value, fail);
    return () => k;
  }
  if (b.segments) return buildPath(b.segments, fail) as unknown as NumFn<C>;
  const f = b.fn;
  if (b.kind === 'num') return f as NumFn<C>;
  if (b.kind === 'bool') return (c) => (f(c) ? 1 : 0);
  return (c) => {
    const v = f(c);
    return typeof v === 'number' ? v : strictNumber(v, fail);
  };
}

function nanFailure(b: Built<unknown>, where: string): EvalFailure {
  return new EvalFailure('not-a-number', b.path !== undefined ? `${b.path} is not a number (${where})` : `operand is not a number (${where})`);
}

/** Operators as written, for messages. */
const OP_TEXT: Readonly<Record<string, string>> = {
  add: '+', subtract: '-', multiply: '*', divide: '/', pow: '^', mod: 'mod', smaller: '<', larger: '>',
  smallerEq: '<=', largerEq: '>=', equal: '==', unequal: '!=',
};

/** Wraps a context-free node as a constant, evaluating it once (constant folding). */
function fold<C>(b: Built<C>, node: MNode): Built<C> {
  let value: unknown;
  try {
    value = b.fn(undefined as unknown as C);
  } catch (e) {
    if (e instanceof EvalFailure) throw new CompileError(`${e.detail} (in "${text(node)}")`);
    throw e;
  }
  const kind = typeof value === 'number' ? 'num' : typeof value === 'boolean' ? 'bool' : typeof value === 'string' ? 'str' : 'any';
  return { fn: () => value, kind, constant: { value } };
}

function isConst<C>(...bs: Built<C>[]): boolean {
  return bs.every((b) => b.constant !== undefined);
}

/** Builds closures for `node`. Throws CompileError with a message naming the node. */
export function buildNode<C>(node: MNode, env: BuildEnv<C>, depth = 0): Built<C> {
  if (depth > EXPRESSION_LIMITS.maxDepth) throw new CompileError(`expression is nested too deeply (more than ${EXPRESSION_LIMITS.maxDepth} levels)`);
  const d = depth + 1;
  switch (node.type) {
    case 'ParenthesisNode':
      return buildNode(node.content!, env, d);
    case 'ConstantNode': {
      const v = node.value;
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new CompileError(`number literal "${text(node)}" is not finite`);
        return { fn: () => v, kind: 'num', constant: { value: v } };
      }
      if (typeof v === 'boolean') return { fn: () => v, kind: 'bool', constant: { value: v } };
      if (typeof v === 'string') return { fn: () => v, kind: 'str', constant: { value: v } };
      throw new CompileError(`constant "${text(node)}" is not allowed`);
    }
    case 'SymbolNode':
    case 'AccessorNode':
    case 'FunctionNode': {
      const hooked = env.leaf?.(node, env);
      if (hooked) return hooked;
      if (node.type === 'FunctionNode') return buildFunction(node, env, d);
      return buildFieldOrConstant(node, env);
    }
    case 'OperatorNode':
      return buildOperator(node, env, d);
    case 'ConditionalNode': {
      const cond = buildNode(node.condition!, env, d);
      const t = buildNode(node.trueExpr!, env, d);
      const f = buildNode(node.falseExpr!, env, d);
      if (t.kind === 'str' || f.kind === 'str') throw new CompileError(`a string can only be compared with == or != (in "${text(node)}")`);
      const fail = new EvalFailure('not-a-number', `condition is not a number or boolean (in "${text(node)}")`);
      const cf = cond.fn, tf = t.fn, ff = f.fn;
      const kind = t.kind === f.kind ? t.kind : 'any';
      const b: Built<C> = cond.kind === 'bool'
        ? { fn: (c) => (cf(c) ? tf(c) : ff(c)), kind }
        : { fn: (c) => (conditionTruth(cf(c), fail) ? tf(c) : ff(c)), kind };
      return isConst(cond, t, f) ? fold(b, node) : b;
    }
    case 'RelationalNode':
      return buildRelational(node, env, d);
    case 'AssignmentNode':
      throw new CompileError(`assignment is not allowed (in "${text(node)}")`);
    case 'FunctionAssignmentNode':
      throw new CompileError(`function definition is not allowed (in "${text(node)}")`);
    case 'ArrayNode':
      throw new CompileError(`matrices and arrays are not allowed (in "${text(node)}")`);
    case 'ObjectNode':
      throw new CompileError(`object literals are not allowed (in "${text(node)}")`);
    case 'RangeNode':
      throw new CompileError(`ranges are not allowed (in "${text(node)}")`);
    case 'BlockNode':
      throw new CompileError(`multiple statements are not allowed (in "${text(node)}")`);
    default:
      throw new CompileError(`${node.type} is not allowed (in "${text(node)}")`);
  }
}

function buildFieldOrConstant<C>(node: MNode, env: BuildEnv<C>): Built<C> {
  if (node.type === 'SymbolNode') {
    const v = namedConstant(node.name!);
    if (v !== undefined) return { fn: () => v, kind: 'num', constant: { value: v } };
  }
  return buildField(node, env);
}

function buildFunction<C>(node: MNode, env: BuildEnv<C>, d: number): Built<C> {
  const fnNode = node.fn as MNode;
  if (fnNode.type !== 'SymbolNode') throw new CompileError(`calling "${text(fnNode)}" is not allowed; only the fixed function list (in "${text(node)}")`);
  const name = fnNode.name!;
  if (name === 'isNull') return buildIsNull(node, env, d);
  const spec = findFunction(name);
  if (!spec) {
    if (DANGEROUS_FUNCTIONS.has(name)) throw new CompileError(`function "${name}" is not allowed (in "${text(node)}")`);
    if (env.aggregateNames?.has(name)) throw new CompileError(`aggregate "${name}" is only allowed at the top level of a select, not inside an argument, where or having (in "${text(node)}")`);
    throw new CompileError(`unknown function "${name}" (in "${text(node)}"); allowed: ${MATH_FUNCTIONS.join(', ')}`);
  }
  const args = node.args ?? [];
  if (args.length < spec.min || args.length > spec.max) {
    const want = spec.min === spec.max ? `${spec.min}` : spec.max === Infinity ? `at least ${spec.min}` : `${spec.min} to ${spec.max}`;
    throw new CompileError(`function "${name}" takes ${want} argument${spec.min === 1 && spec.max === 1 ? '' : 's'}, got ${args.length} (in "${text(node)}")`);
  }
  const built = args.map((a) => buildNode(a, env, d));
  const where = `argument of ${name}`;
  const nums = built.map((b) => numeric(b, nanFailure(b as Built<unknown>, where), `in "${text(node)}"`));
  let b: Built<C>;
  if (args.length === 1 && spec.f1) {
    const f = spec.f1, a0 = nums[0]!;
    b = { fn: (c) => f(a0(c)), kind: name === 'isNaN' ? 'bool' : 'num' };
  } else if (args.length === 2 && spec.f2) {
    const f = spec.f2, a0 = nums[0]!, a1 = nums[1]!;
    if (spec.decimals) {
      // mathjs throws for decimals outside 0..15 or non-integers; we fail the event instead.
      const bad = new EvalFailure('expression-error', `number of decimals must be an integer from 0 to 15 (in "${text(node)}")`);
      b = { fn: (c) => { const x = a0(c); const n = a1(c); if (!Number.isInteger(n) || n < 0 || n > 15) throw bad; return f(x, n); }, kind: 'num' };
    } else {
      b = { fn: (c) => f(a0(c), a1(c)), kind: 'num' };
    }
  } else {
    // Variadic: a buffer made once per call site; closures never re-enter their own site.
    const f = spec.fn!;
    const n = nums.length;
    const buf = new Array<number>(n).fill(0);
    b = { fn: (c) => { for (let i = 0; i < n; i++) buf[i] = nums[i]!(c); return f(buf); }, kind: 'num' };
  }
  return isConst(...built) ? fold(b, node) : b;
}

/**
 * `isNull(x)`: true when `x` is JSON null or reads a missing field (docs/rules.md "Expressions"), what
 * Azure Stream Analytics' `x IS NULL` gives for a missing or null field
 * (the WHERE reference's `expression IS [ NOT ] NULL`: https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics). Any other
 * failure of `x` (a string in arithmetic) still fails the event.
 */
function buildIsNull<C>(node: MNode, env: BuildEnv<C>, d: number): Built<C> {
  const args = node.args ?? [];
  if (args.length !== 1) throw new CompileError(`function "isNull" takes 1 argument, got ${args.length} (in "${text(node)}")`);
  const a = buildNode(args[0]!, env, d);
  const f = a.fn;
  const b: Built<C> = {
    fn: (c) => {
      try {
        return f(c) === null;
      } catch (e) {
        if (e instanceof EvalFailure && e.reason === 'missing-field') return true;
        throw e;
      }
    },
    kind: 'bool',
  };
  return isConst(a) ? fold(b, node) : b;
}

function buildOperator<C>(node: MNode, env: BuildEnv<C>, d: number): Built<C> {
  const fname = node.fn as string;
  const args = node.args ?? [];
  if (node.implicit) throw new CompileError(`implicit multiplication is not allowed; write "*" (in "${text(node)}")`);
  const where = `in "${text(node)}"`;
  if (fname === 'unaryMinus' || fname === 'unaryPlus') {
    const a = buildNode(args[0]!, env, d);
    const x = numeric(a, nanFailure(a as Built<unknown>, where), where);
    const b: Built<C> = fname === 'unaryMinus' ? { fn: (c) => -x(c), kind: 'num' } : { fn: x, kind: 'num' };
    return isConst(a) ? fold(b, node) : b;
  }
  if (fname === 'not') {
    const a = buildNode(args[0]!, env, d);
    if (a.kind === 'str') throw new CompileError(`a string can only be compared with == or != (${where})`);
    const fail = nanFailure(a as Built<unknown>, where);
    const f = a.fn;
    const b: Built<C> = { fn: (c) => !logicTruth(f(c), fail), kind: 'bool' };
    return isConst(a) ? fold(b, node) : b;
  }
  if (args.length !== 2) throw new CompileError(`operator "${node.op}" is not allowed (${where})`);
  const arith = ARITH[fname];
  const order = ORDER[fname];
  const isLogic = fname === 'and' || fname === 'or' || fname === 'xor';
  const isEq = fname === 'equal' || fname === 'unequal';
  if (!arith && !order && !isLogic && !isEq) {
    if (fname === 'to') throw new CompileError(`unit conversion is not allowed (${where})`);
    throw new CompileError(`operator "${node.op}" is not allowed (${where})`);
  }
  const l = buildNode(args[0]!, env, d);
  const r = buildNode(args[1]!, env, d);
  let b: Built<C>;
  if (isEq) {
    const neg = fname === 'unequal';
    if ((l.kind === 'str' && r.kind !== 'str' && r.kind !== 'any') || (r.kind === 'str' && l.kind !== 'str' && l.kind !== 'any')) {
      throw new CompileError(`a string can only be compared with a field or another string (${where})`);
    }
    const fail = new EvalFailure('not-a-number', `${l.path ?? r.path ?? 'operand'} cannot be compared with ${OP_TEXT[fname]} (${where})`);
    if (r.constant && (l.kind === 'any')) {
      const k = r.constant.value;
      const lf = l.fn;
      if (typeof k === 'number') {
        // Specialised: path == number.
        b = { fn: (c) => { const v = lf(c); return (typeof v === 'number' ? nearlyEqual(v, k) : looseEqual(v, k, fail)) !== neg; }, kind: 'bool' };
      } else if (typeof k === 'string') {
        b = { fn: (c) => { const v = lf(c); return (typeof v === 'string' ? v === k : looseEqual(v, k, fail)) !== neg; }, kind: 'bool' };
      } else {
        b = { fn: (c) => looseEqual(lf(c), k, fail) !== neg, kind: 'bool' };
      }
    } else {
      const lf = l.fn, rf = r.fn;
      b = { fn: (c) => looseEqual(lf(c), rf(c), fail) !== neg, kind: 'bool' };
    }
  } else if (isLogic) {
    if (l.kind === 'str' || r.kind === 'str') throw new CompileError(`a string can only be compared with == or != (${where})`);
    const lfail = nanFailure(l as Built<unknown>, where), rfail = nanFailure(r as Built<unknown>, where);
    const lf = l.fn, rf = r.fn;
    // mathjs 15 evaluates `and`/`or` lazily: `false and x` does not read x.
    if (l.kind === 'bool' && r.kind === 'bool') {
      // Both sides are comparisons or logic: no conversion needed (the common `where`).
      const lb = lf as (c: C) => boolean, rb = rf as (c: C) => boolean;
      if (fname === 'and') b = { fn: (c) => lb(c) && rb(c), kind: 'bool' };
      else if (fname === 'or') b = { fn: (c) => lb(c) || rb(c), kind: 'bool' };
      else b = { fn: (c) => lb(c) !== rb(c), kind: 'bool' };
    } else if (fname === 'and') b = { fn: (c) => logicTruth(lf(c), lfail) && logicTruth(rf(c), rfail), kind: 'bool' };
    else if (fname === 'or') b = { fn: (c) => logicTruth(lf(c), lfail) || logicTruth(rf(c), rfail), kind: 'bool' };
    else b = { fn: (c) => logicTruth(lf(c), lfail) !== logicTruth(rf(c), rfail), kind: 'bool' };
  } else {
    if (l.kind === 'str' || r.kind === 'str') throw new CompileError(`a string cannot be used as a number; a string can only be compared with == or != (${where})`);
    const x = numeric(l, nanFailure(l as Built<unknown>, where), where);
    if (arith) {
      if (r.constant) {
        const k = toNumber(r.constant.value, nanFailure(r as Built<unknown>, where));
        switch (fname) {
          case 'add': b = { fn: (c) => x(c) + k, kind: 'num' }; break;
          case 'subtract': b = { fn: (c) => x(c) - k, kind: 'num' }; break;
          case 'multiply': b = { fn: (c) => x(c) * k, kind: 'num' }; break;
          case 'divide': b = { fn: (c) => x(c) / k, kind: 'num' }; break;
          default: b = { fn: (c) => arith(x(c), k), kind: 'num' };
        }
      } else {
        const y = numeric(r, nanFailure(r as Built<unknown>, where), where);
        switch (fname) {
          case 'add': b = { fn: (c) => x(c) + y(c), kind: 'num' }; break;
          case 'subtract': b = { fn: (c) => x(c) - y(c), kind: 'num' }; break;
          case 'multiply': b = { fn: (c) => x(c) * y(c), kind: 'num' }; break;
          case 'divide': b = { fn: (c) => x(c) / y(c), kind: 'num' }; break;
          default: b = { fn: (c) => arith(x(c), y(c)), kind: 'num' };
        }
      }
    } else {
      const cmp = order!;
      if (r.constant) {
        // Specialised path-op-constant shapes, the common `where`.
        const k = toNumber(r.constant.value, nanFailure(r as Built<unknown>, where));
        switch (fname) {
          case 'larger': b = { fn: (c) => { const v = x(c); return v > k && !nearlyEqual(v, k); }, kind: 'bool' }; break;
          case 'smaller': b = { fn: (c) => { const v = x(c); return v < k && !nearlyEqual(v, k); }, kind: 'bool' }; break;
          case 'largerEq': b = { fn: (c) => { const v = x(c); return v >= k || nearlyEqual(v, k); }, kind: 'bool' }; break;
          default: b = { fn: (c) => { const v = x(c); return v <= k || nearlyEqual(v, k); }, kind: 'bool' };
        }
      } else {
        const y = numeric(r, nanFailure(r as Built<unknown>, where), where);
        b = { fn: (c) => cmp(x(c), y(c)), kind: 'bool' };
      }
    }
  }
  return isConst(l, r) ? fold(b, node) : b;
}

/** `a < b <= c`: mathjs evaluates the params left to right and stops at the first false comparison. */
function buildRelational<C>(node: MNode, env: BuildEnv<C>, d: number): Built<C> {
  const params = (node.params ?? []).map((p) => buildNode(p, env, d));
  const conds = node.conditionals ?? [];
  const where = `in "${text(node)}"`;
  const steps: ((a: unknown, b: unknown) => boolean)[] = conds.map((name, i) => {
    const l = params[i]!, r = params[i + 1]!;
    if (name === 'equal' || name === 'unequal') {
      const fail = new EvalFailure('not-a-number', `operands cannot be compared with ${OP_TEXT[name]} (${where})`);
      const neg = name === 'unequal';
      return (a, b) => looseEqual(a, b, fail) !== neg;
    }
    const cmp = ORDER[name];
    if (!cmp) throw new CompileError(`comparison "${name}" is not allowed (${where})`);
    if (l.kind === 'str' || r.kind === 'str') throw new CompileError(`a string can only be compared with == or != (${where})`);
    const lfail = nanFailure(l as Built<unknown>, where), rfail = nanFailure(r as Built<unknown>, where);
    return (a, b) => cmp(strictNumber(a, lfail), strictNumber(b, rfail));
  });
  const fns = params.map((p) => p.fn);
  const n = steps.length;
  const b: Built<C> = {
    fn: (c) => {
      let prev = fns[0]!(c);
      for (let i = 0; i < n; i++) {
        const next = fns[i + 1]!(c);
        if (!steps[i]!(prev, next)) return false;
        prev = next;
      }
      return true;
    },
    kind: 'bool',
  };
  return isConst(...params) ? fold(b, node) : b;
}
