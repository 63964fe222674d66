/**
 * The expression sandbox (docs/contract.md section 5): mathjs parses a rule's expression once, at
 * validation; we then walk the node tree and build plain JS closures for a fixed subset. Nothing of
 * mathjs runs per event except a few rarely used rounding functions, called with numbers only.
 * Why not `compile().evaluate()`: ~2 µs per call against ~5 ns for a closure
 * (bench/expressions.bench.ts, docs/performance.md), and mathjs' evaluate reaches its whole
 * function namespace (import, createUnit, evaluate, ...), which a sandbox must not.
 *
 * Semantics follow mathjs 15 with its default config (relTol 1e-12, absTol 1e-15), except these
 * deliberate deviations (each is tested):
 * - JSON types are strict (docs/contract.md section 3): a string is never converted to a number. A string
 *   operand of arithmetic, ordering (`<` ...), logic (`and` ...) or a math function throws
 *   `EvalFailure('not-a-number')`; mathjs would parse `"21.5"` as 21.5.
 * - `==`/`!=` compare two strings as text (`machine.type == "A"`); mathjs converts both to numbers
 *   and throws for `"A"`. A string against a number or boolean throws `not-a-number`. `null`
 *   equals only `null`, as in mathjs. Objects and arrays are `not-a-number` everywhere.
 * - `null` in arithmetic throws `not-a-number` (mathjs throws a TypeError too, for most operators).
 * - Where mathjs would return a Complex number (`sqrt(-1)`, `log(-1)`, `asin(2)`, `(-8)^(1/3)`), we
 *   return NaN. Results that mathjs gives as real numbers (`1/0` = Infinity, `log(0)` = -Infinity,
 *   `0/0` = NaN) are the same.
 * - A boolean read from the event is not a number (docs/contract.md sections 3 and 5):
 *   `"temperature": true` in arithmetic, an ordering, `==` against a number, an aggregate argument or
 *   a detector value throws `not-a-number` (mathjs would take it as 1). It compares with `==`/`!=`
 *   against a boolean (`x == true`) and works in logic (`and` ...). Booleans the expression computes
 *   itself (a comparison, `true` literal) still act as 1/0, as in mathjs, so
 *   `sum(machine.temperature > 30)` counts.
 * - The named constants `pi PI e E tau phi LN2 LN10 LOG2E LOG10E SQRT1_2 SQRT2` always mean the
 *   constant; an event field of the same top-level name cannot be read (mathjs' scope would win).
 * - Non-finite number literals (`1e400`, `Infinity`, `NaN`) are rejected at compile time.
 * - Implicit multiplication (`2x`, `2 inch`) is rejected: a symbol is an event field here, so `2 inch`
 *   would silently read a field named `inch`.
 *
 * Field paths read own properties only. For names that Object.prototype or Array.prototype define
 * (`toString`, `length`, ...) every read checks `hasOwnProperty`; other names are read directly,
 * which is the same thing for decoded JSON (its only prototypes are those two) at a third of the
 * cost. `__proto__`, `constructor` and `prototype` are rejected at compile time.
 * `round`/`floor`/`ceil`/`fix` give mathjs' exact results (tested against mathjs), computing natively
 * away from rounding boundaries and calling mathjs near them. `hypot` calls mathjs and allocates.
 */
import { mathjsRounding, parse } from './mathjsBundle.js';
import type { EvalContext } from '../contracts/event.js';
import { compilePath, inheritable, MISSING } from '../util/readPath.js';

/** An expression compiled to closures; `paths` lists the dotted body paths it reads (`$deviceId` for identity). */
export interface CompiledExpression {
  readonly source: string;
  readonly paths: readonly string[];
  evaluate(ctx: EvalContext): unknown;
}

/** Validators return errors instead of throwing (after aedes' lib/utils.js, https://github.com/moscajs/aedes). */
export type CompileResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Why one event could not be evaluated; the engine catches it per event and counts `reason`. */
export type EvalFailureReason = 'missing-field' | 'not-a-number' | 'expression-error';

