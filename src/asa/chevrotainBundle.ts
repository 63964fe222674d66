import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * chevrotain, from an esbuild bundle of the three exports the query parser uses
 * (src/asa/chevrotain.entry.mjs → dist/chevrotain.cjs, written by `npm run build`).
 *
 * The package itself is an ES module graph of about 300 files (chevrotain and lodash-es): importing
 * it adds about 33 MB of RSS to an idle module, most of it V8's young generation grown while those
 * modules load, which V8 does not give back. The bundle adds about 10 MB (docs/performance.md, idle
 * RSS). The bundle is chevrotain's own code, unchanged; the types are the package's.
 *
 * The path is found from the package root, two folders up from both src/asa/ (tests, tsx) and
 * dist/asa/ (the built module), as src/aggregate/mathjsBundle.ts does for mathjs' parser.
 */
const BUNDLE = fileURLToPath(new URL('../../dist/chevrotain.cjs', import.meta.url));
if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` (it bundles chevrotain)`);

const chevrotain = createRequire(import.meta.url)(BUNDLE) as Pick<typeof import('chevrotain'), 'createToken' | 'EmbeddedActionsParser' | 'Lexer'>;

export const { createToken, EmbeddedActionsParser, Lexer } = chevrotain;
export type { IToken, TokenType } from 'chevrotain';
