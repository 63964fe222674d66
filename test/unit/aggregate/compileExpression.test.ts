import { describe, it, expect } from 'vitest';
import { compile as mathCompile, isComplex } from 'mathjs';
import {
  compileExpression, compilePredicate, EvalFailure, EXPRESSION_LIMITS, nearlyEqual,
} from '../../../src/aggregate/compileExpression.js';
import type { EvalContext } from '../../../src/contracts/event.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

/** prng: mulberry32 (src/util/mulberry32.ts), seeded so every run sees the same data. */
const prng = mulberry32;

function ctxOf(body: Record<string, unknown>, deviceId = 'dev1', moduleId = 'mod1'): EvalContext {
  return { body, deviceId, moduleId };
}

function compiled(source: string) {
  const r = compileExpression(source);
  if (!r.ok) throw new Error(`did not compile: ${source}: ${r.error}`);
  return r.value;
}

function failureOf(f: () => unknown): EvalFailure {
  try {
    f();
  } catch (e) {
    if (e instanceof EvalFailure) return e;
    throw e;
  }
  throw new Error('expected an EvalFailure');
}

const CORPUS = [
  'machine.temperature', 'machine.temperature + ambient.temperature', '-machine.temperature', '+machine.pressure',
  'machine.temperature * 1.8 + 32', '(machine.temperature - 32) / 1.8', 'machine.temperature ^ 2', 'ambient.humidity ^ 0.5',
  'machine.temperature ^ 0.5', 'machine.temperature % 7', 'machine.temperature mod -3', 'mod(machine.temperature, 2.5)',
  'a % 0', 'a / 0', '-a / 0', 'a / b', 'a - b * c', '(a - b) * c', 'machine.temperature > 30', 'machine.temperature < 30',
  'machine.temperature >= 30', 'machine.temperature <= 30', 'int == 5', 'int != 5', 'a == b', 'a != b',
  'machine.temperature > 30 and ambient.humidity < 80', 'machine.temperature > 30 or ambient.humidity < 20',
  'a > 0 xor b > 0', 'not (a > b)', 'a > b ? a : b', 'a > 0 ? sqrt(a) : -1', 'abs(machine.temperature)',
  'sqrt(ambient.humidity)', 'sqrt(machine.temperature)', 'cbrt(machine.temperature)', 'exp(a / 10)', 'log(ambient.humidity)',
  'log(machine.temperature)', 'log(ambient.humidity, 10)', 'log(ambient.humidity, 2)', 'log10(ambient.humidity)',
  'log2(ambient.humidity)', 'pow(a, 3)', 'pow(a, b / 50)', 'min(a, b)', 'min(a, b, c)', 'max(a, b, c, 0)', 'max(a, b)',
  'round(machine.temperature)', 'round(machine.temperature, 2)', 'round(a * 1000) / 1000', 'floor(machine.temperature)',
  'ceil(machine.temperature)', 'fix(machine.temperature)', 'floor(a, 1)', 'ceil(a, 2)', 'fix(a, 3)', 'round(a, 0)',
  'sign(a)', 'sin(a)', 'cos(a)', 'tan(a)', 'asin(a / 200)', 'acos(a / 200)', 'asin(a)', 'atan(a)', 'atan2(a, b)',
  'hypot(a, b)', 'hypot(a, b, c)', 'sinh(a / 50)', 'cosh(a / 50)', 'tanh(a / 50)', 'square(a)', 'cube(a)', 'expm1(a / 100)',
  'log1p(ambient.humidity)', 'isNaN(a)', 'a == a + 1e-14', 'a < a + 1e-13 * abs(a)', 'a + 1e-13 >= a', 'a == a * (1 + 1e-13)',
  '1 < a < 50', 'a <= b < c', 'a == b == c', 'a != b < c', '2 ^ 3 ^ 2', '-2 ^ 2', '-a ^ 2', 'pi * a', 'e ^ (a / 100)', 'tau + phi',
  'machine.temperature * (1 + ambient.humidity / 100)', '(a > 0) + (b > 0) + (c > 0)', 'true and a > 0', 'not a', 'a and b',
  'a xor 0', 'flag and a > 0', '(a > 0) + 1', 'flag ? a : b', 'not flag', 'flag == true', 'flag != (a > 0)',
  'machine["temperature"] - ambient["temperature"]', 'int % 3 == 0', 'round(int / 3)', 'round(2.5)', 'round(-2.5)',
  'a > 0 and sqrt(a) > 3', 'a < 0 or log(a) > 1', '0.1 + 0.2 == 0.3', 'int mod 4', '-int', 'a * 0', '(a + b) / (c - c)',
  'max(a, b) - min(a, b)', 'abs(a - b) <= 1e-9', 'int > 10 ? (int > 15 ? 2 : 1) : 0', 'log(int)', 'sqrt(int - 10)',
];