/**
 * Thrown by compiled closures for bad data. Instances are created once per failure site at compile
 * time and re-thrown, so a failing event costs no allocation or stack capture: treat them as
 * immutable values, not as carriers of a useful stack.
 */
export class EvalFailure extends Error {
  readonly reason: EvalFailureReason;
  readonly detail: string;
  constructor(reason: EvalFailureReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'EvalFailure';
    this.reason = reason;
    this.detail = detail;
  }
}

/** Limits against hostile rules (test/unit/hostile/hostileRules.test.ts). */
export const EXPRESSION_LIMITS = Object.freeze({ maxLength: 2000, maxNodes: 500, maxDepth: 200, maxNesting: 64 });

/** mathjs 15 default config: `relTol` 1e-12, `absTol` 1e-15. */
const REL_TOL = 1e-12;
const ABS_TOL = 1e-15;

/** Copy of mathjs' `nearlyEqual` (utils/number.js), with the default tolerances. */
export function nearlyEqual(a: number, b: number): boolean {
  if (a !== a || b !== b) return false;
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  const d = a - b;
  const ad = d < 0 ? -d : d;
  const aa = a < 0 ? -a : a;
  const ab = b < 0 ? -b : b;
  const tol = REL_TOL * (aa > ab ? aa : ab);
  return ad <= (tol > ABS_TOL ? tol : ABS_TOL);
}

/** mathjs `mod`: `x - y * floor(x / y)`, and `x` when `y` is 0 (plain/number/arithmetic.js). */
export function modNumber(x: number, y: number): number {
  return y === 0 ? x : x - y * Math.floor(x / y);
}

/** mathjs `pow` for numbers: `x^±Infinity` is 0 where the real limit is 0; Complex cases give NaN here. */
export function powNumber(x: number, y: number): number {
  if ((x * x < 1 && y === Infinity) || (x * x > 1 && y === -Infinity)) return 0;
  return Math.pow(x, y);
}

// ---------------------------------------------------------------------------------------------
// Internal builder, shared with compileSelect/compileHaving (which change how leaves resolve).

/** A compiled node: a closure over some context type and what we know statically of its result. */
export interface Built<C> {
  readonly fn: (c: C) => unknown;
  /** 'num' and 'bool' are guaranteed result types; 'str' is a string constant; 'any' is unknown. */
  readonly kind: 'num' | 'bool' | 'str' | 'any';
  /** Set when the node does not depend on the context (constant-folded). */
  readonly constant?: { readonly value: unknown };
  /** Set when the node is a field path (used to name failures). */
  readonly path?: string;
  /** Set for body paths, so that numeric uses can fuse the read and the number check. */
  readonly segments?: readonly string[];
}

/** The parts of mathjs nodes we read (mathjs' own typings are a large union; we only need these). */
export interface MNode {
  readonly type: string;
  readonly value?: unknown;
  readonly name?: string;
  readonly op?: string;
  readonly fn?: MNode | string;
  readonly args?: readonly MNode[];
  readonly implicit?: boolean;
  readonly content?: MNode;
  readonly object?: MNode;
  readonly index?: MNode;
  readonly dimensions?: readonly MNode[];
  readonly condition?: MNode;
  readonly trueExpr?: MNode;
  readonly falseExpr?: MNode;
  readonly conditionals?: readonly string[];
  readonly params?: readonly MNode[];
  toString(): string;
}

/** Thrown inside the builder only (compile time); turned into `{ok:false}` at the API boundary. */
export class CompileError extends Error {}

/** Hooks that let a caller resolve some leaves itself (aggregate calls, having names). */
export interface BuildEnv<C> {
  /** Called for FunctionNode, SymbolNode and AccessorNode first; `undefined` means "default handling". */
  readonly leaf?: (node: MNode, env: BuildEnv<C>) => Built<C> | undefined;
  /** Whether field paths and identity symbols may be read (false in select outers and having). */
  readonly allowPaths: boolean;
  /** What an unknown symbol means when paths are not allowed. */
  readonly noPathMessage?: string;
  /** Collected dotted paths. */
  readonly paths: Set<string>;
  /** Extra message for function names that are aggregates (used outside a select's top level). */
  readonly aggregateNames?: ReadonlySet<string>;
}

