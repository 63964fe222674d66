/**
 * Hostile rules: expressions that reach for mathjs' dangerous corners, rule ids at and past
 * their length limit, twin documents at IoT Hub's limits, rule sets of 1,000 rules, invalid windows.
 * Each is rejected at validation with a message a user can act on (asserted), or runs within a stated
 * bound; through `RuleManager.apply` the good rules keep running and the report lists the rest.
 *
 * IoT Hub limits (learn.microsoft.com, "Understand and use device twins in IoT Hub", section "Tags and
 * properties format" / "Device twin size"): desired properties at most 32 KB, JSON objects at most
 * 10 levels deep, keys at most 1 KB (no `.`, `$` or space), string values at most 4 KB.
 */
import { describe, expect, it } from 'vitest';
import { VirtualTimeScheduler } from 'rxjs';
import { compileRule, type CompiledRule } from '../../../src/rules/compileRule.js';
import { RuleManager } from '../../../src/rules/ruleManager.js';
import { Engine } from '../../../src/rules/engine.js';
import { resolveConfig } from '../../../src/config/resolveConfig.js';
import { mergeDesired } from '../../../src/config/mergeDesired.js';
import { EXPRESSION_LIMITS } from '../../../src/aggregate/compileExpression.js';
import type { IngestEvent } from '../../../src/contracts/event.js';
import type { AlertBody, OutputMessage, SummaryBody } from '../../../src/contracts/output.js';

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
/** Processing time (arrivals) a month after T0: events stamped ahead of their arrival would be future-timestamp (docs/contract.md section 5). */
const ARRIVALS = T0 + 30 * 86_400_000;

function error(doc: unknown, id = 'r'): string {
  const r = compileRule(id, doc);
  return r.ok ? 'OK' : r.error;
}

const anomaly = (value: string, extra: Record<string, unknown> = {}) => ({ kind: 'anomaly', value, detector: { type: 'threshold', above: 1 }, ...extra });
const aggregate = (select: Record<string, string>, extra: Record<string, unknown> = {}) => ({ kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, timestamp: 't', select, ...extra });

function harness() {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = ARRIVALS;
  const out: OutputMessage[] = [];
  const rejected: string[] = [];
  const engine = new Engine({
    scheduler,
    emit: (m) => out.push(...m),
    observer: { rejected: (reason, rule) => rejected.push(`${rule}:${reason}`), windowResult: () => undefined, alert: () => undefined },
  });
  const ev = (body: Record<string, unknown>, deviceId = 'dev1'): IngestEvent => ({ body, deviceId, moduleId: 'm', input: 'telemetry', arrival: scheduler.now() });
  return { scheduler, engine, out, rejected, ev };
}

function candidatesOf(desired: Record<string, unknown>) {
  const r = resolveConfig({}, desired);
  if (!r.ok) throw new Error(r.error);
  return r.candidates;
}

function compiled(id: string, doc: unknown): CompiledRule {
  const r = compileRule(id, doc);
  if (!r.ok) throw new Error(r.error);
  return r.rule;
}

