/**
 * The sandbox's fixed function list and named constants; every other name is rejected at compile time
 * (docs/contract.md section 5, test/unit/aggregate/compileExpression.test.ts). Each function is plain
 * JS with mathjs 15's results for numbers. `round`/`floor`/`ceil`/`fix` give mathjs' exact results
 * (tested against mathjs), computing natively away from rounding boundaries and calling mathjs near
 * them. `hypot` calls mathjs and allocates.
 * The named constants `pi PI e E tau phi LN2 LN10 LOG2E LOG10E SQRT1_2 SQRT2` always mean the
 * constant; an event field of the same top-level name cannot be read (mathjs' scope would win).
 */
import { mathjsRounding } from '../mathjsBundle.js';
import { nearlyEqual, modNumber, powNumber } from './numberSemantics.js';

const hasOwn = Object.prototype.hasOwnProperty;

/** mathjs' named constants (the sandbox reads no other mathjs symbol). */
const NAMED_CONSTANTS: Readonly<Record<string, number>> = {
  pi: Math.PI, PI: Math.PI, e: Math.E, E: Math.E, tau: 2 * Math.PI, phi: (1 + Math.sqrt(5)) / 2,
  LN2: Math.LN2, LN10: Math.LN10, LOG2E: Math.LOG2E, LOG10E: Math.LOG10E, SQRT1_2: Math.SQRT1_2, SQRT2: Math.SQRT2,
};

/** Functions known to be dangerous get a pointed message; every other unknown name is rejected too. */
export const DANGEROUS_FUNCTIONS = new Set([
  'import', 'createUnit', 'evaluate', 'parse', 'compile', 'simplify', 'derivative', 'rationalize', 'resolve',
  'unit', 'reviver', 'replacer', 'config', 'help', 'chain', 'typed', 'matrix', 'sparse', 'index', 'range',
]);

/** A function's arity and its implementations by argument count (f1, f2, else the variadic fn). */
export interface FnSpec {
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
// Called only near rounding boundaries (and for hypot); findFunction loads the library when a call
// of one of ROUNDING_FUNCTIONS is compiled, so no event waits for the load.
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

/** `name`'s value when it is a named constant (`pi`, `e`, ...), else undefined. */
export function namedConstant(name: string): number | undefined {
  return hasOwn.call(NAMED_CONSTANTS, name) ? NAMED_CONSTANTS[name]! : undefined;
}

/**
 * `name`'s entry in the fixed function list, or undefined. Finding one of ROUNDING_FUNCTIONS loads
 * mathjs' rounding functions (mathjsBundle.ts) now, at compile time, so no event waits for the load.
 */
export function findFunction(name: string): FnSpec | undefined {
  if (!hasOwn.call(FUNCTIONS, name)) return undefined;
  if (ROUNDING_FUNCTIONS.has(name)) mathjsRounding();
  return FUNCTIONS[name]!;
}