const hasOwn = Object.prototype.hasOwnProperty;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

const NAMED_CONSTANTS: Readonly<Record<string, number>> = {
  pi: Math.PI, PI: Math.PI, e: Math.E, E: Math.E, tau: 2 * Math.PI, phi: (1 + Math.sqrt(5)) / 2,
  LN2: Math.LN2, LN10: Math.LN10, LOG2E: Math.LOG2E, LOG10E: Math.LOG10E, SQRT1_2: Math.SQRT1_2, SQRT2: Math.SQRT2,
};

/** Functions known to be dangerous get a pointed message; every other unknown name is rejected too. */
const DANGEROUS_FUNCTIONS = new Set([
  'import', 'createUnit', 'evaluate', 'parse', 'compile', 'simplify', 'derivative', 'rationalize', 'resolve',
  'unit', 'reviver', 'replacer', 'config', 'help', 'chain', 'typed', 'matrix', 'sparse', 'index', 'range',
]);

type NumFn<C> = (c: C) => number;

function stripParens(node: MNode): MNode {
  let n = node;
  while (n.type === 'ParenthesisNode' && n.content) n = n.content;
  return n;
}

function text(node: MNode): string {
  const s = node.toString();
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** A literal constant as a number, the way mathjs converts numbers and booleans (`true + 1`); anything else fails. */
function toNumber(v: unknown, fail: EvalFailure): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw fail;
}

/** A value read from the event (or of unknown origin) as a number: JSON types are strict, a boolean is not one. */
function strictNumber(v: unknown, fail: EvalFailure): number {
  if (typeof v === 'number') return v;
  throw fail;
}

/** Truthiness of `and`/`or`/`not`/`xor` (mathjs converts to number; NaN is false). */
function logicTruth(v: unknown, fail: EvalFailure): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0 && v === v;
  throw fail;
}

/** Truthiness of `a ? b : c` and of where/having results: mathjs' ConditionalNode.testCondition. */
export function conditionTruth(v: unknown, fail: EvalFailure): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0 && v === v;
  if (typeof v === 'string') return v !== '';
  if (v === null || v === undefined) return false;
  throw fail;
}

/** `==` across JSON types (see the module comment for the deviations from mathjs). */
function looseEqual(a: unknown, b: unknown, fail: EvalFailure): boolean {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number' && tb === 'number') return nearlyEqual(a as number, b as number);
  if (ta === 'boolean' && tb === 'boolean') return a === b;
  if (ta === 'string' && tb === 'string') return a === b;
  if (a === null || b === null) {
    if ((ta === 'object' && a !== null) || (tb === 'object' && b !== null)) throw fail;
    return a === b;
  }
  throw fail;
}

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

/**
 * Builds the closure that reads a field path: own properties only, failures pre-allocated. With
 * `asNumber`, the closure also converts the value the way arithmetic does (one closure instead of
 * two on the hot path). Paths of one or two segments that no prototype could answer to (`inheritable`,
 * src/util/readPath.ts) are read inline, the hot case of bench/expressions.bench.ts; the rest through
 * compilePath.
 */
function buildPath<C extends EvalContext>(segments: readonly string[], asNumber?: EvalFailure): (c: C) => unknown {
  const path = segments.join('.');
  const missing = new EvalFailure('missing-field', path);
  const n = segments.length;
  const fast = segments.every((k) => !inheritable(k));
  if (fast && n === 2) {
    const k0 = segments[0]!;
    const k1 = segments[1]!;
    if (asNumber) {
      const nan = asNumber;
      return (c) => {
        const o = c.body[k0];
        if (typeof o === 'object' && o !== null) {
          const v = (o as Record<string, unknown>)[k1];
          if (typeof v === 'number') return v;
          if (v !== undefined) return strictNumber(v, nan);
        }
        throw missing;
      };
    }
    return (c) => {
      const o = c.body[k0];
      if (typeof o === 'object' && o !== null) {
        const v = (o as Record<string, unknown>)[k1];
        if (v !== undefined) return v;
      }
      throw missing;
    };
  }
  if (fast && n === 1) {
    const k0 = segments[0]!;
    if (asNumber) {
      const nan = asNumber;
      return (c) => {
        const v = c.body[k0];
        if (typeof v === 'number') return v;
        if (v !== undefined) return strictNumber(v, nan);
        throw missing;
      };
    }
    return (c) => {
      const v = c.body[k0];
      if (v !== undefined) return v;
      throw missing;
    };
  }
  const readBody = compilePath(segments);
  const read = (c: C): unknown => {
    const v = readBody(c.body);
    if (v === MISSING) throw missing;
    return v;
  };
  if (!asNumber) return read;
  const nan = asNumber;
  return (c) => {
    const v = read(c);
    return typeof v === 'number' ? v : strictNumber(v, nan);
  };
}

