import { describe, expect, it } from 'vitest';
import { compileRule } from '../../../src/rules/compileRule.js';

/**
 * docs/contract.md section 5 defaults as the compiled rule carries them: idleTimeout defaults to the window
 * size (the gap for sessions; count and snapshot windows, which have no duration: 1 min and 1 s, as
 * docs/rules.md says); maxLateness defaults to 5 s.
 */
const compiled = (doc: Record<string, unknown>) => {
  const r = compileRule('r', { kind: 'aggregate', select: { n: 'count()' }, ...doc });
  if (!r.ok) throw new Error(r.error);
  return r.rule;
};

describe('compileRule defaults', () => {
  it.each([
    [{ type: 'tumbling', size: '1m' }, 60_000],
    [{ type: 'hopping', size: '10m', hop: '1m' }, 600_000],
    [{ type: 'sliding', size: '30s' }, 30_000],
    [{ type: 'session', gap: '45s', maxSize: '10m' }, 45_000],
    [{ type: 'count', size: 10 }, 60_000],
    [{ type: 'snapshot' }, 1_000],
  ])('idleTimeout of %j is %i ms; an explicit idleTimeout wins', (window, ms) => {
    expect(compiled({ window }).idleTimeout).toBe(ms);
    expect(compiled({ window, idleTimeout: '7s' }).idleTimeout).toBe(7_000);
  });

  it('maxLateness defaults to 5 s', () => {
    expect(compiled({ window: { type: 'tumbling', size: '1m' } }).maxLateness).toBe(5_000);
  });
});
