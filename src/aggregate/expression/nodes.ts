/**
 * The expression builder's vocabulary: the mathjs nodes it reads, the closures it builds (`Built`),
 * the hooks a caller passes (`BuildEnv`), and its two errors: `CompileError` (a rule is rejected at
 * validation) and `EvalFailure` (one event fails at run time and is counted, docs/contract.md section 5).
 * compileSelect.ts, sqlNulls.ts and src/rules/lagExpression.ts build on the same vocabulary with their own
 * `BuildEnv.leaf` (aggregate calls, having names, LAG slots).
 */

/** Validators return errors instead of throwing (after aedes' lib/utils.js, https://github.com/moscajs/aedes). */
export type CompileResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Why one event could not be evaluated; the engine catches it per event and counts `reason`. */
export type EvalFailureReason = 'missing-field' | 'not-a-number' | 'expression-error';

/**
 * Thrown by compiled closures for bad data. Instances are created once per failure site at compile
 * time and re-thrown, so a failing event costs no allocation or stack capture: treat them as
 * immutable values, not as carriers of a useful stack.
 */
export class EvalFailure extends Error {
  readonly reason: EvalFailureReason;
  readonly detail: string;
  constructor(reason: EvalFailureReason, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'EvalFailure';
    this.reason = reason;
    this.detail = detail;
  }
}

/** A compiled node: a closure over some context type and what we know statically of its result. */
export interface Built<C> {
  readonly fn: (c: C) => unknown;
  /** 'num' and 'bool' are guaranteed result types; 'str' is a string constant; 'any' is unknown. */
  readonly kind: 'num' | 'bool' | 'str' | 'any';
  /** Set when the node does not depend on the context (constant-folded). */
  readonly constant?: { readonly value: unknown };
  /** Set when the node is a field path (used to name failures). */
  readonly path?: string;
  /** Set for body paths, so that numeric uses can fuse the read and the number check. */
  readonly segments?: readonly string[];
}

/** The parts of mathjs nodes we read (mathjs' own typings are a large union; we only need these). */
export interface MNode {
  readonly type: string;
  readonly value?: unknown;
  readonly name?: string;
  readonly op?: string;
  readonly fn?: MNode | string;
  readonly args?: readonly MNode[];
  readonly implicit?: boolean;
  readonly content?: MNode;
  readonly object?: MNode;
  readonly index?: MNode;
  readonly dimensions?: readonly MNode[];
  readonly condition?: MNode;
  readonly trueExpr?: MNode;
  readonly falseExpr?: MNode;
  readonly conditionals?: readonly string[];
  readonly params?: readonly MNode[];
  toString(): string;
}

/** Thrown inside the builder only (compile time); turned into `{ok:false}` at the API boundary. */
export class CompileError extends Error {}

/** Hooks that let a caller resolve some leaves itself (aggregate calls, having names). */
export interface BuildEnv<C> {
  /** Called for FunctionNode, SymbolNode and AccessorNode first; `undefined` means "default handling". */
  readonly leaf?: (node: MNode, env: BuildEnv<C>) => Built<C> | undefined;
  /** Whether field paths and identity symbols may be read (false in select outers and having). */
  readonly allowPaths: boolean;
  /** What an unknown symbol means when paths are not allowed. */
  readonly noPathMessage?: string;
  /** Collected dotted paths. */
  readonly paths: Set<string>;
  /** Extra message for function names that are aggregates (used outside a select's top level). */
  readonly aggregateNames?: ReadonlySet<string>;
}

/** The node under any parentheses. */
export function stripParens(node: MNode): MNode {
  let n = node;
  while (n.type === 'ParenthesisNode' && n.content) n = n.content;
  return n;
}

/** The node's text for messages, cut at 60 characters. */
export function text(node: MNode): string {
  const s = node.toString();
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Runs `f`, turning a CompileError into `{ok:false}`. */
export function catchCompile<T>(f: () => T): CompileResult<T> {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    if (e instanceof CompileError) return { ok: false, error: e.message };
    return { ok: false, error: `invalid expression: ${(e as Error).message}` };
  }
}