/** `machine.temperature` / `machine["temperature"]` to segments, or a CompileError. */
function pathSegments(node: MNode): string[] {
  const n = stripParens(node);
  if (n.type === 'SymbolNode') return [n.name!];
  if (n.type === 'AccessorNode') {
    const head = pathSegments(n.object!);
    const idx = n.index!;
    const dims = idx.dimensions ?? [];
    const d = dims.length === 1 ? stripParens(dims[0]!) : undefined;
    if (!d || d.type !== 'ConstantNode' || typeof d.value !== 'string') {
      throw new CompileError(`indexing is not allowed, only field names (in "${text(node)}"); write a.b or a["b"]`);
    }
    head.push(d.value);
    return head;
  }
  throw new CompileError(`property access is only allowed on event fields (in "${text(node)}")`);
}

function checkSegments(segments: readonly string[], node: MNode): void {
  for (const s of segments) {
    if (FORBIDDEN_SEGMENTS.has(s)) throw new CompileError(`field name "${s}" is not allowed (in "${text(node)}")`);
    if (s.length === 0) throw new CompileError(`empty field name (in "${text(node)}")`);
  }
}

interface FnSpec {
  readonly min: number;
  readonly max: number;
  readonly f1?: (x: number) => number | boolean;
  readonly f2?: (x: number, y: number) => number;
  readonly fn?: (xs: number[]) => number;
  /** Checked before f2 (mathjs throws for such arguments; we fail the event the same way). */
  readonly decimals?: true;
}

const asN1 = (f: unknown) => f as (x: number) => number;
const asN2 = (f: unknown) => f as (x: number, n: number) => number;
// Called only near rounding boundaries (and for hypot); buildFunction loads the library when it
// compiles a call of one of ROUNDING_FUNCTIONS, so no event waits for the load.
const mRound1 = (x: number): number => asN1(mathjsRounding().round)(x);
const mRound2 = (x: number, n: number): number => asN2(mathjsRounding().round)(x, n);
const mFloor1 = (x: number): number => asN1(mathjsRounding().floor)(x);
const mCeil1 = (x: number): number => asN1(mathjsRounding().ceil)(x);
const mHypot = (xs: number[]): number => (mathjsRounding().hypot as unknown as (...xs: number[]) => number)(...xs);
/** Functions whose implementation below may call the full mathjs library (mathjsBundle.ts). */
const ROUNDING_FUNCTIONS = new Set(['round', 'floor', 'ceil', 'fix', 'hypot']);

const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);

/**
 * mathjs `round(x, n)` without its cost (~µs: it rounds through decimal strings, twice). Far from
 * a rounding boundary (the half-way point, widened by the 1e-12 pre-rounding mathjs applies for
 * n < 12), `sign(x) * round-half-up(|x| * 10^n) / 10^n` is provably the double mathjs returns
 * (both are the double nearest to the same decimal); near a boundary we call mathjs itself.
 */
function roundNumber(x: number, n: number): number {
  const p = POW10[n]!;
  const ax = x < 0 ? -x : x;
  const y = ax * p;
  if (y < 2147483648) {
    const fl = Math.floor(y);
    const d = y - fl - 0.5;
    const margin = n < 12 ? 1e-6 + 1e-12 * p : 1e-6;
    if (d > margin || d < -margin) {
      const r = (d > 0 ? fl + 1 : fl) / p;
      return x < 0 ? -r : r;
    }
    // An exact half with n = 0 (21.5: y is |x| itself, no product error): mathjs rounds half away from zero.
    if (n === 0 && d === 0) return x < 0 ? -(fl + 1) : fl + 1;
  }
  return n === 0 ? mRound1(x) : mRound2(x, n);
}