describe('hostile expressions are rejected at validation with a clear reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['constructor', /field name "constructor" is not allowed/],
    ['__proto__', /field name "__proto__" is not allowed/],
    ['machine.__proto__.polluted', /field name "__proto__" is not allowed/],
    ['machine.constructor.prototype', /field name "constructor" is not allowed/],
    ['machine["constructor"]', /field name "constructor" is not allowed/],
    ['machine["__proto__"]', /field name "__proto__" is not allowed/],
    ['import({polluted: 1}, {override: true})', /function "import" is not allowed/],
    ['createUnit("furlong")', /function "createUnit" is not allowed/],
    ['evaluate("1+1")', /function "evaluate" is not allowed/],
    ['parse("x")', /function "parse" is not allowed/],
    ['compile("x").evaluate()', /not allowed/],
    ['simplify("x+x")', /function "simplify" is not allowed/],
    ['chain(1)', /function "chain" is not allowed/],
    ['typed("f", {})', /function "typed" is not allowed/],
    ['f(x) = x + 1', /function definition is not allowed/],
    ['f(x) = f(x)', /function definition is not allowed/], // recursion needs a definition first
    ['x = 1', /assignment is not allowed/],
    ['x; x', /multiple statements are not allowed/],
    ['cos.constructor("return process")()', /syntax error/], // mathjs' parser has no call on a call
    ['process.exit()', /calling "process.exit" is not allowed/],
    ['hasOwnProperty("x")', /unknown function "hasOwnProperty"/],
    ['"constructor"', /a string constant can only be an operand of == or !=/],
    ['"\\u0063onstructor"', /a string constant can only be an operand of == or !=/],
    ['"${process.exit()}" + 1', /a string cannot be used as a number/],
    ['[1, 2, 3]', /matrices and arrays are not allowed/],
    ['{a: 1}', /object literals are not allowed/],
    ['1:1e9', /ranges are not allowed/],
    ['5 inch', /implicit multiplication is not allowed|unit/],
    ['2 inch to cm', /not allowed/],
    ['1e400', /not finite/],
    ['Infinity', /not finite/],
    ['NaN', /not finite/],
    ['undefined', /constant "undefined" is not allowed/],
    ['$env', /unknown identity "\$env"/],
    ['$deviceId.constructor', /property access on "\$deviceId" is not allowed/],
    ['sum(x)', /aggregate "sum" is only allowed at the top level of a select/],
    ['x!', /operator "!" is not allowed/],
    ['(' .repeat(EXPRESSION_LIMITS.maxNesting + 1) + 'x' + ')'.repeat(EXPRESSION_LIMITS.maxNesting + 1), /nested too deeply \(more than 64 brackets\)/],
    ['1' + '+1'.repeat(300), /too many parts \(601 nodes, limit 500\)/],
  ];
  for (const [expr, want] of cases) {
    it(`value: ${expr.length > 50 ? `${expr.slice(0, 47)}...` : expr}`, () => {
      expect(error(anomaly(expr))).toMatch(want);
      // The same text in a where or inside an aggregate argument is rejected just the same.
      expect(error(aggregate({ n: 'count()' }, { where: expr }))).toMatch(want);
      expect(error(aggregate({ a: `avg(${expr})` }))).toMatch(/not allowed|not finite|too many parts|nested too deeply|only allowed|unknown|cannot be|can only|syntax error/);
    });
  }

  it('an expression longer than 2,000 characters is rejected by the schema, at exactly 2,000 it is parsed', () => {
    const long = 'x' + '+x'.repeat(999) + '+1'; // 2,001 characters
    expect(long.length).toBe(EXPRESSION_LIMITS.maxLength + 1);
    expect(error(anomaly(long))).toBe('r.value: must NOT have more than 2000 characters');
    const at = 'machine.temperature' + ' '.repeat(EXPRESSION_LIMITS.maxLength - 19);
    expect(at.length).toBe(EXPRESSION_LIMITS.maxLength);
    expect(error(anomaly(at))).toBe('OK');
  });

  it('select names and having cannot reach prototypes; Object.prototype names are ordinary names', () => {
    const doc = JSON.parse('{"kind":"aggregate","window":{"type":"tumbling","size":"1m"},"select":{"__proto__":"count()"}}') as unknown;
    expect(error(doc)).toBe('r.select.__proto__: select name "__proto__" is not allowed');
    const h = harness();
    h.engine.setRules([compiled('names', aggregate({ constructor: 'count()', toString: 'max(v)', hasOwnProperty: 'min(v)' }, { having: 'constructor > 1 and toString > 0' }))]);
    h.engine.process([h.ev({ t: T0, v: 1 }), h.ev({ t: T0 + 1, v: 2 }), h.ev({ t: T0 + 120_000, v: 3 })]);
    const s = h.out.map((m) => m.body as SummaryBody);
    expect(s).toHaveLength(1);
    expect(s[0]!.values).toEqual({ constructor: 2, toString: 2, hasOwnProperty: 1 });
    expect(JSON.parse(JSON.stringify(s[0]!.values))).toEqual({ constructor: 2, toString: 2, hasOwnProperty: 1 });
  });
});