function randomScope(rnd: () => number): Record<string, unknown> {
  const pick = (): number => {
    const r = rnd();
    if (r < 0.05) return 0;
    if (r < 0.2) return Math.round(rnd() * 40 - 20);
    if (r < 0.25) return (rnd() - 0.5) * 1e-9;
    return (rnd() - 0.5) * 200;
  };
  const a = pick();
  const b = rnd() < 0.1 ? a : pick();
  const c = rnd() < 0.1 ? b : pick();
  return {
    machine: { temperature: (rnd() - 0.3) * 150, pressure: rnd() * 2 },
    ambient: { temperature: rnd() * 40 - 5, humidity: rnd() * 100 },
    a, b, c,
    int: Math.floor(rnd() * 21),
    flag: rnd() < 0.5,
  };
}

/** Our value for mathjs' value: Complex becomes NaN (documented deviation); -0 and 0 are one value. */
function expectSame(ours: unknown, theirs: unknown, label: string): void {
  if (isComplex(theirs)) {
    expect(Number.isNaN(ours), `${label}: Complex from mathjs, NaN here`).toBe(true);
    return;
  }
  if (typeof theirs === 'number') {
    expect(typeof ours, label).toBe('number');
    if (Number.isNaN(theirs)) expect(Number.isNaN(ours), label).toBe(true);
    else expect((ours as number) === theirs, `${label}: ${String(ours)} vs mathjs ${theirs}`).toBe(true);
    return;
  }
  expect(ours, label).toBe(theirs);
}

describe('compileExpression: same results as mathjs evaluate', () => {
  it(`agrees with mathjs on ${CORPUS.length} expressions over 300 seeded random scopes`, () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(60);
    const rnd = prng(20261126);
    const scopes = Array.from({ length: 300 }, () => randomScope(rnd));
    let compared = 0;
    for (const source of CORPUS) {
      const ours = compiled(source);
      const theirs = mathCompile(source);
      for (const scope of scopes) {
        const expected: unknown = theirs.evaluate({ ...scope });
        expectSame(ours.evaluate(ctxOf(scope)), expected, `${source} with ${JSON.stringify(scope)}`);
        compared++;
      }
    }
    expect(compared).toBe(CORPUS.length * 300);
  });

  it('rounds exactly like mathjs round/floor/ceil/fix, also at rounding boundaries', () => {
    const rnd = prng(77);
    const xs = [
      2.5, -2.5, 0.5, -0.5, 1.5, 1.005, 2.345, 1.0049999999999999, 2.4999999999999996, 2.4999999999999, 2.49999999999999,
      0.1 + 0.2, 0.3, 1 - 1e-13, 1 - 1e-11, 3 + 1e-13, -3 - 1e-13, 1e15 + 0.5, 4503599627370495.5, 1e20, 1e-20, 0, 123.456789,
      5e-324, 2147483647.5, 2147483648.5, 0.125, 0.375, -0.125, 1.45, 8.345, 1.0000000000005,
    ];
    for (let i = 0; i < 3000; i++) {
      const mag = Math.pow(10, Math.floor(rnd() * 16) - 6);
      const v = (rnd() - 0.5) * mag;
      xs.push(v, Math.round(v * 1000) / 1000 + 0.0005, Math.round(v * 2) / 2);
    }
    const fns = ['round(x)', 'floor(x)', 'ceil(x)', 'fix(x)', 'round(x, 1)', 'round(x, 2)', 'round(x, 3)', 'round(x, 11)', 'round(x, 12)', 'round(x, 15)', 'floor(x, 2)', 'ceil(x, 3)', 'fix(x, 1)'];
    for (const src of fns) {
      const ours = compiled(src);
      const theirs = mathCompile(src);
      for (const x of xs) expectSame(ours.evaluate(ctxOf({ x })), theirs.evaluate({ x }), `${src} with x=${x}`);
    }
  });

  it('uses mathjs tolerances for comparisons (relTol 1e-12, absTol 1e-15)', () => {
    const body = { x: 1 + 1e-13, y: 1, z: 1e-16 };
    expect(compiled('x == y').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('x > y').evaluate(ctxOf(body))).toBe(false);
    expect(compiled('x >= y').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('z == 0').evaluate(ctxOf(body))).toBe(true);
    expect(nearlyEqual(1, 1 + 1e-11)).toBe(false);
    expect(nearlyEqual(Infinity, Infinity)).toBe(true);
    expect(nearlyEqual(NaN, NaN)).toBe(false);
  });

  it('reports the paths it reads', () => {
    const e = compiled('machine.temperature > 30 and ambient["humidity"] < 80 and $deviceId == "d"');
    expect([...e.paths].sort()).toEqual(['$deviceId', 'ambient.humidity', 'machine.temperature']);
    expect(compiled('machine.a.b.c + 1').evaluate(ctxOf({ machine: { a: { b: { c: 2 } } } }))).toBe(3);
  });

  it('folds constant sub-expressions at compile time and still gives mathjs values', () => {
    expect(compiled('2 ^ 10 + sqrt(16)').evaluate(ctxOf({}))).toBe(1028);
    expect(compiled('1 / 0').evaluate(ctxOf({}))).toBe(Infinity);
    expect(compiled('round(1.005, 2)').evaluate(ctxOf({}))).toBe(1.01);
  });
});

