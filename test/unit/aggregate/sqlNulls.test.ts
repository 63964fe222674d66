import { describe, expect, it } from 'vitest';
import { compileSqlExpression } from '../../../src/aggregate/sqlNulls.js';
import { compileExpression } from '../../../src/aggregate/compileExpression.js';
import type { EvalContext } from '../../../src/contracts/event.js';

/*
 * SQL's NULL for rules with nulls: "skip". The expected values are SQL's three-valued logic tables
 * (ISO SQL; T-SQL's documentation of AND, OR and NOT gives the same: TRUE OR UNKNOWN is TRUE,
 * FALSE AND UNKNOWN is FALSE, NOT UNKNOWN is UNKNOWN), written out by hand, not computed.
 */
const ctx = (body: Record<string, unknown>): EvalContext => ({ body, deviceId: 'd', moduleId: 'm' }) as unknown as EvalContext;

function value(source: string, body: Record<string, unknown>): unknown {
  const r = compileSqlExpression(source);
  if (!r.ok) throw new Error(r.error);
  return r.value.fn(ctx(body));
}

// Each operand: a field holding true, false, or null (a missing field reads as null too).
const T = { a: true }, F = { a: false }, U = { a: null };
const TRUTH: Array<[string, Record<string, unknown>, Record<string, unknown>, boolean | null]> = [
  ['and', T, { b: true }, true], ['and', T, { b: false }, false], ['and', T, { b: null }, null],
  ['and', F, { b: true }, false], ['and', F, { b: false }, false], ['and', F, { b: null }, false],
  ['and', U, { b: true }, null], ['and', U, { b: false }, false], ['and', U, { b: null }, null],
  ['or', T, { b: true }, true], ['or', T, { b: false }, true], ['or', T, { b: null }, true],
  ['or', F, { b: true }, true], ['or', F, { b: false }, false], ['or', F, { b: null }, null],
  ['or', U, { b: true }, true], ['or', U, { b: false }, null], ['or', U, {}, null],
];

describe('SQL NULL (nulls: "skip")', () => {
  for (const [op, l, r, want] of TRUTH) {
    it(`${JSON.stringify(l.a)} ${op} ${JSON.stringify(r.b ?? null)} is ${JSON.stringify(want)}`, () => {
      expect(value(`a ${op} b`, { ...l, ...r })).toBe(want);
    });
  }

  it('NOT UNKNOWN is UNKNOWN; NOT of TRUE and FALSE as usual', () => {
    expect(value('not a', U)).toBe(null);
    expect(value('not a', T)).toBe(false);
    expect(value('not a', F)).toBe(true);
  });

  it('arithmetic, comparisons and functions over NULL are NULL; a non-null number is computed as usual', () => {
    expect(value('t + null', { t: 1 })).toBe(null);
    expect(value('t * 2', { t: null })).toBe(null);
    expect(value('t * 2', {})).toBe(null);
    expect(value('t > 5', {})).toBe(null);
    expect(value('t == 5', { t: null })).toBe(null);
    expect(value('t != 5', { t: null })).toBe(null);
    expect(value('t == null', { t: null })).toBe(null);
    expect(value('abs(t)', { t: null })).toBe(null);
    expect(value('t * 2 + 1', { t: 4 })).toBe(9);
    expect(value('m == "A"', { m: 'A' })).toBe(true);
  });

  it('CASE (a ? b : c): a NULL condition takes the ELSE; results may be strings and NULL', () => {
    expect(value('t > 5 ? "hi" : t', { t: null })).toBe(null);
    expect(value('t > 5 ? "hi" : 0', {})).toBe(0);
    expect(value('t > 5 ? "hi" : t', { t: 9 })).toBe('hi');
    expect(value('(isNull(t) ? 0 : t) + 1', {})).toBe(1);
    expect(value('(t > 1 ? null : 2) * 3', { t: 5 })).toBe(null);
  });

  it('a string or boolean where a number is needed still fails the event as not-a-number', () => {
    expect(() => value('s + 1', { s: 'x' })).toThrow(/not-a-number/);
    expect(() => value('b * 2', { b: true })).toThrow(/not-a-number/);
  });

  it('a string CASE inside arithmetic is refused at compile time; the strict sandbox still refuses null', () => {
    const r = compileSqlExpression('(t > 1 ? "a" : "b") + 1');
    expect(r.ok).toBe(false);
    expect(compileExpression('t + null').ok).toBe(false);
  });
});
