/**
 * Parser of the Azure Stream Analytics query subset used at the edge (docs/asa-migration.md), built
 * with chevrotain (https://chevrotain.io/docs/): a lexer with case-insensitive keywords, then an
 * LL(k) parser with embedded actions that builds the tree of ./ast.ts. Only this folder imports
 * the toolkit.
 *
 * Grammar reference: Microsoft's "Stream Analytics Query Language Reference",
 * https://learn.microsoft.com/stream-analytics-query/stream-analytics-query-language-reference
 * (SELECT, FROM, TIMESTAMP BY, WHERE, GROUP BY, HAVING, WITH, CASE, CAST, OVER).
 */
import { createToken, EmbeddedActionsParser, Lexer, type IToken, type TokenType } from './chevrotainBundle.js';
import type { Expr, Over, Pos, Query, Select, SelectItem, WithStep } from './ast.js';

export interface QueryError {
  readonly line: number;
  readonly column: number;
  /** The offending token as written, or '' at the end of the query. */
  readonly token: string;
  readonly message: string;
  /** The statement (1-based, WITH steps not counted) whose compilation failed, when the compiler knows it. */
  readonly statement?: number;
}

export type ParseResult = { ok: true; query: Query } | { ok: false; errors: QueryError[] };

const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
const Bracketed = createToken({ name: 'Bracketed', pattern: /\[[^\]\r\n]*\]/ });

const keywordNames = [
  'SELECT', 'INTO', 'FROM', 'TIMESTAMP', 'BY', 'WHERE', 'GROUP', 'HAVING', 'WITH', 'AS', 'AND', 'OR', 'NOT',
  'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'CAST', 'OVER', 'PARTITION', 'LIMIT', 'DURATION', 'DISTINCT',
  'IS', 'NULL', 'TRUE', 'FALSE', 'ORDER', 'ASC', 'DESC',
] as const;
const kw: Record<string, TokenType> = {};
for (const name of keywordNames) {
  kw[name] = createToken({ name, pattern: new RegExp(`${name}\\b`, 'i'), longer_alt: Identifier });
}
/**
 * Constructs of the ASA language outside the edge subset: a keyword here makes the parser say so
 * by name instead of "expecting ...". (JOIN, UNION, APPLY and MATCH_RECOGNIZE are in the reference
 * above; eddy has no join or pattern operator.)
 */
const unsupportedNames = ['JOIN', 'UNION', 'APPLY', 'CROSS', 'OUTER', 'INNER', 'ON', 'MATCH_RECOGNIZE', 'EXISTS', 'IN', 'LIKE', 'BETWEEN'];
const UNSUPPORTED = new Set(unsupportedNames);
/** Lexed as keywords (reserved words of the ASA reference above) so that `FROM a JOIN b` does not read JOIN as an alias. */
const unsupportedTokens = unsupportedNames.map((name) => createToken({ name: `Unsupported_${name}`, pattern: new RegExp(`${name}\\b`, 'i'), longer_alt: Identifier }));