describe('compileExpression: deliberate deviations from mathjs', () => {
  it('compares strings as text with == and != (mathjs converts them to numbers and throws)', () => {
    const body = { machine: { type: 'A' } };
    expect(compiled('machine.type == "A"').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('machine.type != "A"').evaluate(ctxOf(body))).toBe(false);
    expect(compiled('machine.type == "B"').evaluate(ctxOf(body))).toBe(false);
    expect(compiled("'A' == machine.type").evaluate(ctxOf(body))).toBe(true);
    expect(compiled('$deviceId == "dev1" and $moduleId == "mod1"').evaluate(ctxOf({}))).toBe(true);
    expect(compiled('$deviceId').evaluate(ctxOf({}, 'd9'))).toBe('d9');
    expect(() => mathCompile('x == "A"').evaluate({ x: 'A' })).toThrow();
  });

  it('never converts a string to a number: "21.5" is not-a-number', () => {
    const body = { machine: { temperature: '21.5', type: 'A' } };
    for (const src of ['machine.temperature > 20', 'machine.temperature + 1', 'sqrt(machine.temperature)', 'machine.temperature == 21.5', 'not machine.temperature', 'machine.type and true', '-machine.temperature']) {
      const f = failureOf(() => compiled(src).evaluate(ctxOf(body)));
      expect(f.reason, src).toBe('not-a-number');
    }
    expect(failureOf(() => compiled('machine.temperature > 20').evaluate(ctxOf(body))).detail).toContain('machine.temperature');
    expect(mathCompile('x + 1').evaluate({ x: '21.5' })).toBe(22.5);
  });

  it('treats null, objects and arrays as not-a-number, and null == null as mathjs does', () => {
    const body = { n: null, o: { a: 1 }, arr: [1, 2], m: null };
    expect(failureOf(() => compiled('n + 1').evaluate(ctxOf(body))).reason).toBe('not-a-number');
    expect(failureOf(() => compiled('o > 1').evaluate(ctxOf(body))).reason).toBe('not-a-number');
    expect(failureOf(() => compiled('arr * 2').evaluate(ctxOf(body))).reason).toBe('not-a-number');
    expect(failureOf(() => compiled('o == 1').evaluate(ctxOf(body))).reason).toBe('not-a-number');
    expect(compiled('n == m').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('n == 0').evaluate(ctxOf(body))).toBe(false);
    expect(compiled('n ? 1 : 2').evaluate(ctxOf(body))).toBe(2);
  });

  it('returns NaN where mathjs returns a Complex number', () => {
    for (const src of ['sqrt(-1)', 'log(-1)', 'asin(2)', 'acos(2)', '(-8) ^ (1/3)', 'log2(-1)', 'log10(-1)', 'x ^ 0.5']) {
      expect(Number.isNaN(compiled(src).evaluate(ctxOf({ x: -4 }))), src).toBe(true);
    }
    expect(compiled('log(0)').evaluate(ctxOf({}))).toBe(-Infinity);
  });

  it('a boolean read from the event is not a number (JSON types are strict, unlike mathjs); computed booleans act as 1/0', () => {
    const body = { on: true, off: false, t: 20 };
    // mathjs takes `true` as 1 in all of these; docs/contract.md section 5 says not-a-number.
    for (const src of ['on + on + off', 'on * 5', 'on == 1', 'on > 0', 'abs(on)', 'min(on, 3)', '-on', '0 < on < 2']) {
      expect(failureOf(() => compiled(src).evaluate(ctxOf(body)))?.reason, src).toBe('not-a-number');
    }
    expect(compiled('on == true').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('off != true').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('on and t > 10').evaluate(ctxOf(body))).toBe(true);
    expect(compiled('(t > 10) + (t > 30) + true').evaluate(ctxOf(body))).toBe(2);
  });

  it('gives the named constants precedence over event fields of the same name', () => {
    expect(compiled('pi').evaluate(ctxOf({ pi: 3 }))).toBe(Math.PI);
  });
});

