import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * mathjs, in two parts, so that an idle module holds only what parsing needs.
 *
 * - `parse`: mathjs' parser alone, an esbuild bundle of its number-only build
 *   (src/aggregate/mathjsParse.entry.mjs → dist/mathjsParse.cjs, written by `npm run build`). It adds
 *   about 8 MB of RSS and loads in about 0.1 s, where the whole library (`mathjs/lib/browser/math.js`)
 *   adds about 26 MB and 0.3 s (`import 'mathjs'`, a thousand ES modules, takes 0.6 to 4 s). Parsing
 *   does not depend on the build: the number build's parser produces the same nodes as the full
 *   one's for mathjs' default config (test/unit/aggregate/mathjsBundle.test.ts compares them).
 * - `mathjsRounding()`: the whole library's `round`, `floor`, `ceil` and `hypot`, loaded the first
 *   time an expression that calls one of them is compiled (compileExpression.ts calls them only near
 *   rounding boundaries, where their results depend on the full build's tolerances; the number-only
 *   build's `round` skips the full build's pre-rounding, so it would give other results there).
 *
 * The path of the parser bundle is found from the package root, which is two folders up from both
 * src/aggregate/ (tests, tsx) and dist/aggregate/ (the built module).
 */
const require = createRequire(import.meta.url);
const PARSE_BUNDLE = fileURLToPath(new URL('../../dist/mathjsParse.cjs', import.meta.url));
if (!existsSync(PARSE_BUNDLE)) throw new Error(`${PARSE_BUNDLE} is missing: run \`npm run build\` (it bundles mathjs' parser)`);

export const { parse } = require(PARSE_BUNDLE) as Pick<typeof import('mathjs'), 'parse'>;

/** The full mathjs functions compileExpression.ts falls back on near rounding boundaries. */
export type MathjsRounding = Pick<typeof import('mathjs'), 'round' | 'floor' | 'ceil' | 'hypot'>;
let rounding: MathjsRounding | undefined;

/** The whole mathjs library's rounding functions; the first call loads the library (about 0.3 s). */
export function mathjsRounding(): MathjsRounding {
  return (rounding ??= require('mathjs/lib/browser/math.js') as MathjsRounding);
}
