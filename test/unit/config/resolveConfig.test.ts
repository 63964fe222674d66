import { describe, expect, it } from 'vitest';
import type { Rule } from '../../../src/contracts/rule.js';
import { resolveConfig, type QueryRule, type RuleCandidate } from '../../../src/config/resolveConfig.js';
import { RuleManager } from '../../../src/rules/ruleManager.js';

/*
 * How the twin's desired `query` combines with `rules` and the file's rules (docs/contract.md section 6,
 * docs/rules.md "A query instead of JSON"): a query rule overrides a file rule as a twin rule does; an
 * id both `rules` and the query define is rejected on both sides, its last good version kept; a `query`
 * that is not a string makes the document malformed.
 */

const rule = (n: string): Rule => ({ kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { [n]: 'count()' } });
const q = (id: string, statement: number, doc: unknown): QueryRule => ({ id, statement, line: statement * 5 - 4, column: 1, doc });

describe('resolveConfig with a desired query', () => {
  it('a query rule overrides a file rule of the same id; query and twin rules of other ids all run', () => {
    const res = resolveConfig({ shared: rule('file'), fileOnly: rule('f') }, { rules: { twinOnly: rule('t') }, query: 'SELECT ...' }, [q('shared', 1, rule('query')), q('queryOnly', 2, rule('q'))]);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.candidates.map((c) => [c.id, c.source, c.statement])).toEqual([
      ['fileOnly', 'file', undefined],
      ['twinOnly', 'twin', undefined],
      ['shared', 'query', 1],
      ['queryOnly', 'query', 2],
    ]);
    expect(res.candidates.find((c) => c.id === 'shared')!.doc).toEqual(rule('query'));
    expect(res.collisions).toEqual({});
  });

  it('an id both rules and the query define is rejected, naming the statement; its last good version keeps running; the rest applies', () => {
    const manager = new RuleManager();
    const first: RuleCandidate[] = [{ id: 'dup', source: 'twin', doc: rule('before') }];
    manager.apply(first);
    const res = resolveConfig({}, { rules: { dup: rule('twin'), other: rule('o') }, query: '...' }, [q('dup', 2, rule('query')), q('fine', 1, rule('f'))]);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(Object.keys(res.collisions)).toEqual(['dup']);
    expect(res.collisions.dup).toMatch(/both in desired\.rules and by desired\.query statement 2 \(line 6, column 1\)/);
    const applied = manager.apply(res.candidates);
    expect(applied.report.dup).toEqual({ status: 'rejected', source: 'twin', statement: 2, error: res.collisions.dup });
    expect(applied.report.fine).toEqual({ status: 'active', source: 'query', statement: 1 });
    expect(applied.report.other).toEqual({ status: 'active', source: 'twin' });
    // Neither new definition runs: the one that ran before does.
    expect(applied.rules.find((r) => r.id === 'dup')!.doc).toEqual(rule('before'));
    expect(applied.rejected).toBe(1);
  });

  it('a query that is not a string makes the document malformed: nothing applied', () => {
    for (const bad of [5, { a: 'SELECT' }, ['SELECT'], true]) {
      const res = resolveConfig({}, { query: bad });
      expect(res.ok, JSON.stringify(bad)).toBe(false);
      if (!res.ok) expect(res.error).toMatch(/desired\.query must be a string/);
    }
    expect(resolveConfig({}, { query: null }).ok).toBe(true);
  });
});
