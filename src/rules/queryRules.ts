/**
 * An Azure Stream Analytics query as a source of rules: the twin's desired `query`, a `.asaql`
 * EDDY_RULES_FILE, `eddy validate` / `eddy run --rules` (docs/contract.md section 6, docs/rules.md
 * "A query instead of JSON"). The compiler (src/asa/compileQuery.ts) turns the query into rule
 * documents; this adds what configuration needs on top: which statement each rule and each error
 * belongs to, and every compiled rule checked the way the module checks a rule.
 */
import { compileQueryText } from '../asa/compileQuery.js';
import { parseQuery } from '../asa/parseQuery.js';
import type { QueryRule } from '../config/resolveConfig.js';
import { compileRule } from './compileRule.js';

/** One problem of a query: the statement it is in (1-based, in query order), and its line and column. */
export interface QueryStatementError {
  readonly statement: number;
  readonly line: number;
  readonly column: number;
  readonly error: string;
}

export type QueryRulesResult = { readonly ok: true; readonly rules: readonly QueryRule[] } | { readonly ok: false; readonly errors: readonly QueryStatementError[] };

/** File names read as a query rather than a JSON rule set (the extension of Microsoft's ASA tooling). */
export function isQueryFile(file: string): boolean {
  return /\.asaql$/i.test(file);
}

/**
 * Compiles a whole query. All or nothing, as an ASA job is: a query with any error gives no rule
 * (every error is listed), because its statements are one job (rule ids follow the statement order,
 * `INTO x` then `x_2`), and running some of them would run a job nobody wrote.
 */
export function compileQueryRules(text: string): QueryRulesResult {
  const compiled = compileQueryText(text);
  if (!compiled.ok) {
    const errors = compiled.errors.map((e) => ({ statement: e.statement ?? statementAt(text, e.line, e.column), line: e.line, column: e.column, error: e.message }));
    return { ok: false, errors };
  }
  // The compiler makes one rule per statement, in order (src/asa/compileQuery.ts compileQuery).
  const parsed = parseQuery(text);
  const statements = parsed.ok ? parsed.query.statements : [];
  const rules: QueryRule[] = [];
  const errors: QueryStatementError[] = [];
  for (const [i, [id, doc]] of Object.entries(compiled.rules).entries()) {
    const pos = statements[i]?.pos ?? { line: 1, column: 1 };
    const c = compileRule(id, doc);
    // A compiled rule the module refuses is a compiler bug; it is still a reported error, never a silent skip.
    if (!c.ok) errors.push({ statement: i + 1, line: pos.line, column: pos.column, error: `compiled rule ${c.error}` });
    else rules.push({ id, statement: i + 1, line: pos.line, column: pos.column, doc });
  }
  if (errors.length > 0) return { ok: false, errors };
  if (rules.length === 0) return { ok: false, errors: [{ statement: 1, line: 1, column: 1, error: 'the query holds no statement' }] };
  return { ok: true, rules };
}

/**
 * The statement (1-based) that holds a line and column: the number of statements starting at or
 * before it. A statement starts at a SELECT outside parentheses (a WITH step's SELECT is inside
 * them), outside comments, strings and [bracketed] names. Works on text that does not parse, so a
 * syntax error is placed too. Columns count UTF-16 units, as the parser's do.
 */
export function statementAt(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) break;
    offset = nl + 1;
  }
  offset += column - 1;
  let count = 0;
  let depth = 0;
  for (let i = 0; i < text.length && i <= offset; ) {
    const c = text[i]!;
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else if (c === "'" || c === '[' || c === '"') {
      const close = c === '[' ? ']' : c;
      const end = text.indexOf(close, i + 1);
      i = end < 0 ? text.length : end + 1;
    } else if (c === '(') {
      depth++;
      i++;
    } else if (c === ')') {
      depth = Math.max(0, depth - 1);
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 64))!;
      if (depth === 0 && m[0].toUpperCase() === 'SELECT') count++;
      i += m[0].length;
    } else i++;
  }
  return Math.max(1, count);
}
