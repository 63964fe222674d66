import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as fullParse } from 'mathjs';
import { describe, expect, it } from 'vitest';
import { parse } from '../../../src/aggregate/mathjsBundle.js';

/**
 * src/aggregate/mathjsBundle.ts parses with a bundle of mathjs' parser alone (dist/mathjsParse.cjs,
 * from mathjs' number-only build) and loads the whole library only for the rounding functions. These
 * cases hold it to the whole library's parser (the package's own entry point), and check in a fresh
 * process that an expression without rounding functions never loads the library.
 */
const EXPRESSIONS = [
  'machine.temperature > 30 and ambient.humidity < 80',
  'machine.temperature > -273.15',
  'a.b["c d"].e >= 1e-3 or not x',
  'x == "A" ? 1 : y != \'b\' ? 2 : 3',
  '0x1F + 0b101 + 0o17 + 1.5e+300 + .5 + 5. + 1e400',
  '2^-3^2 * -x % 7 mod 3',
  'round(x, 2) + floor(y) - ceil(z) * fix(-w) / hypot(a, b, c)',
  'min(1, 2, 3) + max(a) + abs(-1) + sqrt(4) + log(8, 2)',
  '5! + a\' + 2 x + 3(y + 1) + (1 + 2)(3 + 4)',
  '[1, 2; 3, 4][1, 2] + {a: 1, "b": [2]}.a',
  'f(x) = x^2; a = 3; b[1] = 2',
  '1:2:10',
  'a ? b : c ? d : e',
  '"line\\nbreak \\u00e9 \\"quoted\\""',
  'x xor y or z and not w',
  'a < b <= c > d >= e == f != g',
  '3 in cm + 2 ft to m',
  'e + pi + i + true + false + null + NaN + Infinity',
  'x # a comment',
  'a << 2 >> 1 >>> 3 & b | c ^| d',
  '2i + 3 - 4im',
  '$x + @y',
  'a.b.',
  '(1 + 2',
  '"unterminated',
  '',
];

describe('mathjs parser bundle', () => {
  it.each(EXPRESSIONS)('parses %j exactly as the whole mathjs library does (nodes or error)', (source) => {
    const run = (p: (s: string) => unknown): string => {
      try {
        return JSON.stringify(p(source));
      } catch (e) {
        return `error: ${(e as Error).message}`;
      }
    };
    expect(run(parse)).toBe(run(fullParse));
  });

  const built = fileURLToPath(new URL('../../../dist/aggregate/compileExpression.js', import.meta.url));
  it.runIf(existsSync(built))('loads the whole mathjs library only when an expression calls a rounding function (dist/, fresh process)', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { compileExpression } = await import(${JSON.stringify(built)});
      const require = createRequire(${JSON.stringify(built)});
      const loaded = () => Object.keys(require.cache).some((k) => k.endsWith('/mathjs/lib/browser/math.js'));
      const plain = compileExpression('machine.temperature > 30 and sqrt(abs(x)) < 2');
      const before = loaded();
      const rounding = compileExpression('round(x, 2)');
      const after = loaded();
      // 0.125 is a rounding boundary at 2 decimals: the whole library's round decides it.
      const value = rounding.ok ? rounding.value.evaluate({ body: { x: 0.125 } }) : 'compile failed';
      console.log(JSON.stringify({ plain: plain.ok, before, after, value }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ plain: true, before: false, after: true, value: 0.13 });
  });

  const bundle = fileURLToPath(new URL('../../../dist/aggregate/mathjsBundle.js', import.meta.url));
  it.runIf(existsSync(bundle))('lets the garbage collector take the parser once compiling is over, and loads it again when needed (dist/, fresh process)', () => {
    const script = `
      const { parse, parserLoaded } = await import(${JSON.stringify(bundle)});
      const first = parse('a + 1').type;
      const during = parserLoaded();
      await new Promise((r) => setTimeout(r, 10));
      for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      const afterGc = parserLoaded();
      const again = parse('b.c > 2').type;
      console.log(JSON.stringify({ first, during, afterGc, again, reloaded: parserLoaded() }));
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ first: 'OperatorNode', during: true, afterGc: false, again: 'OperatorNode', reloaded: true });
  });
});
