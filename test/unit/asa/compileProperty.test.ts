import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileQueryText } from '../../../src/asa/compileQuery.js';
import { compileRule } from '../../../src/rules/compileRule.js';

/*
 * docs/asa-migration.md: compiling is deterministic, the printed rule set read back is the same rule
 * set, every compiled rule is accepted by the module's own compileRule (rules/schema.json and the
 * expression checks), and the spelling of a query (keyword case, line breaks, comments) does not
 * change what it compiles to. Queries are drawn from the compiling part of the subset.
 */
const FIELDS = ['t', 'machine.temperature', 'ambient.humidity', 'p'];
const AGG = ['AVG', 'MIN', 'MAX', 'SUM', 'STDEV', 'STDEVP', 'VAR', 'VARP'];

const aggregate = fc.oneof(
  fc.tuple(fc.constantFrom(...AGG), fc.constantFrom(...FIELDS)).map(([f, x]) => `${f}(${x})`),
  fc.constant('COUNT(*)'),
  fc.constantFrom(...FIELDS).map((x) => `COUNT(DISTINCT ${x})`),
  fc.tuple(fc.integer({ min: 0, max: 100 }), fc.constantFrom(...FIELDS)).map(([p, x]) => `PERCENTILE_CONT(${p / 100}) OVER (ORDER BY ${x})`),
  fc.tuple(fc.constantFrom('MAX', 'MIN'), fc.constantFrom(...FIELDS)).map(([f, x]) => `${f}(${x}) * 1.8 + 32`),
);
const unit = fc.constantFrom<[string, number]>(['second', 1], ['ss', 1], ['s', 1], ['minute', 60], ['mi', 60], ['n', 60]);
const window = fc.oneof(
  fc.tuple(unit, fc.integer({ min: 1, max: 30 })).map(([[u], n]) => `TumblingWindow(Duration(${u}, ${n}), Offset(millisecond, -1))`),
  fc.tuple(unit, fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 })).map(([[u], h, k]) => `HoppingWindow(Duration(${u}, ${h * k}), Hop(${u}, ${h}), Offset(millisecond, -1))`),
  fc.tuple(unit, fc.integer({ min: 1, max: 60 })).map(([[u], n]) => `SlidingWindow(${u}, ${n})`),
  fc.constant('SnapshotWindow()'),
  // ASA's default end-inclusive forms and other offsets.
  fc.tuple(unit, fc.integer({ min: 2, max: 30 })).map(([[u], n]) => `TumblingWindow(${u}, ${n})`),
  fc.tuple(unit, fc.integer({ min: 2, max: 30 })).map(([[u], n]) => `TumblingWindow(${u}, ${n}, 1)`),
  fc.tuple(unit, fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 })).map(([[u], h, k]) => `HoppingWindow(${u}, ${h * k}, ${h})`),
  fc.tuple(unit, fc.integer({ min: 2, max: 10 }), fc.integer({ min: 1, max: 10 })).map(([[u], h, k]) => `HoppingWindow(Duration(${u}, ${h * k}), Hop(${u}, ${h}), Offset(${u}, -1))`),
);
const extra = fc.subarray(["'reset' AS command", 'System.Timestamp() AS WindowEnd', '42 AS answer']);
const group = fc.subarray(['IoTHub.ConnectionDeviceId', 'IoTHub.ConnectionModuleId', 'plant.line'], { maxLength: 2 });
const where = fc.option(fc.tuple(fc.constantFrom(...FIELDS), fc.constantFrom('>', '<', '>=', '<=', '=', '<>', '!='), fc.integer({ min: -50, max: 150 })).map(([f, op, n]) => `${f} ${op} ${n}`), { nil: undefined });

const statement = fc.record({
  aggs: fc.uniqueArray(aggregate, { minLength: 1, maxLength: 4 }),
  extra,
  window,
  group,
  where,
  having: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
  into: fc.constantFrom('summaries', 'alerts', 'out-1', 'hot_rows'),
  input: fc.constantFrom('telemetry', 'input1'),
  ts: fc.boolean(),
});

type Stmt = typeof statement extends fc.Arbitrary<infer T> ? T : never;

function print(s: Stmt, style: { lower: boolean; nl: string; comment: boolean }): string {
  const k = (w: string) => (style.lower ? w.toLowerCase() : w);
  const cols = [...s.group.filter((g) => g !== 'plant.line'), ...s.extra, ...s.aggs.map((a, i) => `${a} ${k('AS')} c${i}`)];
  return [
    `${k('SELECT')} ${cols.join(', ')}`,
    `${k('INTO')} [${s.into}]`,
    `${k('FROM')} ${s.input}${s.ts ? ` ${k('TIMESTAMP')} ${k('BY')} timeCreated` : ''}`,
    s.where ? `${k('WHERE')} ${s.where}` : '',
    `${style.comment ? '-- the window\n' : ''}${k('GROUP')} ${k('BY')} ${[...s.group, s.window].join(', ')}`,
    s.having !== undefined ? `${k('HAVING')} ${s.aggs[0]} > ${s.having}` : '',
  ].filter((l) => l !== '').join(style.nl);
}

describe('compileQueryText (property)', () => {
  it('is deterministic, round-trips through its printed JSON, validates with compileRule and ignores spelling', () => {
    fc.assert(
      fc.property(fc.array(statement, { minLength: 1, maxLength: 3 }), fc.boolean(), fc.constantFrom(' ', '\n', '\n  '), (stmts, comment, nl) => {
        const q1 = stmts.map((s) => print(s, { lower: false, nl: '\n', comment: false })).join(';\n');
        const q2 = stmts.map((s) => print(s, { lower: true, nl, comment })).join('\n');
        const a = compileQueryText(q1);
        if (!a.ok) throw new Error(`${q1}\n${JSON.stringify(a.errors)}`);
        expect(compileQueryText(q1)).toEqual(a);
        expect(compileQueryText(q2)).toEqual(a);
        const printed = JSON.stringify(a.rules, null, 2);
        expect(JSON.parse(printed)).toEqual(a.rules);
        expect(Object.keys(a.rules)).toHaveLength(stmts.length);
        for (const [id, doc] of Object.entries(a.rules)) {
          expect(id).toMatch(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/);
          const c = compileRule(id, doc);
          expect(c.ok, c.ok ? '' : `${q1}\n${c.error}`).toBe(true);
        }
      }),
      { numRuns: 200, seed: 21 },
    );
  });
});