const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
const LineComment = createToken({ name: 'LineComment', pattern: /--[^\r\n]*/, group: Lexer.SKIPPED });
const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[\s\S]*?\*\//, group: Lexer.SKIPPED });
const NumberLit = createToken({ name: 'NumberLit', pattern: /\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+/ });
const StringLit = createToken({ name: 'StringLit', pattern: /'(?:[^']|'')*'/ });
const Comma = createToken({ name: 'Comma', pattern: /,/ });
const Dot = createToken({ name: 'Dot', pattern: /\./ });
const Semi = createToken({ name: 'Semi', pattern: /;/ });
const LParen = createToken({ name: 'LParen', pattern: /\(/ });
const RParen = createToken({ name: 'RParen', pattern: /\)/ });
const Star = createToken({ name: 'Star', pattern: /\*/ });
const Plus = createToken({ name: 'Plus', pattern: /\+/ });
const Minus = createToken({ name: 'Minus', pattern: /-/ });
const Slash = createToken({ name: 'Slash', pattern: /\// });
const Percent = createToken({ name: 'Percent', pattern: /%/ });
const CompareOp = createToken({ name: 'CompareOp', pattern: /<>|!=|<=|>=|=|<|>/ });

const allTokens = [
  WhiteSpace, LineComment, BlockComment,
  ...keywordNames.map((n) => kw[n]!),
  ...unsupportedTokens,
  Identifier, Bracketed, NumberLit, StringLit, Comma, Dot, Semi, LParen, RParen, Star, Plus, Minus, Slash, Percent, CompareOp,
];

/** Built on the first parse: building the lexer and the parser (grammar recording) costs memory an idle module without queries should not hold. */
let lexer: InstanceType<typeof Lexer> | undefined;

const posOf = (t: IToken): Pos => ({ line: t.startLine ?? 1, column: t.startColumn ?? 1 });
/** Subrule results are undefined during chevrotain's grammar recording phase: read them through these. */
const txt = (n: { text: string } | undefined): string => n?.text ?? '';

/** ASA's window functions (and their short names), as a GROUP BY item. */
const WINDOW_FUNCTION = /^(tumbling|hopping|sliding|session|snapshot)(window)?$/i;

/** `System.Timestamp()` (or `System.Timestamp`) as a GROUP BY item is `SnapshotWindow()`; anything else as it is. */
function snapshotSpelling(e: Expr): Expr {
  const isTs = (e.k === 'call' && e.name.toUpperCase() === 'SYSTEM.TIMESTAMP' && e.args.length === 0 && e.over === null)
    || (e.k === 'path' && e.parts.length === 2 && e.parts.join('.').toUpperCase() === 'SYSTEM.TIMESTAMP');
  return isTs ? { k: 'call', name: 'SnapshotWindow', args: [], distinct: false, over: null, pos: e.pos } : e;
}
const npos = (n: { pos: Pos } | undefined): Pos => n?.pos ?? { line: 0, column: 0 };
const identText = (t: IToken): string => (t.tokenType === Bracketed ? t.image.slice(1, -1) : t.image);

class AsaParser extends EmbeddedActionsParser {
  constructor() {
    super(allTokens, { maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  public query = this.RULE('query', (): Query => {
    const steps: WithStep[] = [];
    const statements: Select[] = [];
    this.OPTION(() => {
      this.CONSUME(kw.WITH!);
      this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => steps.push(this.SUBRULE(this.withStep)) });
    });
    this.AT_LEAST_ONE(() => {
      statements.push(this.SUBRULE(this.select));
      this.OPTION2(() => this.CONSUME(Semi));
    });
    return { steps, statements };
  });

  private withStep = this.RULE('withStep', (): WithStep => {
    const name = this.SUBRULE(this.name);
    this.CONSUME(kw.AS!);
    this.CONSUME(LParen);
    const select = this.SUBRULE(this.select);
    this.CONSUME(RParen);
    return { name: txt(name), select, pos: npos(name) };
  });

  private name = this.RULE('name', (): { text: string; pos: Pos } => {
    // DURATION is a keyword for LIMIT DURATION(...), and also the window size function Duration(unit, n).
    const t = this.OR([{ ALT: () => this.CONSUME(Identifier) }, { ALT: () => this.CONSUME(Bracketed) }, { ALT: () => this.CONSUME(kw.DURATION!) }]);
    return { text: identText(t), pos: posOf(t) };
  });

  private select = this.RULE('select', (): Select => {
    const first = this.CONSUME(kw.SELECT!);
    const listed: SelectItem[] = [];
    // `*` is a primary expression, so `SELECT *` is one item whose expression is a star.
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => listed.push(this.SUBRULE(this.selectItem)) });
    const star = listed.length === 1 && listed[0]?.expr?.k === 'star' && listed[0].alias === null;
    const items = star ? [] : listed;
    let into: string | null = null;
    this.OPTION(() => {
      this.CONSUME(kw.INTO!);
      into = txt(this.SUBRULE(this.name));
    });
    this.CONSUME(kw.FROM!);
    const fromName = this.SUBRULE2(this.name);
    let fromAlias: string | null = null;
    this.OPTION5(() => {
      this.OPTION6(() => this.CONSUME2(kw.AS!));
      fromAlias = txt(this.SUBRULE3(this.name));
    });
    let timestampBy: Expr | null = null;
    this.OPTION2(() => {
      this.CONSUME(kw.TIMESTAMP!);
      this.CONSUME(kw.BY!);
      timestampBy = this.SUBRULE(this.expr);
    });
    let where: Expr | null = null;
    this.OPTION3(() => {
      this.CONSUME(kw.WHERE!);
      where = this.SUBRULE2(this.expr);
    });
    const groupBy: Expr[] = [];
    this.OPTION4(() => {
      this.CONSUME(kw.GROUP!);
      this.CONSUME2(kw.BY!);
      this.AT_LEAST_ONE_SEP2({ SEP: Comma, DEF: () => groupBy.push(this.SUBRULE3(this.expr)) });
    });
    // `GROUP BY System.Timestamp()` is ASA's other spelling of a snapshot window, unless GROUP BY has a
    // window function too ("When combined with another window function, System.Timestamp() is treated as
    // a key and not as a window definition": https://learn.microsoft.com/stream-analytics-query/snapshot-window-azure-stream-analytics).
    // Read as SnapshotWindow() so every later step sees one window function.
    const snapshotSpelled = groupBy.some((g) => g.k === 'call' && WINDOW_FUNCTION.test(g.name)) ? groupBy : groupBy.map(snapshotSpelling);
    let having: Expr | null = null;
    this.OPTION7(() => {
      this.CONSUME(kw.HAVING!);
      having = this.SUBRULE4(this.expr);
    });
    const last = this.LA(0);
    return {
      star, items, into,
      from: { name: txt(fromName), alias: fromAlias, pos: npos(fromName) },
      timestampBy, where, groupBy: snapshotSpelled, having,
      text: this.source.slice(first.startOffset, (last.endOffset ?? first.startOffset) + 1),
      pos: posOf(first),
    };
  });

  private selectItem = this.RULE('selectItem', (): SelectItem => {
    const start = this.LA(1);
    const expr = this.SUBRULE(this.expr);
    let alias: string | null = null;
    // The SELECT reference's select_list: `expression [ [ AS ] column_alias ] | column_alias = expression`
    // (https://learn.microsoft.com/stream-analytics-query/select-azure-stream-analytics).
    this.OPTION(() => {
      this.OPTION1(() => this.CONSUME(kw.AS!));
      alias = txt(this.SUBRULE(this.name));
    });
    if (alias === null && expr.k === 'bin' && expr.op === '=' && expr.left.k === 'path' && expr.left.parts.length === 1) {
      return { expr: expr.right, alias: expr.left.parts[0]!, pos: posOf(start) };
    }
    return { expr, alias, pos: posOf(start) };
  });

  private expr = this.RULE('expr', (): Expr => {
    let left = this.SUBRULE(this.andExpr);
    this.MANY(() => {
      const op = this.CONSUME(kw.OR!);
      const right = this.SUBRULE2(this.andExpr);
      left = { k: 'bin', op: 'OR', left, right, pos: posOf(op) };
    });
    return left;
  });

  private andExpr = this.RULE('andExpr', (): Expr => {
    let left = this.SUBRULE(this.notExpr);
    this.MANY(() => {
      const op = this.CONSUME(kw.AND!);
      const right = this.SUBRULE2(this.notExpr);
      left = { k: 'bin', op: 'AND', left, right, pos: posOf(op) };
    });
    return left;
  });

  private notExpr = this.RULE('notExpr', (): Expr =>
    this.OR([
      {
        ALT: () => {
          const op = this.CONSUME(kw.NOT!);
          const e = this.SUBRULE(this.notExpr);
          return { k: 'unary', op: 'NOT', expr: e, pos: posOf(op) } as Expr;
        },
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]),
  );

  private comparison = this.RULE('comparison', (): Expr => {
    let left = this.SUBRULE(this.additive);
    this.OPTION(() => {
      this.OR([
        {
          ALT: () => {
            const op = this.CONSUME(CompareOp);
            const right = this.SUBRULE2(this.additive);
            left = { k: 'bin', op: op.image === '!=' ? '<>' : op.image, left, right, pos: posOf(op) };
          },
        },
        {
          ALT: () => {
            const is = this.CONSUME(kw.IS!);
            let not = false;
            this.OPTION2(() => { this.CONSUME(kw.NOT!); not = true; });
            this.CONSUME(kw.NULL!);
            left = { k: 'isNull', expr: left, not, pos: posOf(is) };
          },
        },
      ]);
    });
    return left;
  });

  private additive = this.RULE('additive', (): Expr => {
    let left = this.SUBRULE(this.multiplicative);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Plus) }, { ALT: () => this.CONSUME(Minus) }]);
      const right = this.SUBRULE2(this.multiplicative);
      left = { k: 'bin', op: op.image, left, right, pos: posOf(op) };
    });
    return left;
  });

  private multiplicative = this.RULE('multiplicative', (): Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Star) }, { ALT: () => this.CONSUME(Slash) }, { ALT: () => this.CONSUME(Percent) }]);
      const right = this.SUBRULE2(this.unary);
      left = { k: 'bin', op: op.image, left, right, pos: posOf(op) };
    });
    return left;
  });

  private unary = this.RULE('unary', (): Expr =>
    this.OR([
      {
        ALT: () => {
          const op = this.OR2([{ ALT: () => this.CONSUME(Minus) }, { ALT: () => this.CONSUME(Plus) }]);
          const e = this.SUBRULE(this.unary);
          return { k: 'unary', op: op.image as '-' | '+', expr: e, pos: posOf(op) } as Expr;
        },
      },
      { ALT: () => this.SUBRULE(this.primary) },
    ]),
  );

  private primary = this.RULE('primary', (): Expr =>
    this.OR([
      { ALT: () => { const t = this.CONSUME(NumberLit); return { k: 'num', value: Number(t.image), text: t.image, pos: posOf(t) } as Expr; } },
      { ALT: () => { const t = this.CONSUME(StringLit); return { k: 'str', value: t.image.slice(1, -1).replace(/''/g, "'"), pos: posOf(t) } as Expr; } },
      { ALT: () => { const t = this.CONSUME(kw.TRUE!); return { k: 'bool', value: true, pos: posOf(t) } as Expr; } },
      { ALT: () => { const t = this.CONSUME(kw.FALSE!); return { k: 'bool', value: false, pos: posOf(t) } as Expr; } },
      { ALT: () => { const t = this.CONSUME(kw.NULL!); return { k: 'null', pos: posOf(t) } as Expr; } },
      { ALT: () => { const t = this.CONSUME(Star); return { k: 'star', pos: posOf(t) } as Expr; } },
      { ALT: () => this.SUBRULE(this.cast) },
      { ALT: () => this.SUBRULE(this.caseExpr) },
      { ALT: () => this.SUBRULE(this.pathOrCall) },
      {
        ALT: () => {
          this.CONSUME(LParen);
          const e = this.SUBRULE(this.expr);
          this.CONSUME(RParen);
          return e;
        },
      },
    ]),
  );

  private cast = this.RULE('cast', (): Expr => {
    const t = this.CONSUME(kw.CAST!);
    this.CONSUME(LParen);
    const e = this.SUBRULE(this.expr);
    this.CONSUME(kw.AS!);
    const type = this.SUBRULE(this.name);
    // A sized type, `NVARCHAR(MAX)` (the query-patterns page's CASE example), is read whole so the
    // compiler names it ("CAST(... AS nvarchar(max))") rather than the parser failing at its "(".
    let size = '';
    this.OPTION(() => {
      this.CONSUME2(LParen);
      size = this.OR([{ ALT: () => this.CONSUME(NumberLit).image }, { ALT: () => txt(this.SUBRULE2(this.name)) }]);
      this.CONSUME2(RParen);
    });
    this.CONSUME(RParen);
    return { k: 'cast', expr: e, type: `${txt(type)}${size === '' ? '' : `(${size})`}`.toLowerCase(), pos: posOf(t) };
  });

  private caseExpr = this.RULE('caseExpr', (): Expr => {
    const t = this.CONSUME(kw.CASE!);
    let operand: Expr | null = null;
    this.OPTION(() => { operand = this.SUBRULE(this.expr); });
    const whens: { when: Expr; then: Expr }[] = [];
    this.AT_LEAST_ONE(() => {
      this.CONSUME(kw.WHEN!);
      const when = this.SUBRULE2(this.expr);
      this.CONSUME(kw.THEN!);
      const then = this.SUBRULE3(this.expr);
      whens.push({ when, then });
    });
    let otherwise: Expr | null = null;
    this.OPTION2(() => {
      this.CONSUME(kw.ELSE!);
      otherwise = this.SUBRULE4(this.expr);
    });
    this.CONSUME(kw.END!);
    return { k: 'case', operand, whens, otherwise, pos: posOf(t) };
  });

  /** `a.b.c`, `Fn(args)`, `System.Timestamp()`, `COUNT(DISTINCT x)`, `... OVER (...)`. */
  private pathOrCall = this.RULE('pathOrCall', (): Expr => {
    const first = this.SUBRULE(this.name);
    const parts = [txt(first)];
    this.MANY(() => {
      this.CONSUME(Dot);
      // After a dot, TIMESTAMP is a member name: System.Timestamp().
      parts.push(this.OR([{ ALT: () => txt(this.SUBRULE2(this.name)) }, { ALT: () => this.CONSUME(kw.TIMESTAMP!).image }]));
    });
    let call: Expr | null = null;
    this.OPTION(() => {
      this.CONSUME(LParen);
      let distinct = false;
      const args: Expr[] = [];
      this.OPTION2(() => { this.CONSUME(kw.DISTINCT!); distinct = true; });
      this.MANY_SEP({ SEP: Comma, DEF: () => args.push(this.SUBRULE(this.expr)) });
      this.CONSUME(RParen);
      let over: Over | null = null;
      this.OPTION3(() => { over = this.SUBRULE(this.over); });
      call = { k: 'call', name: parts.join('.'), args, distinct, over, pos: npos(first) };
    });
    return call ?? { k: 'path', parts, pos: npos(first) };
  });

  private over = this.RULE('over', (): Over => {
    const t = this.CONSUME(kw.OVER!);
    this.CONSUME(LParen);
    const partitionBy: Expr[] = [];
    const orderBy: { expr: Expr; desc: boolean }[] = [];
    let limitDuration: Over['limitDuration'] = null;
    let when: Expr | null = null;
    this.OPTION(() => {
      this.CONSUME(kw.PARTITION!);
      this.CONSUME(kw.BY!);
      this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => partitionBy.push(this.SUBRULE(this.expr)) });
    });
    this.OPTION2(() => {
      this.CONSUME(kw.ORDER!);
      this.CONSUME2(kw.BY!);
      this.AT_LEAST_ONE_SEP2({
        SEP: Comma,
        DEF: () => {
          const expr = this.SUBRULE2(this.expr);
          let desc = false;
          this.OPTION5(() => this.OR([{ ALT: () => this.CONSUME(kw.ASC!) }, { ALT: () => { this.CONSUME(kw.DESC!); desc = true; } }]));
          orderBy.push({ expr, desc });
        },
      });
    });
    this.OPTION3(() => {
      const l = this.CONSUME(kw.LIMIT!);
      this.CONSUME(kw.DURATION!);
      this.CONSUME2(LParen);
      const unit = this.SUBRULE(this.name);
      this.CONSUME(Comma);
      const n = this.CONSUME(NumberLit);
      this.CONSUME2(RParen);
      limitDuration = { unit: txt(unit), amount: Number(n.image), pos: posOf(l) };
    });
    this.OPTION4(() => {
      this.CONSUME(kw.WHEN!);
      when = this.SUBRULE3(this.expr);
    });
    this.CONSUME(RParen);
    return { partitionBy, limitDuration, when, orderBy, pos: posOf(t) };
  });

  /** The query text being parsed (for each statement's `text`). */
  public source = '';
}

