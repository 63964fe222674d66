// Entry of the esbuild bundle `npm run build` writes to dist/chevrotain.cjs (see
// src/asa/chevrotainBundle.ts for why): the parts of chevrotain the ASA query parser uses.
export { createToken, EmbeddedActionsParser, Lexer } from 'chevrotain';
