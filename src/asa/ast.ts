/**
 * The syntax tree of the Azure Stream Analytics query subset eddy reads (docs/asa-migration.md).
 * Every node carries the line and column (1-based) of its first token, so the compiler's
 * "not supported" messages point into the user's query.
 */
export interface Pos {
  readonly line: number;
  readonly column: number;
}

export type Expr =
  | { readonly k: 'num'; readonly value: number; readonly text: string; readonly pos: Pos }
  | { readonly k: 'str'; readonly value: string; readonly pos: Pos }
  | { readonly k: 'bool'; readonly value: boolean; readonly pos: Pos }
  | { readonly k: 'null'; readonly pos: Pos }
  | { readonly k: 'star'; readonly pos: Pos }
  /** A column reference: `machine.temperature`, `IoTHub.ConnectionDeviceId`, `[my field]`. */
  | { readonly k: 'path'; readonly parts: readonly string[]; readonly pos: Pos }
  /** A function call: `AVG(x)`, `System.Timestamp()`, `COUNT(DISTINCT x)`, `LAG(x) OVER (...)`. */
  | { readonly k: 'call'; readonly name: string; readonly args: readonly Expr[]; readonly distinct: boolean; readonly over: Over | null; readonly pos: Pos }
  | { readonly k: 'bin'; readonly op: string; readonly left: Expr; readonly right: Expr; readonly pos: Pos }
  | { readonly k: 'unary'; readonly op: 'NOT' | '-' | '+'; readonly expr: Expr; readonly pos: Pos }
  | { readonly k: 'isNull'; readonly expr: Expr; readonly not: boolean; readonly pos: Pos }
  | { readonly k: 'cast'; readonly expr: Expr; readonly type: string; readonly pos: Pos }
  | { readonly k: 'case'; readonly operand: Expr | null; readonly whens: readonly { when: Expr; then: Expr }[]; readonly otherwise: Expr | null; readonly pos: Pos };

/** `OVER (PARTITION BY ... LIMIT DURATION(unit, n) [WHEN ...])` or `OVER (ORDER BY ...)`. */
export interface Over {
  readonly partitionBy: readonly Expr[];
  readonly limitDuration: { readonly unit: string; readonly amount: number; readonly pos: Pos } | null;
  readonly when: Expr | null;
  readonly orderBy: readonly { expr: Expr; desc: boolean }[];
  readonly pos: Pos;
}

export interface SelectItem {
  readonly expr: Expr;
  readonly alias: string | null;
  readonly pos: Pos;
}

export interface Select {
  /** `*` alone, or the listed items. */
  readonly star: boolean;
  readonly items: readonly SelectItem[];
  /** The `INTO` output; null inside a `WITH` step. */
  readonly into: string | null;
  readonly from: { readonly name: string; readonly alias: string | null; readonly pos: Pos };
  readonly timestampBy: Expr | null;
  readonly where: Expr | null;
  readonly groupBy: readonly Expr[];
  readonly having: Expr | null;
  /** The statement's source text (from SELECT to its last token), for messages and stable ids. */
  readonly text: string;
  readonly pos: Pos;
}

export interface WithStep {
  readonly name: string;
  readonly select: Select;
  readonly pos: Pos;
}

export interface Query {
  readonly steps: readonly WithStep[];
  readonly statements: readonly Select[];
}