describe('compileExpression: runtime failures', () => {
  it('throws a missing-field EvalFailure naming the path, and reuses the instance', () => {
    const e = compiled('machine.temperature > 30');
    const f1 = failureOf(() => e.evaluate(ctxOf({ ambient: {} })));
    expect(f1.reason).toBe('missing-field');
    expect(f1.detail).toBe('machine.temperature');
    expect(failureOf(() => e.evaluate(ctxOf({ machine: 5 })))).toBe(f1);
    expect(failureOf(() => e.evaluate(ctxOf({ machine: null }))).reason).toBe('missing-field');
    expect(failureOf(() => compiled('a.b.c.d').evaluate(ctxOf({ a: { b: { c: 'x' } } }))).detail).toBe('a.b.c.d');
  });

  it('reads own properties only: prototype members are missing', () => {
    for (const src of ['toString', 'valueOf', 'hasOwnProperty', 'machine.toString', 'machine.__defineGetter__', 'isPrototypeOf == 1']) {
      expect(failureOf(() => compiled(src).evaluate(ctxOf({ machine: {} }))).reason, src).toBe('missing-field');
    }
    const bare = Object.create(null) as Record<string, unknown>;
    bare.x = 2;
    expect(compiled('x * 2').evaluate(ctxOf(bare))).toBe(4);
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}, "x": 1}') as Record<string, unknown>;
    expect(failureOf(() => compiled('polluted').evaluate(ctxOf(parsed))).reason).toBe('missing-field');
  });

  it('does not evaluate the right side of and/or when the left decides (mathjs is lazy too)', () => {
    expect(compiled('false and missing.field > 1').evaluate(ctxOf({}))).toBe(false);
    expect(compiled('x > 0 or missing.field').evaluate(ctxOf({ x: 1 }))).toBe(true);
    expect(compiled('x > 0 ? 1 : missing').evaluate(ctxOf({ x: 1 }))).toBe(1);
    expect(failureOf(() => compiled('x > 0 and missing').evaluate(ctxOf({ x: 1 }))).reason).toBe('missing-field');
  });

  it('fails the event with expression-error for rounding decimals mathjs rejects', () => {
    const e = compiled('round(x, n)');
    expect(e.evaluate(ctxOf({ x: 1.23456, n: 2 }))).toBe(1.23);
    expect(failureOf(() => e.evaluate(ctxOf({ x: 1, n: 16 }))).reason).toBe('expression-error');
    expect(failureOf(() => e.evaluate(ctxOf({ x: 1, n: 1.5 }))).reason).toBe('expression-error');
    expect(failureOf(() => e.evaluate(ctxOf({ x: 1, n: -1 }))).reason).toBe('expression-error');
  });
});