/** mathjs `floor` for numbers: Math.floor unless x is within tolerance below an integer (then mathjs itself). */
function floorNumber(x: number): number {
  const f = Math.floor(x);
  const ax = x < 0 ? -x : x;
  return f + 1 - x > 1e-9 * (ax > 1 ? ax : 1) ? f : mFloor1(x);
}

/** mathjs `ceil` for numbers: Math.ceil unless x is within tolerance above an integer (then mathjs itself). */
function ceilNumber(x: number): number {
  const c = Math.ceil(x);
  const ax = x < 0 ? -x : x;
  return x - (c - 1) > 1e-9 * (ax > 1 ? ax : 1) ? c : mCeil1(x);
}

/** mathjs `min`/`max` over numbers: NaN wins, comparisons use `smaller`/`larger` with tolerance. */
function minOf(xs: number[]): number {
  let m = xs[0]!;
  if (m !== m) return m;
  for (let i = 1; i < xs.length; i++) {
    const v = xs[i]!;
    if (v !== v) return v;
    if (v < m && !nearlyEqual(v, m)) m = v;
  }
  return m;
}
function maxOf(xs: number[]): number {
  let m = xs[0]!;
  if (m !== m) return m;
  for (let i = 1; i < xs.length; i++) {
    const v = xs[i]!;
    if (v !== v) return v;
    if (v > m && !nearlyEqual(v, m)) m = v;
  }
  return m;
}

/** The fixed function list. Everything else is rejected at compile time. */
const FUNCTIONS: Readonly<Record<string, FnSpec>> = {
  abs: { min: 1, max: 1, f1: Math.abs },
  sqrt: { min: 1, max: 1, f1: Math.sqrt },
  cbrt: { min: 1, max: 1, f1: Math.cbrt },
  exp: { min: 1, max: 1, f1: Math.exp },
  expm1: { min: 1, max: 1, f1: Math.expm1 },
  log: { min: 1, max: 2, f1: Math.log, f2: (x, b) => Math.log(x) / Math.log(b) },
  log10: { min: 1, max: 1, f1: Math.log10 },
  log2: { min: 1, max: 1, f1: Math.log2 },
  log1p: { min: 1, max: 1, f1: Math.log1p },
  pow: { min: 2, max: 2, f2: powNumber },
  mod: { min: 2, max: 2, f2: modNumber },
  square: { min: 1, max: 1, f1: (x) => x * x },
  cube: { min: 1, max: 1, f1: (x) => x * x * x },
  min: { min: 1, max: Infinity, f1: (x) => x, f2: (x, y) => minOf([x, y]), fn: minOf },
  max: { min: 1, max: Infinity, f1: (x) => x, f2: (x, y) => maxOf([x, y]), fn: maxOf },
  round: { min: 1, max: 2, f1: (x) => roundNumber(x, 0), f2: roundNumber, decimals: true },
  // floor(x, n) in mathjs is _floorNumber(x * 10^n) / 10^n (function/arithmetic/floor.js); ceil alike.
  floor: { min: 1, max: 2, f1: floorNumber, f2: (x, n) => floorNumber(x * POW10[n]!) / POW10[n]!, decimals: true },
  ceil: { min: 1, max: 2, f1: ceilNumber, f2: (x, n) => ceilNumber(x * POW10[n]!) / POW10[n]!, decimals: true },
  fix: { min: 1, max: 2, f1: (x) => (x > 0 ? floorNumber(x) : ceilNumber(x)), f2: (x, n) => (x > 0 ? floorNumber(x * POW10[n]!) / POW10[n]! : ceilNumber(x * POW10[n]!) / POW10[n]!), decimals: true },
  sign: { min: 1, max: 1, f1: Math.sign },
  sin: { min: 1, max: 1, f1: Math.sin },
  cos: { min: 1, max: 1, f1: Math.cos },
  tan: { min: 1, max: 1, f1: Math.tan },
  asin: { min: 1, max: 1, f1: Math.asin },
  acos: { min: 1, max: 1, f1: Math.acos },
  atan: { min: 1, max: 1, f1: Math.atan },
  sinh: { min: 1, max: 1, f1: Math.sinh },
  cosh: { min: 1, max: 1, f1: Math.cosh },
  tanh: { min: 1, max: 1, f1: Math.tanh },
  atan2: { min: 2, max: 2, f2: Math.atan2 },
  hypot: { min: 1, max: Infinity, fn: mHypot },
  isNaN: { min: 1, max: 1, f1: (x) => x !== x },
};
// min(x, y) via an array literal would allocate per call; give it a direct two-argument form.
(FUNCTIONS.min as { f2: (x: number, y: number) => number }).f2 = (x, y) => (x !== x ? x : y !== y ? y : y < x && !nearlyEqual(y, x) ? y : x);
(FUNCTIONS.max as { f2: (x: number, y: number) => number }).f2 = (x, y) => (x !== x ? x : y !== y ? y : y > x && !nearlyEqual(y, x) ? y : x);