describe('hostile expressions that compile run within a stated bound', () => {
  it('enormous exponents are folded once at compile time; the result is not a number, so every event is rejected for that rule alone', () => {
    // Bound: a constant sub-expression is evaluated once, at validation (Math.pow, O(1)); per event the
    // rule costs one closure call. Infinity is not a JSON number, so the value is `not-a-number`.
    const h = harness();
    h.engine.setRules([compiled('tower', anomaly('10^10^10')), compiled('big', anomaly('2^1024')), compiled('pow', anomaly('v ^ 1e6')), compiled('fine', anomaly('v'))]);
    h.engine.process([h.ev({ v: 2 }), h.ev({ v: 0.5 })]);
    expect(h.rejected.sort()).toEqual(['big:not-a-number', 'big:not-a-number', 'pow:not-a-number', 'tower:not-a-number', 'tower:not-a-number']);
    const alerts = h.out.map((m) => m.body as AlertBody);
    expect(alerts.map((a) => `${a.rule}:${a.state}`)).toEqual(['fine:raised', 'fine:cleared']);
  });

  it('field names that Object.prototype defines read own properties only', () => {
    const h = harness();
    h.engine.setRules([compiled('ts', anomaly('toString')), compiled('vo', anomaly('machine.valueOf')), compiled('th', anomaly('this'))]);
    h.engine.process([h.ev({ machine: { temperature: 5 } })]);
    expect(h.rejected.sort()).toEqual(['th:missing-field', 'ts:missing-field', 'vo:missing-field']);
    h.rejected.length = 0;
    h.engine.process([h.ev({ toString: 7, machine: { valueOf: 8 }, this: 9 })]);
    expect(h.rejected).toEqual([]);
    expect(h.out.map((m) => (m.body as AlertBody).value)).toEqual([7, 8, 9]);
  });

  it('a string that looks like code is only ever compared as text', () => {
    const h = harness();
    h.engine.setRules([compiled('s', aggregate({ n: 'count()' }, { where: 'kind == "constructor" or kind == "${process.exit(1)}"' }))]);
    h.engine.process([h.ev({ t: T0, kind: 'constructor' }), h.ev({ t: T0, kind: '${process.exit(1)}' }), h.ev({ t: T0, kind: 'other' }), h.ev({ t: T0 + 120_000, kind: 'constructor' })]);
    expect(h.out.map((m) => (m.body as SummaryBody).values.n)).toEqual([2]);
  });
});

