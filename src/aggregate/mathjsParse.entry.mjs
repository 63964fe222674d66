// Entry of the esbuild bundle `npm run build` writes to dist/mathjsParse.cjs (see
// src/aggregate/mathjsBundle.ts for why): mathjs' parser alone, from its number-only build, so that
// the bundle holds the parser's factories and not the rest of the library.
import { create, parseDependencies } from 'mathjs/number';

export const { parse } = create({ parseDependencies });