describe('compileExpression: rejected at compile time', () => {
  const cases: [string, RegExp][] = [
    ['import({}, {})', /function "import" is not allowed/],
    ['createUnit("x")', /function "createUnit" is not allowed/],
    ['evaluate("1")', /function "evaluate" is not allowed/],
    ['parse("1")', /function "parse" is not allowed/],
    ['compile("1")', /function "compile" is not allowed/],
    ['simplify("x")', /function "simplify" is not allowed/],
    ['derivative("x^2", "x")', /function "derivative" is not allowed/],
    ['unit("5 cm")', /function "unit" is not allowed/],
    ['f(x) = x', /function definition is not allowed/],
    ['a = 1', /assignment is not allowed/],
    ['machine.temperature = 1', /assignment is not allowed/],
    ['[1, 2]', /matrices and arrays are not allowed/],
    ['{a: 1}', /object literals are not allowed/],
    ['1:3', /ranges are not allowed/],
    ['a = 1; b = 2', /multiple statements are not allowed/],
    ['"abc"', /string constant can only be an operand of == or !=/],
    ['"a" < "b"', /string can only be compared with == or !=/],
    ['x + "1"', /string cannot be used as a number/],
    ['sqrt("4")', /string cannot be used as a number/],
    ['x == "a" + 1', /string cannot be used as a number/],
    ['x.constructor', /field name "constructor" is not allowed/],
    ['__proto__.x', /field name "__proto__" is not allowed/],
    ['a["__proto__"]', /field name "__proto__" is not allowed/],
    ['machine.prototype', /field name "prototype" is not allowed/],
    ['constructor', /field name "constructor" is not allowed/],
    ['2 inch', /implicit multiplication is not allowed/],
    ['2x', /implicit multiplication is not allowed/],
    ['sin(30 deg)', /implicit multiplication is not allowed/],
    ['5 cm to inch', /unit conversion is not allowed/],
    ['1e400', /not finite/],
    ['Infinity', /not finite/],
    ['NaN > 1', /not finite/],
    ['null', /constant "null" is not allowed/],
    ['5!', /operator "!" is not allowed/],
    ["a'", /operator "'" is not allowed/],
    ['a & b', /operator "&" is not allowed/],
    ['a | b', /operator "\|" is not allowed/],
    ['~a', /operator "~" is not allowed/],
    ['a << 1', /operator "<<" is not allowed/],
    ['a .* b', /operator "\.\*" is not allowed/],
    ['a[1]', /indexing is not allowed/],
    ['a[b]', /indexing is not allowed/],
    ['foo(1)', /unknown function "foo"/],
    ['a.b(1)', /calling "a.b" is not allowed/],
    ['f(1)(2)', /implicit multiplication|unknown function/],
    ['$foo', /unknown identity "\$foo"/],
    ['$deviceId.x', /property access on "\$deviceId" is not allowed/],
    ['(a + b).c', /property access is only allowed on event fields/],
    ['sum(x)', /aggregate "sum" is only allowed at the top level/],
    ['max()', /function "max" takes at least 1 argument/],
    ['round(x, 1, 2)', /function "round" takes 1 to 2 arguments, got 3/],
    ['sqrt(1, 2)', /function "sqrt" takes 1 argument, got 2/],
    ['round(1, 20)', /number of decimals must be an integer from 0 to 15/],
    ['1 +', /syntax error/],
    ['', /empty/],
    ['1+'.repeat(1000) + '1', /longer than 2000 characters/],
    ['('.repeat(100) + '1' + ')'.repeat(100), /nested too deeply/],
    ['a+'.repeat(600) + 'a', /too many parts/],
    ['-'.repeat(300) + 'a', /nested too deeply/],
  ];
  it(`rejects ${cases.length} forbidden constructs with a clear message`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
    for (const [source, message] of cases) {
      const r = compileExpression(source);
      expect(r.ok, source).toBe(false);
      if (!r.ok) expect(r.error, source).toMatch(message);
    }
  });

  it('names the offending text in the message', () => {
    const r = compileExpression('machine.temperature > 1 and import({}, {})');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('import({}, {})');
  });

  it('never throws from the compile API, even for non-strings', () => {
    expect(compileExpression(42 as unknown as string).ok).toBe(false);
    expect(compilePredicate(null as unknown as string).ok).toBe(false);
  });

  it('has documented limits', () => {
    expect(EXPRESSION_LIMITS.maxLength).toBe(2000);
    expect(compileExpression('a+'.repeat(99) + 'a').ok).toBe(true);
  });
});

describe('compilePredicate', () => {
  it('is truthy the way mathjs tests a condition', () => {
    const p = (src: string, body: Record<string, unknown>) => {
      const r = compilePredicate(src);
      if (!r.ok) throw new Error(r.error);
      return r.value(ctxOf(body));
    };
    expect(p('machine.temperature > 30 and ambient.humidity < 80', { machine: { temperature: 31 }, ambient: { humidity: 50 } })).toBe(true);
    expect(p('machine.temperature > 30 and ambient.humidity < 80', { machine: { temperature: 29 }, ambient: { humidity: 50 } })).toBe(false);
    expect(p('x', { x: 0 })).toBe(false);
    expect(p('x', { x: 2 })).toBe(true);
    expect(p('x', { x: NaN })).toBe(false);
    expect(p('x', { x: '' })).toBe(false);
    expect(p('x', { x: 'on' })).toBe(true);
    expect(p('x', { x: null })).toBe(false);
    expect(p('x - 1', { x: 1 })).toBe(false);
    expect(failureOf(() => p('x', { x: { a: 1 } })).reason).toBe('not-a-number');
    expect(failureOf(() => p('y > 1', {})).reason).toBe('missing-field');
  });

  it('rejects what compileExpression rejects', () => {
    const r = compilePredicate('import({}, {})');
    expect(r.ok).toBe(false);
  });
});