describe('rule ids, rule set size and twin documents at IoT Hub limits', () => {
  it('a 64-character id is accepted, 65 characters, dots, $ and 1 KB keys are rejected with the pattern', () => {
    const id64 = 'r' + 'x'.repeat(63);
    expect(error(anomaly('v'), id64)).toBe('OK');
    const msg = (id: string) => `rule id "${id.slice(0, 80)}" must match ^[A-Za-z][A-Za-z0-9_-]{0,63}$ (rule ids are twin keys: no dots, no $)`;
    expect(error(anomaly('v'), id64 + 'x')).toBe(msg(id64 + 'x'));
    expect(error(anomaly('v'), 'a.b')).toBe(msg('a.b'));
    expect(error(anomaly('v'), '$version')).toBe(msg('$version'));
    expect(error(anomaly('v'), '__proto__')).toBe(msg('__proto__'));
    const key1k = 'k'.repeat(1024);
    expect(error(anomaly('v'), key1k)).toBe(msg(key1k));
    expect(msg(key1k).length).toBeLessThan(200); // the report quotes at most 80 characters of a hostile id
  });

  it('rule ids named after Object.prototype members are ordinary rules', () => {
    const m = new RuleManager();
    const res = m.apply(['constructor', 'toString', 'hasOwnProperty', 'valueOf'].map((id) => ({ id, source: 'twin' as const, doc: anomaly('v') })));
    expect(res.rejected).toBe(0);
    expect(Object.keys(res.report).sort()).toEqual(['constructor', 'hasOwnProperty', 'toString', 'valueOf']);
    expect(res.rules.map((r) => r.id).sort()).toEqual(['constructor', 'hasOwnProperty', 'toString', 'valueOf']);
  });

  it('1,000 rules, 25 of them hostile: the good ones all run with exact output, the report names every rejected one', () => {
    const hostile: Array<[unknown, RegExp]> = [
      [anomaly('import({})'), /function "import" is not allowed/],
      [anomaly('constructor'), /field name "constructor" is not allowed/],
      [aggregate({ n: 'count()' }, { window: { type: 'tumbling', size: 0 } }), /window\.size must be greater than 0/],
      [aggregate({ n: 'count()' }, { window: { type: 'hopping', size: '1m', hop: '2m' } }), /window\.hop must not be greater than window\.size/],
      [aggregate({ n: 'count()' }, { maxGroups: 1e9 }), /maxGroups: must be <= 1000000/],
    ];
    const desired: Record<string, unknown> = {};
    const expectErr = new Map<string, RegExp>();
    for (let i = 0; i < 1000; i++) {
      const id = `r${String(i).padStart(4, '0')}`;
      if (i % 40 === 7) {
        const [doc, re] = hostile[(i / 40) % hostile.length | 0]!;
        desired[id] = doc;
        expectErr.set(id, re);
      } else {
        // Each good rule counts the events whose `k` equals its number modulo 10.
        desired[id] = aggregate({ n: 'count()', s: 'sum(v)' }, { where: `k == ${i % 10}` });
      }
    }
    const resolved = resolveConfig({}, { rules: desired });
    expect(resolved.ok).toBe(true);
    if (!resolved.ok) return;
    const m = new RuleManager();
    const res = m.apply(resolved.candidates);
    expect(res.rejected).toBe(25);
    expect(res.rules).toHaveLength(975);
    for (const [id, re] of expectErr) {
      expect(res.report[id]?.status).toBe('rejected');
      expect(res.report[id]?.error).toMatch(re);
      expect(res.report[id]?.error?.startsWith(`${id}.`)).toBe(true);
    }
    const h = harness();
    h.engine.setRules(res.rules);
    const events: IngestEvent[] = [];
    for (let j = 0; j < 100; j++) events.push(h.ev({ t: T0 + j, k: j % 10, v: j }));
    // `where` filters before the watermark moves: one closing event per residue closes every rule's window.
    for (let k = 0; k < 10; k++) events.push(h.ev({ t: T0 + 120_000, k, v: 0 }));
    h.engine.process(events);
    expect(h.rejected).toEqual([]);
    expect(h.out).toHaveLength(975);
    for (const msg of h.out) {
      const k = Number(msg.rule.slice(1)) % 10;
      const s = msg.body as SummaryBody;
      // j = k, k+10, ..., k+90: ten events summing to 10k + 450.
      expect(s.values).toEqual({ n: 10, s: 10 * k + 450 });
    }
  });

  it('a desired document filled to 32 KB with rules, nested to depth 10, is applied whole', () => {
    const rules: Record<string, unknown> = {};
    let i = 0;
    const size = () => Buffer.byteLength(JSON.stringify({ rules }));
    for (;;) {
      const id = `rule${i}`;
      rules[id] = { ...aggregate({ avg: 'avg(machine.temperature)', p95: 'percentile(machine.temperature, 95)', n: 'count()' }, { timestamp: 'timeCreated', groupBy: ['$deviceId'] }), description: 'd'.repeat(200) };
      if (size() > 32 * 1024) {
        delete rules[id];
        break;
      }
      i++;
    }
    expect(i).toBeGreaterThan(50);
    const res = new RuleManager().apply(candidatesOf({ rules }));
    expect(res.rejected).toBe(0);
    expect(res.rules).toHaveLength(i);

    // Depth 10 counted from `desired` (rules > id > detector > a > ... ): an unknown parameter, named.
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let d = 0; d < 6; d++) deep = { n: deep };
    const r = new RuleManager().apply(candidatesOf({ rules: { deep: { ...anomaly('v'), detector: { type: 'threshold', above: 1, nested: deep } } } }));
    expect(r.report.deep).toEqual({ status: 'rejected', source: 'twin', error: 'deep.detector: unknown parameter nested' });
    // A 4 KB string value (IoT Hub's limit) in a description is over the schema's 500.
    expect(error({ ...anomaly('v'), description: 'x'.repeat(4096) })).toBe('r.description: must NOT have more than 500 characters');
  });

  it('a `__proto__` key in a desired patch is an ordinary (rejected) name, never a prototype', () => {
    const rule = anomaly('v');
    const patch = JSON.parse(JSON.stringify({ rules: { ok: rule } }).replace('{"rules"', `{"__proto__":{"rules":{"evil":${JSON.stringify(rule)}}},"rules"`).replace('{"ok"', `{"__proto__":${JSON.stringify(rule)},"ok"`)) as Record<string, unknown>;
    const desired = mergeDesired({}, patch);
    expect(Object.getPrototypeOf(desired)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(desired.rules)).toBe(Object.prototype);
    const resolved = resolveConfig({}, desired);
    if (!resolved.ok) throw new Error(resolved.error);
    expect(resolved.candidates.map((c) => c.id).sort()).toEqual(['__proto__', 'ok']); // no inherited "evil"
    const res = new RuleManager().apply(resolved.candidates);
    expect(res.rules.map((r) => r.id)).toEqual(['ok']);
    expect(Object.keys(res.report).sort()).toEqual(['__proto__', 'ok']);
    expect(res.report['__proto__']?.status).toBe('rejected');
    expect(res.report['__proto__']?.error).toMatch(/^rule id "__proto__" must match/);
    expect(({} as Record<string, unknown>).rules).toBeUndefined();
  });

  it('a malformed desired.rules is rejected whole; a rejected new version keeps the last good one running', () => {
    expect(resolveConfig({}, { rules: [anomaly('v')] })).toEqual({ ok: false, error: 'desired.rules must be an object of rules, got an array' });
    expect(resolveConfig({}, { rules: 'x' })).toEqual({ ok: false, error: 'desired.rules must be an object of rules, got string' });
    const m = new RuleManager();
    m.apply([{ id: 'a', source: 'twin', doc: anomaly('v') }]);
    const res = m.apply([{ id: 'a', source: 'twin', doc: anomaly('evaluate("v")') }]);
    expect(res.report.a).toEqual({ status: 'rejected', source: 'twin', error: 'a.value: function "evaluate" is not allowed (in "evaluate("v")")' });
    expect(res.rules.map((r) => (r.doc as { value: string }).value)).toEqual(['v']);
  });
});

