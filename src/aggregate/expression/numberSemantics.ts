/**
 * Number semantics of the expression sandbox: mathjs 15 with its default config (relTol 1e-12,
 * absTol 1e-15), except these deliberate deviations (each is tested in
 * test/unit/aggregate/compileExpression.test.ts):
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
 */
import type { EvalFailure } from './nodes.js';

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

/** A literal constant as a number, the way mathjs converts numbers and booleans (`true + 1`); anything else fails. */
export function toNumber(v: unknown, fail: EvalFailure): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw fail;
}

/** A value read from the event (or of unknown origin) as a number: JSON types are strict, a boolean is not one. */
export function strictNumber(v: unknown, fail: EvalFailure): number {
  if (typeof v === 'number') return v;
  throw fail;
}

/** Truthiness of `and`/`or`/`not`/`xor` (mathjs converts to number; NaN is false). */
export function logicTruth(v: unknown, fail: EvalFailure): boolean {
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

/** `==` across JSON types (see the comment at the top of this file for the deviations from mathjs). */
export function looseEqual(a: unknown, b: unknown, fail: EvalFailure): boolean {
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

/** The binary arithmetic operators, by mathjs operator function name. */
export const ARITH: Readonly<Record<string, (x: number, y: number) => number>> = {
  add: (x, y) => x + y,
  subtract: (x, y) => x - y,
  multiply: (x, y) => x * y,
  divide: (x, y) => x / y,
  pow: powNumber,
  mod: modNumber,
};

/** The orderings, with mathjs' tolerance: `a < b` is false when the two are nearly equal. */
export const ORDER: Readonly<Record<string, (x: number, y: number) => boolean>> = {
  smaller: (x, y) => x < y && !nearlyEqual(x, y),
  larger: (x, y) => x > y && !nearlyEqual(x, y),
  smallerEq: (x, y) => x <= y || nearlyEqual(x, y),
  largerEq: (x, y) => x >= y || nearlyEqual(x, y),
};
