import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { compileFunction } from 'node:vm';

/**
 * mathjs, in two parts, so that an idle module holds only what parsing needs.
 *
 * - `parse`: mathjs' parser alone, an esbuild bundle of its number-only build, held only while in use
 *   (src/aggregate/mathjsParse.entry.mjs → dist/mathjsParse.cjs, written by `npm run build`). It adds
 *   about 8 MB of RSS and loads in about 0.1 s, where the whole library (`mathjs/lib/browser/math.js`)
 *   adds about 26 MB and 0.3 s (`import 'mathjs'`, a thousand ES modules, takes 0.6 to 4 s). Parsing
 *   does not depend on the build: the number build's parser produces the same nodes as the full
 *   one's for mathjs' default config (test/unit/aggregate/mathjsBundle.test.ts compares them).
 * - `mathjsRounding()`: the whole library's `round`, `floor`, `ceil` and `hypot`, loaded the first
 *   time an expression that calls one of them is compiled (expression/functions.ts calls them only near
 *   rounding boundaries, where their results depend on the full build's tolerances; the number-only
 *   build's `round` skips the full build's pre-rounding, so it would give other results there).
 *
 * The path of the parser bundle is found from the package root, which is two folders up from both
 * src/aggregate/ (tests, tsx) and dist/aggregate/ (the built module).
 */
const require = createRequire(import.meta.url);
const PARSE_BUNDLE = fileURLToPath(new URL('../../dist/mathjsParse.cjs', import.meta.url));
if (!existsSync(PARSE_BUNDLE)) throw new Error(`${PARSE_BUNDLE} is missing: run \`npm run build\` (it bundles mathjs' parser)`);

type Parse = (source: string) => import('mathjs').MathNode;
/** The loaded parser while something still holds it; the garbage collector may take it between rule loads. */
let parser: WeakRef<Parse> | undefined;

/**
 * mathjs' `parse`. The parser bundle is loaded on the first call and held by nothing but a WeakRef,
 * so once the rules are compiled its memory can be reclaimed; a later rule change loads it again
 * (about 0.1 s). Calls in one synchronous run (one rule set) share one load: a WeakRef's target
 * stays alive until the current job ends.
 */
export function parse(source: string): import('mathjs').MathNode {
  let p = parser?.deref();
  if (p === undefined) {
    p = loadParser();
    parser = new WeakRef(p);
  }
  return p(source);
}

/** Whether the parser is in memory (for tests: it must not outlive the compilation that loaded it). */
export function parserLoaded(): boolean {
  return parser?.deref() !== undefined;
}

/**
 * Runs the parser bundle as a plain function rather than through `require`: a required module stays
 * reachable from its parent's `children` even after it leaves `require.cache`, so it could never be
 * collected (test/unit/aggregate/mathjsBundle.test.ts checks that it is).
 */
function loadParser(): Parse {
  const mod = { exports: {} as { parse?: Parse } };
  const run = compileFunction(readFileSync(PARSE_BUNDLE, 'utf8'), ['exports', 'module'], { filename: PARSE_BUNDLE }) as (exports: object, module: object) => void;
  run(mod.exports, mod);
  if (typeof mod.exports.parse !== 'function') throw new Error(`${PARSE_BUNDLE} does not export parse: run \`npm run build\``);
  return mod.exports.parse;
}

/** The full mathjs functions expression/functions.ts falls back on near rounding boundaries. */
export type MathjsRounding = Pick<typeof import('mathjs'), 'round' | 'floor' | 'ceil' | 'hypot'>;
let rounding: MathjsRounding | undefined;

/** The whole mathjs library's rounding functions; the first call loads the library (about 0.3 s). */
export function mathjsRounding(): MathjsRounding {
  return (rounding ??= require('mathjs/lib/browser/math.js') as MathjsRounding);
}