/** Names of the math functions (for documentation and error messages). */
export const MATH_FUNCTIONS: readonly string[] = Object.freeze(Object.keys(FUNCTIONS));

const ARITH: Readonly<Record<string, (x: number, y: number) => number>> = {
  add: (x, y) => x + y,
  subtract: (x, y) => x - y,
  multiply: (x, y) => x * y,
  divide: (x, y) => x / y,
  pow: powNumber,
  mod: modNumber,
};

const ORDER: Readonly<Record<string, (x: number, y: number) => boolean>> = {
  smaller: (x, y) => x < y && !nearlyEqual(x, y),
  larger: (x, y) => x > y && !nearlyEqual(x, y),
  smallerEq: (x, y) => x <= y || nearlyEqual(x, y),
  largerEq: (x, y) => x >= y || nearlyEqual(x, y),
};

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
    const name = node.name!;
    if (hasOwn.call(NAMED_CONSTANTS, name)) {
      const v = NAMED_CONSTANTS[name]!;
      return { fn: () => v, kind: 'num', constant: { value: v } };
    }
    if (!env.allowPaths) throw new CompileError(env.noPathMessage ? `${env.noPathMessage}: "${name}"` : `unknown name "${name}"`);
    if (name.startsWith('$')) {
      if (name !== '$deviceId' && name !== '$moduleId') throw new CompileError(`unknown identity "${name}"; only $deviceId and $moduleId exist`);
      env.paths.add(name);
      const fn = name === '$deviceId' ? (c: EvalContext) => c.deviceId : (c: EvalContext) => c.moduleId;
      return { fn: fn as unknown as (c: C) => unknown, kind: 'any', path: name };
    }
  }
  if (!env.allowPaths) throw new CompileError(env.noPathMessage ? `${env.noPathMessage}: "${text(node)}"` : `event fields are not allowed here (in "${text(node)}")`);
  const segments = pathSegments(node);
  if (segments[0]!.startsWith('$')) throw new CompileError(`property access on "${segments[0]}" is not allowed (in "${text(node)}")`);
  checkSegments(segments, node);
  const path = segments.join('.');
  env.paths.add(path);
  return { fn: buildPath(segments) as unknown as (c: C) => unknown, kind: 'any', path, segments };
}