let parser: AsaParser | undefined;

/** Parses a whole ASA query; errors name line, column and the offending token. */
export function parseQuery(text: string): ParseResult {
  lexer ??= new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });
  parser ??= new AsaParser();
  const lexed = lexer.tokenize(text);
  if (lexed.errors.length > 0) {
    return {
      ok: false,
      errors: lexed.errors.map((e) => {
        const ch = text.slice(e.offset, e.offset + e.length);
        return { line: e.line ?? 1, column: e.column ?? 1, token: ch, message: `unexpected character ${JSON.stringify(ch)}` };
      }),
    };
  }
  parser.source = text;
  parser.input = lexed.tokens;
  const query = parser.query();
  if (parser.errors.length > 0) {
    const e = parser.errors[0]!;
    const t = e.token;
    const atEnd = t.tokenType.name === 'EOF';
    const image = atEnd ? '' : t.image;
    const line = atEnd ? lastLine(text) : (t.startLine ?? 1);
    const column = atEnd ? lastColumn(text) : (t.startColumn ?? 1);
    const upper = image.toUpperCase();
    const message = UNSUPPORTED.has(upper)
      ? `${upper} is not supported at the edge (eddy reads the subset of docs/asa-migration.md)`
      : atEnd
        ? `unexpected end of query: ${e.message}`
        : `unexpected ${JSON.stringify(image)}: ${e.message}`;
    return { ok: false, errors: [{ line, column, token: image, message }] };
  }
  return { ok: true, query };
}

function lastLine(text: string): number {
  return text.split('\n').length;
}
function lastColumn(text: string): number {
  const lines = text.split('\n');
  return lines[lines.length - 1]!.length + 1;
}

/** `file:line:column: message` (the form `eddy validate` prints). */
export function formatQueryError(file: string, e: QueryError): string {
  return `${file}:${e.line}:${e.column}: ${e.message}`;
}