describe('invalid windows are rejected with the field and the reason', () => {
  const dur = (f: string) => `r.window.${f}: must be a duration like "30s", "5m", "1h" or a number of milliseconds >= 0`;
  const cases: Array<[unknown, string]> = [
    [{ type: 'tumbling', size: 0 }, 'r.window: window.size must be greater than 0'],
    [{ type: 'tumbling', size: '0s' }, 'r.window: window.size must be greater than 0'],
    [{ type: 'tumbling', size: -1 }, dur('size')],
    [{ type: 'tumbling', size: '-1m' }, dur('size')],
    [{ type: 'tumbling', size: '1y' }, dur('size')],
    [{ type: 'tumbling', size: '2 years' }, dur('size')],
    [{ type: 'tumbling', size: 'NaN' }, dur('size')],
    [{ type: 'tumbling', size: 'Infinity' }, dur('size')],
    [{ type: 'tumbling', size: '1e3s' }, dur('size')],
    [{ type: 'tumbling', size: '8d' }, 'r.window: window.size must be at most 7d'],
    [{ type: 'tumbling', size: '99999999999999999999d' }, 'r.window: window.size must be at most 7d'],
    [{ type: 'tumbling', size: '1.5ms' }, 'r.window: window.size must be a whole number of milliseconds'],
    [{ type: 'sliding', size: '365d' }, 'r.window: window.size must be at most 7d'],
    [{ type: 'hopping', size: '1m', hop: '2m' }, 'r.window: window.hop must not be greater than window.size'],
    [{ type: 'hopping', size: '1m', hop: 0 }, 'r.window: window.hop must be greater than 0'],
    [{ type: 'hopping', size: '1d', hop: '1s' }, 'r.window: window.hop must be at least window.size / 1440 (an event would fall into too many windows)'],
    [{ type: 'session', gap: '5m', maxSize: '1m' }, 'r.window: window.gap must not be greater than window.maxSize'],
    [{ type: 'session', gap: '1m', maxSize: '8d' }, 'r.window: window.maxSize must be at most 7d'],
    [{ type: 'session', gap: '1m' }, 'r.window: missing required property "maxSize"'],
    [{ type: 'count', size: 0 }, 'r.window.size: must be >= 1'],
    [{ type: 'count', size: 1e6 }, 'r.window: window.size must be at most 100000'],
    [{ type: 'count', size: 10, step: 20 }, 'r.window: window.step must not be greater than window.size'],
    [{ type: 'count', size: 'NaN' }, 'r.window.size: must be integer'],
    [{ type: 'snapshot', size: '1m' }, 'r.window: unknown property "size"'],
    [{ type: 'weekly' }, 'r.window.type: must be one of "tumbling", "hopping", "sliding", "session", "count", "snapshot"'],
  ];
  for (const [w, msg] of cases) {
    it(JSON.stringify(w), () => {
      expect(error(aggregate({ n: 'count()' }, { window: w }))).toBe(msg);
    });
  }
});