function buildFunction<C>(node: MNode, env: BuildEnv<C>, d: number): Built<C> {
  const fnNode = node.fn as MNode;
  if (fnNode.type !== 'SymbolNode') throw new CompileError(`calling "${text(fnNode)}" is not allowed; only the fixed function list (in "${text(node)}")`);
  const name = fnNode.name!;
  if (name === 'isNull') return buildIsNull(node, env, d);
  if (!hasOwn.call(FUNCTIONS, name)) {
    if (DANGEROUS_FUNCTIONS.has(name)) throw new CompileError(`function "${name}" is not allowed (in "${text(node)}")`);
    if (env.aggregateNames?.has(name)) throw new CompileError(`aggregate "${name}" is only allowed at the top level of a select, not inside an argument, where or having (in "${text(node)}")`);
    throw new CompileError(`unknown function "${name}" (in "${text(node)}"); allowed: ${MATH_FUNCTIONS.join(', ')}`);
  }
  const spec = FUNCTIONS[name]!;
  if (ROUNDING_FUNCTIONS.has(name)) mathjsRounding();
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

/** Counts nodes and checks bracket nesting before mathjs' recursive-descent parser sees the text. */
export function parseLimited(source: string): MNode {
  if (typeof source !== 'string') throw new CompileError('expression must be a string');
  if (source.trim() === '') throw new CompileError('expression is empty');
  if (source.length > EXPRESSION_LIMITS.maxLength) throw new CompileError(`expression is longer than ${EXPRESSION_LIMITS.maxLength} characters (${source.length})`);
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source.charCodeAt(i);
    if (ch === 40 || ch === 91 || ch === 123) {
      if (++depth > EXPRESSION_LIMITS.maxNesting) throw new CompileError(`expression is nested too deeply (more than ${EXPRESSION_LIMITS.maxNesting} brackets)`);
    } else if (ch === 41 || ch === 93 || ch === 125) depth--;
  }
  let node: MNode;
  try {
    node = parse(source) as unknown as MNode;
  } catch (e) {
    if (e instanceof RangeError) throw new CompileError('expression is nested too deeply');
    throw new CompileError(`syntax error: ${(e as Error).message}`);
  }
  let count = 0;
  (node as unknown as { traverse(cb: () => void): void }).traverse(() => {
    count++;
  });
  if (count > EXPRESSION_LIMITS.maxNodes) throw new CompileError(`expression has too many parts (${count} nodes, limit ${EXPRESSION_LIMITS.maxNodes})`);
  return node;
}

/** Runs `f`, turning a CompileError into `{ok:false}`. */
export function catchCompile<T>(f: () => T): CompileResult<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof CompileError) return { ok: false, error: e.message };
    return { ok: false, error: `invalid expression: ${(e as Error).message}` };
  }
}

function compileEventExpression(source: string, aggregateNames?: ReadonlySet<string>): { built: Built<EvalContext>; paths: string[] } {
  const node = parseLimited(source);
  const env: BuildEnv<EvalContext> = { allowPaths: true, paths: new Set(), ...(aggregateNames ? { aggregateNames } : {}) };
  const built = buildNode(node, env);
  if (built.kind === 'str') throw new CompileError(`a string constant can only be an operand of == or != (in "${text(node)}")`);
  return { built, paths: [...env.paths] };
}

/** Names the select aggregates, so that an aggregate used inside an expression gets a clear message. */
export const AGGREGATE_NAMES: ReadonlySet<string> = new Set(['count', 'sum', 'avg', 'min', 'max', 'stdev', 'stdevp', 'var', 'varp', 'median', 'percentile', 'percentileDisc', 'first', 'last', 'distinct', 'topOne']);

/** Compiles an event expression (aggregate argument, anomaly `value`, ...). Never throws. */
export function compileExpression(source: string): CompileResult<CompiledExpression> {
  return catchCompile(() => {
    const { built, paths } = compileEventExpression(source, AGGREGATE_NAMES);
    return Object.freeze({ source, paths: Object.freeze(paths), evaluate: built.fn });
  });
}

/** Compiles a `where`: true when the result is truthy the way mathjs tests a condition. Never throws. */
export function compilePredicate(source: string): CompileResult<(ctx: EvalContext) => boolean> {
  return catchCompile(() => {
    const { built } = compileEventExpression(source, AGGREGATE_NAMES);
    if (built.kind === 'bool') return built.fn as (ctx: EvalContext) => boolean;
    const f = built.fn;
    const fail = new EvalFailure('not-a-number', `result is not a number or boolean (in "${source.slice(0, 60)}")`);
    return (ctx: EvalContext) => conditionTruth(f(ctx), fail);
  });
}
