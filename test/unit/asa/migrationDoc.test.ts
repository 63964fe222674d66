import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compileRule } from '../../../src/rules/compileRule.js';

/*
 * docs/asa-migration.md's three worked migrations show a query and the JSON it compiles to: the JSON
 * printed there must be what the compiler gives for that query (and valid for the module), so the
 * page cannot drift from the code.
 */
const doc = readFileSync(new URL('../../../docs/asa-migration.md', import.meta.url), 'utf8');
const worked = doc.slice(doc.indexOf('## Three worked migrations'));
const blocks = (lang: string): string[] => [...worked.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

describe('docs/asa-migration.md worked migrations', () => {
  const sql = blocks('sql');
  const json = blocks('json').map((j) => JSON.parse(j) as Record<string, unknown>);

  it('has three migrations, each a query and its rule set', () => {
    expect(sql).toHaveLength(3);
    expect(json).toHaveLength(3);
  });

  it.each([0, 1, 2])('migration %i: the JSON is what the query compiles to, and the module accepts it', (i) => {
    const r = compileQueryText(sql[i]!);
    expect(r).toEqual({ ok: true, rules: json[i] });
    for (const [id, rule] of Object.entries(json[i]!)) expect(compileRule(id, rule).ok).toBe(true);
  });
});
