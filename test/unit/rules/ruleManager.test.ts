import { describe, expect, it } from 'vitest';
import { RuleManager } from '../../../src/rules/ruleManager.js';

/** docs/contract.md section 6: an invalid rule is rejected alone, and its last good version keeps running, across restarts too. */

const count = (name: string): Record<string, unknown> => ({
  kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], window: { type: 'tumbling', size: '1m' }, select: { [name]: 'count()' }, output: 'summaries',
});
const broken = { ...count('n'), window: { type: 'tumbling', size: 'soon' } };

describe('RuleManager', () => {
  it('keeps the last good version of a rejected rule, and drops rules no longer among the candidates', () => {
    const m = new RuleManager();
    m.apply([{ id: 'a', source: 'twin', doc: count('first') }, { id: 'b', source: 'file', doc: count('b') }]);
    const res = m.apply([{ id: 'a', source: 'twin', doc: broken }]);
    expect(res.rejected).toBe(1);
    expect(res.report.a).toMatchObject({ status: 'rejected', source: 'twin', error: expect.stringContaining('a.window') });
    expect(res.rules.map((r) => [r.id, Object.keys(r.doc.kind === 'aggregate' ? r.doc.select : {})])).toEqual([['a', ['first']]]);
  });

  it('lastGood() seeds a new manager (a restart): the saved version stands in for a rejected candidate, not for an accepted one', () => {
    const before = new RuleManager();
    before.apply([{ id: 'a', source: 'twin', doc: count('saved') }, { id: 'c', source: 'twin', doc: count('c') }]);
    const saved = JSON.parse(JSON.stringify(before.lastGood())) as Record<string, unknown>;

    const after = new RuleManager();
    expect(after.seed(saved)).toEqual({});
    const res = after.apply([
      { id: 'a', source: 'twin', doc: broken },
      { id: 'c', source: 'twin', doc: count('newer') },
    ]);
    expect(res.report.a!.status).toBe('rejected');
    const selects = Object.fromEntries(res.rules.map((r) => [r.id, Object.keys(r.doc.kind === 'aggregate' ? r.doc.select : {})]));
    expect(selects).toEqual({ a: ['saved'], c: ['newer'] });
  });

  it('seed() skips saved documents that no longer compile and names them; it does nothing once rules were applied', () => {
    const m = new RuleManager();
    expect(Object.keys(m.seed({ ok: count('n'), bad: broken }))).toEqual(['bad']);
    expect(m.current().map((r) => r.id)).toEqual(['ok']);
    const applied = new RuleManager();
    applied.apply([{ id: 'x', source: 'file', doc: count('x') }]);
    applied.seed({ y: count('y') });
    expect(applied.current().map((r) => r.id)).toEqual(['x']);
  });
});
