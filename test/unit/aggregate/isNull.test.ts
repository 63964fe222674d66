import { describe, expect, it } from 'vitest';
import { compilePredicate, EvalFailure } from '../../../src/aggregate/compileExpression.js';
import { compileHaving } from '../../../src/aggregate/compileSelect.js';
import type { EvalContext } from '../../../src/contracts/event.js';

/*
 * isNull(x) as docs/rules.md "Expressions" defines it: true when x is JSON null or reads a missing field;
 * any other failure of x (a string in arithmetic) still fails the event (not-a-number). In having, true
 * when the select value is null. ASA's `x IS NULL` (WHERE reference:
 * https://learn.microsoft.com/stream-analytics-query/where-azure-stream-analytics) compiles to it.
 */
const ctx = (body: Record<string, unknown>): EvalContext => ({ body, deviceId: 'd', moduleId: 'm' }) as unknown as EvalContext;

function predicate(src: string): (c: EvalContext) => boolean {
  const p = compilePredicate(src);
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

describe('isNull()', () => {
  it('is true for a missing field or a JSON null, false for a value, also through a nested path', () => {
    const p = predicate('isNull(machine.temperature)');
    expect(p(ctx({}))).toBe(true);
    expect(p(ctx({ machine: {} }))).toBe(true);
    expect(p(ctx({ machine: { temperature: null } }))).toBe(true);
    expect(p(ctx({ machine: { temperature: 0 } }))).toBe(false);
    expect(p(ctx({ machine: { temperature: 'hot' } }))).toBe(false);
  });

  it('guards a comparison: isNull(t) or t > 30 keeps events without t and never reads t for them', () => {
    const p = predicate('isNull(t) or t > 30');
    expect([{}, { t: null }, { t: 40 }, { t: 10 }].map((b) => p(ctx(b)))).toEqual([true, true, true, false]);
    // A string is not null: the comparison runs and fails the event, as any comparison of a string.
    expect(() => p(ctx({ t: 'x' }))).toThrow(EvalFailure);
  });

  it('over arithmetic: a missing operand makes it null, a string operand fails the event', () => {
    const p = predicate('isNull(t * 2)');
    expect(p(ctx({}))).toBe(true);
    expect(p(ctx({ t: 3 }))).toBe(false);
    expect(() => p(ctx({ t: 'x' }))).toThrow(/not-a-number/);
  });

  it('in having, reads a null select value as null', () => {
    const h = compileHaving('isNull(avgT) or avgT > 70', ['avgT']);
    if (!h.ok) throw new Error(h.error);
    expect([null, 80, 50].map((v) => h.value({ avgT: v }))).toEqual([true, true, false]);
  });

  it('takes exactly one argument', () => {
    const p = compilePredicate('isNull(a, b)');
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.error).toMatch(/isNull" takes 1 argument, got 2/);
  });
});
