import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import type { RuleSet } from '../contracts/rule.js';
import { isPlainObject } from './mergeDesired.js';
import { ruleSwitch } from './ruleSwitch.js';

/** One problem in a rule file, located in the JSON text (1-based line and column, in UTF-16 units as editors count). */
export interface RuleFileProblem {
  /** Dotted path from the root (`machine1m.window.size`); '' for the document itself. */
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  /**
   * True when the file as a whole is unusable (not JSON, not an object): nothing in it can run.
   * False for a problem of one rule, which the module rejects alone (docs/contract.md section 6).
   */
  readonly fatal: boolean;
}

/** A rule file's text checked: the rule set when the document is usable, and every problem found. */
export interface RuleFileCheck {
  /** The parsed rule set; null when a fatal problem makes the document unusable. */
  readonly rules: RuleSet | null;
  readonly problems: readonly RuleFileProblem[];
}

/** jsonc-parser's error codes in words a user reads (the codes are listed in its README). */
const SYNTAX: Record<string, string> = {
  InvalidSymbol: 'unexpected character',
  InvalidNumberFormat: 'invalid number',
  PropertyNameExpected: 'expected a property name in double quotes',
  ValueExpected: 'expected a value',
  ColonExpected: 'expected ":"',
  CommaExpected: 'expected "," (or a missing closing bracket)',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: 'unexpected text after the end of the document',
  InvalidCommentToken: 'comments are not allowed in JSON',
  UnexpectedEndOfComment: 'unterminated comment',
  UnexpectedEndOfString: 'unterminated string',
  UnexpectedEndOfNumber: 'unterminated number',
  InvalidUnicode: 'invalid \\u escape',
  InvalidEscapeCharacter: 'invalid escape character',
  InvalidCharacter: 'invalid character in a string (control characters must be escaped)',
};

/** Maps an offset in `text` to a 1-based line and column. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: offset - start + 1 };
}

/**
 * Checks the text of a rule file (`{ "<ruleId>": rule, ... }`): JSON syntax (every error jsonc-parser
 * finds, in strict JSON mode: no comments, no trailing commas), a document that is not an object,
 * a rule id given twice (JSON.parse silently keeps the last), and each rule through `compileRule`
 * (the schema and the expressions, exactly as the module and the twin check them). Each problem
 * carries its path and its line and column: the node the path names, or the nearest one that exists.
 */
export function checkRuleFile(text: string, compile: (id: string, doc: unknown) => { ok: true } | { ok: false; error: string }): RuleFileCheck {
  const at = (path: string, offset: number, message: string, fatal: boolean): RuleFileProblem => ({ path, ...lineColumn(text, offset), message, fatal });
  // A leading BOM is allowed in a JSON text (RFC 8259 section 8.1); jsonc-parser and JSON.parse both refuse it.
  const body = text.charCodeAt(0) === 0xfeff ? ' ' + text.slice(1) : text;
  const errors: ParseError[] = [];
  const root = parseTree(body, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  if (errors.length > 0 || root === undefined) {
    // jsonc-parser recovers and may report the same spot twice ("property name expected", then "value expected"): the first says it.
    const firstAt = errors.filter((e, i) => errors.findIndex((x) => x.offset === e.offset) === i);
    const problems = firstAt.map((e) => at('', e.offset, `JSON syntax: ${SYNTAX[printParseErrorCode(e.error)] ?? printParseErrorCode(e.error)}`, true));
    if (problems.length === 0) problems.push(at('', 0, 'the file is empty', true));
    return { rules: null, problems };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    // Not expected after a clean parseTree; kept so that whatever JSON.parse refuses is never run.
    return { rules: null, problems: [at('', 0, `JSON syntax: ${(err as Error).message}`, true)] };
  }
  if (!isPlainObject(doc) || root.type !== 'object') {
    return { rules: null, problems: [at('', root.offset, `a rule file must hold a JSON object { "<ruleId>": rule, ... }, not ${Array.isArray(doc) ? 'an array' : doc === null ? 'null' : typeof doc}`, true)] };
  }
  const problems: RuleFileProblem[] = [];
  const seen = new Set<string>();
  for (const prop of root.children ?? []) {
    const key = prop.children?.[0];
    if (key === undefined || typeof key.value !== 'string') continue;
    if (seen.has(key.value)) problems.push(at(key.value, key.offset, `rule id "${key.value}" appears more than once; only the last definition would run`, false));
    seen.add(key.value);
  }
  for (const [id, rule] of Object.entries(doc)) {
    // A rule switched off (`"enabled": false`) is not compiled, by the module either (src/config/resolveConfig.ts).
    if (ruleSwitch(id, rule).state === 'off') continue;
    const res = compile(id, rule);
    if (res.ok) continue;
    const { path, node } = locate(root, id, res.error);
    problems.push(at(path, node.offset, res.error, false));
  }
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { rules: doc as RuleSet, problems };
}

/**
 * The node a `compileRule` error is about. Its messages start with the rule id and a dotted path
 * (`machine1m.window.size: must be ...`, src/config/validateRuleDocument.ts); the deepest node of that
 * path that exists in the document is the place (a missing property is reported on its parent object).
 * The last occurrence of a repeated id is the one that runs (JSON.parse), so that one is searched.
 */
function locate(root: Node, id: string, error: string): { path: string; node: Node } {
  const props = (root.children ?? []).filter((p) => p.children?.[0]?.value === id);
  const prop = props[props.length - 1];
  const value = prop?.children?.[1];
  if (prop === undefined || value === undefined) return { path: id, node: root };
  // An invalid id is a problem of the key itself.
  if (error.startsWith('rule id ')) return { path: id, node: prop.children![0]! };
  const rest = error.startsWith(id) ? error.slice(id.length) : '';
  const m = /^((?:\.[^.:\s]+)*): /.exec(rest);
  const segments = m?.[1] ? m[1].slice(1).split('.') : [];
  let node = value;
  let path = id;
  for (const seg of segments) {
    const key: string | number = node.type === 'array' && /^\d+$/.test(seg) ? Number(seg) : seg;
    const next = findNodeAtLocation(node, [key]);
    if (next === undefined) break;
    node = next;
    path += `.${seg}`;
  }
  return { path, node };
}
