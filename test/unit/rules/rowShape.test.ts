import { describe, expect, it } from 'vitest';
import { compileRule } from '../../../src/rules/compileRule.js';
import { asaDateTime, rowMessage, summaryMessageId } from '../../../src/rules/outputMessage.js';

/*
 * Row-shaped output (`row`, docs/rules.md "Rows"; docs/contract.md section 4): the body is the flat
 * row in column order; a column names a select value, a groupBy path, a constant or a window bound in
 * ASA's datetime format ("2023-01-01T00:00:10.0000000Z", the outputs on
 * https://learn.microsoft.com/azure/stream-analytics/stream-analytics-stream-analytics-query-patterns).
 */
const base = { kind: 'aggregate', groupBy: ['$deviceId', 'plant.line'], window: { type: 'tumbling', size: '10s', bounds: '(]' }, select: { n: 'count()', hidden: 'avg(t)' }, having: 'hidden > 1' };

describe('rule.row', () => {
  it('compiles in column order; select names outside the row are computed but not shown', () => {
    const r = compileRule('rows', { ...base, row: { Time: { window: 'end' }, dev: { group: '$deviceId' }, line: { group: 'plant.line' }, command: { const: 'reset' }, Count: { select: 'n' } } });
    expect(r.ok).toBe(true);
    if (!r.ok || r.rule.kind !== 'aggregate') return;
    const msg = rowMessage('rows', r.rule.hash, 'alert', { kind: 'window', key: 'k', group: { deviceId: 'd1', 'plant.line': 3 }, window: { type: 'tumbling', start: 1_767_225_600_000, end: 1_767_225_610_000 }, count: 4, value: { n: 4, hidden: 2.5 }, revision: 0 }, r.rule.row!, 0);
    expect(JSON.stringify(msg.body)).toBe('{"Time":"2026-01-01T00:00:10.0000000Z","dev":"d1","line":3,"command":"reset","Count":4}');
    expect(msg).toMatchObject({ kind: 'summary', rule: 'rows', output: 'alert', id: summaryMessageId('rows', r.rule.hash, 'k', { type: 'tumbling', start: 1_767_225_600_000, end: 1_767_225_610_000 }, 0) });
  });

  it('rejects a column naming an unknown select name or a path not in groupBy, and malformed columns', () => {
    expect(compileRule('r', { ...base, row: { a: { select: 'nope' } } })).toEqual({ ok: false, error: 'r.row.a: select "nope" is not a name in select' });
    expect(compileRule('r', { ...base, row: { a: { group: 'plant.site' } } })).toEqual({ ok: false, error: 'r.row.a: group "plant.site" is not a groupBy path' });
    expect(compileRule('r', { ...base, row: { a: { window: 'middle' } } })).toMatchObject({ ok: false });
    expect(compileRule('r', { ...base, row: { a: { const: 'x', select: 'n' } } })).toMatchObject({ ok: false });
    expect(compileRule('r', { ...base, row: {} })).toMatchObject({ ok: false });
    expect(compileRule('r', { ...base, row: { 'a.b': { const: 1 } } })).toMatchObject({ ok: false });
  });

  it('a change of row alone keeps the rule state (stateHash), a change of bounds does not', () => {
    const a = compileRule('r', { ...base, row: { Count: { select: 'n' } } });
    const b = compileRule('r', { ...base, row: { N: { select: 'n' }, c: { const: null } } });
    const c = compileRule('r', { ...base, window: { type: 'tumbling', size: '10s' }, row: { Count: { select: 'n' } } });
    if (!a.ok || !b.ok || !c.ok) throw new Error('compile');
    expect(a.rule.stateHash).toBe(b.rule.stateHash);
    expect(a.rule.hash).not.toBe(b.rule.hash);
    expect(c.rule.stateHash).not.toBe(a.rule.stateHash);
  });

  it("asaDateTime writes seven fractional digits and Z", () => {
    expect(asaDateTime(Date.UTC(2023, 0, 1, 0, 0, 10))).toBe('2023-01-01T00:00:10.0000000Z');
    expect(asaDateTime(Date.UTC(2023, 0, 1, 0, 0, 9, 999))).toBe('2023-01-01T00:00:09.9990000Z');
  });
});
